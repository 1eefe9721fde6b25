"""Where a consumer's time goes: py-spy attached to it, summarised by function.

py-spy samples the running process from outside (no changes to `ae`, little
overhead with --nonblocking) and writes collapsed stacks, one
``frame;frame;...;frame count`` line per distinct stack. Idle threads (waiting
in select, sleeping) are left out by py-spy, so the shares are of busy time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recorder:
    """`py-spy record` on one process until it exits."""

    def __init__(self, pid: int, output: Path, rate: int = 250) -> None:
        executable = py_spy()
        if executable is None:
            raise FileNotFoundError("py-spy is not installed (pip install -e '.[bench]')")
        self.output = output
        self.proc = subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self, timeout: float = 60) -> str:
        """Wait for py-spy to write its file (it stops when the process exits); return its stderr."""
        _, errors = self.proc.communicate(timeout=timeout)
        return errors.decode("utf-8", "replace")


def label(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``module.py:function``."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{Path(match['file']).name}:{match['function']}"


@dataclass
class Summary:
    samples: int = 0
    self_time: list[tuple[str, float]] = field(default_factory=list)  # (function, share of samples)
    inclusive: list[tuple[str, float]] = field(default_factory=list)


def summarise(raw: str, top: int = 15) -> Summary:
    leaf: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [label(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        leaf[frames[-1]] += n
        for name in set(frames):
            anywhere[name] += n
    if not total:
        return Summary()
    # Frames on (nearly) every stack are the way in (main, the event loop's run): they say nothing.
    inner = [(k, v / total) for k, v in anywhere.most_common() if v < 0.9 * total]
    return Summary(total, [(k, v / total) for k, v in leaf.most_common(top)], inner[:top])


def _imports(command: list[str], env: dict[str, str] | None, top_level: bool) -> dict[str, float]:
    """ms per module: cumulative for top-level imports, or self time for every import."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command], env=env, capture_output=True, text=True)
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        own, cumulative, name = line.split("|")
        own = own.removeprefix("import time:")
        if not cumulative.strip().isdigit():
            continue
        # One space before a top-level module; nested ones are indented further and
        # already counted in their importer's cumulative time.
        if not top_level:
            found[name.strip()] = int(own) / 1000
        elif name[:1] == " " and name[1:2] != " ":
            found[name.strip()] = int(cumulative) / 1000
    return found


def import_times(
    command: list[str], env: dict[str, str] | None = None, top: int = 10, top_level: bool = True
) -> list[tuple[str, float]]:
    """The slowest imports of a Python command (`-X importtime`), leaving out what a bare
    interpreter imports anyway: top-level modules with what they import, or every module
    by its own time. `command` is what follows `python`: a script or `-m module`, then arguments."""
    bare = _imports(["-c", "pass"], env, top_level)
    found = _imports(command, env, top_level)
    return sorted(((k, v) for k, v in found.items() if k not in bare), key=lambda item: -item[1])[:top]
