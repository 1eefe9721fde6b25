"""`ae relay`: forward the outbox (events published in an application's transaction) to the queue."""

from __future__ import annotations

import logging
import signal

import typer

from ..queues import outbox
from ..relay import BATCH, Relay
from .consume import StopFlag
from .context import JSON_OPTION, runtime
from .output import emit, say


def relay(
    ctx: typer.Context,
    until_empty: bool = typer.Option(
        False, "--until-empty", help="Forward what is waiting, then exit (for scripts and tests)."
    ),
    batch: int = typer.Option(BATCH, "--batch", min=1, max=10_000, help="Events per turn (one broker transaction)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Forward events published inside application transactions from the outbox to the queue.

    `ae consume trigger|all` already runs a relay on a thread of its own when the queue is "amqp" or the store is
    PostgreSQL; run this where a host should forward without delivering. Relays take turns, so several may run.
    SIGINT / SIGTERM stop it after the turn in progress.

    Examples:

      ae relay

      ae relay --until-empty --json
    """
    logging.basicConfig(format="ae: %(message)s", level=logging.WARNING)
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    rt = runtime(ctx)
    forwarder = Relay(rt.store, rt.queue, batch=batch)
    if until_empty:
        forwarded = forwarder.drain()
    else:
        stop = StopFlag()
        previous = stop.install()
        try:
            forwarded = forwarder.run(stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    data = {"forwarded": forwarded, "unsent": outbox.count_unsent(rt.store)}
    emit(data, as_json, lambda d: say(f"forwarded {d['forwarded']} event(s); {d['unsent']} unsent"))
