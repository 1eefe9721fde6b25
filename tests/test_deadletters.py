"""`ae deadletters`, `purge` and `requeue` (issue 7, item 10), on both queue backends:
dead letters resolved by a later success are neither listed nor counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Receiver, write_config
from test_cli import EVENT, ae, ok, ok_json


def parked(config: Path, *extra: str) -> list[dict[str, Any]]:
    return ok_json(config, "deadletters", *extra)


def test_a_dead_letter_is_resolved_when_its_replay_is_delivered(
        tmp_path: Path, receiver: Receiver, backend: dict[str, Any]) -> None:
    config = write_config(tmp_path, max_deaths=1, **backend)
    ok(config, "subscribe", EVENT, receiver.script("/hook", 500, 500, 200), "--secret", "s")
    ok(config, "publish", EVENT, "--data", '{"n": 1}')
    ok(config, "consume", "all", "--until-empty")
    [letter] = parked(config)
    assert letter["origin"] == "retry" and letter["resolved"] is False
    assert ok_json(config, "status")["queues"]["dead_letters"] == 1

    ok(config, "replay", letter["uuid"])
    ok(config, "consume", "all", "--until-empty")
    assert ok_json(config, "trace", letter["uuid"])["status"].startswith("Delivered")
    assert parked(config) == []
    assert [r["resolved"] for r in parked(config, "--all")] == [True]
    assert ok_json(config, "status")["queues"]["dead_letters"] == 0
    [row] = ok_json(config, "status")["subscriptions"]
    assert row["dead_lettered"] == 0


def test_parked_triggers_are_requeued_once_their_cause_is_fixed(
        tmp_path: Path, receiver: Receiver, backend: dict[str, Any]) -> None:
    config = write_config(tmp_path, **backend)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    ok(config, "publish", EVENT, "--data", '{"n": 1}')
    text = config.read_text()
    config.write_text(text.replace(f'[events."{EVENT}"]', '[events."renamed.event"]'))
    ok(config, "consume", "all", "--until-empty")  # the event is no longer defined: parked
    [letter] = parked(config)
    assert letter["origin"] == "trigger" and "not defined" in letter["reason"]

    config.write_text(text)
    result = ok(config, "deadletters", "requeue")
    assert "requeued 1 parked trigger(s)" in result.stderr and len(result.stdout.split()) == 1
    ok(config, "consume", "all", "--until-empty")
    assert [r.json for r in receiver.to("/hook")] == [{"data": {"n": 1}}]
    assert parked(config, "--all") == []


def test_purge_asks_first_and_honours_before(tmp_path: Path, backend: dict[str, Any]) -> None:
    config = write_config(tmp_path, **backend)
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s")
    for n in range(2):
        ok(config, "publish", EVENT, "--data", json.dumps({"n": n}))
    config.write_text(config.read_text().replace(f'[events."{EVENT}"]', '[events."renamed.event"]'))
    ok(config, "consume", "all", "--until-empty")
    assert len(parked(config)) == 2

    refused = ae(config, "deadletters", "purge", input="n\n")
    assert refused.exit_code == 1 and len(parked(config)) == 2
    assert ok(config, "deadletters", "purge", "--before", "2000-01-01", "--yes").stdout == "purged 0 dead letter(s)\n"
    assert len(parked(config)) == 2
    assert ok(config, "deadletters", "purge", "--before", "2999-01-01T00:00Z", "--yes").stdout == \
        "purged 2 dead letter(s)\n"
    assert parked(config, "--all") == []
    assert ok_json(config, "status")["queues"]["dead_letters"] == 0
