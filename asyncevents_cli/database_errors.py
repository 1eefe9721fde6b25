"""The one module that knows both database drivers' exception classes: sqlite3's, and
psycopg's when the store is on PostgreSQL. The CLI, the web app, the table queue and the
engine ask here, so the two backends' errors are told apart and shown the same way.

psycopg is not imported to answer: while it is not loaded, none of its exceptions can be
in flight, so `ae --help` and every SQLite user never pay for the import.
"""

from __future__ import annotations

import sqlite3
import sys

from .errors import DatabaseUnavailable

#: A driver's own "cannot do it now" that reaches the caller untranslated: SQLite's
#: OperationalError (locked past busy_timeout, a disk I/O error). PostgreSQL's (the server
#: gone, the connection lost) the store translates into `DatabaseUnavailable` itself; an
#: OperationalError psycopg raises past that is a deadlock or a cancelled statement, which
#: is that statement's fault (see `store/postgres.py`).
UNTRANSLATED_BUSY = (sqlite3.OperationalError,)
#: The database cannot do the work now, on either backend: not one message's fault.
UNAVAILABLE_NOW = (DatabaseUnavailable, *UNTRANSLATED_BUSY)


def driver_errors(load_psycopg: bool = False) -> tuple[type[Exception], ...]:
    """Every exception class of the drivers that can be in flight now, for an `except`
    clause or an exception handler; `load_psycopg` imports psycopg first (a web app on
    PostgreSQL registers its handlers before the store is opened)."""
    if load_psycopg:
        import psycopg  # noqa: F401  (loaded for sys.modules below)
    psycopg_module = sys.modules.get("psycopg")
    if psycopg_module is None:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg_module.Error)


def is_driver_error(exc: BaseException) -> bool:
    return isinstance(exc, driver_errors())


def describe(exc: BaseException) -> str:
    """The driver's message as one line for a user (psycopg's span several), after `database: `."""
    return f"database: {' '.join(str(exc).split()) or type(exc).__name__}"


__all__ = ["UNAVAILABLE_NOW", "UNTRANSLATED_BUSY", "describe", "driver_errors", "is_driver_error"]
