"""The consumer loop: take a message, hand it to the dispatcher, repeat.

Stopping is cooperative: `should_stop` is checked between messages, so
Ctrl-C / SIGTERM (which the CLI turns into a flag) finish the message in hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .dispatch import Dispatcher
from .queues.base import KINDS, Queue


QUICK_LOOK = 0.02  # seconds


class Worker:
    def __init__(self, dispatcher: Dispatcher, queue: Queue, kinds: Sequence[str] = KINDS,
                 poll_timeout: float = 0.25) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown queue kind(s): {sorted(unknown)}")
        self.dispatcher = dispatcher
        self.queue = queue
        self.kinds = tuple(kinds)
        self.poll_timeout = poll_timeout
        self.processed = 0

    def run(
        self,
        max_messages: int | None = None,
        until_empty: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        on_message: Callable[[int], None] | None = None,
    ) -> int:
        """Process messages until told to stop; return how many were handled.

        With `until_empty`, return once nothing of these kinds is queued, due,
        delayed or in flight: delayed retries are waited for.
        """
        just_worked = False
        while not should_stop():
            if max_messages is not None and self.processed >= max_messages:
                break
            # Right after a message, look briefly: with --until-empty the queue is
            # often empty by now, and a full poll would only delay the exit.
            timeout = min(QUICK_LOOK, self.poll_timeout) if just_worked else self.poll_timeout
            envelope = self.queue.receive(self.kinds, timeout)
            just_worked = envelope is not None
            if envelope is None:
                if until_empty and self.queue.is_empty(self.kinds):
                    break
                continue
            self.dispatcher.handle(envelope)
            self.processed += 1
            if on_message:
                on_message(self.processed)
        return self.processed
