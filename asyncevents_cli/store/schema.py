"""The store's schema version, and the ordered migrations that reach it.

Each backend lists its migrations (`Migration`s, oldest first, numbered from 1);
the table ``schema_migrations`` remembers which were applied. A store is
brought up to date when it is first opened, and by `ae db migrate`, in one
transaction that first takes the backend's schema lock, so two processes
opening one old store do not migrate it twice. A store whose version is newer than this code knows is
refused (`StoreTooNew`, exit 1): older code must not write a schema it does
not understand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import AeError
from .backend import Backend
from .records import timestamp

#: The version this code writes and reads; every backend's last migration has it.
SCHEMA_VERSION = 7
VERSION_TABLE = "schema_migrations"
CREATE_VERSION_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER PRIMARY KEY,"
    " description TEXT NOT NULL, applied TEXT NOT NULL)"
)

#: Migration 6 on both backends: a subscription's filter and body format (columns),
#: and how many events each subscription's filter has held back (a table).
FILTER_COLUMNS = (("payload_filter", "TEXT"), ("body_format", "TEXT NOT NULL DEFAULT 'data'"))
FILTER_TABLE = (
    "CREATE TABLE IF NOT EXISTS filtered_events"
    " (subscription_id BIGINT PRIMARY KEY, filtered BIGINT NOT NULL DEFAULT 0)"
)
FILTER_DESCRIPTION = "subscription filters and body formats; events filtered out per subscription"
#: Migration 7 on both backends: the table queue's table, which the queue used to create itself.
QUEUE_DESCRIPTION = "queue_messages: the table queue (made by the queue itself before version 7)"


class StoreTooNew(AeError):
    """The store was migrated by a newer `ae` (exit 1)."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    #: statements run in order, inside the migration's transaction ...
    statements: Sequence[str] = ()
    #: ... or a function of the backend, for steps that must look before they change
    apply: Callable[[Any], None] | None = None


class SchemaTable:
    """Table `schema_migrations`: reading the version, checking and migrating, the same
    on every backend; the backend's own list of migrations is given."""

    def __init__(self, backend: Backend, migrations: Sequence[Migration]) -> None:
        self.backend = backend
        self.migrations = tuple(migrations)

    def schema_version(self) -> int:
        """The highest migration applied (0: none, or a store from before versions)."""
        try:
            value = self.backend.execute(f"SELECT MAX(version) FROM {VERSION_TABLE}").scalar()
        except self.backend.missing_table_errors:
            return 0
        return int(value or 0)

    def applied_versions(self) -> set[int]:
        """Every migration recorded as applied."""
        try:
            rows = self.backend.execute(f"SELECT version FROM {VERSION_TABLE}").rows
        except self.backend.missing_table_errors:
            return set()
        return {int(row[0]) for row in rows}

    def pending_migrations(self) -> list[Migration]:
        """Migrations not yet recorded, in order. By what is recorded, not by the highest
        version: branches number their migrations apart and may land out of order (4
        before 2), and a store at 4 must still get 2."""
        applied = self.applied_versions()
        return [m for m in self.migrations if m.version not in applied]

    def check_schema_version(self, found: int | None = None) -> None:
        found = self.schema_version() if found is None else found
        if found > SCHEMA_VERSION:
            raise StoreTooNew(
                f"the database {self.backend.location} has schema version {found}, newer than this ae understands"
                f" ({SCHEMA_VERSION}): upgrade ae",
            )

    def migrate(self) -> list[Migration]:
        """Apply what is pending, all in one transaction; return what was applied."""
        self.check_schema_version()
        if not self.pending_migrations():
            return []
        applied: list[Migration] = []
        with self.backend.transaction():
            self.backend.lock_schema()
            self.backend.execute(CREATE_VERSION_TABLE)
            self.check_schema_version()  # again, under the lock: another process may have won
            for migration in self.pending_migrations():
                for statement in migration.statements:
                    self.backend.execute(statement)
                if migration.apply is not None:
                    migration.apply(self.backend)
                self.backend.execute(
                    f"INSERT INTO {VERSION_TABLE} (version, description, applied) VALUES (?, ?, ?)",
                    (migration.version, migration.description, timestamp()),
                )
                applied.append(migration)
        return applied
