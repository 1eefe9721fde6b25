"""`ae subscribe` and `ae subscriptions list|health|show|enable|disable|delete|rotate-secret|set-headers`.

The verification token is shown once, when `ae subscribe` generates it or
`rotate-secret` replaces it, and never again: `Subscription.public()` leaves it
out of every listing, and gives custom headers by name only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from .. import subscribe as subscribing
from ..config import check_event_name
from ..errors import EXIT_FAILURE, InputError
from ..states import SubscriptionStatus
from ..store import Subscription
from .context import JSON_OPTION, YES_OPTION, confirm, runtime
from .health import health
from .output import Col, emit, fields, note, say, table, time_utc

subscriptions_app = typer.Typer(help="List and manage subscriptions.", no_args_is_help=True)

ID_ARGUMENT = typer.Argument(..., help="The subscription id (see `ae subscriptions list`).", show_default=False)
IDS_ARGUMENT = typer.Argument(..., help="One or more subscription ids.", show_default=False)

#: (key, header, column) of the listing; the header is also the label in `show`.
LISTING = [
    ("subscription_id", "id", Col("id", whole=True, justify="right")),
    ("event_name", "event", Col("event")),
    ("recipient_url", "recipient", Col("recipient", comfort=48)),
    ("status", "status", Col("status", whole=True)),
    ("notifier", "notifier", Col("notifier", drop=2)),
    ("store_id", "store", Col("store", whole=True, drop=2, justify="right")),
    ("signature_scheme", "signature", Col("signature", drop=2)),
    ("header_names", "headers", Col("headers", drop=3)),
    ("format", "format", Col("format", drop=3)),
    ("filter", "filter", Col("filter", drop=3)),
    ("subscribed_at", "subscribed (UTC)", Col("subscribed (UTC)", whole=True, drop=1)),
    ("modified", "modified (UTC)", Col("modified (UTC)", whole=True, drop=3)),
]
DETAIL = [
    *((key, header) for key, header, _ in LISTING),
    ("rate_limit", "rate limit"),
    ("previous_secret_until", "previous secret until (UTC)"),
    ("disabled_reason", "disabled by ae"),
    ("disabled_at", "disabled at (UTC)"),
]
RATE_LIMIT_HELP = (
    "At most this many deliveries to the subscription per second or minute, e.g. 50/s or 300/m,"
    " across every consumer that shares the store."
)


def _cell(row: dict[str, Any], key: str) -> Any:
    value = row[key]
    if key in ("subscribed_at", "modified", "previous_secret_until", "disabled_at"):
        return time_utc(value)
    if key == "header_names":
        return ", ".join(value)
    if key == "filter":
        return value or ""
    if key == "rate_limit":
        return value or "none"
    return value


def _render_rows(rows: list[dict[str, Any]]) -> None:
    table(
        [col for _, _, col in LISTING],
        [[_cell(r, key) for key, _, _ in LISTING] for r in rows],
        empty="No subscriptions. `ae subscribe EVENT URL` adds one.",
    )


def render_subscription(row: dict[str, Any]) -> None:
    fields([(header, _cell(row, key)) for key, header in DETAIL])


FILTER_HELP = (
    "Send only events whose body matches this `ae search` query, e.g. "
    "'data.data.grand_total:[100 TO *] AND NOT data.data.status:canceled'. Others are counted as filtered."
)
FORMAT_HELP = 'The body: data ({"data": payload}, the module\'s) or cloudevents (CloudEvents 1.0, structured).'

HEADER_HELP = (
    "A header sent with every delivery, 'Name: value' (repeatable), e.g. 'Authorization: Bearer ...'. "
    "Stored like the secret; listings show names only."
)


#: `ae subscribe`'s arguments and longer options, in the order its help lists them.
EVENT_ARGUMENT = typer.Argument(..., help="A defined event name, e.g. sales.order.created.")
URL_ARGUMENT = typer.Argument(
    ..., help="The recipient: an http(s) URL for http, an event bus name or ARN for eventbridge."
)
SECRET_OPTION = typer.Option(
    None,
    "--secret",
    help="Verification token used to sign deliveries (generated if omitted; "
    "standard-webhooks wants whsec_ + base64); - reads it from stdin, so it shows neither in `ps`"
    " nor in the shell history.",
)
SECRET_FILE_OPTION = typer.Option(
    None,
    "--secret-file",
    help="Read the verification token from this file (one line).",
)
NOTIFIER_OPTION = typer.Option(
    "http", "--notifier", help="How to deliver: http, eventbridge, or another installed notifier."
)
SIGNATURE_OPTION = typer.Option(
    None,
    "--signature",
    help="Signature scheme for http: magento (default) or standard-webhooks.",
    show_default=False,
)
FORCE_OPTION = typer.Option(
    False, "--force", help="Subscribe even if the event already has a subscription to this recipient."
)
NEW_AS_JSON_OPTION = typer.Option(
    False, "--json", help="Print the new subscription as JSON (with the generated secret, if any)."
)


def _read_secret(secret: str | None, secret_file: Path | None) -> str | None:
    """The secret from --secret, --secret - (stdin) or --secret-file, without its line end."""
    if secret is not None and secret_file is not None:
        raise InputError("give the secret once: --secret or --secret-file")
    if secret_file is not None:
        try:
            return secret_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read --secret-file {secret_file}: {exc}") from exc
    if secret == "-":
        return sys.stdin.readline().rstrip("\r\n")
    return secret


def subscribe(
    ctx: typer.Context,
    event: str = EVENT_ARGUMENT,
    url: str = URL_ARGUMENT,
    secret: str | None = SECRET_OPTION,
    secret_file: Path | None = SECRET_FILE_OPTION,
    notifier: str = NOTIFIER_OPTION,
    store_id: int = typer.Option(0, "--store", help="Store scope; 0 means all stores."),
    signature: str | None = SIGNATURE_OPTION,
    headers: list[str] | None = typer.Option(None, "--header", help=HEADER_HELP, show_default=False),
    payload_filter: str | None = typer.Option(None, "--filter", help=FILTER_HELP, show_default=False),
    body_format: str = typer.Option("data", "--format", help=FORMAT_HELP),
    rate_limit: str | None = typer.Option(None, "--rate-limit", help=RATE_LIMIT_HELP, show_default=False),
    force: bool = FORCE_OPTION,
    as_json: bool = NEW_AS_JSON_OPTION,
) -> None:
    """Subscribe a recipient to an event; prints the new subscription id.

    A second subscription of one event to the same recipient would deliver every event twice, so it is
    refused (exit 2) unless --force.

    Examples:

      ae subscribe sales.order.created https://erp.example.com/hooks/orders

      ae subscribe customer.created https://crm.example.com/hooks --signature standard-webhooks --secret - < secret.txt

      ae subscribe sales.order.created https://erp.example.com/hooks --filter 'data.data.grand_total:[100 TO *]'
    """
    rt = runtime(ctx)
    secret = _read_secret(secret, secret_file)
    subscription, generated = subscribing.subscribe(
        rt.config,
        rt.store,
        event,
        url,
        secret,
        notifier,
        store_id,
        signature,
        headers or [],
        refuse_duplicate=not force,
        payload_filter=payload_filter,
        body_format=body_format,
        rate_limit=rate_limit,
    )
    _print_new(subscription, generated, as_json)


def _print_new(subscription: Subscription, generated: str | None, as_json: bool) -> None:
    """The new subscription's id (or JSON), and a secret ae generated, which is shown this once."""
    if as_json:
        emit({**subscription.public(), "secret": generated}, True, lambda d: None)
    else:
        say(str(subscription.subscription_id))
    if generated:
        if not as_json:
            note(f"secret: {generated}")
        note(f"Keep it: it signs every delivery ({_signed_with(subscription)}) and will not be shown again.")


def _signed_with(subscription: Subscription) -> str:
    return "webhook-signature" if subscription.signature_scheme == "standard-webhooks" else "x-magento-signature"


@subscriptions_app.command("list")
def list_subscriptions(
    ctx: typer.Context,
    event: str | None = typer.Option(None, "--event", help="Only this event's subscriptions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List subscriptions (never their secrets)."""
    if event is not None:
        check_event_name(event)
    rows = [s.public() for s in runtime(ctx).store.subscriptions(event, reveal=False)]
    emit(rows, as_json, _render_rows)


subscriptions_app.command("health")(health)


@subscriptions_app.command("show")
def show_subscription(ctx: typer.Context, subscription_id: int = ID_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Show one subscription (never its secret)."""
    row = runtime(ctx).store.subscription(subscription_id, reveal=False).public()
    emit(row, as_json, render_subscription)


def changed(subscription_id: int, what: str) -> None:
    """The one line every write command prints per subscription: id, tab, what happened."""
    say(f"{subscription_id}\t{what}")


def _set_status(ctx: typer.Context, ids: list[int], enabled: bool) -> None:
    updated: list[Subscription] = runtime(ctx).store.set_status(ids, enabled)
    for s in updated:
        changed(s.subscription_id, str(SubscriptionStatus.of(s.enabled)))


@subscriptions_app.command("enable")
def enable(ctx: typer.Context, subscription_ids: list[int] = IDS_ARGUMENT) -> None:
    """Enable subscriptions (all ids must exist, or nothing changes); prints `ID<tab>enabled` for each.

    Example: ae subscriptions enable 1 2 3
    """
    _set_status(ctx, subscription_ids, True)


@subscriptions_app.command("disable")
def disable(ctx: typer.Context, subscription_ids: list[int] = IDS_ARGUMENT) -> None:
    """Disable subscriptions: they get no new events and their pending retries stop; prints `ID<tab>disabled`.

    Example: ae subscriptions disable 2
    """
    _set_status(ctx, subscription_ids, False)


@subscriptions_app.command("delete")
def delete(ctx: typer.Context, subscription_id: int = ID_ARGUMENT, yes: bool = YES_OPTION) -> None:
    """Delete a subscription, after asking; prints `ID<tab>deleted`. Its delivery log is kept for tracing.

    Without --yes it asks on a terminal, and refuses (exit 2) when stdin is not one.

    Example: ae subscriptions delete 2 --yes
    """
    store = runtime(ctx).store
    subscription = store.subscription(subscription_id, reveal=False)  # an unknown id fails before asking
    confirm(
        f"Delete subscription {subscription_id} ({subscription.event_name} to "
        f"{subscription.public()['recipient_url']})?",
        yes,
    )
    removed = store.delete_subscription(subscription_id)
    changed(removed.subscription_id, "deleted")


@subscriptions_app.command("update")
def update(
    ctx: typer.Context,
    subscription_id: int = ID_ARGUMENT,
    url: str | None = typer.Option(
        None, "--url", help="The new recipient (checked as `ae subscribe` checks it).", show_default=False
    ),
    store_id: int | None = typer.Option(
        None, "--store", help="The new store scope; 0 means all stores.", show_default=False
    ),
    payload_filter: str | None = typer.Option(None, "--filter", help=FILTER_HELP, show_default=False),
    no_filter: bool = typer.Option(False, "--no-filter", help="Remove the filter: send every event."),
    body_format: str | None = typer.Option(None, "--format", help=FORMAT_HELP, show_default=False),
    rate_limit: str | None = typer.Option(
        None, "--rate-limit", help=RATE_LIMIT_HELP + " none removes the limit.", show_default=False
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change a subscription's recipient, store scope, filter, body format or rate limit; prints `ID<tab>updated`.

    Its secret, notifier, headers and delivery log stay. A running consumer sees the change within a second.

    Examples:

      ae subscriptions update 2 --url https://crm.example.com/hooks/orders

      ae subscriptions update 2 --filter 'NOT data.data.status:canceled' --format cloudevents

      ae subscriptions update 2 --rate-limit 50/s
    """
    rt = runtime(ctx)
    subscription = subscribing.update(
        rt.config, rt.store, subscription_id, url, store_id, payload_filter, no_filter, body_format, rate_limit
    )
    if as_json:
        emit(subscription.public(), True, lambda d: None)
    else:
        changed(subscription.subscription_id, "updated")


@subscriptions_app.command("ping")
def ping(ctx: typer.Context, subscription_id: int = ID_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Send one signed test delivery (event ae.ping) now; prints the receiver's status and body.

    The attempt is logged like any other (`ae logs --event ae.ping`) and not retried. Exit 1 if it failed.

    Example: ae subscriptions ping 2
    """
    from ..ping import ping as send_ping

    rt = runtime(ctx)
    result = send_ping(rt.store, rt.notifiers, subscription_id)

    def render(r: dict[str, Any]) -> None:
        outcome = "ok" if r["success"] else "failed"
        code = f" {r['status_code']}" if r["status_code"] else ""
        say(f"{outcome}{code} in {r['duration'] * 1000:.0f} ms from {r['recipient_url']} (uuid {r['uuid']})")
        if r["response"]:
            say(r["response"])

    emit(result, as_json, render)
    if not result["success"]:
        raise typer.Exit(EXIT_FAILURE)


@subscriptions_app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    subscription_id: int = ID_ARGUMENT,
    grace: str = typer.Option(
        subscribing.DEFAULT_GRACE,
        "--grace",
        help="How long the old secret keeps signing standard-webhooks deliveries, beside the new one "
        "(e.g. 90s, 30m, 24h, 7d; 0 to drop it at once).",
    ),
    secret: str | None = typer.Option(None, "--secret", help="The new secret (generated if omitted)."),
) -> None:
    """Give a subscription a new secret and print it, once.

    standard-webhooks deliveries carry signatures with both secrets, space-separated, until the grace
    period ends (by time: nothing needs to run). magento deliveries have one signature header, so they
    switch to the new secret at once: update the receiver first.
    """
    subscription, new_secret = subscribing.rotate_secret(runtime(ctx).store, subscription_id, grace, secret)
    if secret is None:
        say(new_secret)
    if subscription.signature_scheme == "magento":
        note("magento signatures use the new secret from now on.")
    elif subscription.previous_token_expires:
        note(f"Deliveries are signed with both secrets until {subscription.previous_token_expires[:19]} UTC.")
    else:
        note("Deliveries are signed with the new secret only.")


@subscriptions_app.command("set-headers")
def set_headers(
    ctx: typer.Context,
    subscription_id: int = ID_ARGUMENT,
    headers: list[str] | None = typer.Argument(
        None,
        help="Headers as 'Name: value'; they replace all the subscription's custom headers.",
        show_default=False,
    ),
    clear: bool = typer.Option(False, "--clear", help="Remove all custom headers."),
) -> None:
    """Replace the custom headers sent with a subscription's deliveries; prints their names."""
    if bool(headers) == clear:
        raise InputError("give the headers to set, or --clear to remove them all (not both)")
    subscription = subscribing.set_headers(runtime(ctx).store, subscription_id, headers or [])
    say(f"{subscription.subscription_id}\t{', '.join(n for n, _ in subscription.custom_headers) or '(none)'}")
