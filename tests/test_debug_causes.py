"""AE_DEBUG=1 shows why, not only what: a failing command prints the whole chain of
exceptions behind its error, causes included (even those raised `from None`), and
without it the same failure is one clean line. Real failures, in real processes: a
PostgreSQL server that is not there, a SQLite file that is not a database, a table
gone from under `ae serve`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import write_config
from serving import start_server

from asyncevents_cli import database_errors
from asyncevents_cli.errors import AeError, reveal_causes

NO_SERVER = "postgresql://postgres@127.0.0.1:1/nowhere"  # port 1: refused at once, on every machine


def run_ae(config: Path, *args: str, debug: bool, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_") or k.startswith("AE_REQUIRE")}
    env.update(environ)
    if debug:
        env["AE_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "asyncevents_cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("database", "exit_code", "message", "cause"),
    [
        (NO_SERVER, 3, "ae: error: cannot reach the database", "psycopg.OperationalError: connection failed"),
        ("not-a-database.db", 1, "ae: error: cannot open database", "sqlite3.DatabaseError: file is not a database"),
    ],
    ids=["postgres-down", "sqlite-garbage"],
)
def test_a_failing_command_shows_its_causes_only_under_ae_debug(
    tmp_path: Path, database: str, exit_code: int, message: str, cause: str
) -> None:
    (tmp_path / "not-a-database.db").write_text("this is not a SQLite file\n" * 100)
    config = write_config(tmp_path, database=database)

    plain = run_ae(config, "subscriptions", "list", debug=False)
    assert plain.returncode == exit_code, plain.stderr
    assert plain.stdout == ""
    assert len(plain.stderr.splitlines()) == 1 and plain.stderr.startswith(message), plain.stderr

    debug = run_ae(config, "subscriptions", "list", debug=True)
    assert debug.returncode != 0
    assert debug.stderr.count("Traceback (most recent call last)") >= 2, debug.stderr  # the error, and its cause
    assert cause in debug.stderr, debug.stderr
    assert message.removeprefix("ae: error: ") in debug.stderr.splitlines()[-1]


def test_ae_serve_logs_the_causes_of_an_error_answer_only_under_ae_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {}
    for debug in (False, True):
        folder = tmp_path / ("debug" if debug else "plain")
        folder.mkdir()
        config = write_config(folder)
        token = run_ae(config, "tokens", "create", "admin", debug=False).stdout.splitlines()[-1]
        monkeypatch.setenv("AE_DEBUG", "1" if debug else "0")  # start_server passes its environment on
        server = start_server(config, folder / "serve.log")
        try:
            db = sqlite3.connect(folder / ".ae" / "ae.db")
            db.execute("DROP TABLE subscriptions")  # the store broken under the running server
            db.close()
            response = httpx.get(
                server.url + "/rest/V1/async_events", headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
        finally:
            server.stop()
        answers[debug] = (response.status_code, response.json())
        log = server.log()
        if debug:
            assert "Traceback (most recent call last)" in log and "sqlite3.OperationalError" in log, log
        else:
            assert "Traceback" not in log, log
    assert answers[False] == answers[True] == (500, {"message": "database: no such table: subscriptions"})


def test_reveal_causes_undoes_from_none() -> None:
    try:
        try:
            raise KeyError("the cause")
        except KeyError:
            raise AeError("what the user sees") from None
    except AeError as exc:
        assert exc.__suppress_context__
        assert reveal_causes(exc) is exc
        assert not exc.__suppress_context__ and isinstance(exc.__context__, KeyError)


def test_both_drivers_errors_are_known_in_one_place(tmp_path: Path) -> None:
    import psycopg

    try:
        sqlite3.connect(tmp_path / "x.db").execute("SELECT * FROM missing")
    except sqlite3.Error as exc:
        sqlite_error = exc
    try:
        psycopg.connect(NO_SERVER, connect_timeout=5)
    except psycopg.Error as exc:
        psycopg_error = exc
    assert database_errors.is_driver_error(sqlite_error) and database_errors.is_driver_error(psycopg_error)
    assert not database_errors.is_driver_error(ValueError("not a database's"))
    assert database_errors.describe(sqlite_error) == "database: no such table: missing"
    assert "\n" not in database_errors.describe(psycopg_error)  # psycopg's message spans lines
    assert isinstance(sqlite_error, database_errors.UNAVAILABLE_NOW)  # an OperationalError: not the message's fault
    assert not isinstance(psycopg_error, database_errors.UNAVAILABLE_NOW)  # the store translates psycopg's itself
