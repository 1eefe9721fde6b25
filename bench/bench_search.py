"""Benchmark: indexing throughput, peak memory and query latency of `ae search`.

    .venv/bin/python bench/bench_search.py [--rows 100000] [--runs 7] [--keep FOLDER]

Writes N realistic delivery-log rows (Magento-shaped orders, customers and
shipments, 1 in 10 failed, created over a few weeks) straight into a real
SQLite store (a real consume of 100,000 events takes far longer than this
benchmark is worth), then reports:

- index build: documents/s for a full rebuild, and the peak RSS of the process
  that does it (a child process, so the figure is the indexer's alone);
- query latency, in process, p50 over --runs (after one warm-up): the issue's
  queries, among them `data.data.increment_id: CK*` which matches half the rows;
- end to end: `ae search QUERY --json` as a subprocess, p50 over --runs, for an
  exact field, a boolean with success and a range;
- keeping up: documents/s of catching up 2% new rows, as `ae index follow` does.

The same script runs against an older checkout (PYTHONPATH=that/checkout) for a
baseline, as long as it has `asyncevents_cli.search.SearchIndex(path, store)`
with `rebuild()`, `catch_up()` and `search(text)`. Figures compare changes on
one machine in one sitting: shared machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

QUERIES = [
    "data.data.increment_id: CK*",
    "data.data.customer_email: user7@example.com",
    "data.data.increment_id: CK* AND success: true",
    "data.data.grand_total:[10 TO 50]",
    'data.data.items.name:"Companion Kit"',
    "data.data.items.sku:WS12-M-Orange",
    "event_name:sales.* AND NOT success:true",
    "data.data.placed_on:2026-04",
    '"back door"',
]
END_TO_END = [
    "data.data.customer_email: user7@example.com",
    "event_name:sales.order.created AND success:false",
    "data.data.grand_total:[10 TO 50]",
]

FIRST = ["Roni", "Veronica", "Sam", "Ana", "Jo", "Lee", "Kim", "Max", "Eva", "Tom", "Ida", "Raj"]
LAST = ["Cost", "Costello", "Smith", "Nguyen", "Garcia", "Khan", "Meyer", "Rossi", "Tanaka", "Brown"]
PRODUCTS = [
    ("WS12-M-Orange", "Radiant Tee"),
    ("MJ01-L-Red", "Beaumont Summit Kit"),
    ("24-MB01", "Joust Duffle Bag"),
    ("24-WG085", "Sprite Yoga Companion Kit"),
    ("WB04-S-Blue", "Electra Bra Top"),
    ("MH07-XL-Gray", "Hero Hoodie"),
    ("24-UG06", "Affirm Water Bottle"),
    ("WP10-28-Black", "Karmen Yoga Pant"),
    ("MS04-M-Green", "Gobi HeatTec Tee"),
    ("24-WB04", "Overnight Duffle"),
    ("WJ08-S-Purple", "Adrienne Trek Jacket"),
    ("24-MG03", "Summit Watch"),
]
CITIES = ["Calder", "Austin", "Leeds", "Lyon", "Osaka", "Porto", "Cork"]
NOTES = ["leave at the back door", "ring twice", "", "", "gift: no prices please", "call before delivery"]


def order(rng: random.Random, n: int, day: datetime) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    items = []
    for sku, name in rng.sample(PRODUCTS, rng.randint(1, 3)):
        items.append({"sku": sku, "name": name, "qty": rng.randint(1, 3), "price": round(rng.uniform(5, 90), 2)})
    total = round(sum(i["qty"] * i["price"] for i in items) + 5, 2)
    return {
        "increment_id": f"{rng.choice(['CK', 'SO'])}{n:08d}",
        "customer_email": f"user{rng.randrange(5000)}@example.com",
        "customer_name": f"{first} {last}",
        "status": rng.choice(["pending", "processing", "complete"]),
        "grand_total": total,
        "placed_on": day.strftime("%Y-%m-%d"),
        "items": items,
        "shipping_city": rng.choice(CITIES),
        "note": rng.choice(NOTES),
    }


def payload(rng: random.Random, n: int, day: datetime) -> tuple[str, dict[str, Any]]:
    kind = rng.random()
    if kind < 0.8:
        return "sales.order.created", order(rng, n, day)
    if kind < 0.9:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        return "customer.created", {
            "customer_email": f"user{rng.randrange(5000)}@example.com",
            "firstname": first,
            "lastname": last,
            "group_id": 1,
            "created_at": day.strftime("%Y-%m-%d %H:%M:%S"),
        }
    return "sales.shipment.created", {
        "increment_id": f"SH{n:08d}",
        "order_id": f"CK{rng.randrange(n + 1):08d}",
        "tracks": [{"carrier": "ups", "number": f"1Z{rng.randrange(10**9):09d}"}],
    }


def populate(db: Path, rows: int, seed: int = 7) -> None:
    """Write `rows` delivery-log rows through the store's own schema, in one transaction per 10,000."""
    from asyncevents_cli.store import open_store

    rng = random.Random(seed)
    store = open_store(db)
    start = datetime(2026, 3, 20)
    sql = (
        "INSERT INTO delivery_log (uuid, subscription_id, event_name, success, status_code, response_data,"
        " created, serialized_data, death_count, duration, message_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    )
    batch: list[tuple[Any, ...]] = []
    for n in range(rows):
        moment = start + timedelta(seconds=n * 30 + rng.randrange(30))
        event, data = payload(rng, n, moment)
        ok = rng.random() > 0.1
        batch.append(
            (
                f"{rng.getrandbits(128):032x}",
                1,
                event,
                int(ok),
                200 if ok else 503,
                "" if ok else "Service Unavailable",
                moment.strftime("%Y-%m-%d %H:%M:%S.%f"),
                json.dumps({"data": data}),
                0 if ok else 1,
                0.012,
                f"m{n}",
            )
        )
        if len(batch) == 10_000 or n == rows - 1:
            with store.transaction():
                store.backend.conn.executemany(sql, batch)
            batch = []
    store.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_build(db: str) -> None:
    """Runs in a child process: a full rebuild; prints JSON. CPU time includes worker processes."""
    from asyncevents_cli.search import SearchIndex
    from asyncevents_cli.store import open_store

    store = open_store(db)
    ix = SearchIndex(Path(db + ".index"), store)
    started, cpu = time.perf_counter(), cpu_seconds() + children_cpu_seconds()
    added = ix.rebuild()
    elapsed = time.perf_counter() - started
    result = {
        "docs": added,
        "seconds": elapsed,
        "cpu_seconds": cpu_seconds() + children_cpu_seconds() - cpu,
        "peak_rss_mb": peak_rss_mb(),
    }
    ix.close()
    store.close()
    print(json.dumps(result))


def child_follow(db: str, extra: int) -> None:
    from asyncevents_cli.search import SearchIndex
    from asyncevents_cli.store import open_store

    store = open_store(db)
    ix = SearchIndex(Path(db + ".index"), store)
    started = time.perf_counter()
    added = ix.catch_up()
    elapsed = time.perf_counter() - started
    print(json.dumps({"docs": added, "seconds": elapsed, "extra": extra}))
    ix.close()
    store.close()


def child_queries(db: str, runs: int) -> None:
    from asyncevents_cli.search import SearchIndex
    from asyncevents_cli.store import open_store

    store = open_store(db)
    ix = SearchIndex(Path(db + ".index"), store)
    out = []
    for q in QUERIES:
        hits = ix.search(q)  # warm the searcher and caches
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            hits = ix.search(q)
            times.append(time.perf_counter() - t)
        out.append({"query": q, "p50_ms": statistics.median(times) * 1000, "hits": hits.total})
    ix.close()
    store.close()
    print(json.dumps(out))


def tree_memory_kb(root: int) -> tuple[int, int]:
    """(RSS, PSS) in kB summed over `root` and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        grew = bool(more)
        tree |= more
    rss = pss = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def run_build(db: Path) -> Any:
    """The build child, with the peak of the memory of it and its workers together, sampled every 50 ms."""
    child = subprocess.Popen([sys.executable, __file__, "--child-build", str(db)], stdout=subprocess.PIPE, text=True)
    peak_rss = peak_pss = 0
    while child.poll() is None:
        rss, pss = tree_memory_kb(child.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.05)
    out = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise SystemExit(f"build failed with exit code {child.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_peak_rss_mb"] = peak_rss / 1024
    result["tree_peak_pss_mb"] = peak_pss / 1024
    return result


def run_child(*args: str) -> Any:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def end_to_end(config: Path, runs: int) -> list[dict[str, Any]]:
    out = []
    for q in END_TO_END:
        command = [sys.executable, "-m", "asyncevents_cli", "--config", str(config), "search", q, "--json"]
        subprocess.run(command, capture_output=True, check=True)  # warm the page cache
        times, cpu = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), children_cpu_seconds()
            done = subprocess.run(command, capture_output=True, check=True)
            times.append(time.perf_counter() - t)
            cpu.append(children_cpu_seconds() - c)
        out.append(
            {
                "query": q,
                "p50_ms": statistics.median(times) * 1000,
                "cpu_ms": statistics.median(cpu) * 1000,
                "hits": json.loads(done.stdout)["total"],
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", help="build in this folder and leave it there")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: reuse the rows and index already there, only time queries"
    )
    parser.add_argument("--build-only", action="store_true", help="stop after the index build")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench-search-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "ae.db"
    config = folder / "events.toml"
    if args.reuse:
        queries_and_end_to_end(db, config, args.runs)
        keeping_up(db, max(1, args.rows // 50))
        return
    for stale in folder.glob("ae.db*"):
        subprocess.run(["rm", "-rf", str(stale)], check=True)
    config.write_text(f'[events."sales.order.created"]\ndescription = "orders"\n\n[settings]\ndatabase = "{db}"\n')
    extra = max(1, args.rows // 50)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    t = time.perf_counter()
    populate(db, args.rows)
    print(
        f"wrote {args.rows:,} log rows in {time.perf_counter() - t:.1f} s ({db.stat().st_size / 1e6:.0f} MB store)",
        flush=True,
    )
    build = run_build(db)
    index_files = [p for p in (folder / "ae.db.index").rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in index_files)
    segments = len({p.name.split(".")[0] for p in index_files if p.suffix == ".pst"})
    print(
        f"index build: {build['docs']:,} docs in {build['seconds']:.1f} s = "
        f"{build['docs'] / build['seconds']:,.0f} docs/s ({build['docs'] / build['cpu_seconds']:,.0f} per CPU "
        f"second), peak RSS {build['peak_rss_mb']:.0f} MB (the build process), "
        f"{build['tree_peak_rss_mb']:.0f} MB RSS / {build['tree_peak_pss_mb']:.0f} MB PSS (with its workers, "
        f"sampled), index {size / 1e6:.0f} MB in {segments} segments",
        flush=True,
    )
    if not args.build_only:
        queries_and_end_to_end(db, config, args.runs)
        keeping_up(db, extra)
    if not args.keep:
        subprocess.run(["rm", "-rf", str(folder)], check=True)


def keeping_up(db: Path, extra: int) -> None:
    """2% more rows arrive; one catch-up (what `ae index follow` does each pass) indexes them."""
    from asyncevents_cli.store import open_store

    store = open_store(db)
    top = store.log.max_log_id()
    store.close()
    populate_more(db, extra, top)
    follow = run_child("--child-follow", str(db), str(extra))
    print(
        f"catch-up: {follow['docs']:,} new docs in {follow['seconds']:.2f} s = "
        f"{follow['docs'] / follow['seconds']:,.0f} docs/s",
        flush=True,
    )


def queries_and_end_to_end(db: Path, config: Path, runs: int) -> None:
    for q in run_child("--child-queries", str(db), str(runs)):
        print(f"query p50 {q['p50_ms']:8.1f} ms  {q['hits']:7d} hits  {q['query']}", flush=True)
    for q in end_to_end(config, runs):
        print(
            f"ae search p50 {q['p50_ms']:8.1f} ms wall, {q['cpu_ms']:6.1f} ms CPU  {q['hits']:7d} hits  {q['query']}",
            flush=True,
        )


def populate_more(db: Path, rows: int, after: int) -> None:
    from asyncevents_cli.store import open_store

    rng = random.Random(after)
    store = open_store(db)
    sql = (
        "INSERT INTO delivery_log (uuid, subscription_id, event_name, success, status_code, response_data,"
        " created, serialized_data, death_count, duration, message_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    )
    moment = datetime(2026, 4, 30)
    with store.transaction():
        for n in range(after, after + rows):
            event, data = payload(rng, n, moment)
            store.backend.conn.execute(
                sql,
                (
                    f"{rng.getrandbits(128):032x}",
                    1,
                    event,
                    1,
                    200,
                    "",
                    moment.strftime("%Y-%m-%d %H:%M:%S.%f"),
                    json.dumps({"data": data}),
                    0,
                    0.01,
                    f"m{n}",
                ),
            )
    store.close()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child-build":
        child_build(sys.argv[2])
    elif len(sys.argv) > 3 and sys.argv[1] == "--child-queries":
        child_queries(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 3 and sys.argv[1] == "--child-follow":
        child_follow(sys.argv[2], int(sys.argv[3]))
    else:
        main()
