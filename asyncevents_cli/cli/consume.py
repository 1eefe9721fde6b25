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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from ..config import LOG_FORMATS, MAX_CONCURRENCY
from ..errors import DatabaseUnavailable, InputError, QueueUnavailable
from ..jsonlog import json_handler
from ..queues.base import KINDS, RETRY, TRIGGER
from .context import runtime
from .output import attempt_line, backlog_display, is_terminal, note, say

if TYPE_CHECKING:
    from ..engine import Consumer, ConsumerOptions
    from ..relay import RelayThread
    from ..runtime import Runtime

consume_app = typer.Typer(help="Run consumers that deliver queued events.", no_args_is_help=True)

MAX_OPTION = typer.Option(None, "--max-messages", min=1, help="Stop after handling N messages (N >= 1).")
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
    max=MAX_CONCURRENCY,
    help=f"Deliveries in flight at once, 1 to {MAX_CONCURRENCY} (default: the `concurrency` setting, 64).",
)


METRICS_PORT_OPTION = typer.Option(
    None,
    "--metrics-port",
    min=1,
    max=65535,
    help="Serve /metrics, /healthz and /readyz on this port, 1 to 65535"
    " (default: the `metrics_port` setting; 0 there: off).",
)
METRICS_HOST_OPTION = typer.Option(
    None, "--metrics-host", help="Address for --metrics-port (default: the `metrics_host` setting, 127.0.0.1)."
)
LOG_FORMAT_OPTION = typer.Option(
    None,
    "--log-format",
    help="text, or json: one JSON object per line on stderr, -v's attempts included (default: `log_format`).",
)

#: the consumer's own notes (stopping, handled, metrics address) in JSON mode
consume_log = logging.getLogger("asyncevents_cli.consume")


class StopFlag:
    """Set by SIGINT/SIGTERM; a second Ctrl-C calls `abort`.

    The handler only sets flags: what it has to say is said by the next poll of the flag
    (the loop asks every turn). A handler that prints can import on first use, and an
    import inside a signal handler that interrupted another import breaks Python 3.11's
    import lock bookkeeping (a `KeyError: <thread id>` from importlib)."""

    def __init__(self, tell: Callable[[str], None] = note) -> None:
        self.stopping = False
        self.abort: Callable[[], None] | None = None
        self.tell = tell
        self._untold: list[str] = []

    def __call__(self) -> bool:
        self.flush()
        return self.stopping

    def flush(self) -> None:
        """Say what the handler noted (the loop's next poll, or the command's way out)."""
        while self._untold:
            self.tell(self._untold.pop(0))

    def install(self) -> dict[signal.Signals, Any]:
        """Take over SIGINT and SIGTERM; return the previous handlers to restore."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)
        return previous

    def handle(self, signum: int, frame: object) -> None:
        if self.stopping and signum == signal.SIGINT:
            self._untold.append("ae: aborting the deliveries in flight; their messages come back on the next start")
            if self.abort is None:
                raise KeyboardInterrupt
            self.abort()
            return
        if not self.stopping:
            self._untold.append("ae: stopping: finishing the deliveries in flight (Ctrl-C again to abort them)")
        self.stopping = True


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


@dataclass(frozen=True)
class Observing:
    """How this consumer reports: metrics endpoint (port 0: none) and log format."""

    metrics_port: int
    metrics_host: str
    log_format: str

    @classmethod
    def chosen(cls, ctx: typer.Context, port: int | None, host: str | None, log_format: str | None) -> Observing:
        settings = runtime(ctx).config.settings
        chosen_format = settings.log_format if log_format is None else log_format
        if chosen_format not in LOG_FORMATS:
            raise InputError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {chosen_format!r}")
        return cls(
            settings.metrics_port if port is None else port,
            settings.metrics_host if host is None else host,
            chosen_format,
        )


@contextmanager
def _logging(verbose: bool, json_lines: bool) -> Iterator[Callable[[str], None]]:
    """The consumer's log set-up for its run; yields how to tell the operator something."""
    root = logging.getLogger()
    handler, root_level = json_handler(), root.level
    if json_lines:
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    else:
        logging.basicConfig(format="ae: %(message)s", level=logging.WARNING)
    # The AMQP backend reports a lost connection and its reconnects in one line
    # of its own; pika's internal errors for the same event are noise here.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    # Likewise the PostgreSQL pool's notes on connections it replaces: the engine
    # reports a lost database connection itself (see engine/reconnect.py).
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    attempts = logging.getLogger("asyncevents_cli.attempts")
    attempt_handler = handler if json_lines else AttemptLines()
    if verbose:
        attempts.addHandler(attempt_handler)
        attempts.setLevel(logging.INFO)
        attempts.propagate = False
    consume_log.setLevel(logging.INFO)
    try:
        yield (lambda message: consume_log.info(message.removeprefix("ae: "))) if json_lines else note
    finally:
        if json_lines:
            root.removeHandler(handler)
            root.setLevel(root_level)
        consume_log.setLevel(logging.NOTSET)
        if verbose:
            attempts.removeHandler(attempt_handler)
            attempts.setLevel(logging.NOTSET)
            attempts.propagate = True


@contextmanager
def _metrics(
    ctx: typer.Context, observing: Observing, current: list[Consumer], tell: Callable[[str], None]
) -> Iterator[None]:
    """Serve /metrics, /healthz and /readyz while the consumer runs, if a port was chosen."""
    if not observing.metrics_port:
        yield
        return
    from ..metrics.endpoint import MetricsEndpoint

    in_flight = lambda: current[0].in_flight if current else 0  # noqa: E731 - the consumer of the moment
    limits = lambda: current[0].lanes.limits() if current else {}  # noqa: E731
    config = runtime(ctx).config
    with MetricsEndpoint(config, observing.metrics_host, observing.metrics_port, in_flight, limits) as served:
        shown = f"[{served.host}]" if ":" in served.host else served.host
        tell(f"ae: metrics on http://{shown}:{served.port}/metrics (and /healthz, /readyz)")
        yield


def _run(
    ctx: typer.Context,
    options: ConsumerOptions,
    max_messages: int | None,
    until_empty: bool,
    verbose: bool = False,
    observing: Observing | None = None,
) -> None:
    from ..engine import Aborted
    from ..engine.reconnect import run_reconnecting

    observing = observing or Observing(0, "", "text")
    json_lines = observing.log_format == "json"
    rt = runtime(ctx)
    kinds = options.kinds
    current: list[Consumer] = []  # the consumer of the moment (a new one after a reconnect)
    with _logging(verbose, json_lines) as tell, _metrics(ctx, observing, current, tell):
        stop = StopFlag(tell)
        previous = stop.install()

        def watch(consumer: Consumer) -> None:
            stop.abort = consumer.abort
            current[:] = [consumer]

        relay_thread = _start_relay(rt, kinds, until_empty)
        # The remaining backlog, on a terminal only, and not mixed with -v's lines or JSON logs.
        show_progress = until_empty and not verbose and not json_lines and is_terminal(sys.stderr)
        try:
            with backlog_display(_backlog(ctx, kinds) if show_progress else 0, show_progress) as advance:
                handled = run_reconnecting(
                    lambda: rt.consumer_for(options),
                    max_messages,
                    until_empty,
                    stop,
                    watch,
                    on_message=advance,
                )
        except Aborted as exc:
            raise KeyboardInterrupt from exc
        finally:
            stop.flush()
            if relay_thread is not None:
                relay_thread.stop()
            for sig, old in previous.items():
                signal.signal(sig, old)
        tell(f"handled {handled} message(s)")


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
    metrics_port: int | None = METRICS_PORT_OPTION,
    metrics_host: str | None = METRICS_HOST_OPTION,
    log_format: str | None = LOG_FORMAT_OPTION,
) -> None:
    """Fan published events out to their subscribers."""
    observing = Observing.chosen(ctx, metrics_port, metrics_host, log_format)
    options = runtime(ctx).consumer_options((TRIGGER,), concurrency=concurrency)
    _run(ctx, options, max_messages, until_empty, verbose, observing)


@consume_app.command("retry")
def consume_retry(
    ctx: typer.Context,
    max_messages: int | None = MAX_OPTION,
    until_empty: bool = UNTIL_EMPTY_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    verbose: bool = VERBOSE_OPTION,
    metrics_port: int | None = METRICS_PORT_OPTION,
    metrics_host: str | None = METRICS_HOST_OPTION,
    log_format: str | None = LOG_FORMAT_OPTION,
) -> None:
    """Attempt failed deliveries again as their back-off comes due."""
    observing = Observing.chosen(ctx, metrics_port, metrics_host, log_format)
    options = runtime(ctx).consumer_options((RETRY,), concurrency=concurrency)
    _run(ctx, options, max_messages, until_empty, verbose, observing)


@consume_app.command("all")
def consume_all(
    ctx: typer.Context,
    max_messages: int | None = MAX_OPTION,
    until_empty: bool = UNTIL_EMPTY_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    verbose: bool = VERBOSE_OPTION,
    metrics_port: int | None = METRICS_PORT_OPTION,
    metrics_host: str | None = METRICS_HOST_OPTION,
    log_format: str | None = LOG_FORMAT_OPTION,
) -> None:
    """Run the trigger and retry consumers in one process.

    Quiet but for warnings; -v prints each attempt. With --until-empty on a terminal, a progress display shows
    the backlog left.

    Examples:

      ae consume all

      ae consume all --until-empty -v
    """
    observing = Observing.chosen(ctx, metrics_port, metrics_host, log_format)
    options = runtime(ctx).consumer_options(KINDS, concurrency=concurrency)
    _run(ctx, options, max_messages, until_empty, verbose, observing)
