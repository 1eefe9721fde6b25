"""The parts every benchmark run needs: child processes measured by the kernel,
the sink, a RabbitMQ vhost of the benchmark's own, and a description of the machine."""

from __future__ import annotations

import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from urllib.request import urlopen

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


class BenchError(Exception):
    """A run that did not do what it was meant to (lost deliveries, a crashed process)."""


# -- child processes ------------------------------------------------------


@dataclass(frozen=True)
class Exit:
    returncode: int
    seconds: float  # wall time from spawn to exit
    cpu_seconds: float  # user + system, the process and the children it reaped
    peak_rss_mb: float  # the largest resident set of the process or any reaped child
    stderr: str


class Child:
    """A subprocess whose CPU time and peak RSS come from wait4(), not from sampling."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - open for the child's life, closed in wait()
        self.started = time.perf_counter()
        self.started_wall = time.time()
        self.proc = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.errors
        )
        self.command = command
        self.exit: Exit | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> Exit | None:
        if self.exit is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self._reaped(status, usage)
        return self.exit

    def _reaped(self, status: int, usage: Any) -> None:
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code  # reaped here, so Popen must not wait for it again
        self.errors.seek(0)
        stderr = self.errors.read().decode("utf-8", "replace")
        self.errors.close()
        self.exit = Exit(
            code, time.perf_counter() - self.started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stderr
        )

    def usage(self) -> tuple[float, float]:
        """CPU seconds and peak RSS (MB) so far, of the process and its children (a
        Celery worker's pool): for a consumer that is still running."""
        import psutil

        cpu, peak = 0.0, 0.0
        try:
            main = psutil.Process(self.pid)
            processes = [main, *main.children(recursive=True)]
        except psutil.Error:  # exited already (and the run will say why)
            return cpu, peak
        for process in processes:
            try:
                times = process.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
                peak = max(peak, peak_rss_mb(process.pid))
            except psutil.Error:
                pass
        return cpu, peak

    def wait(self, timeout: float) -> Exit:
        """Wait for the process to exit on its own; past the timeout, stop it and fail."""
        deadline = time.perf_counter() + timeout
        while self.poll() is None:
            if time.perf_counter() > deadline:
                exit = self.stop()
                raise BenchError(
                    f"{' '.join(self.command[:4])} still running after {timeout:.0f} s; stderr: {exit.stderr[-400:]}"
                )
            time.sleep(0.01)
        assert self.exit is not None
        return self.exit

    def stop(self, grace: float = 30.0) -> Exit:
        """SIGTERM (a graceful stop for both `ae consume` and Celery), then SIGKILL after `grace`."""
        if self.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.perf_counter() + grace
            while self.poll() is None:
                if time.perf_counter() > deadline:
                    self.proc.kill()
                    deadline = float("inf")
                time.sleep(0.01)
        assert self.exit is not None
        return self.exit


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of a live process's resident set (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed_command(command: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds for a short command that must succeed."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return seconds


# -- the sink ----------------------------------------------------------------


class Sink:
    """Client side of bench/sink.py, which runs in its own process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "sink.py")], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise BenchError("the sink did not start")
        self.url = f"http://127.0.0.1:{int(line)}"

    def _get(self, path: str) -> Any:
        with urlopen(self.url + path, timeout=60) as response:
            return json.loads(response.read())

    def reset(self, record: bool = False) -> None:
        self._get("/_sink/reset?record=1" if record else "/_sink/reset")

    def stats(self) -> dict[str, Any]:
        return self._get("/_sink/stats")

    def records(self) -> list[tuple[float, str, str]]:
        return [tuple(r) for r in self._get("/_sink/records")]

    def wait_for(self, count: int, timeout: float, while_alive: Child | None = None) -> dict[str, Any]:
        """Stats once `count` requests arrived, the timeout passed, or `while_alive` exited."""
        deadline = time.perf_counter() + timeout
        while True:
            stats = self.stats()
            if stats["count"] >= count or time.perf_counter() > deadline:
                return stats
            if while_alive is not None and while_alive.poll() is not None:
                return self.stats()
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# -- RabbitMQ -------------------------------------------------------------

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def rabbitmqctl(*args: str) -> str:
    try:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"rabbitmqctl {args[0]} failed: {exc}") from None
    if done.returncode != 0:
        raise BenchError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


class Vhost:
    """A RabbitMQ vhost made for one benchmark run and deleted after it, so nothing
    the benchmark queues can reach anyone else's queues."""

    def __init__(self, base_url: str = DEFAULT_AMQP_URL) -> None:
        self.name = f"ae-bench-{uuid.uuid4().hex[:10]}"
        parts = urlsplit(base_url)
        self.url = urlunsplit((parts.scheme, parts.netloc, "/" + quote(self.name, safe=""), "", ""))
        rabbitmqctl("add_vhost", self.name)
        try:
            rabbitmqctl("set_permissions", "-p", self.name, unquote(parts.username or "guest"), ".*", ".*", ".*")
        except BenchError:
            self.close()
            raise

    def delete_queues(self, names: list[str]) -> None:
        """Start a run with these queues gone (deleting a missing queue is fine)."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            for name in names:
                channel.queue_delete(name)
        finally:
            connection.close()

    def purge_queues(self, names: list[str]) -> None:
        """Empty these queues where they exist. (A publisher that declared a queue once
        does not declare it again, so a queue it still uses must be purged, not deleted.)"""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            for name in names:
                try:
                    channel.queue_purge(name)
                except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                    channel = connection.channel()
        finally:
            connection.close()

    def server_version(self) -> str:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            version = connection._impl.server_properties.get("version", b"?")
        finally:
            connection.close()
        return version.decode() if isinstance(version, bytes) else str(version)

    def close(self) -> None:
        try:
            rabbitmqctl("delete_vhost", self.name)
        except BenchError as exc:
            print(f"bench: could not delete vhost {self.name}: {exc}", file=sys.stderr)


# -- the machine ------------------------------------------------------------


def _first_line_with(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return (done.stdout.strip() or "?") + (" (with uncommitted changes)" if dirty else "")


def load_average() -> str:
    """The machine is shared: how busy it was says how far to trust a run."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fsync_ms(samples: int = 30) -> float:
    """Median time to fsync a 4 KiB write in the temporary folder: SQLite's FULL commits
    wait for this, and other work on a shared disk can make it many times slower."""
    times = []
    with tempfile.NamedTemporaryFile() as f:
        for _ in range(samples):
            f.write(b"x" * 4096)
            f.flush()
            started = time.perf_counter()
            os.fsync(f.fileno())
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] * 1000


def describe_machine(rabbitmq_version: str) -> dict[str, str]:
    mem_kb = _first_line_with("/proc/meminfo", "MemTotal").split()[0]
    return {
        "CPU": _first_line_with("/proc/cpuinfo", "model name"),
        "cores": f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable by this process)",
        "memory": f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb.isdigit() else "?",
        "load average at start (1, 5, 15 min)": load_average(),
        "fsync of 4 KiB at start (median)": f"{fsync_ms():.2f} ms",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "SQLite": sqlite3.sqlite_version,
        "RabbitMQ": rabbitmq_version,
        "ae": f"{version('asyncevents-cli')}, commit {git_commit()}",
        "libraries": ", ".join(
            f"{name} {version(name)}" for name in ("httpx", "aiohttp", "pika", "celery", "kombu", "uvloop")
        ),
    }


def delivering_library() -> str:
    """The HTTP client `ae` delivers with, read from its runtime dependencies."""
    requirements = metadata.requires("asyncevents-cli") or []
    names = {
        r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
        for r in requirements
        if "extra ==" not in r
    }
    return "aiohttp" if "aiohttp" in names else "httpx"
