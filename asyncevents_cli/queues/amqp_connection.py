"""One connection to RabbitMQ and its channels: opened lazily, re-opened with back-off.

Connecting is lazy but fails fast: one attempt, a few seconds of timeout, and
every pika or socket error leaves the AMQP backend as `QueueUnavailable`. Once
a connection has worked, a lost one is re-opened with back-off for
`reconnect_seconds`. What was unacknowledged on a lost connection is requeued
by the broker; the parts of the queue that keep per-connection state register
`on_drop` to forget it.

Channels, each for one job: ``consume`` (with the prefetch limit), ``confirm``
(publisher confirms, for single messages), ``tx`` (AMQP transactions, for a batch
of triggers: a channel cannot be in both modes) and ``side`` (declares that may be
refused, 404 or 406, which close the channel they run on).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ..errors import AeError, ConfigError, QueueUnavailable
from ..redaction import redact_url
from .amqp_topology import declare_static

log = logging.getLogger("asyncevents_cli")
T = TypeVar("T")

#: Errors that mean the connection is gone (or was never there).
CONNECTION_ERRORS = (pika.exceptions.AMQPConnectionError, OSError)
#: Errors of one operation: the connection is gone, or the broker closed the channel.
OPERATION_ERRORS = (*CONNECTION_ERRORS, pika.exceptions.AMQPChannelError)

# Defaults applied unless the URL's query string sets them: fail fast.
URL_DEFAULTS = {
    "connection_attempts": 1,
    "socket_timeout": 3.0,
    "stack_timeout": 5.0,
    "blocked_connection_timeout": 10.0,
}


class _MissingDelayQueueFilter(logging.Filter):
    """Counting does passive declares, and a delay queue not declared yet answers 404.
    That is expected, so pika's warning for it ("NOT_FOUND - no queue 'event.delay.4'")
    is dropped rather than shown on every `ae status` or `--until-empty` check."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "NOT_FOUND - no queue 'event." not in record.getMessage()


def quiet_missing_delay_queues() -> None:
    """Install `_MissingDelayQueueFilter` on pika's channel logger, once per process."""
    pika_channel = logging.getLogger("pika.channel")
    if not any(isinstance(f, _MissingDelayQueueFilter) for f in pika_channel.filters):
        pika_channel.addFilter(_MissingDelayQueueFilter())


def describe(exc: BaseException) -> str:
    """A one-line reason for a pika/socket error (pika often wraps the real one)."""
    inner = exc
    while True:
        nested = getattr(inner, "exception", None)  # pika's connector errors keep it here
        if not isinstance(nested, BaseException) and inner.args and isinstance(inner.args[0], BaseException):
            nested = inner.args[0]
        if not isinstance(nested, BaseException):
            break
        inner = nested
    text = str(inner).strip() or repr(inner)
    return f"{inner.__class__.__name__}: {text}"


def connection_parameters(url: str) -> pika.URLParameters:
    try:
        params = pika.URLParameters(url)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"amqp_url {redact_url(url, keep_user=True)!r} is not a valid AMQP URL: {exc}") from exc
    given = parse_qs(urlsplit(url).query)
    for name, value in URL_DEFAULTS.items():
        if name not in given:
            setattr(params, name, value)
    return params


class Connection:
    """The connection, its channels, and the loop that re-opens it."""

    def __init__(self, url: str, prefetch: int, reconnect_seconds: float) -> None:
        self.shown_url = redact_url(url, keep_user=True)  # the URL as messages may print it
        self.prefetch = prefetch
        #: how long to keep re-connecting after an established connection is lost
        self.reconnect_seconds = reconnect_seconds
        self._params = connection_parameters(url)
        self.conn: BlockingConnection | None = None
        self._channels: dict[str, BlockingChannel] = {}
        self.generation = 0  # bumped per connection; envelope handles carry it
        self._connected_once = False
        self.returned: list[tuple[Any, bytes]] = []  # basic.return on the transaction channel
        self._forget: list[Callable[[], None]] = []

    def on_drop(self, forget: Callable[[], None]) -> None:
        """Have `forget()` called whenever the connection is dropped."""
        self._forget.append(forget)

    def unavailable(self, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(
            f"cannot reach RabbitMQ at {self.shown_url}: {describe(exc)}",
            hint="check that the broker runs and amqp_url / AE_AMQP_URL point at it",
        )

    @property
    def is_open(self) -> bool:
        return self.conn is not None and self.conn.is_open

    def open(self) -> None:
        """Connect once, open the channels and declare the fixed topology."""
        quiet_missing_delay_queues()
        conn = BlockingConnection(self._params)
        try:
            self.conn = conn
            self.generation += 1
            consume = self._channels["consume"] = conn.channel()
            consume.basic_qos(prefetch_count=self.prefetch)
            self._channels["confirm"] = conn.channel()
            self._channels["confirm"].confirm_delivery()
            tx = self._channels["tx"] = conn.channel()
            tx.tx_select()
            tx.add_on_return_callback(lambda _ch, _m, props, body: self.returned.append((props, body)))
            self.declare_topology()
        except BaseException:
            self.drop()
            raise
        self._connected_once = True

    def declare_topology(self) -> None:
        try:
            declare_static(self.channel("confirm"))
        except pika.exceptions.ChannelClosedByBroker as exc:
            self.drop()
            raise AeError(
                f"RabbitMQ at {self.shown_url} refused the event exchanges/queues: {exc.reply_text}",
                hint="an exchange or queue of the same name exists with other settings",
            ) from exc

    def drop(self) -> None:
        """Forget the connection; the broker requeues whatever was unacknowledged."""
        conn, self.conn = self.conn, None
        self._channels.clear()
        for forget in self._forget:
            forget()
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                conn.close()

    def channel(self, name: str) -> BlockingChannel:
        """The open channel `name` ("consume", "confirm", "tx"); an error when it is closed."""
        ch = self._channels.get(name)
        if ch is None or not ch.is_open:
            raise pika.exceptions.ConnectionWrongStateError(f"channel {name} is closed")
        return ch

    def side(self) -> BlockingChannel:
        """A channel for declares that may be refused (404, 406) without harm elsewhere."""
        ch = self._channels.get("side")
        if ch is None or not ch.is_open:
            assert self.conn is not None
            ch = self._channels["side"] = self.conn.channel()
        return ch

    def new_channel(self) -> BlockingChannel:
        """A channel of the caller's own, to close when done (closing it requeues what it got)."""
        assert self.conn is not None
        return self.conn.channel()

    def process_events(self, time_limit: float) -> None:
        """Let pika dispatch what has arrived (deliveries, returns), waiting up to `time_limit`."""
        assert self.conn is not None
        self.conn.process_data_events(time_limit=time_limit)

    def set_prefetch(self, count: int) -> None:
        """Prefetch `count` from now on, on the open consume channel too."""
        self.prefetch = count
        consume = self._channels.get("consume")
        if consume is not None and consume.is_open:
            self.run(lambda: self.channel("consume").basic_qos(prefetch_count=count))

    def run(self, operation: Callable[[], T]) -> T:
        """Run `operation` on an open connection, re-connecting with back-off after a loss.

        The first connection of this object is tried once (fail fast); once one
        has worked, a lost connection is retried for `reconnect_seconds`.
        """
        deadline: float | None = None
        delay = 0.1
        while True:
            try:
                if not self.is_open:
                    self.drop()
                    self.open()
                return operation()
            except OPERATION_ERRORS as exc:
                lost = isinstance(exc, CONNECTION_ERRORS) or not self.is_open
                self.drop()
                if not lost:  # the broker refused this operation; retrying would not help
                    raise AeError(f"RabbitMQ at {self.shown_url} refused an operation: {describe(exc)}") from exc
                if not self._connected_once:
                    raise self.unavailable(exc) from exc
                now = time.monotonic()
                deadline = deadline or now + self.reconnect_seconds
                if now + delay > deadline:
                    raise self.unavailable(exc) from exc
                log.warning("RabbitMQ connection lost (%s); reconnecting in %.1fs", describe(exc), delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


__all__ = ["CONNECTION_ERRORS", "OPERATION_ERRORS", "Connection", "connection_parameters", "describe"]
