"""Benchmark: start-up of `ae` against `python -c pass`, optionally beside a baseline checkout.

    .venv/bin/python bench/startup.py [--runs 15] [--logs 100000]
        [--baseline DIR] [--search-config EVENTS_TOML] [--importtime]

Times, in one sitting and interleaved run by run (so that a busy moment on a
shared machine hits every command alike):

- `python -c pass` (the interpreter alone, with this virtual environment's site);
- `ae --help`;
- `ae trace UUID` on a store of --logs attempts (built here, in a temporary folder);
- with --search-config (an events.toml whose store has a search index, e.g. the
  folder `bench/bench_search.py --keep FOLDER --build-only` leaves), `ae search
  QUERY --json` for issue 9's end-to-end queries (this checkout only: an index is
  read by the version that wrote it).

Each command runs the code in this checkout; with --baseline DIR (for example
`git archive <commit> asyncevents_cli | tar -x -C DIR`), each `ae` command runs
DIR's code too, with the same interpreter and libraries. Reported: the median
wall time and the median CPU time (user + system, which a busy machine inflates
less than wall time) over --runs after one warm-up, and each as a ratio to
`python -c pass`, which is what issue 13's targets are about.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
# Commands run from here, so that no checkout in the working folder shadows PYTHONPATH.
NEUTRAL = tempfile.gettempdir()

# Issue 9's end-to-end queries: an exact field, a boolean with success, a range.
SEARCHES = [
    "data.data.customer_email: user7@example.com",
    "event_name:sales.order.created AND success:false",
    "data.data.grand_total:[10 TO 50]",
]


def ae_script() -> str:
    script = Path(sys.executable).parent / "ae"
    if not script.exists():
        raise SystemExit(f"no `ae` beside {sys.executable}: install the project in this environment first")
    return str(script)


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=NEUTRAL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def environment(code: Path, config: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_") and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(code)  # both sides pay for the same sys.path entry
    if config is not None:
        env["AE_CONFIG"] = str(config)
    return env


def import_times(command: list[str], env: dict[str, str], top: int = 12) -> list[tuple[str, float]]:
    """The slowest top-level imports of one run (`python -X importtime`), with what they import."""
    script = (
        [sys.executable, "-X", "importtime", *command[1:]]
        if command[0] == sys.executable
        else [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; from asyncevents_cli.cli import main; sys.argv = ['ae', *sys.argv[1:]]; main()",
            *command[1:],
        ]
    )
    done = subprocess.run(script, env=env, cwd=NEUTRAL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith(" ") and not name.startswith("  ") and cumulative.strip().isdigit():
            found.append((name.strip(), int(cumulative) / 1000))
    return sorted(found, key=lambda item: -item[1])[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--logs", type=int, default=100_000, help="attempts in the store `ae trace` reads")
    parser.add_argument("--baseline", type=Path, help="a folder holding another asyncevents_cli to time beside")
    parser.add_argument("--search-config", type=Path, help="events.toml of a store with a search index")
    parser.add_argument("--importtime", action="store_true", help="also list each command's slowest imports")
    args = parser.parse_args()

    from engine import EVENT, build_trace_store

    ae = ae_script()
    sides = {"this checkout": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory(prefix="ae-startup-") as folder:
        config = Path(folder) / "events.toml"
        config.write_text(f'[events."{EVENT}"]\n')
        t = time.perf_counter()
        uuid = build_trace_store(config, args.logs)
        print(f"store of {args.logs:,} attempts built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        commands: list[tuple[str, str, list[str], dict[str, str]]] = [
            ("python -c pass", "", [sys.executable, "-c", "pass"], environment(REPO, None))
        ]
        for side, code in sides.items():
            commands.append(("ae --help", side, [ae, "--help"], environment(code, None)))
            commands.append(("ae trace UUID", side, [ae, "trace", uuid], environment(code, config)))
            if args.search_config and side == "this checkout":  # another version may not read this index
                for query in SEARCHES:
                    commands.append(
                        (
                            f"ae search '{query}' --json",
                            side,
                            [ae, "search", query, "--json"],
                            environment(code, args.search_config.resolve()),
                        )
                    )
        for _, _, command, env in commands:
            run_once(command, env)  # warm the page cache and the bytecode
        times: dict[int, list[tuple[float, float]]] = {n: [] for n in range(len(commands))}
        for _ in range(args.runs):
            for n, (_, _, command, env) in enumerate(commands):
                times[n].append(run_once(command, env))
        load = os.getloadavg()
        print(
            f"Load average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
            f"{args.runs} runs each, interleaved, after one warm-up; median of each.\n"
        )
        print("| command | code | wall ms | / python -c pass | CPU ms | / python -c pass |")
        print("|---|---|---|---|---|---|")
        base_wall = statistics.median(w for w, _ in times[0])
        base_cpu = statistics.median(c for _, c in times[0])
        for n, (name, side, _, _) in enumerate(commands):
            wall = statistics.median(w for w, _ in times[n])
            cpu = statistics.median(c for _, c in times[n])
            print(
                f"| `{name}` | {side} | {wall * 1000:,.0f} | {wall / base_wall:.1f}x | {cpu * 1000:,.0f} | "
                f"{cpu / base_cpu:.1f}x |"
            )
        if args.importtime:
            for name, side, command, env in commands[1:]:
                slowest = ", ".join(f"{module} {ms:.0f}" for module, ms in import_times(command, env))
                print(f"\nSlowest imports (ms, with what they import), `{name}`, {side}: {slowest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
