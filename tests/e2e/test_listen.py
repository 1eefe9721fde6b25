"""`ae listen` (issue 20): a real `ae listen` process receiving real deliveries from `ae consume`.

The receiver is the installed console script in a child process; its stdout is read line by line,
as a person reads it in a second terminal."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import ok, write_config

AE = str(Path(sys.executable).with_name("ae"))
EVENT = "sales.order.created"
READY = re.compile(r"^ae listen: (http://127\.0\.0\.1:\d+)/ \(any path\)")


@dataclass
class Listening:
    process: subprocess.Popen[str]
    url: str
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def next_lines(self, count: int, timeout: float = 30) -> list[str]:
        return [self.lines.get(timeout=timeout) for _ in range(count)]

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=15)
        return code, self.process.stderr.read() if self.process.stderr else ""


@contextmanager
def ae_listen(*args: str) -> Iterator[Listening]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")} | {"COLUMNS": "120"}
    process = subprocess.Popen(
        [AE, "listen", "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        first = process.stderr.readline()
        ready = READY.match(first)
        assert ready, first + process.stderr.read()
        listening = Listening(process, ready.group(1))
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                listening.lines.put(line.rstrip("\n"))

        threading.Thread(target=pump, daemon=True).start()
        yield listening
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def deliveries(config: Path) -> None:
    ok(config, "consume", "all", "--until-empty")


def test_it_verifies_real_deliveries_and_fails_the_first_attempts_to_show_retries(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with ae_listen("--secret", "my-secret", "--fail", "2", "--json") as listening:
        ok(config, "subscribe", EVENT, listening.url + "/orders", "--secret", "my-secret")
        message = ok(config, "publish", EVENT, "--data", '{"increment_id": "CK00000101"}').stdout.strip()
        deliveries(config)
        seen = [json.loads(line) for line in listening.next_lines(3)]
        code, stderr = listening.stop()
    assert code == 0 and "Traceback" not in stderr
    assert [(r["attempt"], r["status"], r["signature"]) for r in seen] == [
        (1, 500, "verified"),
        (2, 500, "verified"),
        (3, 200, "verified"),
    ]
    assert {r["event"] for r in seen} == {EVENT} and {r["path"] for r in seen} == {"/orders"}
    assert len({r["idempotency_key"] for r in seen}) == 1 and seen[0]["idempotency_key"]
    assert json.loads(seen[0]["body"]) == {"data": {"increment_id": "CK00000101"}}
    trace = json.loads(ok(config, "trace", seen[0]["idempotency_key"], "--json").stdout)
    assert [a["status_code"] for a in trace["attempts"]] == [500, 500, 200], message


def test_a_wrong_secret_is_answered_401_and_the_line_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, max_deaths=0)
    with ae_listen("--secret", "not-the-secret") as listening:
        ok(config, "subscribe", EVENT, listening.url + "/crm", "--secret", "the-secret")
        ok(config, "publish", EVENT, "--data", '{"increment_id": "CK00000102"}')
        deliveries(config)
        [line] = listening.next_lines(1)
        code, _ = listening.stop(signal.SIGTERM)
    assert code == 0
    # One line, the body cut with an ellipsis to the 120 columns (COLUMNS) it has.
    assert re.fullmatch(
        rf'\d\d:\d\d:\d\d  {EVENT}  [0-9a-f-]{{36}}  #1  BAD SIGNATURE  401  \{{"data":\{{"increment_id":"C…',
        line,
    ), line
    assert len(line) == 120
    logged = json.loads(ok(config, "logs", "--json").stdout)
    assert [(r["success"], r["status_code"]) for r in logged] == [(False, 401)]


def test_standard_webhooks_signatures_from_a_secret_file(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    subscribed = ok(config, "subscribe", EVENT, "http://127.0.0.1:9/placeholder", "--signature", "standard-webhooks")
    secret = re.search(r"secret: (\S+)", subscribed.stderr)
    assert secret
    (tmp_path / "secret.txt").write_text(secret.group(1) + "\n")
    with ae_listen("--signature", "standard-webhooks", "--secret-file", str(tmp_path / "secret.txt"), "--json") as lis:
        ok(config, "subscriptions", "update", "1", "--url", lis.url + "/hook")
        ok(config, "publish", EVENT, "--data", "{}")
        deliveries(config)
        [seen] = [json.loads(line) for line in lis.next_lines(1)]
        forged = httpx.post(lis.url + "/hook", content=b"{}", headers={"webhook-id": "x", "webhook-timestamp": "1"})
        [refused] = [json.loads(line) for line in lis.next_lines(1)]
        assert lis.stop()[0] == 0
    assert (seen["signature"], seen["status"]) == ("verified", 200)
    assert forged.status_code == 401 and refused["signature"] == "bad"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", "a", "--secret-file", "/nonexistent"], "give --secret or --secret-file, not both"),
        (["--secret-file", "/nonexistent/secret"], "cannot read --secret-file /nonexistent/secret"),
        (["--signature", "hmac"], "unknown signature scheme 'hmac'"),
        (["--secret", " "], "the secret must not be empty"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run([AE, "listen", "--port", "0", *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("ae: error: ") and message in result.stderr and result.stderr.count("\n") == 1


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with ae_listen() as listening:
        port = listening.url.rsplit(":", 1)[1]
        result = subprocess.run([AE, "listen", "--port", port], capture_output=True, text=True, timeout=30)
        assert listening.stop()[0] == 0
    assert result.returncode == 1
    assert (
        result.stderr.startswith(f"ae: error: cannot listen on 127.0.0.1:{port}: ") and "Traceback" not in result.stderr
    )
