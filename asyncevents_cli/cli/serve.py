"""`ae serve`: the REST API and admin pages. The web framework is imported only
when the command runs, so the rest of the CLI starts as fast as before."""

from __future__ import annotations

import typer

from .context import runtime


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless told otherwise)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on (0 picks a free one)."),
) -> None:
    """Serve the module's REST API under /rest/V1/ and the admin pages, in the foreground.

    Logs one line per request on stderr; stops cleanly on Ctrl-C or SIGTERM.
    Create a token first with `ae tokens create NAME`."""
    from ..serve import run

    run(runtime(ctx), host, port)
