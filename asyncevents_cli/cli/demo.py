"""`ae demo`."""

from __future__ import annotations

import typer

from ..demo import run_demo
from .logs import render_trace
from .output import say


def demo(ctx: typer.Context) -> None:
    """Run the whole pipeline locally in a temporary folder and show a retried delivery's trace."""
    result = run_demo(say)
    say("")
    say("Trace of the delivery that was retried:")
    render_trace(result)
