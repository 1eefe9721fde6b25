"""PostgreSQL for the tests: one database per test module, made and dropped here.

The server comes from AE_TEST_POSTGRES_URL (default: user postgres on
127.0.0.1:5432, trust auth); its own database is used only to create and drop
`ae_test_<random>` databases, never for data. Each test starts on an empty
database (its `public` schema dropped and made again). Tests skip when no server
answers, and fail instead when AE_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import functools
import os
import uuid as uuidlib
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: a fixed Fernet key for stores on PostgreSQL, which take theirs from AE_SECRET_KEY
TEST_SECRET_KEY = "x3kDcqKJvD1V5t6tq0p2bH0QbcXKfD0hF6Ol5mW0m2E="


def postgres_admin_url() -> str:
    return os.environ.get("AE_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


@functools.cache
def postgres_problem() -> str | None:
    """Why no PostgreSQL test can run here, or None when the server answers."""
    import psycopg

    try:
        psycopg.connect(postgres_admin_url(), connect_timeout=3).close()
    except Exception as exc:  # any failure means: no usable server
        where = urlsplit(postgres_admin_url())
        return f"no PostgreSQL answers at {where.hostname}:{where.port or 5432} ({exc.__class__.__name__})"
    return None


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("AE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"AE_REQUIRE_POSTGRES=1 but {problem}")
    pytest.skip(problem)


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """The URL of a database made for this test module, dropped after it."""
    require_postgres()
    name = f"ae_test_{uuidlib.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_admin_url(), name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty(url: str) -> None:
    """Drop everything in the database's public schema."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """The module's database, empty at the start of the test."""
    empty(postgres_database)
    yield postgres_database
