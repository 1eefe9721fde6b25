"""The public Python API: `asyncevents_cli.Client` and `asyncevents_cli.publish`.

Same checks and exceptions as the CLI, on every queue backend; a client shared
by threads; the connection checks of transactional publishing.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import Receiver, ok, ok_json, write_config

import asyncevents_cli as ae

EVENT = "sales.order.created"


def test_the_public_surface_is_small_typed_and_importable() -> None:
    assert sorted(ae.__all__) == [
        "AeError",
        "Client",
        "ConfigError",
        "DatabaseUnavailable",
        "InputError",
        "NotFound",
        "QueueUnavailable",
        "__version__",
        "publish",
    ]
    for name in ae.__all__:
        assert getattr(ae, name) is not None
    assert issubclass(ae.ConfigError, ae.InputError) and issubclass(ae.InputError, ae.AeError)
    assert (Path(ae.__file__).parent / "py.typed").exists()
    for method in ("publish", "publish_many", "subscribe", "trace", "search", "close", "__enter__", "__exit__"):
        assert callable(getattr(ae.Client, method))


def test_importing_the_package_opens_nothing_and_imports_nothing_heavy() -> None:
    code = "import json, sys, asyncevents_cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    ours = sorted(m for m in loaded if m.startswith("asyncevents_cli"))
    assert ours == ["asyncevents_cli", "asyncevents_cli.errors", "asyncevents_cli.version"]
    heavy = {"pika", "psycopg", "sqlite3", "sqlite_utils", "whoosh", "typer", "rich", "asyncio", "aiohttp"}
    assert sorted(heavy & {m.split(".")[0] for m in loaded}) == []


def test_publish_subscribe_trace_and_search_on_each_backend(
    backend: dict[str, Any], tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(tmp_path, **backend)
    with ae.Client(config) as client:
        subscription = client.subscribe(EVENT, receiver.endpoint("/hook"))
        assert subscription["event_name"] == EVENT and subscription["secret"]
        message_id = client.publish(EVENT, {"increment_id": "PY1"})
        ids = client.publish_many(EVENT, [{"increment_id": "PY2"}, {"increment_id": "PY3"}], store_id=0)
        assert len({message_id, *ids}) == 3
        ok(config, "consume", "all", "--until-empty")
        assert sorted(r.json["data"]["increment_id"] for r in receiver.to("/hook")) == ["PY1", "PY2", "PY3"]
        assert all(r.signed_with(subscription["secret"]) for r in receiver.to("/hook"))
        uuid = receiver.to("/hook")[0].headers["idempotency-key"]
        traced = client.trace(uuid)
        assert traced["uuid"] == uuid and traced["status"] == ok_json(config, "trace", uuid)["status"]
        [hit] = client.search('"PY2"')
        assert hit["payload"] == {"data": {"increment_id": "PY2"}}


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda c: c.publish("no.such.event", {}), ae.InputError, "is not defined"),
        (lambda c: c.publish(EVENT, [1, 2]), ae.InputError, "must be a JSON object"),
        (lambda c: c.publish(EVENT, {"x": float("nan")}), ae.InputError, "not JSON"),
        (lambda c: c.publish(EVENT, {"x": object()}), ae.InputError, "not JSON"),
        (lambda c: c.publish(EVENT, {"x": "a" * (1024 * 1024)}), ae.InputError, "larger than"),
        (lambda c: c.publish(EVENT, {}, store_id=-1), ae.InputError, "store id"),
        (lambda c: c.publish_many(EVENT, [{}, "x"]), ae.InputError, "must be a JSON object"),
        (lambda c: c.trace("00000000-0000-0000-0000-000000000000"), ae.NotFound, "no delivery"),
        (lambda c: c.search("success:("), ae.InputError, "malformed query"),
        (lambda c: c.subscribe(EVENT, "ftp://example.com/x"), ae.InputError, "must be an http or https URL"),
        (lambda c: c.publish(EVENT, {}, connection=object()), ae.InputError, "connection= takes"),
    ],
)
def test_bad_input_raises_the_cli_exception_and_queues_nothing(
    call: Any, error: type[Exception], fragment: str, config_path: Path
) -> None:
    with ae.Client(config_path) as client, pytest.raises(error, match=fragment):
        call(client)
    assert ok_json(config_path, "status")["queues"]["trigger"] == 0


def test_a_missing_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ae.ConfigError, match="not found"):
        ae.Client(tmp_path / "nowhere.toml").publish(EVENT, {})


def test_the_module_level_publish_uses_a_default_client(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AE_CONFIG", str(config_path))
    monkeypatch.setattr(ae, "_default", None)
    first = ae.publish(EVENT, {"n": 1})
    second = ae.publish(EVENT, {"n": 2}, store_id=3)
    assert first != second and ok_json(config_path, "status")["queues"]["trigger"] == 2
    assert ae._default is not None
    ae._default.close()


def test_one_client_shared_by_threads(backend: dict[str, Any], tmp_path: Path) -> None:
    config = write_config(tmp_path, **backend)
    ids: list[str] = []
    failures: list[BaseException] = []
    with ae.Client(config) as client:

        def publish_some(worker: int) -> None:
            try:
                for n in range(25):
                    ids.append(client.publish(EVENT, {"worker": worker, "n": n}))
            except BaseException as exc:  # reported below, not lost in the thread
                failures.append(exc)

        threads = [threading.Thread(target=publish_some, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == [] and len(set(ids)) == 200
    assert ok_json(config, "status")["queues"]["trigger"] == 200


def test_a_connection_that_cannot_join_is_refused(config_path: Path, tmp_path: Path) -> None:
    ok(config_path, "db", "migrate")  # the store exists, as it does wherever an application writes to it
    with ae.Client(config_path) as client:
        store = client.config.database_path
        autocommit = sqlite3.connect(store, isolation_level=None)
        with pytest.raises(ae.InputError, match="autocommit mode"):
            client.publish(EVENT, {}, connection=autocommit)
        other = sqlite3.connect(tmp_path / "app.db")
        other.execute("CREATE TABLE orders (id TEXT)")
        with pytest.raises(ae.InputError, match="not to ae's store"):
            client.publish(EVENT, {}, connection=other)
        other.rollback()
        # in autocommit mode but inside an explicit transaction: it joins, and a rollback takes it back
        autocommit.execute("BEGIN")
        client.publish(EVENT, {"kept": False}, connection=autocommit)
        autocommit.execute("ROLLBACK")
    assert ok_json(config_path, "status")["queues"]["trigger"] == 0


@pytest.mark.postgres
def test_a_psycopg_connection_that_cannot_join_is_refused(postgres_url: str, tmp_path: Path) -> None:
    import psycopg
    from postgres_db import TEST_SECRET_KEY

    config = write_config(tmp_path, database=postgres_url)
    (tmp_path / "lite").mkdir()
    sqlite_config = write_config(tmp_path / "lite")
    with ae.Client(config, environ={"AE_SECRET_KEY": TEST_SECRET_KEY}) as client:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            with pytest.raises(ae.InputError, match="autocommit mode"):
                client.publish(EVENT, {}, connection=conn)
            with conn.transaction():
                client.publish(EVENT, {"joined": True}, connection=conn)
        with psycopg.connect(postgres_url) as conn:
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1/0")
            with pytest.raises(ae.InputError, match="failed already"):
                client.publish(EVENT, {}, connection=conn)
        other = postgres_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(other) as conn, pytest.raises(ae.InputError, match="not to ae's store"):
            client.publish(EVENT, {}, connection=conn)
        with pytest.raises(ae.InputError, match="a sqlite3 connection cannot reach it"):
            client.publish(EVENT, {}, connection=sqlite3.connect(tmp_path / "x.db"))
    with (
        ae.Client(sqlite_config) as lite,
        psycopg.connect(postgres_url) as conn,
        pytest.raises(ae.InputError, match="a psycopg connection cannot reach it"),
    ):
        lite.publish(EVENT, {}, connection=conn)
    with psycopg.connect(postgres_url) as conn:
        queued = conn.execute("SELECT body FROM queue_messages").fetchall()
    assert [json.loads(body)[1] for (body,) in queued] == ['{"joined":true}']
