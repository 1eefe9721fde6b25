"""`open_store(database)`: a `Store` over whichever backend `database` names.

The backend is picked from what `database` is, the way kombu picks a
transport from a URL's scheme: a ``postgresql://`` URL opens PostgreSQL,
anything else is a SQLite file. Each backend brings its own migrations.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .backend import Backend
from .postgres_schema import MIGRATIONS as POSTGRES_MIGRATIONS
from .sqlite import SqliteBackend
from .sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS
from .store import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MIGRATIONS = {"sqlite": SQLITE_MIGRATIONS, "postgresql": POSTGRES_MIGRATIONS}


def is_postgres_url(database: str | Path) -> bool:
    return isinstance(database, str) and database.lower().startswith(POSTGRES_SCHEMES)


def open_backend(database: str | Path, pool_size: int = 4) -> Backend:
    """Connect to the store's database, and nothing more."""
    if is_postgres_url(database):
        # imported here: psycopg loads only for a PostgreSQL store
        from .postgres import PostgresBackend

        return PostgresBackend(str(database), pool_size=pool_size)
    return SqliteBackend(database)


def open_store(
    database: str | Path, environ: Mapping[str, str] | None = None, migrate: bool = True, pool_size: int = 4
) -> Store:
    """Open the store; `migrate=False` only checks the schema version (what `ae db status` needs)."""
    return store_on(open_backend(database, pool_size), environ, migrate)


def store_on(backend: Backend, environ: Mapping[str, str] | None = None, migrate: bool = True) -> Store:
    """The store over a backend already connected: migrated and its secrets sealed, or
    (with `migrate=False`, or read-only: migrating writes) only its version checked."""
    store = Store(backend, MIGRATIONS[backend.name], environ)
    try:
        with backend.opening():
            if migrate and not backend.read_only:
                store.schema.migrate()
                store.subscriptions.seal_plaintext_tokens()
            else:
                store.schema.check_schema_version()
    except BaseException:
        store.close()
        raise
    return store
