"""The module's REST API under /rest/V1/ (its etc/webapi.xml), plus publishing.

    GET  /rest/V1/async_event/{subscriptionId}   one subscription
    GET  /rest/V1/async_events                   a page of them, with searchCriteria
    POST /rest/V1/async_event                    subscribe: {"asyncEvent": {...}}
    PUT  /rest/V1/async_event/{subscriptionId}   change status and/or metadata
    POST /rest/V1/async_event/publish            beyond the module: enqueue a trigger

Bodies and answers keep the module's shapes; `metadata` is the notifier name.
The verification token goes in and never comes out. Validation is the CLI's own
(`subscribe.subscribe`, `publish.publish`), so both refuse the same input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .. import publishing
from .. import subscribe as subscribing
from ..messages import MAX_ID, MAX_STORE_ID
from ..redaction import redact_url
from ..store import Subscription
from ..tokens import ApiToken
from .auth import api_token, backend, require_event
from .errors import ApiError

FILTER_DESCRIPTION = (
    "Beyond the module: send only events whose body matches this `ae search` query,"
    " e.g. data.data.grand_total:[100 TO *]."
)
FORMAT_DESCRIPTION = 'Beyond the module: the body, data ({"data": payload}) or cloudevents (CloudEvents 1.0).'
RATE_LIMIT_DESCRIPTION = "At most this many deliveries per second or minute (e.g. 50/s, 300/m), across consumers."


class Strict(BaseModel):
    # Unknown fields and wrong types are a 400, never silently dropped or coerced.
    model_config = ConfigDict(extra="forbid", strict=True)


class NewSubscription(Strict):
    event_name: str = Field(description="A defined event, e.g. sales.order.created.")
    recipient_url: str = Field(description="Where deliveries go (an http(s) URL for the http notifier).")
    verification_token: str = Field(description="Signs every delivery (x-magento-signature); never returned.")
    metadata: str = Field("http", description="The notifier: how deliveries are made.")
    store_id: int = Field(0, le=MAX_STORE_ID, description="Store scope; 0 means all stores.")
    filter: str | None = Field(None, description=FILTER_DESCRIPTION)
    format: str = Field("data", description=FORMAT_DESCRIPTION)
    rate_limit: str | None = Field(None, description=RATE_LIMIT_DESCRIPTION)


class SubscriptionChange(Strict):
    status: bool = Field(description="true enables the subscription, false disables it.")
    metadata: str | None = Field(None, description="A new notifier, if given.")
    filter: str | None = Field(None, description=FILTER_DESCRIPTION + " null removes it; absent keeps it.")
    format: str | None = Field(None, description=FORMAT_DESCRIPTION + " Absent keeps it.")
    rate_limit: str | None = Field(None, description=RATE_LIMIT_DESCRIPTION + " none removes it; absent keeps it.")


class CreateBody(Strict):
    asyncEvent: NewSubscription  # noqa: N815 - the module's field name


class ChangeBody(Strict):
    asyncEvent: SubscriptionChange  # noqa: N815 - the module's field name


class AsyncEvent(BaseModel):
    """A subscription as the module's API shows it (AsyncEventDisplayInterface + metadata)."""

    subscription_id: int
    event_name: str
    recipient_url: str
    status: bool
    subscribed_at: str
    store_id: int
    metadata: str
    filter: str | None = None
    format: str = "data"
    rate_limit: str | None = None


class Filter(BaseModel):
    field: str
    value: str
    condition_type: str


class FilterGroup(BaseModel):
    filters: list[Filter]


class SearchCriteria(BaseModel):
    filter_groups: list[FilterGroup]
    page_size: int | None = None
    current_page: int


class AsyncEventList(BaseModel):
    items: list[AsyncEvent]
    search_criteria: SearchCriteria
    total_count: int


class PublishBody(Strict):
    event_name: str = Field(description="A defined event.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="The event's data (a JSON object).")
    store_id: int = Field(0, le=MAX_STORE_ID, description="The store the event happened in; 0 for none.")


class Published(BaseModel):
    message_id: str


class Message(BaseModel):
    """Every error, in Magento's shape."""

    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "Bad request: unknown event, bad recipient, wrong body. Nothing written."},
    401: {"model": Message, "description": "No token, or an unknown or revoked one."},
    403: {"model": Message, "description": "The token's scope does not cover the event."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "No such subscription."}}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: {"model": Message, "description": "The queue is unreachable."}}

router = APIRouter(prefix="/rest/V1", tags=["async events"], responses=ERRORS)
Token = Annotated[ApiToken, Depends(api_token)]


def digits_only(value: Any) -> Any:
    """A path id as text must be ASCII digits: pydantic's int would take "1.0" and "１"."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written in digits")
    return value


SubscriptionId = Annotated[int, Path(description="The subscription id.", ge=1, le=MAX_ID), BeforeValidator(digits_only)]


def display(subscription: Subscription) -> AsyncEvent:
    return AsyncEvent(
        subscription_id=subscription.subscription_id,
        event_name=subscription.event_name,
        recipient_url=redact_url(subscription.recipient_url),
        status=subscription.enabled,
        subscribed_at=(subscription.subscribed_at or "")[:19],  # Magento's "Y-m-d H:i:s"
        store_id=subscription.store_id,
        metadata=subscription.notifier,
        filter=subscription.payload_filter,
        format=subscription.body_format,
        rate_limit=str(subscription.rate_limit) if subscription.rate_limit else None,
    )


def _not_found(subscription_id: int) -> ApiError:
    return ApiError(404, f"Async event with subscription ID {subscription_id} does not exist")


def _visible(subscription: Subscription | None, subscription_id: int, token: ApiToken) -> Subscription:
    """The subscription if the token may see it. One outside the token's scope answers
    exactly as a missing one does, so a scoped token cannot tell which ids exist."""
    if subscription is None or not token.allows(subscription.event_name):
        raise _not_found(subscription_id)
    return subscription


@router.get(
    "/async_event/{subscription_id}", response_model=AsyncEvent, responses=NOT_FOUND, summary="Get a subscription"
)
def get_subscription(request: Request, subscription_id: SubscriptionId, token: Token) -> AsyncEvent:
    with backend(request).use() as rt:
        subscription = rt.store.find_subscription(subscription_id)
    return display(_visible(subscription, subscription_id, token))


# Magento's searchCriteria, as far as subscriptions need it: one event_name filter and paging.
# Magento's documentation spells the keys in snake_case (filter_groups, condition_type, page_size,
# current_page) and its PHP accepts camelCase too; both spellings are read, as camelCase.
FILTER = "searchCriteria[filterGroups][0][filters][0]"
KNOWN_CRITERIA = {
    f"{FILTER}[field]",
    f"{FILTER}[value]",
    f"{FILTER}[conditionType]",
    "searchCriteria[pageSize]",
    "searchCriteria[currentPage]",
    "searchCriteria",
}
SNAKE_CASE = {"filter_groups": "filterGroups", "condition_type": "conditionType"}
SNAKE_CASE |= {"page_size": "pageSize", "current_page": "currentPage"}


def camel_case_criteria(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The query's parameters with Magento's snake_case criteria keys spelled in camelCase."""
    criteria: dict[str, str] = {}
    for key, value in params:
        for snake, camel in SNAKE_CASE.items():
            key = key.replace(f"[{snake}]", f"[{camel}]")
        criteria[key] = value
    return criteria


def _whole_number(criteria: dict[str, str], key: str, low: int, high: int) -> int | None:
    text = criteria.get(key)
    if text is None:
        return None
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise ApiError(400, f"{key} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def _like(pattern: str) -> str:
    """SQL LIKE's % and _ as a glob, the way Magento's 'like' condition reads them."""
    return "".join("*" if c == "%" else "?" if c == "_" else "[" + c + "]" if c in "*?[" else c for c in pattern)


@router.get(
    "/async_events",
    response_model=AsyncEventList,
    summary="List subscriptions",
    description=(
        "Magento's searchCriteria: `searchCriteria[pageSize]`, `searchCriteria[currentPage]` and one "
        f"`event_name` filter (`{FILTER}[field]`, `[value]`, `[conditionType]` eq or like), "
        "in camelCase or Magento's snake_case (`filter_groups`, `condition_type`, `page_size`, `current_page`)."
    ),
)
def list_subscriptions(request: Request, token: Token) -> AsyncEventList:
    criteria = camel_case_criteria(request.query_params.multi_items())
    field, value = criteria.get(f"{FILTER}[field]"), criteria.get(f"{FILTER}[value]")
    condition_type = criteria.get(f"{FILTER}[conditionType]", "eq")
    page_size = _whole_number(criteria, "searchCriteria[pageSize]", 1, 10000)
    current_page = _whole_number(criteria, "searchCriteria[currentPage]", 1, 1_000_000) or 1
    unknown = sorted(k for k in criteria if k not in KNOWN_CRITERIA)
    if unknown:
        raise ApiError(
            400,
            f"unsupported search criteria {unknown[0]!r}: one event_name filter, "
            "pageSize and currentPage are supported",
        )
    if (field is None) != (value is None):
        raise ApiError(400, f"a filter needs both {FILTER}[field] and [value]")
    if field is not None and field != "event_name":
        raise ApiError(400, f"cannot filter subscriptions by {field!r}; only event_name")
    if condition_type not in ("eq", "like"):
        raise ApiError(400, f"unsupported conditionType {condition_type!r}: use eq or like")
    if value is not None and condition_type == "eq":
        require_event(token, value)
    with backend(request).use() as rt:
        subscriptions = rt.store.subscriptions(value if value is not None and condition_type == "eq" else None)
    if value is not None and condition_type == "like":
        glob = _like(value)
        subscriptions = [s for s in subscriptions if fnmatchcase(s.event_name, glob)]
    visible = [s for s in subscriptions if token.allows(s.event_name)]
    start = (current_page - 1) * (page_size or 0)
    page = visible[start : start + page_size] if page_size else visible
    filters = (
        []
        if field is None
        else [FilterGroup(filters=[Filter(field=field, value=value or "", condition_type=condition_type)])]
    )
    return AsyncEventList(
        items=[display(s) for s in page],
        search_criteria=SearchCriteria(filter_groups=filters, page_size=page_size, current_page=current_page),
        total_count=len(visible),
    )


@router.post("/async_event", response_model=AsyncEvent, summary="Subscribe")
def create_subscription(request: Request, body: CreateBody, token: Token) -> AsyncEvent:
    new = body.asyncEvent
    require_event(token, new.event_name)
    with backend(request).use() as rt:
        subscription, _ = subscribing.subscribe(
            rt.config,
            rt.store,
            new.event_name,
            new.recipient_url,
            new.verification_token,
            new.metadata,
            new.store_id,
            payload_filter=new.filter,
            body_format=new.format,
            rate_limit=new.rate_limit,
        )
    return display(subscription)


@router.put(
    "/async_event/{subscription_id}",
    response_model=AsyncEvent,
    responses=NOT_FOUND,
    summary="Enable, disable, or change the notifier of a subscription",
)
def change_subscription(
    request: Request, subscription_id: SubscriptionId, body: ChangeBody, token: Token
) -> AsyncEvent:
    change = body.asyncEvent
    with backend(request).use() as rt:
        _visible(rt.store.find_subscription(subscription_id), subscription_id, token)
        with rt.store.transaction():
            subscription = subscribing.change(
                rt.config, rt.store, subscription_id, change.status, change.metadata, change.rate_limit
            )
            if "filter" in change.model_fields_set or change.format is not None:
                subscription = subscribing.set_shape(
                    rt.store,
                    subscription_id,
                    change.filter,
                    clear_filter="filter" in change.model_fields_set and change.filter is None,
                    body_format=change.format,
                )
    return display(subscription)


@router.post(
    "/async_event/publish",
    response_model=Published,
    responses=UNAVAILABLE,
    summary="Publish an event (beyond the module)",
)
def publish_event(request: Request, body: PublishBody, token: Token) -> Published:
    require_event(token, body.event_name)
    # The size and shape limits of `ae publish --data`, applied to the same JSON.
    arguments = publishing.parse_data(json.dumps(body.arguments), "arguments")
    with backend(request).use() as rt:
        message_id = publishing.publish(rt.config, rt.queue, body.event_name, arguments, body.store_id)
    return Published(message_id=message_id)
