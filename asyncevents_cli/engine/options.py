"""How one consumer runs: the options its loop, handler and pump share, and what it works over.

`ConsumerOptions` is built once per command (`Runtime.consumer_options`), from
the settings and the command line's flags. An out-of-range value is refused
there with an `InputError` (exit 2), naming the bounds, rather than quietly
raised to 1 or replaced by the setting: a consumer runs with exactly the
window it was given, or not at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import InputError
from ..queues.base import KINDS
from ..settings import BOUNDS, Settings
from ..store import utcnow

if TYPE_CHECKING:  # only named in annotations: the options need none of them loaded
    from ..config import Config
    from ..notifiers import Notifiers
    from ..queues.base import Queue
    from ..store import Store

_DEFAULTS = Settings()
#: seconds an idle consumer waits in the queue's own poll before it looks at the stop flag again
POLL_TIMEOUT = 0.25


@dataclass(frozen=True)
class ConsumerOptions:
    """What a consumer takes, how wide its window is, and how long it waits for a message."""

    kinds: tuple[str, ...] = KINDS
    #: attempts in flight at once, across every subscription (the `concurrency` setting)
    concurrency: int = _DEFAULTS.concurrency
    #: attempts in flight at once to one subscription (the `subscription_concurrency` setting)
    per_subscription: int = _DEFAULTS.subscription_concurrency
    poll_timeout: float = POLL_TIMEOUT
    now: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise InputError(f"unknown queue kind(s): {', '.join(sorted(unknown))}; known: {', '.join(KINDS)}")
        _check_count("concurrency", self.concurrency, BOUNDS["concurrency"])
        _check_count("per_subscription", self.per_subscription, BOUNDS["subscription_concurrency"])
        if not (isinstance(self.poll_timeout, int | float) and math.isfinite(self.poll_timeout)):
            raise InputError(f"poll_timeout must be a finite number of seconds, got {self.poll_timeout!r}")
        if self.poll_timeout < 0:
            raise InputError(f"poll_timeout must be at least 0 seconds, got {self.poll_timeout:g}")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        kinds: Sequence[str] | None = None,
        *,
        concurrency: int | None = None,
        per_subscription: int | None = None,
        poll_timeout: float | None = None,
    ) -> ConsumerOptions:
        """The settings' values, each overridden by a flag that was given (None: not given)."""
        return cls(
            KINDS if kinds is None else tuple(kinds),
            settings.concurrency if concurrency is None else concurrency,
            settings.subscription_concurrency if per_subscription is None else per_subscription,
            POLL_TIMEOUT if poll_timeout is None else poll_timeout,
        )

    @property
    def held_limit(self) -> int:
        """Messages held unsettled at once: twice the window, so finished attempts
        waiting for the next settle batch do not leave the window idle."""
        return 2 * self.concurrency


def _check_count(name: str, value: object, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low:g} and {high:g}, got {value}")


@dataclass(frozen=True)
class Backends:
    """What a consumer works over, opened by `Runtime`: shared by the loop and its handler."""

    config: Config
    store: Store
    queue: Queue
    notifiers: Notifiers
