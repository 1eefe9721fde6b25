"""`Store`: every store operation the commands use, over whichever backend.

``Store(database)`` picks the backend from what `database` is, the way kombu
picks a transport from a URL's scheme: a ``postgresql://`` URL opens
PostgreSQL, anything else is a SQLite file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .api_tokens import ApiTokenTable
from .delivery_log import DeliveryLogTable
from .health import HealthQueries
from .lanes import LaneTable
from .rate_buckets import RateBucketTable
from .schema import SchemaMixin
from .store_info import StoreInfoTable
from .subscriptions import SubscriptionTable

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(database: str | Path) -> bool:
    return isinstance(database, str) and database.lower().startswith(POSTGRES_SCHEMES)


class Store(
    SchemaMixin,
    SubscriptionTable,
    DeliveryLogTable,
    HealthQueries,
    LaneTable,
    ApiTokenTable,
    StoreInfoTable,
    RateBucketTable,
):
    """Open with `Store(database, environ, migrate=True)`; `migrate=False` only checks
    the schema version (what `ae db status` needs)."""

    def __new__(cls, database: str | Path, environ: Mapping[str, str] | None = None, **options: Any) -> Store:
        if cls is Store:
            if is_postgres_url(database):
                from .postgres import PostgresStore

                cls = PostgresStore
            else:
                from .sqlite import SqliteStore

                cls = SqliteStore
        return super().__new__(cls)
