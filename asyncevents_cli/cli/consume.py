"""`ae consume trigger|retry|all`: run consumers.

SIGINT / SIGTERM set a flag the worker checks between messages, so the
message in hand is finished, logged and acknowledged before the process exits 0.
"""

from __future__ import annotations

import logging
import signal
from typing import Any, Optional

import typer

from ..queues.base import KINDS, RETRY, TRIGGER
from .context import runtime
from .output import note

consume_app = typer.Typer(help="Run consumers that deliver queued events.", no_args_is_help=True)

MAX_OPTION = typer.Option(None, "--max-messages", min=1, help="Stop after handling N messages.")
UNTIL_EMPTY_OPTION = typer.Option(
    False, "--until-empty", help="Exit once nothing is queued, due or delayed (for scripts and tests)."
)


class StopFlag:
    """Set by SIGINT/SIGTERM; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self) -> bool:
        return self.stopping

    def install(self) -> dict[signal.Signals, Any]:
        """Take over SIGINT and SIGTERM; return the previous handlers to restore."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: object) -> None:
            if self.stopping and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stopping = True
            note("ae: stopping after the message in hand (Ctrl-C again to abort)")

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        return previous


def _run(ctx: typer.Context, kinds: tuple[str, ...], max_messages: Optional[int], until_empty: bool) -> None:
    logging.basicConfig(format="ae: %(message)s", level=logging.WARNING)
    # The AMQP backend reports a lost connection and its reconnects in one line
    # of its own; pika's internal errors for the same event are noise here.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    stop = StopFlag()
    previous = stop.install()
    try:
        worker = runtime(ctx).worker(kinds)
        handled = worker.run(max_messages=max_messages, until_empty=until_empty, should_stop=stop)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    note(f"handled {handled} message(s)")


@consume_app.command("trigger")
def consume_trigger(ctx: typer.Context, max_messages: Optional[int] = MAX_OPTION,
                    until_empty: bool = UNTIL_EMPTY_OPTION) -> None:
    """Fan published events out to their subscribers."""
    _run(ctx, (TRIGGER,), max_messages, until_empty)


@consume_app.command("retry")
def consume_retry(ctx: typer.Context, max_messages: Optional[int] = MAX_OPTION,
                  until_empty: bool = UNTIL_EMPTY_OPTION) -> None:
    """Attempt failed deliveries again as their back-off comes due."""
    _run(ctx, (RETRY,), max_messages, until_empty)


@consume_app.command("all")
def consume_all(ctx: typer.Context, max_messages: Optional[int] = MAX_OPTION,
                until_empty: bool = UNTIL_EMPTY_OPTION) -> None:
    """Run the trigger and retry consumers in one process."""
    _run(ctx, KINDS, max_messages, until_empty)
