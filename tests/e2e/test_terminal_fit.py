"""Tables that fit a REAL terminal (issue 20): each command runs in a pseudo-terminal 80, 100 and
120 columns wide (its size set with TIOCSWINSZ, COLUMNS unset, as a person's terminal), and every
row must be one line no wider than the terminal, with no trailing spaces and no uuid cut.

The store is the pinned one of test_cli_output (pinned_store.py), plus what makes tables wide: a long recipient URL,
a long token name, a long payload.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from conftest import ok
from pinned_store import UUID_DEAD, build
from rich.cells import cell_len

AE = str(Path(sys.executable).with_name("ae"))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTHS = (80, 100, 120)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LONG_URL = "https://crm.example.com/hooks/orders/with/a/long/path/that/no/terminal/column/holds/whole"
LONG_ORDER = {"increment_id": "CK00000101", "customer_email": "veronica_costello@example.com", "note": "x " * 60}


@pytest.fixture(scope="module")
def wide_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = build(tmp_path_factory.mktemp("wide"))
    ok(config, "subscribe", "sales.order.created", "http://127.0.0.1:9/down", "--secret", "s")
    ok(config, "subscriptions", "update", "3", "--url", LONG_URL)
    ok(config, "tokens", "create", "the-crm-integration-of-the-northern-warehouse", "--events", "customer.*")
    ok(config, "tokens", "create", "admin")
    ok(config, "publish", "sales.order.created", "--data", json.dumps(LONG_ORDER))
    ok(config, "subscriptions", "disable", "3")  # nothing is delivered: logs stay as pinned, plus what follows
    ok(config, "subscriptions", "enable", "3")
    return config


def in_terminal(config: Path, args: list[str], columns: int) -> str:
    """`ae ARGS` with stdout on a pty `columns` wide; what the terminal shows, colours removed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_") and k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [AE, "--config", str(config), *args], stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    return ANSI.sub("", b"".join(chunks).decode("utf-8")).replace("\r\n", "\n")


COMMANDS = {
    "logs": ["logs"],
    "search": ["search", "success:false OR event_name:sales.*"],
    "deadletters": ["deadletters"],
    "status": ["status"],
    "subscriptions list": ["subscriptions", "list"],
    "tokens list": ["tokens", "list"],
    "trace": ["trace", UUID_DEAD],
}


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_row_is_one_line_that_fits(wide_shop: Path, name: str, columns: int) -> None:
    shown = in_terminal(wide_shop, COMMANDS[name], columns)
    lines = shown.split("\n")
    table_lines = lines[: lines.index("Payload")] if "Payload" in lines else lines  # trace's JSON is indented
    for line in lines:
        assert cell_len(line) <= columns, f"{name} at {columns}: wider than the terminal: {line!r}"
        assert line == line.rstrip(), f"{name} at {columns}: trailing spaces: {line!r}"
    for line in table_lines:
        # A wrapped row's second line starts under a later column: two spaces or more.
        assert not line.startswith("  "), f"{name} at {columns}: a row went on to a second line: {line!r}"


ROWS_WITH_UUIDS = {
    "logs": lambda data: [r["uuid"] for r in data],
    "search": lambda data: [r["uuid"] for r in data["results"]],
    "deadletters": lambda data: [r["uuid"] for r in data],
}


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("name", list(ROWS_WITH_UUIDS))
def test_one_line_per_row_each_with_its_uuid_whole(wide_shop: Path, name: str, columns: int) -> None:
    expected = ROWS_WITH_UUIDS[name](json.loads(ok(wide_shop, *COMMANDS[name], "--json").stdout))
    shown = in_terminal(wide_shop, COMMANDS[name], columns).strip("\n").split("\n")
    rows = shown[shown.index(next(line for line in shown if line.startswith("─"))) + 1 :]
    rows = [line for line in rows if line]
    assert [found.group(0) if (found := UUID.search(line)) else line for line in rows] == expected


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_long_recipient_is_shortened_not_wrapped(wide_shop: Path, columns: int) -> None:
    shown = in_terminal(wide_shop, ["subscriptions", "list"], columns).strip("\n").split("\n")
    assert len(shown) == 2 + 3
    [long_row] = [line for line in shown if line.startswith(" 3  ")]
    assert "https://crm.example.com/hooks/orders/with" in long_row and "…" in long_row
