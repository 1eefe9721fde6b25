"""What a subscription filter costs the consumer (issue 22): `python bench/engine.py --filter-cost [--repeat N]`.

One subscription on the SQLite queue, `sizes.single` events (`engine.order(n)`; at least 1,000),
drained by `ae consume all --until-empty` three ways, interleaved `repeat`
times in one run:
- `none`: no filter;
- `half`: a three-clause filter that lets half the events through
  (grand_total n % 500 + 0.5 <= 250);
- `all`: the same three clauses with the range opened, so every event is
  evaluated *and* delivered: its difference from `none` is the filter's own
  cost per delivery.
CPU is the consumer's from its first delivery to its exit (so the start-up,
and loading whoosh for the first filter, are left out), per event published
and per delivery made. Medians over the repeats.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from engine import ae_command, ae_env, ae_workspace
from harness import DEFAULT_AMQP_URL, BenchError, Child, Sink, load_average

REST = " AND data.data.increment_id:CK* AND NOT data.data.customer_email:nobody@example.com"
FILTERS: dict[str, str | None] = {
    "none": None,
    "half": "data.data.grand_total:[0 TO 250]" + REST,
    "all": "data.data.grand_total:[0 TO *]" + REST,
}


def expected_deliveries(name: str, events: int) -> int:
    if name == "half":
        return sum(1 for n in range(events) if n % 500 + 0.5 <= 250)
    return events


def one_drain(sink: Sink, name: str, events: int, timeout: float) -> dict[str, Any]:
    from engine import AePublisher

    with ae_workspace(sink, "db", DEFAULT_AMQP_URL, 1, payload_filter=FILTERS[name]) as config:
        publisher = AePublisher(config)
        try:
            publisher.publish(list(range(events)))
        finally:
            publisher.close()
        sink.reset()
        child = Child(ae_command() + ["consume", "all", "--until-empty"], env=ae_env(config))
        sink.wait_for(1, timeout, while_alive=child)
        cpu_at_first, _ = child.usage()
        exit = child.wait(timeout)
        delivered = sink.stats()["count"]
    if exit.returncode != 0 or delivered != expected_deliveries(name, events):
        raise BenchError(f"filter {name}: exit {exit.returncode}, {delivered} deliveries; {exit.stderr[-400:]}")
    cpu = exit.cpu_seconds - cpu_at_first
    return {"filter": name, "events": events, "deliveries": delivered, "cpu_seconds": cpu}


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for name in FILTERS:
        mine = [r for r in runs if r["filter"] == name]
        table[name] = {
            "deliveries": mine[0]["deliveries"],
            "us_per_event": statistics.median(r["cpu_seconds"] / r["events"] * 1e6 for r in mine),
            "us_per_delivery": statistics.median(r["cpu_seconds"] / r["deliveries"] * 1e6 for r in mine),
        }
    return table


def render(table: dict[str, dict[str, float]], events: int, repeat: int) -> str:
    base = table["none"]["us_per_event"]
    lines = [
        f"## Filter cost: 1 subscription, {events} events, SQLite queue, median of {repeat}",
        "",
        "| filter | deliveries | CPU µs / event | CPU µs / delivery | per event vs none |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in table.items():
        change = (row["us_per_event"] / base - 1) * 100
        lines.append(
            f"| {name} | {row['deliveries']:.0f} | {row['us_per_event']:.0f} | {row['us_per_delivery']:.0f} |"
            f" {change:+.1f}% |"
        )
    overhead = (table["all"]["us_per_delivery"] / table["none"]["us_per_delivery"] - 1) * 100
    lines += [
        "",
        f"Target (issue 22): a filter adds at most 10% to the CPU per delivery: `all` against `none`"
        f" {overhead:+.1f}%: {'met' if overhead <= 10 else 'missed'}.",
        f"Filters: half `{FILTERS['half']}`; all `{FILTERS['all']}`.",
    ]
    return "\n".join(lines)


def main(sizes: Any, repeat: int, out: Path | None, raw: Path | None) -> int:
    events = max(1000, sizes.single // 500 * 500)  # a multiple of 500: `half` lets exactly half through
    sink = Sink()
    runs: list[dict[str, Any]] = []
    try:
        for _ in range(repeat):
            for name in FILTERS:
                runs.append(one_drain(sink, name, events, sizes.timeout))
    except BenchError as exc:
        print(f"bench: error: {exc}")
        return 1
    finally:
        sink.close()
    text = render(summarise(runs), events, repeat)
    print(text)
    if out:
        out.write_text(text + "\n")
    if raw:
        raw.write_text(json.dumps({"load_average_at_end": load_average(), "runs": runs}, indent=2))
    return 0
