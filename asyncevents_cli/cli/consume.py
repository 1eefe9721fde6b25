"""`ae consume trigger|retry|all`: run consumers.

SIGINT / SIGTERM stop the taking of new messages: attempts in flight finish,
are logged and acknowledged, and the process exits 0. A second Ctrl-C aborts
the attempts in flight at once (exit 130); their messages come back on the
next start.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from ..errors import DatabaseUnavailable, QueueUnavailable
from ..queues.base import KINDS, RETRY, TRIGGER
from .context import runtime
from .output import attempt_line, backlog_display, is_terminal, note, say

if TYPE_CHECKING:
    from ..relay import RelayThread
    from ..runtime import Runtime

consume_app = typer.Typer(help="Run consumers that deliver queued events.", no_args_is_help=True)

MAX_OPTION = typer.Option(None, "--max-messages", min=1, help="Stop after handling N messages.")
UNTIL_EMPTY_OPTION = typer.Option(
    False, "--until-empty", help="Exit once nothing is queued, due or delayed (for scripts and tests)."
)
VERBOSE_OPTION = typer.Option(
    False,
    "--verbose",
    "-v",
    help="Print one line per attempt on stdout: time, event, subscription, result, duration, uuid.",
)
CONCURRENCY_OPTION = typer.Option(
    None,
    "--concurrency",
    min=1,
    max=10_000,
    help="Deliveries in flight at once (default: the `concurrency` setting, 64).",
)


class StopFlag:
    """Set by SIGINT/SIGTERM; a second Ctrl-C calls `abort`."""

    def __init__(self) -> None:
        self.stopping = False
        self.abort: Callable[[], None] | None = None

    def __call__(self) -> bool:
        return self.stopping

    def install(self) -> dict[signal.Signals, Any]:
        """Take over SIGINT and SIGTERM; return the previous handlers to restore."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: object) -> None:
            if self.stopping and signum == signal.SIGINT:
                note("ae: aborting the deliveries in flight; their messages come back on the next start")
                if self.abort is None:
                    raise KeyboardInterrupt
                self.abort()
                return
            if not self.stopping:
                note("ae: stopping: finishing the deliveries in flight (Ctrl-C again to abort them)")
            self.stopping = True

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        return previous


class AttemptLines(logging.Handler):
    """`-v`: the engine's record of each logged attempt, as one line on stdout."""

    def emit(self, record: logging.LogRecord) -> None:
        attempt = getattr(record, "attempt", None)
        if attempt is not None:
            say(attempt_line(attempt, datetime.fromtimestamp(record.created, UTC)))


def _backlog(ctx: typer.Context, kinds: tuple[str, ...]) -> int:
    depths = runtime(ctx).queue.depths()
    waiting = {TRIGGER: depths.trigger, RETRY: depths.retry_due + depths.retry_delayed}
    return sum(waiting[kind] for kind in kinds)


def _run(
    ctx: typer.Context,
    kinds: tuple[str, ...],
    max_messages: int | None,
    until_empty: bool,
    concurrency: int | None,
    verbose: bool = False,
) -> None:
    from ..engine import Aborted
    from ..engine.reconnect import run_reconnecting

    logging.basicConfig(format="ae: %(message)s", level=logging.WARNING)
    # The AMQP backend reports a lost connection and its reconnects in one line
    # of its own; pika's internal errors for the same event are noise here.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    # Likewise the PostgreSQL pool's notes on connections it replaces: the engine
    # reports a lost database connection itself (see engine/reconnect.py).
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    attempts = logging.getLogger("asyncevents_cli.attempts")
    lines = AttemptLines()
    if verbose:
        attempts.addHandler(lines)
        attempts.setLevel(logging.INFO)
        attempts.propagate = False
    stop = StopFlag()
    previous = stop.install()
    rt = runtime(ctx)

    def watch(consumer: Any) -> None:
        stop.abort = consumer.abort

    relay_thread = _start_relay(rt, kinds, until_empty)
    # The remaining backlog, on a terminal only, and not mixed with -v's lines.
    show_progress = until_empty and not verbose and is_terminal(sys.stderr)
    try:
        with backlog_display(_backlog(ctx, kinds) if show_progress else 0, show_progress) as advance:
            handled = run_reconnecting(
                lambda: rt.consumer(kinds, concurrency=concurrency),
                max_messages,
                until_empty,
                stop,
                watch,
                on_message=advance,
            )
    except Aborted:
        raise KeyboardInterrupt from None
    finally:
        if relay_thread is not None:
            relay_thread.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
        if verbose:
            attempts.removeHandler(lines)
            attempts.setLevel(logging.NOTSET)
            attempts.propagate = True
    note(f"handled {handled} message(s)")


def _start_relay(rt: Runtime, kinds: tuple[str, ...], until_empty: bool) -> RelayThread | None:
    """Trigger consumers forward the outbox too (see `relay.py`): with --until-empty what
    waits there now, first; else all along, on a thread of its own."""
    from ..relay import Relay, beside_consumer, outbox_in_use

    if TRIGGER not in kinds or not outbox_in_use(rt.config):
        return None
    if until_empty:
        # In an outage the consumer reports it and waits it out; the outbox waits for the next run.
        with contextlib.suppress(DatabaseUnavailable, QueueUnavailable):
            Relay(rt.store, rt.queue).drain()
        return None
    return beside_consumer(rt.config, rt.environ)


@consume_app.command("trigger")
def consume_trigger(
    ctx: typer.Context,
    max_messages: int | None = MAX_OPTION,
    until_empty: bool = UNTIL_EMPTY_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Fan published events out to their subscribers."""
    _run(ctx, (TRIGGER,), max_messages, until_empty, concurrency, verbose)


@consume_app.command("retry")
def consume_retry(
    ctx: typer.Context,
    max_messages: int | None = MAX_OPTION,
    until_empty: bool = UNTIL_EMPTY_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Attempt failed deliveries again as their back-off comes due."""
    _run(ctx, (RETRY,), max_messages, until_empty, concurrency, verbose)


@consume_app.command("all")
def consume_all(
    ctx: typer.Context,
    max_messages: int | None = MAX_OPTION,
    until_empty: bool = UNTIL_EMPTY_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Run the trigger and retry consumers in one process.

    Quiet but for warnings; -v prints each attempt. With --until-empty on a terminal, a progress display shows
    the backlog left.

    Examples:

      ae consume all

      ae consume all --until-empty -v
    """
    _run(ctx, KINDS, max_messages, until_empty, concurrency, verbose)
