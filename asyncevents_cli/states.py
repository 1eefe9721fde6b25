"""The states a delivery and a subscription can be in, each named once.

Both are `StrEnum`s, as rq's `JobStatus` is a `str` enum: a member *is* the
string the store keeps and `--json` prints (`DeliveryState.DELIVERED ==
"delivered"`), so rows written before the enums read back unchanged, and a
typo in a name fails at import instead of matching nothing.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryState(StrEnum):
    """Where one delivery's retry chain stands (table `deliveries`, column `state`)."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    DEAD_LETTERED = "dead_lettered"
    STOPPED = "stopped"  # a retry came due for a subscription that is now disabled or gone
    PENDING = "pending"  # waiting in the store for room in its subscription's lane (or a Retry-After)
    HELD = "held"  # its subscription's circuit is open: kept, not attempted, no death counted


class SubscriptionStatus(StrEnum):
    """A subscription as listings show it. The store keeps the module's integer
    (1 enabled, 0 disabled); `DELETED` is shown for a delivery whose subscription
    is gone and is never stored."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"

    @classmethod
    def of(cls, enabled: bool) -> SubscriptionStatus:
        return cls.ENABLED if enabled else cls.DISABLED
