"""Everyday use of the CLI (issue 12): what an operator hits in the first hour.

Shell completion, services beside events.toml, uuids in any case, overdue
retries, duplicate subscriptions, confirmation before destructive commands,
sentences for empty results, and time zones in `--json`.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import EVENT, ORDER, Receiver, ae, assert_error, ok, ok_json, subscribe, write_config

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    env.update(extra)
    return env


def ae_process(config: Path, *args: str, answer: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """`ae` in a child process. With `answer`, stdin is a terminal (a pty) and `answer` is typed into it."""
    command = [sys.executable, "-m", "asyncevents_cli", "--config", str(config), *args]
    if answer is None:
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=clean_env(**env)
        )
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode())
        return subprocess.run(command, stdin=follower, capture_output=True, text=True, timeout=60, env=clean_env(**env))
    finally:
        os.close(follower)
        os.close(leader)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


# -- shell completion -------------------------------------------------------------------


def test_install_completion_writes_a_script_that_completes_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    ae_script = Path(sys.executable).with_name("ae")  # the console script, as a user runs it
    done = subprocess.run(
        [str(ae_script), "--install-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(HOME=str(home)),
    )
    assert done.returncode == 0, done.stderr
    script = home / ".bash_completions" / "ae.sh"
    assert "_AE_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (home / ".bashrc").read_text()
    # What the script asks `ae` for when Tab is pressed after `ae subscriptions de`:
    asked = subprocess.run(
        [str(ae_script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(_AE_COMPLETE="complete_bash", COMP_WORDS="ae subscriptions de", COMP_CWORD="2"),
    )
    assert asked.stdout.split() == ["delete"]


# -- a service module beside events.toml ------------------------------------------------------


def test_a_service_module_beside_events_toml_is_imported_without_pythonpath(tmp_path: Path, receiver: Receiver) -> None:
    (tmp_path / "shop_service_12.py").write_text(
        "def load(order_id):\n    return {'order_id': order_id, 'sku': 'MB01'}\n"
    )
    config = write_config(tmp_path, events={EVENT: {"service": "shop_service_12:load"}})
    assert ae_process(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s").returncode == 0
    assert ae_process(config, "publish", EVENT, "--data", '{"order_id": 7}').returncode == 0
    done = ae_process(config, "consume", "all", "--until-empty", PYTHONPATH="")
    assert done.returncode == 0, done.stderr
    assert [r.json for r in receiver.to("/hook")] == [{"data": {"order_id": 7, "sku": "MB01"}}]


# -- trace: uuids in any case, overdue retries -------------------------------------------------


def test_trace_and_replay_accept_an_upper_case_uuid(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.script("/flaky", 500, 200), "--secret", "s")
    ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
    ok(config, "consume", "all", "--until-empty")
    uuid = ok_json(config, "logs")[0]["uuid"]
    traced = ok_json(config, "trace", uuid.upper())
    assert traced["uuid"] == uuid and len(traced["attempts"]) == 2
    assert uuid in ok(config, "trace", f"  {uuid.upper()} ").stdout
    assert ok_json(config, "replay", uuid.upper())["uuid"] == uuid


def test_a_retry_past_its_time_shows_as_overdue(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.script("/down", 500), "--secret", "s")
    ok(config, "publish", EVENT, "--data", "{}")
    ok(config, "consume", "trigger", "--until-empty")  # first attempt fails; nobody runs the retry consumer
    uuid = ok_json(config, "logs")[0]["uuid"]
    time.sleep(0.2)  # backoff_unit_seconds is 0.01 here: the retry is due
    status = ok_json(config, "trace", uuid)["status"]
    assert status.startswith("Retrying, overdue since ") and status.endswith("UTC (waiting for `ae consume retry`)")


def test_a_retry_not_yet_due_shows_its_time(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path, backoff_unit_seconds=3600)
    subscribe(config, receiver.script("/down", 500), "--secret", "s")
    ok(config, "publish", EVENT, "--data", "{}")
    ok(config, "consume", "trigger", "--until-empty")
    uuid = ok_json(config, "logs")[0]["uuid"]
    assert re.fullmatch(
        r"Retrying, next attempt at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", ok_json(config, "trace", uuid)["status"]
    )


# -- duplicate subscriptions --------------------------------------------------------------------


def test_a_second_subscription_of_an_event_to_the_same_url_is_refused_without_force(config: Path) -> None:
    url = "http://127.0.0.1:9/hook"
    assert subscribe(config, url, "--secret", "s") == 1
    assert_error(
        ae(config, "subscribe", EVENT, url, "--secret", "s"),
        2,
        "sales.order.created already has subscription 1 to this recipient; nothing changed",
        "--force",
    )
    ok(config, "subscriptions", "disable", "1")  # a disabled twin counts too: enable it instead
    assert_error(ae(config, "subscribe", EVENT, url, "--secret", "s"), 2, "subscription 1")
    assert len(ok_json(config, "subscriptions", "list")) == 1
    assert subscribe(config, url, "--secret", "s", event="customer.created") == 2  # another event is fine
    assert subscribe(config, url, "--secret", "s", "--force") == 3


# -- confirmation before destructive commands ----------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["subscriptions", "delete", "1"],
        ["logs", "prune", "--older-than", "0"],
        ["deadletters", "purge"],
    ],
)
def test_destructive_commands_refuse_without_yes_when_stdin_is_not_a_terminal(config: Path, command: list[str]) -> None:
    subscribe(config, "http://127.0.0.1:9/hook", "--secret", "s")
    before = ok_json(config, "subscriptions", "list")
    line = assert_error(ae(config, *command, input="y\n"), 2, "refusing without --yes", "(add --yes)")
    assert "stdin is not a terminal" in line
    assert ok_json(config, "subscriptions", "list") == before


def test_delete_asks_on_a_terminal(config: Path) -> None:
    subscribe(config, "http://127.0.0.1:9/hook", "--secret", "s")
    declined = ae_process(config, "subscriptions", "delete", "1", answer="n\n")
    assert declined.returncode == 1 and declined.stdout == ""
    assert "Delete subscription 1 (sales.order.created to http://127.0.0.1:9/hook)? [y/N]" in declined.stderr
    assert "ae: aborted" in declined.stderr
    assert len(ok_json(config, "subscriptions", "list")) == 1
    accepted = ae_process(config, "subscriptions", "delete", "1", answer="y\n")
    assert accepted.returncode == 0 and accepted.stdout == "1\tdeleted\n"
    assert ok_json(config, "subscriptions", "list") == []


def test_yes_skips_the_question(config: Path) -> None:
    subscribe(config, "http://127.0.0.1:9/hook", "--secret", "s")
    assert ok(config, "subscriptions", "delete", "1", "--yes").stdout == "1\tdeleted\n"
    assert ok(config, "deadletters", "purge", "-y").stdout == "purged 0 dead letter(s)\n"


def test_an_unknown_id_fails_before_any_question(config: Path) -> None:
    assert_error(ae(config, "subscriptions", "delete", "7"), 1, "no subscription with id 7")


# -- write commands: one shape of output, and --json --------------------------------------------


def test_enable_disable_delete_print_id_tab_what_happened(config: Path) -> None:
    subscribe(config, "http://127.0.0.1:9/a", "--secret", "s")
    assert ok(config, "subscriptions", "disable", "1").stdout == "1\tdisabled\n"
    assert ok(config, "subscriptions", "enable", "1").stdout == "1\tenabled\n"
    assert ok(config, "subscriptions", "delete", "1", "--yes").stdout == "1\tdeleted\n"


def test_subscribe_publish_and_replay_speak_json(config: Path, receiver: Receiver) -> None:
    made = ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--json")
    subscription = json.loads(made.stdout)
    assert subscription["subscription_id"] == 1 and subscription["status"] == "enabled"
    assert subscription["secret"] and subscription["secret"] not in made.stderr
    assert ISO_UTC.match(subscription["subscribed_at"])
    published = ok_json(config, "publish", EVENT, "--data", json.dumps(ORDER))
    assert published["event_name"] == EVENT and re.fullmatch(r"[0-9a-f]{32}", published["message_id"])
    batch = config.parent / "orders.jsonl"
    batch.write_text('{"n": 1}\n{"n": 2}\n')
    assert len(json.loads(ok(config, "publish", EVENT, "--batch", str(batch), "--json").stdout)["message_ids"]) == 2
    ok(config, "consume", "all", "--until-empty")
    uuid = ok_json(config, "logs")[0]["uuid"]
    replayed = ok_json(config, "replay", uuid)
    assert replayed["uuid"] == uuid and ISO_UTC.match(replayed["next_attempt_at"])


# -- empty results and time zones ----------------------------------------------------------------


@pytest.mark.parametrize(
    "command, sentence",
    [
        (["subscriptions", "list"], "No subscriptions. `ae subscribe EVENT URL` adds one.\n"),
        (["logs"], "No delivery attempts match.\n"),
        (["deadletters"], "No dead letters. (--all also lists resolved ones)\n"),
        (["tokens", "list"], "No API tokens. `ae tokens create NAME` makes one.\n"),
    ],
)
def test_an_empty_result_is_a_sentence(config: Path, command: list[str], sentence: str) -> None:
    assert ok(config, *command).stdout == sentence


def test_json_times_carry_their_time_zone(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.endpoint("/hook"), "--secret", "s")
    ok(config, "publish", EVENT, "--data", json.dumps({"created": "2026-01-01 00:00:00"}))
    ok(config, "consume", "all", "--until-empty")
    listed = ok_json(config, "subscriptions", "list")[0]
    assert ISO_UTC.match(listed["subscribed_at"]) and ISO_UTC.match(listed["modified"])
    log = ok_json(config, "logs")[0]
    assert ISO_UTC.match(log["created"])
    traced = ok_json(config, "trace", log["uuid"])
    assert all(ISO_UTC.match(traced[k]) for k in ("first_attempt", "last_attempt"))
    assert all(ISO_UTC.match(a["created"]) for a in traced["attempts"])
    from asyncevents_cli.queues.base import RETRY
    from asyncevents_cli.runtime import Runtime

    with Runtime(config) as rt:  # the queue keeps when a message was parked as epoch seconds
        rt.queue.dead_letter(b"not a retry message", "test", RETRY)
    [parked] = ok_json(config, "deadletters")
    assert ISO_UTC.match(parked["parked_at"])
    # The payload is the user's data: printed exactly as published.
    assert traced["payload"] == {"data": {"created": "2026-01-01 00:00:00"}}


def test_help_shows_examples(config: Path) -> None:
    for command in (["publish"], ["subscribe"], ["replay"], ["search"], ["trace"], ["subscriptions", "delete"]):
        assert "Example" in ok(config, *command, "--help", env={"COLUMNS": "100"}).stdout, command


def test_search_help_lists_the_fields(config: Path) -> None:
    text = ok(config, "search", "--help", env={"COLUMNS": "100"}).stdout
    for field in ("log_id", "uuid", "event_name", "success", "created", "data.<path>"):
        assert f"  {field} " in text, field


# -- ae init and the repository's events.toml ----------------------------------------------------

REPOSITORY = Path(__file__).resolve().parents[2]


def test_init_writes_a_commented_config_with_every_setting_at_its_default(tmp_path: Path) -> None:
    from asyncevents_cli.config import SETTINGS, load_config
    from asyncevents_cli.starter import render

    target = tmp_path / "project" / "events.toml"
    result = ae(target, "init")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{target}\n"
    assert target.read_text() == render()
    config = load_config(target, environ={})
    assert sorted(config.events) == ["sales.order.created"]
    assert config.settings.as_dict() == {s.name: s.default for s in SETTINGS}
    for setting in SETTINGS:  # each one is there, commented out, with its help above it
        assert f"# {setting.help}\n# {setting.name} = " in target.read_text()
    assert '# service = "' in target.read_text()
    # A second init leaves the file alone.
    target.write_text("# mine\n")
    assert_error(ae(target, "init"), 2, "already exists", "--force")
    assert target.read_text() == "# mine\n"
    assert ok(target, "init", "--force").stdout == f"{target}\n" and target.read_text() == render()


def test_init_takes_a_path(tmp_path: Path) -> None:
    from asyncevents_cli.starter import render

    done = ae_process(tmp_path / "unused.toml", "init", str(tmp_path / "elsewhere.toml"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "elsewhere.toml").read_text() == render() and not (tmp_path / "unused.toml").exists()


def test_the_repositorys_events_toml_is_what_init_writes_with_the_modules_two_events() -> None:
    from asyncevents_cli.config import SETTINGS, load_config
    from asyncevents_cli.starter import EXAMPLE_EVENTS, render

    path = REPOSITORY / "events.toml"
    assert path.read_text() == render(EXAMPLE_EVENTS), (
        "events.toml is stale: run `python -m asyncevents_cli.starter > events.toml`"
    )
    # Same settings section as `ae init` writes; only the second example event is added.
    assert render().split("[settings]")[1] == path.read_text().split("[settings]")[1]
    config = load_config(path, environ={})
    assert {name: e.description for name, e in config.events.items()} == dict(EXAMPLE_EVENTS)
    assert config.settings.as_dict() == {s.name: s.default for s in SETTINGS}
    assert set(config.sources.values()) == {"default"}


def test_ae_works_from_the_repository_root(tmp_path: Path) -> None:
    """From a fresh clone's root, `ae` finds ./events.toml (its database goes to the ignored .ae/)."""
    done = subprocess.run(
        [sys.executable, "-m", "asyncevents_cli", "events", "list", "--json"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    defined = [e["name"] for e in json.loads(done.stdout) if not e["built_in"]]
    assert defined == ["customer.created", "sales.order.created"]
    assert ".ae/" in (REPOSITORY / ".gitignore").read_text().split()


def test_the_demo_ignores_the_repositorys_events_toml(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "asyncevents_cli", "demo"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(TMPDIR=str(scratch)),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "Delivered with 1 retry" in done.stdout
    assert list(scratch.glob("ae-demo-*")) == []


# -- watching work happen -------------------------------------------------------------------------

ATTEMPT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  sales\.order\.created  sub 1  "
    r"(ok 200|failed 500)  \d+ ms  [0-9a-f-]{36}$"
)


def test_consume_verbose_prints_one_line_per_attempt(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.script("/flaky", 500, 200), "--secret", "s")
    for n in range(2):
        ok(config, "publish", EVENT, "--data", json.dumps({"n": n}))
    quiet = ok(config, "consume", "trigger", "--until-empty")
    assert quiet.stdout == "" and quiet.stderr == "handled 2 message(s)\n"  # first attempts: 500 then 200
    loud = ok(config, "consume", "retry", "--until-empty", "-v")
    lines = loud.stdout.splitlines()
    assert len(lines) == 1 and ATTEMPT_LINE.match(lines[0]), lines
    logged = ok_json(config, "logs")[0]
    assert lines[0].endswith(f"  sub 1  ok 200  {round(logged['duration'] * 1000)} ms  {logged['uuid']}")


def test_until_empty_shows_the_backlog_on_a_terminal_only(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.endpoint("/hook"), "--secret", "s")
    for n in range(3):
        ok(config, "publish", EVENT, "--data", json.dumps({"n": n}))
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "asyncevents_cli", "--config", str(config), "consume", "all", "--until-empty"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
            env=clean_env(COLUMNS="80"),
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0 and done.stdout == b""
    text = shown.decode()
    assert "consuming" in text and "3 left" in text and "handled 3 message(s)" in text
    # Not a terminal: no progress display, only the summary.
    assert ok(config, "consume", "all", "--until-empty").stderr == "handled 0 message(s)\n"


# -- ae logs: filters, --with-response, --follow --------------------------------------------------


@pytest.fixture
def history(config: Path, receiver: Receiver) -> dict[str, Any]:
    """Two subscriptions; three orders; /flaky fails each delivery's first attempt."""
    subscribe(config, receiver.endpoint("/ok"), "--secret", "s")
    subscribe(config, receiver.script("/flaky", 500, 200, 500, 200, 500, 200), "--secret", "s")
    for n in range(3):
        ok(config, "publish", EVENT, "--data", json.dumps({"n": n}))
    ok(config, "consume", "all", "--until-empty")
    return {"config": config, "all": ok_json(config, "logs")}


def test_logs_filters_combine(history: dict[str, Any]) -> None:
    config, every = history["config"], history["all"]
    assert len(every) == 9  # 3 to /ok, 3 failed + 3 delivered to /flaky

    def ids(*args: str) -> list[int]:
        return [r["log_id"] for r in ok_json(config, "logs", *args)]

    assert ids("--subscription", "2") == [r["log_id"] for r in every if r["subscription_id"] == 2]
    assert ids("--status", "failed") == [r["log_id"] for r in every if not r["success"]] == ids("--failed")
    assert ids("--status", "ok", "--subscription", "2") == [
        r["log_id"] for r in every if r["success"] and r["subscription_id"] == 2
    ]
    uuid = every[0]["uuid"]
    assert ids("--uuid", uuid.upper()) == [r["log_id"] for r in every if r["uuid"] == uuid]
    today = every[0]["created"][:10]
    assert ids("--since", today) == ids() == ids("--until", today)  # a date alone as --until includes the day
    assert ids("--until", f"{today}T00:00") == [] and ids("--since", "2999-01-01") == []
    newest = every[0]["created"]
    assert ids("--since", newest) == [r["log_id"] for r in every if r["created"] >= newest]
    assert ids("--limit", "2", "--status", "ok") == [r["log_id"] for r in every if r["success"]][:2]
    assert ok(config, "logs", "--subscription", "99").stdout == "No delivery attempts match.\n"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--status", "maybe"], "--status"),
        (["--since", "yesterday"], "--since"),
        (["--since", "2026-03-02", "--until", "2026-03-01"], "--since must be before --until"),
        (["--failed", "--status", "ok"], "contradict"),
        (["--with-response"], "--with-response goes with --json"),
    ],
)
def test_logs_bad_filters_exit_2(config: Path, args: list[str], fragment: str) -> None:
    assert_error(ae(config, "logs", *args), 2, fragment)


def test_logs_json_with_response(history: dict[str, Any]) -> None:
    config = history["config"]
    plain = ok_json(config, "logs", "--subscription", "2")
    assert all("response_data" not in r for r in plain)
    full = ok_json(config, "logs", "--subscription", "2", "--with-response")
    assert [r["log_id"] for r in full] == [r["log_id"] for r in plain]
    assert {json.loads(r["response_data"])["status"] for r in full} == {200, 500}


def test_logs_follow_prints_new_attempts_as_they_are_logged(config: Path, receiver: Receiver) -> None:
    import signal
    import threading

    subscribe(config, receiver.endpoint("/hook"), "--secret", "s")
    ok(config, "publish", EVENT, "--data", '{"n": 0}')
    ok(config, "consume", "all", "--until-empty")
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asyncevents_cli",
            "--config",
            str(config),
            "logs",
            "--follow",
            "--interval",
            "0.1",
            "--json",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follower.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not lines and time.monotonic() < deadline:  # the backlog first: the one earlier attempt
            time.sleep(0.05)
        ok(config, "publish", EVENT, "--data", '{"n": 1}')
        ok(config, "consume", "all", "--until-empty")
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=60)
        reader.join(timeout=10)
    assert follower.returncode == 0, follower.stderr.read()
    rows = [json.loads(line) for line in lines]
    assert [r["log_id"] for r in rows] == [1, 2]
    assert rows[1]["success"] is True and rows[0]["uuid"] != rows[1]["uuid"]
    assert ISO_UTC.match(rows[1]["created"])


# -- subscriptions update and ping -----------------------------------------------------------------


def test_update_changes_the_recipient_and_store_and_keeps_the_rest(config: Path, receiver: Receiver) -> None:
    subscribe(config, "http://127.0.0.1:9/old", "--secret", "s", "--header", "X-Tenant: shop-1")
    assert ok(config, "subscriptions", "update", "1", "--url", receiver.endpoint("/new")).stdout == "1\tupdated\n"
    updated = ok_json(config, "subscriptions", "update", "1", "--store", "0")
    assert updated["recipient_url"] == receiver.endpoint("/new") and updated["header_names"] == ["X-Tenant"]
    ok(config, "publish", EVENT, "--data", '{"n": 1}')
    ok(config, "consume", "all", "--until-empty")
    [request] = receiver.to("/new")
    assert request.signed_with("s") and request.headers["x-tenant"] == "shop-1"


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["1"], 2, "nothing to change"),
        (["1", "--url", "ftp://x"], 2, "recipient URL"),
        (["1", "--store", "-1"], 2, "store id"),
        (["7", "--url", "http://127.0.0.1:9/x"], 1, "no subscription with id 7"),
    ],
)
def test_update_bad_input_changes_nothing(config: Path, args: list[str], code: int, fragment: str) -> None:
    subscribe(config, "http://127.0.0.1:9/old", "--secret", "s")
    before = ok_json(config, "subscriptions", "list")
    assert_error(ae(config, "subscriptions", "update", *args), code, fragment)
    assert ok_json(config, "subscriptions", "list") == before


def test_ping_sends_one_signed_delivery_and_logs_it(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.endpoint("/hook"), "--secret", "s")
    result = ok(config, "subscriptions", "ping", "1")
    [request] = receiver.to("/hook")
    assert request.signed_with("s")
    body = request.json["data"]
    assert body["event"] == "ae.ping" and body["subscription_id"] == 1
    logged = ok_json(config, "logs", "--event", "ae.ping", "--with-response")
    assert len(logged) == 1 and logged[0]["success"] and logged[0]["status_code"] == 200
    first, second = result.stdout.splitlines()
    assert first.startswith("ok 200 in ") and first.endswith(
        f" ms from {receiver.endpoint('/hook')} (uuid {logged[0]['uuid']})"
    )
    assert json.loads(second) == {"received": len(request.body), "status": 200}
    assert ok_json(config, "status")["queues"]["trigger"] == 0  # nothing queued, nothing to retry


def test_a_failed_ping_exits_1_with_the_receivers_answer(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.script("/down", 503), "--secret", "s")
    result = ae(config, "subscriptions", "ping", "1", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["success"] is False and data["status_code"] == 503 and json.loads(data["response"])["status"] == 503
    queues = ok_json(config, "status")["queues"]
    assert queues["retry_due"] + queues["retry_delayed"] == 0
