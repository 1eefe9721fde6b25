"""What a notifier is: delivers one event body to one subscriber, and checks its recipients."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from ..config import Config
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
    """Delivers one serialized event body to one subscriber.

    A notifier is found by name through the entry-point group
    ``asyncevents_cli.notifiers`` (see `registry`); the class itself is the
    factory, so its classmethods are what `ae subscribe` asks before any
    instance exists.
    """

    #: other names subscriptions may give, e.g. the Magento module's ``event_bridge``
    aliases: ClassVar[tuple[str, ...]] = ()
    #: what a recipient is, for `ae notifiers list`
    recipient_help: ClassVar[str] = "any non-empty string"
    #: deliveries are HTTP requests signed with the subscription's secret, so
    #: signature schemes, custom headers and secret rotation apply to them
    signs_requests: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config: Config | None) -> "Notifier":
        """The instance a consumer uses; settings come from `config` when given."""
        return cls()

    @classmethod
    def check_recipient(cls, recipient: str, config: Config | None = None) -> str:
        """Refuse (InputError) a recipient this notifier cannot deliver to; return it as stored.
        `config` carries the settings a check may depend on."""
        if not recipient or not recipient.strip():
            raise InputError("the recipient must not be empty")
        return recipient

    @abstractmethod
    def notify(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        """Attempt delivery once. Never raises for delivery failures: it reports them."""

    def close(self) -> None:
        """Release pooled connections."""
