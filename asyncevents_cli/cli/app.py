"""The `ae` command: wiring of the command groups, and error translation.

Every expected failure (an `AeError`) becomes one line on stderr and its exit
code: 0 ok, 1 operational failure, 2 bad input or config, 3 queue backend
unreachable. Anything unexpected is one line too, unless AE_DEBUG=1 asks for
the traceback.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import EXIT_FAILURE, AeError
from ..runtime import Runtime, debug_enabled
from . import consume, demo, events, logs, notifiers, publish, replay, serve, status, subscriptions, tokens
from . import search as search_cli
from .output import error_line, note


class AeGroup(TyperGroup):
    """Turns exceptions into one-line messages and exit codes, in one place."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,  # type: ignore[override]
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Usage errors (unknown option, bad integer, missing argument) become one
        line too, instead of typer's usage block and error panel."""
        call = {"args": args, "prog_name": prog_name, "complete_var": complete_var, **extra}
        if not standalone_mode:
            return super().main(standalone_mode=False, **call)
        try:
            result = super().main(standalone_mode=False, **call)
        except typer.TyperException as exc:  # click's UsageError / BadParameter
            context = getattr(exc, "ctx", None)
            where = f" (see `{context.command_path} --help`)" if context is not None else ""
            note(f"ae: error: {exc.format_message()}{where}")
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            note("ae: aborted")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except AeError as exc:
            if debug_enabled():
                raise
            note(error_line(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            note("ae: interrupted")
            raise typer.Exit(130) from None
        except sqlite3.Error as exc:
            if debug_enabled():
                raise
            note(f"ae: error: database: {exc}")
            raise typer.Exit(EXIT_FAILURE) from None
        except OSError as exc:  # a full disk or a read-only folder, e.g. under the search index
            if debug_enabled():
                raise
            where = f" {exc.filename}" if exc.filename else ""
            note(f"ae: error: cannot write{where}: {exc.strerror or exc} (errno {exc.errno})")
            raise typer.Exit(EXIT_FAILURE) from None
        except Exception as exc:
            if debug_enabled():
                raise
            note(f"ae: unexpected error: {exc.__class__.__name__}: {exc} (set AE_DEBUG=1 for the traceback)")
            raise typer.Exit(EXIT_FAILURE) from None


app = typer.Typer(
    cls=AeGroup,
    help="Reliable asynchronous events: define, subscribe, publish, consume, trace, replay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ae {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: str | None = typer.Option(
        None, "--config", "-c", help="Path to events.toml (default: $AE_CONFIG or ./events.toml).",
        show_default=False,
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    runtime = Runtime(config)
    ctx.obj = runtime
    ctx.call_on_close(runtime.close)


app.add_typer(events.events_app, name="events")
app.add_typer(events.config_app, name="config")
app.command("subscribe")(subscriptions.subscribe)
app.add_typer(subscriptions.subscriptions_app, name="subscriptions")
app.add_typer(notifiers.notifiers_app, name="notifiers")
app.command("publish")(publish.publish)
app.add_typer(consume.consume_app, name="consume")
app.add_typer(logs.logs_app, name="logs")
app.command("trace")(logs.trace)
app.command("replay")(replay.replay)
app.command("search")(search_cli.search)
app.add_typer(search_cli.index_app, name="index")
app.command("status")(status.status)
app.add_typer(status.deadletters_app, name="deadletters")
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.add_typer(tokens.tokens_app, name="tokens")


def main() -> None:
    app()
