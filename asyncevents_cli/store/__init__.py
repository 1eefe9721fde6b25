"""The store: subscriptions, the delivery log, delivery states, API tokens.

    Store(".ae/ae.db")   the embedded SQLite store (the default)

`base.py` holds the rules every backend keeps; one module per table holds
that table's SQL; `sqlite.py` only connects and runs it. Callers import
everything from here.
"""

from .api import Store
from .base import Result
from .records import (
    DISABLED,
    ENABLED,
    LOG_COLUMNS,
    MAX_ROWID,
    Attempt,
    ChainState,
    EndpointState,
    LogCondition,
    PendingDelivery,
    Subscription,
    parse_timestamp,
    timestamp,
    utcnow,
)

__all__ = [
    "Store",
    "Result",
    "Subscription",
    "Attempt",
    "ChainState",
    "EndpointState",
    "PendingDelivery",
    "LogCondition",
    "LOG_COLUMNS",
    "ENABLED",
    "DISABLED",
    "MAX_ROWID",
    "utcnow",
    "timestamp",
    "parse_timestamp",
]
