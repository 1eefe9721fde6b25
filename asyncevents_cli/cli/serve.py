"""`ae serve`: the REST API and admin pages. The web framework is imported only
when the command runs, so the rest of the CLI starts as fast as before."""

from __future__ import annotations

import typer

from .context import runtime


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless told otherwise)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on (0 picks a free one)."),
    log_format: str | None = typer.Option(
        None, "--log-format", help="text, or json: one JSON object per line on stderr (default: `log_format`)."
    ),
) -> None:
    """Serve the module's REST API under /rest/V1/ and the admin pages, in the foreground.

    Logs one line per request on stderr (a JSON object with --log-format json); serves its own
    request metrics on /metrics; stops cleanly on Ctrl-C or SIGTERM.
    Create a token first with `ae tokens create NAME`."""
    from ..config import LOG_FORMATS
    from ..errors import InputError
    from ..serve import run

    rt = runtime(ctx)
    chosen = rt.config.settings.log_format if log_format is None else log_format
    if chosen not in LOG_FORMATS:
        raise InputError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {chosen!r}")
    run(rt, host, port, chosen)
