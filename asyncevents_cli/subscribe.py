"""Creating and changing subscriptions, with the checks that keep bad ones out.

`ae subscribe` and the REST API both come through here, so a subscription is
checked the same way whichever door it comes in by.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from .config import Config
from .envelopes import CLOUDEVENTS, DATA, check_format
from .errors import InputError
from .messages import check_store_id
from .notifiers import find
from .notifiers.custom_headers import check_headers
from .notifiers.signing import MAGENTO, UNSIGNED, check_scheme, check_secret, generate_secret
from .pacing import RateLimit
from .store import Store, Subscription, utcnow

__all__ = [
    "subscribe",
    "same_recipient",
    "update",
    "change",
    "rotate_secret",
    "set_headers",
    "set_shape",
    "check_filter",
    "parse_duration",
    "parse_rate_limit",
    "generate_secret",
]

DEFAULT_GRACE = "24h"
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_GRACE_SECONDS = 365 * 86400
MAX_SECRET_LENGTH = 4096


def check_secret_text(secret: str) -> str:
    """Whatever the scheme: printable, of sane length, valid UTF-8 (it is HMAC key bytes)."""
    if len(secret) > MAX_SECRET_LENGTH or any(ord(c) < 0x20 or c == "\x7f" for c in secret):
        raise InputError(f"the secret (--secret) must be at most {MAX_SECRET_LENGTH} printable characters")
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("the secret (--secret) is not valid UTF-8") from exc
    return secret


def parse_duration(text: str) -> float:
    """``"90s"``, ``"30m"``, ``"24h"``, ``"7d"`` or plain seconds, into seconds."""
    match = DURATION.match(text or "")
    if not match:
        raise InputError(f"invalid duration {text!r}: use a number with s, m, h or d, e.g. 24h")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def parse_rate_limit(text: str) -> RateLimit | None:
    """`--rate-limit` (or the API's `rate_limit`): "50/s", "300/m", or "none"."""
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def subscribe(
    config: Config,
    store: Store,
    event_name: str,
    url: str,
    secret: str | None = None,
    notifier: str = "http",
    store_id: int = 0,
    signature: str | None = None,
    headers: Mapping[str, str] | Iterable[str] = (),
    refuse_duplicate: bool = False,
    payload_filter: str | None = None,
    body_format: str = DATA,
    rate_limit: str | None = None,
) -> tuple[Subscription, str | None]:
    """Subscribe a recipient; return the subscription and the secret if one was generated.

    The notifier checks its own recipient (an http(s) URL, a bus name, ...).
    Signature schemes and custom headers apply only to notifiers that sign
    HTTP requests; the secret is returned only when it signs deliveries. With
    `refuse_duplicate`, a second subscription of the event to the same recipient
    (which would get every event twice) is refused."""
    config.event(event_name)
    plugin = find(notifier)
    recipient = plugin.check_recipient(url, config)
    check_store_id(store_id)
    custom = check_headers(headers)
    rate = parse_rate_limit(rate_limit) if rate_limit is not None else None
    if not plugin.signs_requests:
        if signature not in (None, MAGENTO):
            raise InputError(f"the {plugin.name} notifier does not sign HTTP requests: --signature does not apply")
        if custom:
            raise InputError(f"the {plugin.name} notifier sends no HTTP headers: --header does not apply")
    shape = check_shape(plugin, payload_filter, body_format)
    scheme = check_scheme(signature or MAGENTO)
    if secret is not None:
        check_secret(scheme, check_secret_text(secret))
    generated = None if secret is not None else generate_secret(scheme)
    stored_scheme = scheme if plugin.signs_requests else UNSIGNED
    twins = same_recipient(store, event_name, recipient) if refuse_duplicate else []
    if twins:
        ids = ", ".join(str(s.subscription_id) for s in twins)
        raise InputError(
            f"{event_name} already has subscription {ids} to this recipient; nothing changed",
            hint="add --force to subscribe it again anyway",
        )
    subscription = store.add_subscription(
        event_name, recipient, secret or generated or "", plugin.name, store_id, stored_scheme, custom, *shape, rate
    )
    return subscription, generated if plugin.signs_requests else None


def check_shape(plugin: Any, payload_filter: str | None, body_format: str) -> tuple[str | None, str]:
    """(the filter as stored, the body format), checked: a filter in the search language
    (exit 2 with the parser's message and position), a known format that the notifier can send."""
    checked = check_filter(payload_filter) if payload_filter is not None else None
    check_format(body_format)
    if body_format == CLOUDEVENTS and not plugin.signs_requests:
        raise InputError(f"the {plugin.name} notifier sends its own envelope: --format cloudevents does not apply")
    return checked, body_format


def check_filter(text: str) -> str:
    """A filter as stored, or InputError naming the first problem and its position."""
    from .search.filtering import check_filter as check

    if not text.strip():
        raise InputError("the filter is empty: give a query, or --no-filter to remove it")
    return check(text)


def set_shape(
    store: Store,
    subscription_id: int,
    payload_filter: str | None = None,
    clear_filter: bool = False,
    body_format: str | None = None,
) -> Subscription:
    """Change what a subscription receives: a new filter (or none) and/or a new body format."""
    if payload_filter is not None and clear_filter:
        raise InputError("give --filter or --no-filter, not both")
    current = store.subscription(subscription_id, reveal=False)
    new_filter = None if clear_filter else current.payload_filter if payload_filter is None else payload_filter
    new_format = current.body_format if body_format is None else body_format
    checked, new_format = check_shape(find(current.notifier), new_filter, new_format)
    return store.set_delivery_shape(subscription_id, checked, new_format)


def same_recipient(store: Store, event_name: str, url: str) -> list[Subscription]:
    """The event's subscriptions (enabled or not) to `url`: a second one would deliver every event twice."""
    wanted = url.strip()
    return [s for s in store.subscriptions(event_name, reveal=False) if s.recipient_url == wanted]


def update(
    config: Config,
    store: Store,
    subscription_id: int,
    url: str | None = None,
    store_id: int | None = None,
    payload_filter: str | None = None,
    clear_filter: bool = False,
    body_format: str | None = None,
    rate_limit: str | None = None,
) -> Subscription:
    """Point a subscription at a new recipient and/or store scope, change its filter or body
    format, and/or give it a new rate limit ("none" removes it), checked as `subscribe` checks
    them; all or nothing. Its secret, notifier, headers and delivery log stay."""
    reshaped = payload_filter is not None or clear_filter or body_format is not None
    if url is None and store_id is None and not reshaped and rate_limit is None:
        raise InputError("nothing to change: give --url, --store, --filter, --no-filter, --format and/or --rate-limit")
    current = store.subscription(subscription_id, reveal=False)
    recipient = find(current.notifier).check_recipient(url, config) if url is not None else None
    if store_id is not None:
        check_store_id(store_id)
    rate = parse_rate_limit(rate_limit) if rate_limit is not None else None
    with store.transaction():
        if reshaped:
            set_shape(store, subscription_id, payload_filter, clear_filter, body_format)
        if url is not None or store_id is not None:
            store.set_recipient(subscription_id, recipient, store_id)
        if rate_limit is not None:
            store.set_rate_limit(subscription_id, rate)
    return store.subscription(subscription_id, reveal=False)


def _signing_subscription(store: Store, subscription_id: int) -> Subscription:
    subscription = store.subscription(subscription_id)
    plugin = find(subscription.notifier)
    if not plugin.signs_requests:
        raise InputError(
            f"subscription {subscription_id} uses the {plugin.name} notifier, which does not sign HTTP requests"
        )
    return subscription


def rotate_secret(
    store: Store, subscription_id: int, grace: str | float = DEFAULT_GRACE, secret: str | None = None
) -> tuple[Subscription, str]:
    """Give a subscription a new secret; the old one still signs standard-webhooks deliveries
    (beside the new one) for `grace`. Return the subscription and the new secret."""
    seconds = parse_duration(grace) if isinstance(grace, str) else float(grace)
    if not 0 <= seconds <= MAX_GRACE_SECONDS:
        raise InputError(f"the grace period must be between 0 and 365 days, got {grace!r}")
    subscription = _signing_subscription(store, subscription_id)
    scheme = subscription.signature_scheme
    new_secret = check_secret(scheme, check_secret_text(secret)) if secret is not None else generate_secret(scheme)
    # A magento delivery carries one signature, so the old secret has no use: not kept.
    until = utcnow() + timedelta(seconds=seconds) if seconds and scheme != MAGENTO else None
    return store.rotate_token(subscription_id, new_secret, until), new_secret


def set_headers(store: Store, subscription_id: int, headers: Mapping[str, str] | Iterable[str]) -> Subscription:
    """Replace a subscription's custom headers; none removes them."""
    custom = check_headers(headers)
    _signing_subscription(store, subscription_id)
    return store.set_custom_headers(subscription_id, custom)


def change(
    config: Config,
    store: Store,
    subscription_id: int,
    enabled: bool,
    notifier: str | None = None,
    rate_limit: str | None = None,
) -> Subscription:
    """The module's save of an existing subscription (its REST PUT): a new status, and a
    new notifier (`metadata`) and a new rate limit ("none" removes it) if given. The new notifier must accept the
    subscription's recipient, and sign deliveries if and only if the old one did: the
    stored secret and signature scheme were chosen for that."""
    name = None
    if notifier is not None:
        current = store.subscription(subscription_id)
        plugin = find(notifier)
        if plugin.name != current.notifier:
            plugin.check_recipient(current.recipient_url, config)
            if plugin.signs_requests != find(current.notifier).signs_requests:
                raise InputError(
                    f"subscription {subscription_id} cannot move from the {current.notifier} notifier to "
                    f"{plugin.name}: one signs HTTP requests and the other does not; subscribe again instead"
                )
        name = plugin.name
    rate = parse_rate_limit(rate_limit) if rate_limit is not None else None
    with store.transaction():
        store.update_subscription(subscription_id, enabled, name)
        if rate_limit is not None:
            store.set_rate_limit(subscription_id, rate)
    return store.subscription(subscription_id)
