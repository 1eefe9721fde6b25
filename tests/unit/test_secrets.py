"""Secrets at rest and in listings: Fernet-sealed tokens, the key file, file modes,
secrets off the command line, and credentials redacted from recipient URLs."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from conftest import EVENT, Receiver, ae, assert_error, expected_signature, ok, ok_json, write_config
from cryptography.fernet import Fernet

from asyncevents_cli.errors import ConfigError
from asyncevents_cli.secretbox import SecretBox, SecretKeyError, is_sealed, key_path_for
from asyncevents_cli.store import open_store


def db(config: Path) -> Path:
    return config.parent / ".ae" / "ae.db"


def stored_tokens(config: Path) -> list[str]:
    conn = sqlite3.connect(db(config))
    try:
        return [r[0] for r in conn.execute("SELECT verification_token FROM subscriptions ORDER BY subscription_id")]
    finally:
        conn.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_tokens_are_sealed_at_rest_and_still_sign(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "my-very-secret")
    [token] = stored_tokens(config)
    assert is_sealed(token) and "my-very-secret" not in token
    assert b"my-very-secret" not in db(config).read_bytes()
    assert mode(db(config)) == 0o600 and mode(key_path_for(db(config))) == 0o600
    ok(config, "publish", EVENT, "--data", '{"n": 1}')
    ok(config, "consume", "all", "--until-empty")
    [request] = receiver.to("/hook")
    assert request.headers["x-magento-signature"] == expected_signature(request.body, "my-very-secret")


def test_the_key_can_come_from_the_environment(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    env = {"AE_SECRET_KEY": Fernet.generate_key().decode()}
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "k", env=env)
    assert not key_path_for(db(config)).exists()
    ok(config, "publish", EVENT, "--data", "{}", env=env)
    ok(config, "consume", "all", "--until-empty", env=env)
    assert receiver.to("/hook")[0].signed_with("k")
    # Without the key, a consumer refuses to start instead of signing wrongly.
    ok(config, "publish", EVENT, "--data", "{}")
    assert_error(ae(config, "consume", "all", "--until-empty"), 1, "AE_SECRET_KEY is not set", "is missing")
    assert len(receiver.to("/hook")) == 1


def test_a_lost_key_file_is_a_clear_error_not_a_new_key(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s")
    key_path_for(db(config)).unlink()
    assert_error(ae(config, "consume", "trigger", "--max-messages", "1"), 1, "key file", "missing")
    assert_error(ae(config, "subscribe", EVENT, "http://127.0.0.1:9/other", "--secret", "t"), 1, "missing")
    assert not key_path_for(db(config)).exists()
    # Read commands need no key.
    assert [s["subscription_id"] for s in ok_json(config, "subscriptions", "list")] == [1]


def test_plain_text_tokens_of_an_older_store_are_sealed_on_open(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "old-secret")
    conn = sqlite3.connect(db(config))  # as a store written before encryption at rest
    conn.execute("UPDATE subscriptions SET verification_token = 'old-secret'")
    conn.commit()
    conn.close()
    key_path_for(db(config)).unlink()
    ok(config, "publish", EVENT, "--data", "{}")
    assert is_sealed(stored_tokens(config)[0])
    ok(config, "consume", "all", "--until-empty")
    assert receiver.to("/hook")[0].signed_with("old-secret")


def test_secret_box_round_trip_rotation_and_wrong_key(tmp_path: Path) -> None:
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    box = SecretBox.for_store(tmp_path / "ae.db", {"AE_SECRET_KEY": first})
    sealed = box.seal("s3cret")
    assert box.open(sealed) == "s3cret" and box.open("plain") == "plain"
    rotated = SecretBox.for_store(tmp_path / "ae.db", {"AE_SECRET_KEY": f"{second},{first}"})
    assert rotated.open(sealed) == "s3cret"  # old values still open ...
    assert SecretBox.for_store(tmp_path / "ae.db", {"AE_SECRET_KEY": second}).open(rotated.seal("n")) == "n"
    with pytest.raises(SecretKeyError, match="not the key"):
        SecretBox.for_store(tmp_path / "ae.db", {"AE_SECRET_KEY": second}).open(sealed)


def test_custom_header_values_and_previous_tokens_are_sealed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s", "--header", "Authorization: Bearer xyz")
    with open_store(db(config)) as store:
        store.subscriptions.rotate_token(1, "new-secret", None)
        assert store.subscriptions.subscription(1).custom_headers == (("Authorization", "Bearer xyz"),)
        assert store.subscriptions.subscription(1).verification_token == "new-secret"
    raw = db(config).read_bytes()
    assert b"Bearer xyz" not in raw and b"new-secret" not in raw
    assert ok_json(config, "subscriptions", "show", "1")["header_names"] == ["Authorization"]


def test_secret_from_stdin_and_from_a_file(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, receiver.endpoint("/a"), "--secret", "-", input="from-stdin\n")
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("from-file\n")
    ok(config, "subscribe", EVENT, receiver.endpoint("/b"), "--secret-file", str(secret_file))
    ok(config, "publish", EVENT, "--data", "{}")
    ok(config, "consume", "all", "--until-empty")
    assert receiver.to("/a")[0].signed_with("from-stdin")
    assert receiver.to("/b")[0].signed_with("from-file")


def test_credentials_in_recipient_urls_are_redacted_in_every_listing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, "http://alice:pa55word@127.0.0.1:9/hook", "--secret", "s")
    ok(config, "publish", EVENT, "--data", "{}")
    ok(config, "consume", "trigger", "--max-messages", "1")
    uuid = ok_json(config, "logs")[0]["uuid"]
    outputs = [
        ae(config, *args)
        for args in (
            ["subscriptions", "list"],
            ["subscriptions", "list", "--json"],
            ["subscriptions", "show", "1"],
            ["subscriptions", "show", "1", "--json"],
            ["status"],
            ["status", "--json"],
            ["trace", uuid],
            ["trace", uuid, "--json"],
        )
    ]
    for result in outputs:
        assert result.exit_code == 0, result.stderr
        assert "pa55word" not in result.stdout and "alice" not in result.stdout
    assert ok_json(config, "subscriptions", "show", "1")["recipient_url"] == "http://***@127.0.0.1:9/hook"
    assert json.loads(outputs[7].stdout)["recipient_url"] == "http://***@127.0.0.1:9/hook"


def test_one_function_redacts_every_output_path(tmp_path: Path) -> None:
    """Issue 18: credentials in a recipient URL (user-info and secret query parameters)
    never show, whichever way the URL comes out: CLI tables and --json, errors, the
    delivery log, REST answers, the pages and the server's log."""
    import httpx
    from serving import start_server

    secrets = ("alice", "pa55word", "t0ken", "hunter2")
    url = "http://alice:pa55word@127.0.0.1:9/hook?token=t0ken"
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, url, "--secret", "s")
    ok(config, "publish", EVENT, "--data", "{}")
    consumed = ok(config, "consume", "trigger", "--max-messages", "1")
    uuid = ok_json(config, "logs")[0]["uuid"]
    admin = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
    texts = [consumed.stdout, consumed.stderr]
    for args in (
        ["subscriptions", "list"],
        ["subscriptions", "list", "--json"],
        ["subscriptions", "show", "1"],
        ["subscriptions", "show", "1", "--json"],
        ["status"],
        ["status", "--json"],
        ["logs", "--json"],
        ["logs", "show", uuid],
        ["trace", uuid],
        ["trace", uuid, "--json"],
        ["subscribe", EVENT, "http://bob:hunter2@exa mple/", "--secret", "s"],  # an error message
    ):
        result = ae(config, *args)
        texts += [result.stdout, result.stderr]
    server = start_server(config, tmp_path / "serve.log")
    try:
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        texts.append(api.get("/rest/V1/async_event/1").text)
        texts.append(api.get("/rest/V1/async_events").text)
        made = api.post(
            "/rest/V1/async_event",
            json={"asyncEvent": {"event_name": EVENT, "recipient_url": url + "2", "verification_token": "v"}},
        )
        assert made.status_code == 200, made.text
        texts.append(made.text)
        bad = {"event_name": EVENT, "recipient_url": "http://bob:hunter2@exa mple/", "verification_token": "v"}
        texts.append(api.post("/rest/V1/async_event", json={"asyncEvent": bad}).text)
        pages = httpx.Client(base_url=server.url, timeout=30)
        assert pages.post("/login", data={"token": admin, "next": "/subscriptions"}).status_code == 303
        for page in ("/subscriptions", f"/trace/{uuid}", "/logs", "/logs?q=hook"):
            answer = pages.get(page)
            assert answer.status_code == 200, answer.text
            texts.append(answer.text)
    finally:
        assert server.stop() == 0
    texts.append(server.log())
    assert any("***@127.0.0.1:9/hook" in text for text in texts)
    for text in texts:
        assert not any(secret in text for secret in secrets), text


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o002])
def test_everything_ae_writes_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """Issue 18: the store, its folder, the key file and the session key are 0600 files
    in 0700 folders created by ae; a folder that was there already keeps its mode."""
    from asyncevents_cli.config import load_config
    from asyncevents_cli.serve.sessions import key_path, signing_key

    (tmp_path / "shared").mkdir(mode=0o755)
    config = write_config(tmp_path, database="shared/made/by/ae/ae.db")
    saved = os.umask(umask)
    try:
        ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s")
        ok(config, "publish", EVENT, "--data", "{}")
        signing_key(load_config(config, environ={}))
    finally:
        os.umask(saved)
    store = tmp_path / "shared" / "made" / "by" / "ae" / "ae.db"
    assert mode(tmp_path / "shared") == 0o755  # the operator's folder is theirs
    for folder in (store.parent, store.parent.parent, store.parent.parent.parent):
        assert mode(folder) == 0o700, folder
    written = [p for p in store.parent.iterdir() if p.is_file()]
    assert {store, key_path_for(store), key_path(load_config(config, environ={}))} <= set(written)
    for path in written:
        assert mode(path) == 0o600, path


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_key_file_other_users_can_read_is_refused_like_ssh_does(tmp_path: Path, loose: int) -> None:
    """Issue 18: exit 2, one line saying how to fix it, and nothing written; after the
    chmod it works again."""
    from asyncevents_cli.config import load_config
    from asyncevents_cli.serve.sessions import key_path, signing_key

    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s")
    key = key_path_for(db(config))
    key.chmod(loose)
    assert_error(ae(config, "subscribe", EVENT, "http://127.0.0.1:9/b", "--secret", "s"), 2, f"chmod 600 {key}")
    assert len(ok_json(config, "subscriptions", "list")) == 1
    key.chmod(0o600)
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/b", "--secret", "s")
    loaded = load_config(config, environ={})
    signing_key(loaded)
    key_path(loaded).chmod(loose)
    with pytest.raises(ConfigError, match="open to other users") as refused:
        signing_key(loaded)
    assert refused.value.hint == f"run: chmod 600 {key_path(loaded)}"
