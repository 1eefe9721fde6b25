"""`ae db status` and `ae db migrate`: the store's schema, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .factory import open_store
from .schema import SCHEMA_VERSION


def schema_status(
    database: str | Path, environ: Mapping[str, str] | None = None, migrate: bool = False
) -> dict[str, Any]:
    """Where the store's schema stands (after migrating it, with `migrate`)."""
    with open_store(database, environ, migrate=False) as store:
        schema = store.schema
        before = schema.schema_version()
        applied = schema.migrate() if migrate else []
        version = schema.schema_version()
        return {
            "backend": store.backend.name,
            "database": store.location,
            "schema_version": version,
            "code_schema_version": SCHEMA_VERSION,
            "previous_version": before,
            "applied": [{"version": m.version, "description": m.description} for m in applied],
            "pending": [{"version": m.version, "description": m.description} for m in schema.pending_migrations()],
        }
