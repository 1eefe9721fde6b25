"""What a notifier is, and the registry that picks one by a subscription's `notifier`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError
from ..store import Subscription

RESPONSE_LIMIT = 64 * 1024  # bytes of a response (or error) kept in the log


@dataclass(frozen=True)
class NotifyResult:
    success: bool
    status_code: int | None
    response_data: str
    duration: float  # seconds


def clip(text: str, limit: int = RESPONSE_LIMIT) -> str:
    data = text.encode("utf-8", "replace")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


class Notifier(ABC):
    """Delivers one serialized event body to one subscriber."""

    @abstractmethod
    def notify(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        """Attempt delivery once. Never raises for delivery failures: it reports them."""

    def close(self) -> None:
        """Release pooled connections."""


NotifierFactory = Callable[[], Notifier]
_registry: dict[str, NotifierFactory] = {}


def register(name: str, factory: NotifierFactory) -> None:
    """Make a notifier available to subscriptions as ``--notifier NAME``."""
    _registry[name] = factory


def names() -> list[str]:
    return sorted(_registry)


def check_name(name: str) -> str:
    if name not in _registry:
        raise InputError(f"unknown notifier {name!r}; available: {', '.join(names())}")
    return name


class Notifiers:
    """One instance of each notifier in use, created on first need."""

    def __init__(self, overrides: dict[str, Notifier] | None = None) -> None:
        self._instances: dict[str, Notifier] = dict(overrides or {})

    def for_subscription(self, subscription: Subscription) -> Notifier:
        name = subscription.notifier
        if name not in self._instances:
            self._instances[name] = _registry[check_name(name)]()
        return self._instances[name]

    def close(self) -> None:
        for notifier in self._instances.values():
            notifier.close()
