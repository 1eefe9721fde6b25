"""A backend: the store's connection and its transaction verbs, written once.

A backend (``sqlite.py``, ``postgres.py``) only opens connections and runs
SQL: `_run`, `_run_many`, and the three transaction verbs. The tables' SQL
lives in the table modules, one object per table, each given the backend;
it is written in the common subset both engines speak, with ``?``
placeholders.

Transactions: writes that must happen together run inside
`transaction()`. Nested calls join the outer one; only one thread of a
process holds a transaction at a time (the consumer's settle is its one
writer), and a read-only store refuses it with a message saying why.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from ..errors import AeError
from ..secretbox import SecretBox


@dataclass(frozen=True)
class Result:
    """What one statement returned, read to the end (no cursor outlives its call)."""

    rows: list[tuple[Any, ...]]
    columns: tuple[str, ...]
    rowcount: int

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


class Backend:
    #: "sqlite" or "postgresql"
    name = ""
    #: how the backend says "LIKE, ignoring ASCII case" (SQLite's LIKE already does)
    like_operator = "LIKE"
    #: exceptions that mean a table is missing: an older store opened read-only
    missing_table_errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        #: True when the store can be read but not written; every write says why
        self.read_only = False

    # -- what a backend provides ------------------------------------------

    @property
    def location(self) -> str:
        """Where the store is, safe to print (no password)."""
        raise NotImplementedError

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Result:
        raise NotImplementedError

    def _run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    def open_secret_box(self, environ: Mapping[str, str] | None, create: bool) -> SecretBox:
        """The key for this store's sealed values (where it lives depends on the backend)."""
        raise NotImplementedError

    def log_id_sequence(self) -> int:
        """The last log id the backend's id sequence handed out (0 if none)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def order_log_ids(self) -> None:
        """Inside a transaction about to log attempts: make log ids commit in the order
        they are handed out (SQLite's one writer already does)."""

    def lock_schema(self) -> None:
        """Inside a transaction: make other processes' schema changes wait for it
        (SQLite's BEGIN IMMEDIATE already keeps other writers out)."""

    def opening(self) -> AbstractContextManager[None]:
        """Around opening the store (migrations included): how its failures are reported."""
        return nullcontext()

    # -- the rules, once ---------------------------------------------------

    def refuse_writes(self) -> None:
        if self.read_only:
            raise AeError(
                f"the database {self.location} is read-only: this command writes, so it cannot run"
                " (read commands such as status, logs and trace still work)"
            )

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of writes; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.refuse_writes()
            self._begin()
            self._depth = 1
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            else:
                self._commit()
            finally:
                self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        """Run one statement; inside `transaction()` it joins the transaction."""
        return self._run(sql, params)

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._run_many(sql, rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self._run(sql, params).dicts()

    def in_chunks(
        self, sql: str, values: Sequence[Any], before: Sequence[Any] = (), size: int = 500
    ) -> Iterator[Result]:
        """Run `sql` once per chunk of `values`, with `{marks}` replaced by the chunk's
        placeholders (`before` are the parameters that come first)."""
        for start in range(0, len(values), size):
            chunk = list(values[start : start + size])
            yield self._run(sql.format(marks=",".join("?" * len(chunk))), [*before, *chunk])
