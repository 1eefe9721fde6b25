"""Running an event's `service` off the event loop, within `service_timeout_seconds`.

A service is the user's code: it may block on a database for seconds, never
return, raise anything (`SystemExit` and `KeyboardInterrupt` included) or
return something no receiver could take. On the loop it would delay every
other delivery (a 30 s service held 20 unrelated deliveries for 30.3 s), and a
`SystemExit` stopped the consumer. Here each call runs on a thread of its own,
and whatever goes wrong becomes a `PayloadError` naming the reason, which
parks that one message while the consumer goes on.

A thread cannot be stopped from outside in Python. A call that outlives its
timeout is abandoned: its message is parked, its slot goes to the next call,
and the thread runs on, as a daemon, until the service returns (its result is
dropped) or the process exits. Daemon threads do not hold the interpreter
open, so a service that never returns does not stop the consumer from shutting
down. Each abandoned thread is logged, and `abandoned` counts those still
running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

from ..config import Config
from ..errors import AeError
from ..messages import TriggerMessage
from ..strict_json import MAX_PAYLOAD_BYTES, JsonRejected, check_depth, check_encodable

log = logging.getLogger("asyncevents_cli")

#: Services running at once in one consumer. Services wait on databases and
#: APIs, not the CPU, so a few threads overlap them well; a backlog of service
#: events waits for a slot without holding up deliveries of other events.
SERVICE_THREADS = 8


class PayloadError(AeError):
    """An event's service could not build the payload."""


def _problem_with(payload: Any) -> str | None:
    """Why a service's result cannot be delivered, or None. Checked on the service's
    thread, so a large result is measured without holding up the loop."""
    try:
        if isinstance(payload, (dict, list)):
            check_depth(payload)
        check_encodable(payload)
        size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except JsonRejected as exc:
        return f"returned a result that is not JSON: {exc}"
    if size > MAX_PAYLOAD_BYTES:
        return f"returned {size} bytes of JSON, more than the {MAX_PAYLOAD_BYTES // 1024} KiB a payload may be"
    return None


class ServiceRunner:
    """Builds each trigger's payload: its arguments as they are, or its event's service's result."""

    def __init__(self, config: Config, threads: int = SERVICE_THREADS) -> None:
        self.config = config
        self.timeout = config.settings.service_timeout_seconds
        self._slots = asyncio.Semaphore(threads)
        self._abandoned: set[threading.Thread] = set()

    async def payload(self, message: TriggerMessage) -> Any:
        """The payload to deliver; raises PayloadError (an AeError) when the service fails."""
        event = self.config.event(message.event_name)
        if not event.service:
            return message.arguments
        async with self._slots:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[tuple[bool, Any]] = loop.create_future()
            call = threading.Thread(
                target=self._call, args=(loop, done, message), name=f"ae-service-{event.name}", daemon=True
            )
            call.start()
            try:
                async with asyncio.timeout(self.timeout):
                    ok, value = await done
            except TimeoutError as exc:
                self._abandon(call, event.service)
                raise PayloadError(
                    f"service {event.service} gave no result within {self.timeout:g} s (service_timeout_seconds)"
                ) from exc
        if not ok:
            raise PayloadError(value)
        return value

    def _call(
        self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[tuple[bool, Any]], message: TriggerMessage
    ) -> None:
        """On the service's thread: import and call it, check its result, hand back (ok, payload or reason)."""
        event = self.config.event(message.event_name)
        outcome: tuple[bool, Any]
        try:
            service = event.resolve_service()
            assert service is not None  # payload() calls this only for an event with a service
            payload = service(**message.arguments)
            problem = _problem_with(payload)
            outcome = (False, f"service {event.service} {problem}") if problem else (True, payload)
        except AeError as exc:  # cannot import it: the message says which and why
            outcome = (False, exc.message)
        except BaseException as exc:  # the user's code: SystemExit too parks one message
            text = " ".join(str(exc).split())[:300] or "(no message)"
            outcome = (False, f"service {event.service} failed: {exc.__class__.__name__}: {text}")
        with contextlib.suppress(RuntimeError):  # the loop is closed: the consumer stopped while this ran
            loop.call_soon_threadsafe(_settle, done, outcome)

    def _abandon(self, call: threading.Thread, service: str) -> None:
        self._abandoned = {thread for thread in self._abandoned if thread.is_alive()}
        self._abandoned.add(call)
        log.warning(
            "service %s passed its timeout; its thread %s runs on, abandoned (%d such)",
            service,
            call.name,
            len(self._abandoned),
        )

    @property
    def abandoned(self) -> int:
        """Threads that passed their timeout and are still running."""
        return sum(thread.is_alive() for thread in self._abandoned)


def _settle(done: asyncio.Future[tuple[bool, Any]], outcome: tuple[bool, Any]) -> None:
    if not done.done():  # it timed out meanwhile: nobody waits for it any more
        done.set_result(outcome)
