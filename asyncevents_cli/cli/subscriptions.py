"""`ae subscribe` and `ae subscriptions list|show|enable|disable|delete|rotate-secret|set-headers`.

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
from ..errors import InputError
from ..states import SubscriptionStatus
from ..store import Subscription
from .context import JSON_OPTION, runtime
from .output import emit, note, say, show, table

subscriptions_app = typer.Typer(help="List and manage subscriptions.", no_args_is_help=True)

COLUMNS = ["subscription_id", "event_name", "recipient_url", "status", "subscribed_at", "modified",
           "notifier", "store_id", "signature_scheme", "header_names"]
DETAIL_COLUMNS = [*COLUMNS, "previous_secret_until"]


def _cell(row: dict[str, Any], column: str) -> Any:
    value = row[column]
    if column in ("subscribed_at", "modified"):
        return str(value)[:19]
    if column == "header_names":
        return ", ".join(value)
    return value


def _render_rows(rows: list[dict[str, Any]]) -> None:
    show(table(COLUMNS, [[_cell(r, c) for c in COLUMNS] for r in rows]))


HEADER_HELP = ("A header sent with every delivery, 'Name: value' (repeatable), e.g. 'Authorization: Bearer ...'. "
               "Stored like the secret; listings show names only.")


def _read_secret(secret: str | None, secret_file: Path | None) -> str | None:
    """The secret from --secret, --secret - (stdin) or --secret-file, without its line end."""
    if secret is not None and secret_file is not None:
        raise InputError("give the secret once: --secret or --secret-file")
    if secret_file is not None:
        try:
            return secret_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read --secret-file {secret_file}: {exc}") from None
    if secret == "-":
        return sys.stdin.readline().rstrip("\r\n")
    return secret


def subscribe(
    ctx: typer.Context,
    event: str = typer.Argument(..., help="A defined event name, e.g. sales.order.created."),
    url: str = typer.Argument(
        ..., help="The recipient: an http(s) URL for http, an event bus name or ARN for eventbridge."
    ),
    secret: str | None = typer.Option(
        None, "--secret",
        help="Verification token used to sign deliveries (generated if omitted; "
             "standard-webhooks wants whsec_ + base64); - reads it from stdin, so it shows neither in `ps`"
             " nor in the shell history.",
    ),
    secret_file: Path | None = typer.Option(
        None, "--secret-file", help="Read the verification token from this file (one line).",
    ),
    notifier: str = typer.Option(
        "http", "--notifier", help="How to deliver: http, eventbridge, or another installed notifier."
    ),
    store_id: int = typer.Option(0, "--store", help="Store scope; 0 means all stores."),
    signature: str | None = typer.Option(
        None, "--signature", help="Signature scheme for http: magento (default) or standard-webhooks.",
        show_default=False,
    ),
    headers: list[str] | None = typer.Option(None, "--header", help=HEADER_HELP, show_default=False),
) -> None:
    """Subscribe a recipient to an event; prints the new subscription id."""
    rt = runtime(ctx)
    secret = _read_secret(secret, secret_file)
    subscription, generated = subscribing.subscribe(
        rt.config, rt.store, event, url, secret, notifier, store_id, signature, headers or []
    )
    say(str(subscription.subscription_id))
    if generated:
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


@subscriptions_app.command("show")
def show_subscription(ctx: typer.Context, subscription_id: int, as_json: bool = JSON_OPTION) -> None:
    """Show one subscription."""
    row = runtime(ctx).store.subscription(subscription_id, reveal=False).public()

    def render(r: dict[str, Any]) -> None:
        show(table(["field", "value"], [(c, _cell(r, c)) for c in DETAIL_COLUMNS]))

    emit(row, as_json, render)


def _set_status(ctx: typer.Context, ids: list[int], enabled: bool) -> None:
    changed: list[Subscription] = runtime(ctx).store.set_status(ids, enabled)
    for s in changed:
        say(f"{s.subscription_id}\t{SubscriptionStatus.of(s.enabled)}")


@subscriptions_app.command("enable")
def enable(ctx: typer.Context, subscription_ids: list[int] = typer.Argument(..., help="One or more ids.")) -> None:
    """Enable subscriptions (all ids must exist, or nothing changes)."""
    _set_status(ctx, subscription_ids, True)


@subscriptions_app.command("disable")
def disable(ctx: typer.Context, subscription_ids: list[int] = typer.Argument(..., help="One or more ids.")) -> None:
    """Disable subscriptions: they get no new events and their pending retries stop."""
    _set_status(ctx, subscription_ids, False)


@subscriptions_app.command("delete")
def delete(ctx: typer.Context, subscription_id: int) -> None:
    """Delete a subscription. Its delivery log is kept for tracing."""
    removed = runtime(ctx).store.delete_subscription(subscription_id)
    say(f"deleted {removed.subscription_id}")


@subscriptions_app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    subscription_id: int,
    grace: str = typer.Option(
        subscribing.DEFAULT_GRACE, "--grace",
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
    subscription_id: int,
    headers: list[str] | None = typer.Argument(
        None, help="Headers as 'Name: value'; they replace all the subscription's custom headers.",
        show_default=False,
    ),
    clear: bool = typer.Option(False, "--clear", help="Remove all custom headers."),
) -> None:
    """Replace the custom headers sent with a subscription's deliveries; prints their names."""
    if bool(headers) == clear:
        raise InputError("give the headers to set, or --clear to remove them all (not both)")
    subscription = subscribing.set_headers(runtime(ctx).store, subscription_id, headers or [])
    say(f"{subscription.subscription_id}\t{', '.join(n for n, _ in subscription.custom_headers) or '(none)'}")
