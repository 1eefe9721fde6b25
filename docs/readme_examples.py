"""The console examples of the README's getting-started, with their real output.

    python docs/readme_examples.py --write   # regenerate the examples in README.md
    python docs/readme_examples.py           # print them

Runs the README's session for real, in a temporary folder: two subscriptions
to local receivers, which are `ae listen` processes started as the README
starts them in a second terminal (the one called 18081 only later, so its
deliveries fail and retry, with the secret `ae subscribe` printed), two
published orders, the consumers, `ae logs`, `ae status`, `ae trace` and
`ae replay`; the `listen` example is what the receiver on 18080 printed. Each console block in README.md that follows a
`<!-- readme-example: NAME -->` marker is replaced by the commands of NAME and
what they print (stdout, then stderr), at 120 columns.

uuids, message ids, secrets, times and durations differ from run to run, so the
test (tests/docs/test_readme_examples.py) compares the README with a fresh run after
masking those; everything else (commands, columns, headers, words, row counts)
must match exactly.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from asyncevents_cli.cli.app import app

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = re.compile(r"<!-- readme-example: ([\w-]+) -->\n```console\n.*?```", re.S)
WIDTH = "120"
ORDERS_PORT, CRM_PORT = 18080, 18081  # as the README shows them
SHOWN_FOLDER = "/srv/shop"  # the session's temporary folder, as the README shows it

CONFIG = """\
[events."sales.order.created"]
description = "An order was placed"

[events."customer.created"]
description = "A customer signed up"

[settings]
# Long enough that `ae status` and `ae trace` still see the retries waiting on a loaded machine.
backoff_unit_seconds = 4
"""

FIRST = '{"increment_id": "CK00000101", "customer_email": "roni_cost@example.com"}'
SECOND = '{"increment_id": "CK00000102", "customer_email": "veronica_costello@example.com"}'


def free_port() -> int:
    """A free port with as many digits as the README's, so tables keep their widths."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if len(str(port)) == len(str(ORDERS_PORT)):
            return port


@contextmanager
def ae_listen(port: int, secret: str) -> Iterator[list[str]]:
    """`ae listen --port PORT --secret SECRET` in a child process, as the README's second terminal runs
    it; yields the list that holds what it printed once it has been stopped with Ctrl-C (SIGINT)."""
    command = [sys.executable, "-m", "asyncevents_cli", "listen", "--port", str(port), "--secret", secret]
    env = {**os.environ, "COLUMNS": WIDTH, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    ready = process.stderr.readline()
    if not ready.startswith("ae listen: "):
        process.kill()
        raise SystemExit(f"`ae listen --port {port}` did not start: {ready}{process.stderr.read()}")
    printed = [ready.rstrip("\n")]
    try:
        yield printed
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        if process.returncode != 0:
            raise SystemExit(f"`ae listen` exited {process.returncode} on Ctrl-C: {err}")
        printed += out.splitlines() + err.splitlines()


class Session:
    """Runs `ae` commands in one folder and records them as a console transcript."""

    def __init__(self, folder: Path, ports: dict[int, int]) -> None:
        self.config = folder / "events.toml"
        self.config.write_text(CONFIG)
        self.ports = ports  # real port -> the port the README shows
        self.runner = CliRunner()
        self.blocks: dict[str, list[str]] = {}
        self.uuid = ""

    def shown(self, text: str) -> str:
        text = text.replace(str(self.config.parent), SHOWN_FOLDER)
        for real, shown in self.ports.items():
            text = text.replace(f"127.0.0.1:{real}", f"127.0.0.1:{shown}")
        return text

    def run(self, block: str, command: str, *args: str, input: str | None = None, shown: str | None = None) -> Any:
        real = [a.replace("{uuid}", self.uuid) for a in args]
        for port, readme_port in self.ports.items():
            real = [a.replace(f"127.0.0.1:{readme_port}", f"127.0.0.1:{port}") for a in real]
        result = self.runner.invoke(
            app, ["--config", str(self.config), *real], input=input, env={"COLUMNS": WIDTH, "AE_CONFIG": None}
        )
        if result.exit_code != 0:
            raise SystemExit(f"`ae {' '.join(real)}` failed ({result.exit_code}): {result.stderr}")
        lines = self.blocks.setdefault(block, [])
        lines.append("$ " + (shown or command).replace("{uuid}", self.uuid))
        lines += [line.rstrip() for line in self.shown(result.stdout + result.stderr).splitlines()]
        return result


def failed_delivery(config: Path, increment_id: str) -> str:
    """The uuid of the failed delivery of one order to the CRM (subscription 2): the one the README traces."""
    from asyncevents_cli.runtime import Runtime

    with Runtime(config, environ={}) as rt:
        for row in rt.store.log.find_logs(subscription_id=2, success=False):
            if f'"{increment_id}"' in row["serialized_data"]:
                return str(row["uuid"])
    raise SystemExit(f"no failed delivery of {increment_id} to subscription 2")


def render() -> dict[str, str]:
    """Run the session; return each block's transcript."""
    orders, crm = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="ae-readme-") as folder, ae_listen(orders, "my-secret") as listened:
        s = Session(Path(folder), {orders: ORDERS_PORT, crm: CRM_PORT})
        s.run("events", "ae events list", "events", "list")
        s.run(
            "subscribe",
            "",
            "subscribe",
            "sales.order.created",
            f"http://127.0.0.1:{ORDERS_PORT}/orders",
            "--secret",
            "my-secret",
            shown=f"ae subscribe sales.order.created http://127.0.0.1:{ORDERS_PORT}/orders --secret my-secret",
        )
        crm_subscribed = s.run(
            "subscribe",
            "",
            "subscribe",
            "sales.order.created",
            f"http://127.0.0.1:{CRM_PORT}/crm",
            shown=f"ae subscribe sales.order.created http://127.0.0.1:{CRM_PORT}/crm",
        )
        crm_secret = re.search(r"secret: (\S+)", crm_subscribed.stderr)
        if crm_secret is None:
            raise SystemExit(f"`ae subscribe` printed no secret: {crm_subscribed.stderr}")
        s.run("subscribe", "ae subscriptions list", "subscriptions", "list")
        s.run(
            "publish",
            f"ae publish sales.order.created --data '{FIRST}'",
            "publish",
            "sales.order.created",
            "--data",
            FIRST,
        )
        s.run(
            "publish",
            f"echo '{SECOND}' | ae publish sales.order.created",
            "publish",
            "sales.order.created",
            input=SECOND + "\n",
        )
        s.run("consume", "ae consume trigger --until-empty", "consume", "trigger", "--until-empty")
        s.run("consume", "ae logs", "logs")
        s.run("consume", "ae status", "status")
        s.uuid = failed_delivery(s.config, "CK00000102")
        s.run("trace", "ae trace {uuid}", "trace", "{uuid}")
        with ae_listen(crm, crm_secret.group(1)):
            s.run("retry", "ae consume retry --until-empty", "consume", "retry", "--until-empty")
            s.run("retry", "ae trace {uuid}", "trace", "{uuid}")
            s.run("replay", "ae replay {uuid}", "replay", "{uuid}")
            s.run("replay", "ae consume all --until-empty", "consume", "all", "--until-empty")
            s.run("replay", "ae trace {uuid}", "trace", "{uuid}")
    s.blocks["listen"] = [f"$ ae listen --port {ORDERS_PORT} --secret my-secret", *map(s.shown, listened)]
    return {name: "\n".join(lines) + "\n" for name, lines in s.blocks.items()}


def replace_examples(readme: str, blocks: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in blocks:
            raise SystemExit(f"README.md names an example {name!r} that {Path(__file__).name} does not make")
        return f"<!-- readme-example: {name} -->\n```console\n{blocks[name]}```"

    return MARKER.sub(fill, readme)


VOLATILE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<message id>"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?"), "<time>"),
    (re.compile(r"^\d\d:\d\d:\d\d\b", re.M), "<time>"),  # `ae listen`'s clock time, at the start of its lines
    (re.compile(r"\b\d+ ms\b"), "<n> ms"),
    # the log id that ends an attempt's row (`ae logs`, `ae trace`): which of two deliveries in
    # flight together is logged first, and so gets the lower id, varies from run to run
    (re.compile(r"^(.*<n> ms.*\s)\d+[ \t]*$", re.M), r"\1<log id>"),
    (re.compile(r"(secret: )\S+"), r"\1<secret>"),
    (re.compile(r"─+"), "─"),
    (re.compile(r"[ \t]+"), " "),
]


def masked(text: str) -> str:
    """`text` without what changes from run to run: uuids, ids, secrets, times, durations, column padding,
    and the order of lines within a block (two deliveries in flight together may be logged in either order)."""
    for pattern, placeholder in VOLATILE:
        text = pattern.sub(placeholder, text)
    return "\n".join(sorted(line.strip() for line in text.splitlines()))


def readme_blocks(readme: str) -> dict[str, str]:
    return {m.group(1): m.group(0).split("```console\n", 1)[1].rsplit("```", 1)[0] for m in MARKER.finditer(readme)}


if __name__ == "__main__":
    made = render()
    if "--write" in sys.argv:
        README.write_text(replace_examples(README.read_text(encoding="utf-8"), made), encoding="utf-8")
    else:
        for name, text in made.items():
            print(f"<!-- readme-example: {name} -->\n{text}")
