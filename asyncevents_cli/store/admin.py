"""`ae db status` and `ae db migrate`: the store's schema, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .api import Store, is_postgres_url
from .schema import SCHEMA_VERSION


def schema_status(
    database: str | Path, environ: Mapping[str, str] | None = None, migrate: bool = False
) -> dict[str, Any]:
    """Where the store's schema stands (after migrating it, with `migrate`)."""
    with Store(database, environ, migrate=False) as store:
        before = store.schema_version()
        applied = store.migrate() if migrate else []
        version = store.schema_version()
        return {
            "backend": "postgresql" if is_postgres_url(database) else "sqlite",
            "database": store.location,
            "schema_version": version,
            "code_schema_version": SCHEMA_VERSION,
            "previous_version": before,
            "applied": [{"version": m.version, "description": m.description} for m in applied],
            "pending": [{"version": m.version, "description": m.description} for m in store.pending_migrations()],
        }
