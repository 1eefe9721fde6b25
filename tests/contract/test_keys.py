"""`ae key generate` and `ae key rotate` (issue 20): making AE_SECRET_KEY, and moving every sealed
secret onto one key so an old key can be dropped, on SQLite (key file or AE_SECRET_KEY) and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import Receiver, ae, assert_error, ok, write_config
from cryptography.fernet import Fernet, InvalidToken

from asyncevents_cli.secretbox import PREFIX, key_path_for

EVENT = "sales.order.created"


def sealed_values(config: Path) -> list[str]:
    """Every sealed value of a SQLite store: tokens, previous tokens, header values."""
    import json

    conn = sqlite3.connect(config.parent / ".ae" / "ae.db")
    try:
        rows = conn.execute("SELECT verification_token, previous_token, custom_headers FROM subscriptions").fetchall()
    finally:
        conn.close()
    values = [v for token, previous, _ in rows for v in (token, previous) if v]
    values += [value for *_, headers in rows for _name, value in json.loads(headers or "[]")]
    assert values and all(v.startswith(PREFIX) for v in values)
    return values


def opens(key: str, values: list[str]) -> bool:
    try:
        for value in values:
            Fernet(key.encode()).decrypt(value[len(PREFIX) :].encode())
    except InvalidToken:
        return False
    return True


def deliver_one(config: Path, receiver: Receiver, env: dict[str, str] | None = None) -> None:
    """Publish and consume one order; the receiver must get it signed with the secret and its header."""
    before = len(receiver.to("/hook"))
    ok(config, "publish", EVENT, "--data", '{"n": 1}', env=env)
    ok(config, "consume", "all", "--until-empty", env=env)
    request = receiver.to("/hook")[before]
    assert request.signed_with("the-secret")
    assert request.headers["x-shop"] == "header-secret"


def subscribe_with_secrets(config: Path, receiver: Receiver, env: dict[str, str] | None = None) -> None:
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "first-secret", env=env)
    ok(config, "subscriptions", "set-headers", "1", "X-Shop: header-secret", env=env)
    # A previous token (kept for the grace period) is a sealed secret too.
    ok(config, "subscriptions", "rotate-secret", "1", "--grace", "1h", "--secret", "the-secret", env=env)


def test_generate_prints_a_new_fernet_key_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first, second = ok(config, "key", "generate").stdout, ok(config, "key", "generate").stdout
    assert first != second and first.endswith("\n")
    Fernet(first.strip().encode())  # a valid key: this raises otherwise
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.toml"]


def test_rotate_replaces_the_key_file_and_deliveries_stay_signed(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    subscribe_with_secrets(config, receiver)
    key_file = key_path_for(config.parent / ".ae" / "ae.db")
    old_key = key_file.read_text().strip()
    assert opens(old_key, sealed_values(config))
    rotated = ok(config, "key", "rotate")
    assert rotated.stdout == f"re-encrypted the secrets of 1 subscription(s) under a new key in {key_file}\n"
    [new_key] = key_file.read_text().split()
    assert new_key != old_key and key_file.stat().st_mode & 0o777 == 0o600
    assert opens(new_key, sealed_values(config)) and not opens(old_key, sealed_values(config))
    deliver_one(config, receiver)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_rotate_moves_every_secret_to_the_first_key_of_ae_secret_key(
    backend: str, tmp_path: Path, receiver: Receiver, request: pytest.FixtureRequest
) -> None:
    database = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    config = write_config(tmp_path, **({"database": database} if database else {}))
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    subscribe_with_secrets(config, receiver, env={"AE_SECRET_KEY": old})
    both = {"AE_SECRET_KEY": f"{new},{old}"}
    rotated = ok(config, "key", "rotate", env=both)
    assert rotated.stdout == "re-encrypted the secrets of 1 subscription(s) under the first key of AE_SECRET_KEY\n"
    assert "remove every key of AE_SECRET_KEY but the first" in rotated.stderr
    deliver_one(config, receiver, env={"AE_SECRET_KEY": new})  # the old key is not needed any more
    assert_error(ae(config, "consume", "all", "--until-empty", env={"AE_SECRET_KEY": old}), 1, "not the key")
    if backend == "sqlite":
        assert opens(new, sealed_values(config)) and not opens(old, sealed_values(config))


def test_a_postgresql_store_without_a_key_points_to_ae_key_generate(tmp_path: Path, postgres_url: str) -> None:
    config = write_config(tmp_path, database=postgres_url)
    for command in (["subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s"], ["key", "rotate"]):
        assert_error(ae(config, *command), 1, "AE_SECRET_KEY is not set", "`ae key generate` makes one")


def test_rotate_with_a_key_that_does_not_open_the_store_changes_nothing(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    subscribe_with_secrets(config, receiver)
    before = sealed_values(config)
    wrong = {"AE_SECRET_KEY": Fernet.generate_key().decode()}
    assert_error(ae(config, "key", "rotate", env=wrong), 1, "not the key")
    assert sealed_values(config) == before
    deliver_one(config, receiver)
