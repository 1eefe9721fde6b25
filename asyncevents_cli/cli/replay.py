"""`ae replay UUID`: start a delivery's retry chain again."""

from __future__ import annotations

import typer

from .. import trace as tracing
from .context import runtime
from .output import say


def replay(ctx: typer.Context, uuid: str = typer.Argument(..., help="The delivery uuid to start again.")) -> None:
    """Start a new retry chain for a delivery, whatever its status (same uuid and retry limit)."""
    rt = runtime(ctx)
    result = tracing.replay(rt.store, rt.queue, rt.config.retry_policy, uuid)
    say(f"replaying {result['uuid']} to subscription {result['subscription_id']}; "
        f"first attempt due at {result['next_attempt_at'][:19]} UTC")
