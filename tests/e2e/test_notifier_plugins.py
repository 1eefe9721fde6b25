"""Notifier plugins: found through the entry-point group `asyncevents_cli.notifiers`.

The third-party notifier here is a real installed distribution as Python sees
one (a `*.dist-info` folder with `entry_points.txt` on the path), so discovery
goes through importlib.metadata exactly as after a `pip install`: once in a
fresh `ae` subprocess, and in-process with the registry started afresh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import ae, assert_error, ok, ok_json, write_config

from asyncevents_cli.config import load_config
from asyncevents_cli.errors import InputError
from asyncevents_cli.notifiers import Notifier, Notifiers, NotifyResult, find, register, registry
from asyncevents_cli.store import open_store
from asyncevents_cli.subscribe import subscribe

EVENT = "sales.order.created"

PIGEON = '''
from pathlib import Path
from asyncevents_cli.errors import InputError
from asyncevents_cli.notifiers import Notifier, NotifyResult


class PigeonNotifier(Notifier):
    """Delivers by appending the body to the file named in a "loft:PATH" recipient."""

    recipient_help = "loft:PATH"

    @classmethod
    def check_recipient(cls, recipient, config=None):
        if not recipient.startswith("loft:"):
            raise InputError(f"a pigeon recipient must look like loft:PATH, got {recipient!r}")
        return recipient

    def notify(self, subscription, body, uuid):
        with open(subscription.recipient_url[len("loft:"):], "ab") as loft:
            loft.write(uuid.encode() + b" " + body + b"\\n")
        return NotifyResult(True, None, "landed", 0.0)
'''


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A folder holding an installed distribution `ae-pigeon` 1.0 and a broken one."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "ae_pigeon.py").write_text(PIGEON)
    dist = site / "ae_pigeon-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ae-pigeon\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[asyncevents_cli.notifiers]\npigeon = ae_pigeon:PigeonNotifier\n")
    broken = site / "ae_broken-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: ae-broken\nVersion: 0.1\n")
    (broken / "entry_points.txt").write_text("[asyncevents_cli.notifiers]\nbroken = ae_no_such_module:Nothing\n")
    return site


def run_ae(config: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "asyncevents_cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_built_ins_come_from_this_distribution(config_path: Path) -> None:
    listed = ok_json(config_path, "notifiers", "list")
    own = f"asyncevents-cli {version('asyncevents-cli')}"
    assert [(n["name"], n["aliases"], n["source"]) for n in listed] == [
        ("eventbridge", ["event_bridge"], own),
        ("http", [], own),
    ]
    assert listed[1]["target"] == "asyncevents_cli.notifiers.http:HttpNotifier"


def test_an_installed_package_is_listed_by_a_fresh_ae(tmp_path: Path, plugin_path: Path) -> None:
    listed = run_ae(write_config(tmp_path), plugin_path, "notifiers", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {n["name"]: n for n in json.loads(listed.stdout)}
    assert set(by_name) == {"eventbridge", "http", "pigeon"}
    assert (by_name["pigeon"]["source"], by_name["pigeon"]["target"]) == ("ae-pigeon 1.0", "ae_pigeon:PigeonNotifier")
    assert by_name["pigeon"]["recipient"] == "loft:PATH"
    # The broken package is named on stderr, and does not stop the listing.
    assert listed.stderr.strip() == (
        "ae: warning: notifier 'broken' failed to load: ModuleNotFoundError: No module named 'ae_no_such_module'"
    )


@pytest.fixture
def installed(plugin_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin folder on sys.path, and a registry that has not looked yet."""
    monkeypatch.syspath_prepend(str(plugin_path))
    monkeypatch.setattr(registry, "_registry", registry._Registry())
    monkeypatch.delitem(sys.modules, "ae_pigeon", raising=False)


def test_an_installed_package_delivers(tmp_path: Path, installed: None) -> None:
    config = write_config(tmp_path)
    assert_error(
        ae(config, "subscribe", EVENT, "/tmp/loft", "--notifier", "pigeon"),
        2,
        "a pigeon recipient must look like loft:PATH, got '/tmp/loft'",
    )
    loft = tmp_path / "loft.txt"
    ok(config, "subscribe", EVENT, f"loft:{loft}", "--notifier", "pigeon")
    ok(config, "publish", EVENT, "--data", '{"increment_id": "CK1"}')
    ok(config, "consume", "all", "--until-empty")
    uuid, body = loft.read_text().splitlines()[0].split(" ", 1)
    assert json.loads(body) == {"data": {"increment_id": "CK1"}}
    trace = ok_json(config, "trace", uuid)
    assert (trace["status"], trace["attempts"][0]["response_data"]) == ("Delivered", "landed")

    assert_error(
        ae(config, "subscribe", EVENT, "x", "--notifier", "broken"),
        2,
        "notifier 'broken' is installed but failed to load: ModuleNotFoundError",
    )


def test_an_unknown_notifier_is_refused_and_nothing_is_written(config_path: Path) -> None:
    assert_error(
        ae(config_path, "subscribe", EVENT, "http://127.0.0.1:9/h", "--notifier", "carrier-pigeon"),
        2,
        "unknown notifier 'carrier-pigeon'; available: eventbridge, http",
    )
    assert ok_json(config_path, "subscriptions", "list") == []


class MemoNotifier(Notifier):
    delivered: list[bytes] = []

    def notify(self, subscription, body, uuid):  # type: ignore[no-untyped-def]
        self.delivered.append(body)
        return NotifyResult(True, None, "", 0.0)


def test_register_from_code_still_works(tmp_path: Path) -> None:
    register("memo-test", MemoNotifier)
    plugin = find("memo-test")
    assert (plugin.source, plugin.target) == ("register()", f"{__name__}:MemoNotifier")
    with pytest.raises(InputError, match="must not be empty"):  # the base class's recipient check
        plugin.check_recipient(" ")
    config = load_config(write_config(tmp_path), environ={})
    with open_store(tmp_path / "ae.db") as store:
        subscription, secret = subscribe(config, store, EVENT, "anything", notifier="memo-test")
    assert subscription.notifier == "memo-test" and secret is None  # it does not sign: no secret to show
    notifiers = Notifiers(config)
    notifier = notifiers.for_subscription(subscription)
    assert isinstance(notifier, MemoNotifier)
    assert notifier.notify(subscription, b"{}", "u").success and MemoNotifier.delivered == [b"{}"]
