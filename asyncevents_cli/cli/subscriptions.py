"""`ae subscribe` and `ae subscriptions list|show|enable|disable|delete`.

The verification token is shown once, when `ae subscribe` generates it, and
never again: `Subscription.public()` leaves it out of every listing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from .. import subscribe as subscribing
from ..config import check_event_name
from ..errors import InputError
from ..store import Subscription
from .context import JSON_OPTION, runtime
from .output import emit, note, say, show, table

subscriptions_app = typer.Typer(help="List and manage subscriptions.", no_args_is_help=True)

COLUMNS = ["subscription_id", "event_name", "recipient_url", "status", "subscribed_at", "modified",
           "notifier", "store_id"]


def _render_rows(rows: list[dict[str, Any]]) -> None:
    show(table(COLUMNS, [[str(r[c])[:19] if c in ("subscribed_at", "modified") else r[c] for c in COLUMNS]
                         for r in rows]))


def _read_secret(secret: Optional[str], secret_file: Optional[Path]) -> Optional[str]:
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
    url: str = typer.Argument(..., help="The recipient's http(s) URL."),
    secret: Optional[str] = typer.Option(
        None, "--secret",
        help="Verification token used to sign deliveries (generated if omitted); - reads it from stdin,"
             " so it shows neither in `ps` nor in the shell history.",
    ),
    secret_file: Optional[Path] = typer.Option(
        None, "--secret-file", help="Read the verification token from this file (one line).",
    ),
    notifier: str = typer.Option("http", "--notifier", help="How to deliver: a registered notifier name."),
    store_id: int = typer.Option(0, "--store", help="Store scope; 0 means all stores."),
) -> None:
    """Subscribe a recipient URL to an event; prints the new subscription id."""
    rt = runtime(ctx)
    secret = _read_secret(secret, secret_file)
    subscription, generated = subscribing.subscribe(rt.config, rt.store, event, url, secret, notifier, store_id)
    say(str(subscription.subscription_id))
    if generated:
        note(f"secret: {generated}")
        note("Keep it: it signs every delivery (x-magento-signature) and will not be shown again.")


@subscriptions_app.command("list")
def list_subscriptions(
    ctx: typer.Context,
    event: Optional[str] = typer.Option(None, "--event", help="Only this event's subscriptions."),
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
        show(table(["field", "value"], [(c, r[c]) for c in COLUMNS]))

    emit(row, as_json, render)


def _set_status(ctx: typer.Context, ids: list[int], enabled: bool) -> None:
    changed: list[Subscription] = runtime(ctx).store.set_status(ids, enabled)
    for s in changed:
        say(f"{s.subscription_id}\t{'enabled' if s.enabled else 'disabled'}")


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
