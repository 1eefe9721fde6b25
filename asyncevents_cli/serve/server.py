"""Running the app: a listening socket, uvicorn, one log line per request, clean stops."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from ..errors import AeError
from ..runtime import Runtime
from .app import create_app
from .protocol import guarded_protocol

log = logging.getLogger("ae.serve")

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(message)s", "datefmt": "%Y-%m-%dT%H:%M:%S"},
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(asctime)s %(client_addr)s "%(request_line)s" %(status_code)s',
            "datefmt": "%Y-%m-%dT%H:%M:%S",
            "use_colors": False,
        },
    },
    "handlers": {
        "plain": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["plain"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "ae.serve": {"handlers": ["plain"], "level": "INFO", "propagate": False},
    },
}


def logging_config(log_format: str) -> dict[str, Any]:
    """uvicorn's log configuration: `LOGGING`, or with `json` one JSON object per line
    (`jsonlog.JsonFormatter`) for the server's notes and its access log alike."""
    if log_format != "json":
        return LOGGING
    as_json = {"()": "asyncevents_cli.jsonlog.JsonFormatter"}
    return {**LOGGING, "formatters": {"plain": as_json, "access": as_json}}


def listen(host: str, port: int) -> socket.socket:
    """Bind before starting, so a taken port is one clear error instead of a server log."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise AeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


@contextmanager
def _stop_quietly() -> Iterator[None]:
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would end the
    process by the signal; a no-op handler underneath lets `ae serve` exit 0 instead."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig in saved:
        signal.signal(sig, lambda *_: None)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def run(runtime: Runtime, host: str, port: int, log_format: str = "text") -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM."""
    runtime.config  # noqa: B018 - a bad events.toml or database fails here, before listening
    runtime.store  # noqa: B018
    app = create_app(runtime)
    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=guarded_protocol(runtime.config.settings.serve_read_timeout_seconds),
            log_config=logging_config(log_format),
            lifespan="off",
            timeout_graceful_shutdown=5,
            server_header=False,
        )
    )
    log.info("ae serve: listening on http://%s:%s (Ctrl-C or SIGTERM to stop)", shown, bound_port)
    sys.stderr.flush()
    with _stop_quietly():
        server.run(sockets=[sock])
    log.info("ae serve: stopped")
