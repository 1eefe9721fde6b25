"""`ae listen`: a local receiver that shows each delivery as it arrives."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import typer

from ..errors import InputError
from ..notifiers.signing import SCHEMES, check_scheme
from .output import json_line, note, say, stdout_console


def listen(
    port: int = typer.Option(18080, "--port", min=0, max=65535, help="Port to listen on, on 127.0.0.1 (0 picks one)."),
    secret: str | None = typer.Option(
        None, "--secret", help="Check signatures with this secret; a bad one is answered 401.", show_default=False
    ),
    secret_file: Path | None = typer.Option(
        None, "--secret-file", help="Read the secret from this file (its first line).", show_default=False
    ),
    signature: str = typer.Option("magento", "--signature", help=f"The signature scheme: {' or '.join(SCHEMES)}."),
    fail: int = typer.Option(
        0, "--fail", min=0, help="Answer 500 to the first N attempts of each delivery, to watch the retries."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print each request as one JSON object per line."),
) -> None:
    """Receive webhooks locally and print one line per delivery, until Ctrl-C (exit 0).

    Each line: time (UTC), event (x-ae-event), Idempotency-Key, attempt number, whether the signature
    verifies, the status answered, and the start of the body. Answers 200; 401 when --secret is given
    and the signature does not verify; 500 to the first --fail N attempts of each delivery. Any path is
    accepted, so `ae subscribe EVENT http://127.0.0.1:18080/orders` reaches `ae listen`.
    """
    from .. import listen as listening

    check_scheme(signature)
    listener = listening.Listener(_secret(secret, secret_file), signature, fail)
    width = stdout_console().width

    def report(request: dict[str, Any]) -> None:
        say(json_line(request) if as_json else _line(request, width))

    def ready(url: str) -> None:
        checking = f"checking {signature} signatures" if listener.secret is not None else "not checking signatures"
        note(f"ae listen: {url}/ (any path), {checking}; Ctrl-C to stop")

    asyncio.run(_until_stopped(listener, port, report, ready))


async def _until_stopped(listener: Any, port: int, report: Any, ready: Any) -> None:
    from .. import listen as listening

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a stop is the normal end: exit 0, no traceback
        loop.add_signal_handler(sig, stop.set)
    await listening.serve(listener, "127.0.0.1", port, report, ready, stop)


def _secret(secret: str | None, secret_file: Path | None) -> str | None:
    if secret is not None and secret_file is not None:
        raise InputError("give --secret or --secret-file, not both")
    if secret_file is not None:
        try:
            lines = secret_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read --secret-file {secret_file}: {exc}") from exc
        secret = lines[0].strip() if lines else ""
    if secret is not None and not secret.strip():
        raise InputError("the secret must not be empty")
    return secret


#: The body is left out rather than shown in fewer columns than this.
SHORTEST_BODY = 8


def _line(request: dict[str, Any], width: int) -> str:
    """One request on one line: the clock time (UTC; --json has the date), then the body cut to what
    is left of the terminal's width (or left out when too little is)."""
    verdict = {"verified": "signature ok", "bad": "BAD SIGNATURE", "not checked": "unchecked"}[request["signature"]]
    head = (
        f"{request['time'][11:]}  {request['event'] or request['path']}  {request['idempotency_key'] or '-'}"
        f"  #{request['attempt']}  {verdict}  {request['status']}"
    )
    body = " ".join(request["body"].split())
    room = width - len(head) - 2
    if room < SHORTEST_BODY:
        return head
    return f"{head}  {body if len(body) <= room else body[: room - 1] + '…'}"
