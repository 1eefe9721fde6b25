"""The delivery-engine benchmark keeps working: one run at a tiny size produces every
part of the report, with every delivery accounted for. Its figures are never
asserted: speed is measured in bench/, on purpose, not in tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import rabbitmqctl_works, require_amqp

REPO = Path(__file__).resolve().parents[2]
SECTIONS = [
    "## Machine",
    "## The sink",
    "## 1. End-to-end throughput and latency",
    "## 2. Raw client ceilings (no queue, no log)",
    "## 3. ae against the Celery worker",
    "## 4. A receiver that takes 50 ms per request",
    "## 5. Start-up",
    "## 6. Consumer memory",
    "## Metrics cost (`ae consume all --metrics-port`)",
    "## Targets (issue 13)",
]


@pytest.mark.amqp
def test_a_quick_run_reports_every_part(tmp_path: Path) -> None:
    require_amqp()
    if not rabbitmqctl_works():
        pytest.skip("the benchmark makes its own vhost with rabbitmqctl, which does not work here")
    pytest.importorskip("celery", reason="the benchmark's Celery peer needs the bench extra")
    report, figures = tmp_path / "report.md", tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "engine.py"), "--quick", "--out", str(report), "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text()
    assert [s for s in SECTIONS if s not in text] == []
    assert "## Failed parts" not in text

    data = json.loads(figures.read_text())
    assert data["failures"] == []
    drains = {(d["who"], d["subscriptions"]): d for d in data["drains"]}
    assert set(drains) == {(who, subs) for who in ("ae db", "ae amqp", "celery") for subs in (1, 5)}
    for (who, subs), drain in drains.items():
        assert drain["deliveries"] == drain["events"] * subs, who
    assert len(data["latencies"]) == 6
    assert all(x["signatures_ok"] for x in data["latencies"])
    assert {c["client"] for c in data["ceilings"]} == {"aiohttp", "httpx"}
    assert data["slow"]["deliveries"] >= 2
    assert set(data["startup"]) == {"python -c pass", "ae --help", "ae trace UUID"}
    assert [r["deliveries"] for r in data["rss"]] == [r["events"] for r in data["rss"]] != []
    cost = data["metrics_cost"]
    assert cost["runs"] == 2 and len(cost["without_runs"]) == len(cost["with_runs"]) == 2
    assert cost["with"] > 0 and cost["without"] > 0 and cost["ratio"] == cost["with"] / cost["without"]


@pytest.mark.amqp
@pytest.mark.postgres
def test_the_scale_out_benchmark_runs_every_cell_quickly(tmp_path: Path) -> None:
    """bench/scale.py --quick: every setup, receiver and consumer count, each delivery logged."""
    from postgres_db import require_postgres

    require_amqp()
    require_postgres()
    if not rabbitmqctl_works():
        pytest.skip("the benchmark makes its own vhost with rabbitmqctl, which does not work here")
    report, figures = tmp_path / "report.md", tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "scale.py"), "--quick", "--out", str(report), "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(figures.read_text())
    assert data["failures"] == []
    cells = {(c["setup"], c["receiver"], c["consumers"]): c for c in data["cells"]}
    expected = {(s, r, n) for s in ("pg+amqp", "pg+db") for r in ("fast", "50 ms") for n in (1, 2, 4)}
    assert set(cells) == expected | {("sqlite+db", "fast", 1)}
    assert all(c["deliveries"] == c["events"] and c["drained"] for c in data["cells"])
    text = report.read_text()
    assert "## Targets (issue 8)" in text and "## Failed cells" not in text


def test_the_lanes_benchmark_runs_every_scenario_quickly(tmp_path: Path) -> None:
    """bench/lanes.py --quick: every issue 17 scenario against real `ae consume` processes
    and its own receiver, with a row per measure. Its figures are not asserted here."""
    figures = tmp_path / "lanes.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "lanes.py"), "--quick", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(figures.read_text())
    assert [r["scenario"] for r in rows] == [
        "neighbours",
        "neighbours",
        "neighbours",
        "slow service",
        "outage",
        "outage",
        "outage",
        "overload",
        "overload",
        "rate limit",
    ]
    assert all(r["figure"] is not None for r in rows if r["measure"] != "time to deliver every event after recovery")
    assert rows[0]["figure"] > 0  # the healthy subscriber alone was measured
    assert "| scenario | measure | figure | target | met |" in done.stdout
