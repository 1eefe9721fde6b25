"""The store: subscriptions, the delivery log, delivery states, API tokens.

    open_store(".ae/ae.db")                    the embedded SQLite store (the default)
    open_store("postgresql://host/dbname")     PostgreSQL, shared by many hosts

`factory.py` opens one; `store.py` composes the tables (one object per
table, each owning its SQL) over a backend; `backend.py` holds the rules
every backend keeps, and `sqlite.py` / `postgres.py` only connect and run
SQL. Callers import everything from here.
"""

from .backend import Result
from .factory import open_store
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
from .store import Store

__all__ = [
    "Store",
    "open_store",
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
