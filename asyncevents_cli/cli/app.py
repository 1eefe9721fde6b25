"""The `ae` command: wiring of the command groups, and error translation.

Every expected failure (an `AeError`) becomes one line on stderr and its exit
code: 0 ok, 1 operational failure, 2 bad input or config, 3 queue backend
unreachable. Anything unexpected is one line too, unless AE_DEBUG=1 asks for
the traceback.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from ..errors import EXIT_FAILURE, AeError, reveal_causes
from ..version import __version__
from .lazy import LazyCommand, LazyCommands
from .parameters import prepare
from .typer_hooks import import_help_renderer, is_missing_command

#: Every top-level command, in the order `ae --help` lists them: name -> the module
#: under `asyncevents_cli.cli` and the attribute there (a command function or a
#: `typer.Typer` group), and its summary, the first paragraph of its help. A module
#: is imported only when its command runs, so `ae --help` and `ae trace` load only
#: what they use; help shows the summaries from here, and a test checks that they
#: match the commands' own help. Add a new command here, not with `app.command`.
COMMANDS: dict[str, LazyCommand] = {
    "subscribe": LazyCommand(
        "subscriptions", "subscribe", "Subscribe a recipient to an event; prints the new subscription id."
    ),
    "publish": LazyCommand(
        "publish", "publish", "Validate an event and put it on the trigger queue; prints the message id."
    ),
    "trace": LazyCommand("logs", "trace", "Show every attempt of one delivery, its status and its payload."),
    "replay": LazyCommand(
        "replay",
        "replay",
        "Start a delivery again (same uuid and retry limit), or every delivery a search query selects.",
    ),
    "search": LazyCommand("search", "search", "Search delivery logs and payloads with Lucene syntax; newest first."),
    "status": LazyCommand(
        "status", "status", "Show queue depths (trigger, retry due, retry delayed, dead letters) and deliveries."
    ),
    "listen": LazyCommand(
        "listen", "listen", "Receive webhooks locally and print one line per delivery, until Ctrl-C (exit 0)."
    ),
    "init": LazyCommand(
        "init", "init", "Write a commented events.toml: one example event, and every setting at its default."
    ),
    "demo": LazyCommand(
        "demo", "demo", "Run the whole pipeline locally in a temporary folder and show a retried delivery's trace."
    ),
    "serve": LazyCommand(
        "serve", "serve", "Serve the module's REST API under /rest/V1/ and the admin pages, in the foreground."
    ),
    "events": LazyCommand("events", "events_app", "Event definitions (from events.toml)."),
    "config": LazyCommand("events", "config_app", "Effective configuration."),
    "subscriptions": LazyCommand("subscriptions", "subscriptions_app", "List and manage subscriptions."),
    "notifiers": LazyCommand("notifiers", "notifiers_app", "Notifiers: how deliveries reach subscribers."),
    "consume": LazyCommand("consume", "consume_app", "Run consumers that deliver queued events."),
    "relay": LazyCommand(
        "relay",
        "relay",
        "Forward events published inside application transactions from the outbox to the queue.",
    ),
    "logs": LazyCommand("logs", "logs_app", "The delivery log: recent attempts, and pruning old ones."),
    "index": LazyCommand(
        "search",
        "index_app",
        "The local search index (`index_path`; by default `<database>.index/` beside a SQLite file).",
    ),
    "deadletters": LazyCommand("status", "deadletters_app", "Parked messages: list, purge, requeue parked triggers."),
    "tokens": LazyCommand("tokens", "tokens_app", "API tokens for `ae serve` (REST API and admin pages)."),
    "db": LazyCommand("db", "db_app", "The store's schema: its version, and migrating it."),
    "key": LazyCommand(
        "key", "key_app", "The key for secrets at rest (AE_SECRET_KEY, or the key file beside a SQLite store)."
    ),
}


class AeGroup(TyperGroup):
    """The root group: builds each command on first use (see `COMMANDS`), and turns
    exceptions into one-line messages and exit codes, in one place."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.lazy_commands = LazyCommands(self.commands, COMMANDS)
        self.commands = self.lazy_commands
        self._listing = False
        prepare(self, with_subcommands=False)  # --config; the commands' own on loading

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing:  # help lists names and summaries: nothing needs importing for that
            return self.lazy_commands.describe(cmd_name)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        import_help_renderer()
        prepare(self, with_subcommands=False)  # with the completion options, however help was reached
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Usage errors (unknown option, bad integer, missing argument) become one
        line too, instead of typer's usage block and error panel."""
        call = {"args": args, "prog_name": prog_name, "complete_var": complete_var, **extra}
        # Again here: typer adds --install-completion and --show-completion after __init__.
        prepare(self, with_subcommands=False)
        if not standalone_mode:
            return super().main(standalone_mode=False, **call)
        try:
            result = super().main(standalone_mode=False, **call)
        except typer.TyperException as exc:  # click's UsageError / BadParameter
            context = getattr(exc, "ctx", None)
            where = f" (see `{context.command_path} --help`)" if context is not None else ""
            _note(f"ae: error: {_usage_message(exc)}{where}")
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            _note("ae: aborted")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KeyboardInterrupt:
            _fail("ae: interrupted", 130)
        except Exception as exc:
            if debug_enabled():  # the whole chain, causes included, as a traceback
                reveal_causes(exc)
                raise
            _fail(*_error_line(exc))


def _error_line(exc: Exception) -> tuple[str, int]:
    """The one line (and exit code) an error is shown as without AE_DEBUG=1."""
    from ..database_errors import describe as describe_database_error
    from ..database_errors import is_driver_error

    if isinstance(exc, AeError):
        from .output import error_line

        return error_line(exc), exc.exit_code
    if is_driver_error(exc):
        return f"ae: error: {describe_database_error(exc)}", EXIT_FAILURE
    if isinstance(exc, OSError):  # a full disk or a read-only folder, e.g. under the search index
        where = f" {exc.filename}" if exc.filename else ""
        return f"ae: error: cannot write{where}: {exc.strerror or exc} (errno {exc.errno})", EXIT_FAILURE
    return f"ae: unexpected error: {exc.__class__.__name__}: {exc} (set AE_DEBUG=1 for the traceback)", EXIT_FAILURE


def _usage_message(exc: Any) -> str:
    """What a usage error says. A group run without its command (bare `ae`, `ae consume`) has
    printed its help already (rich renders it straight to the terminal): the line names what is missing."""
    if is_missing_command(exc):
        if exc.format_message():  # a plain-text help, returned rather than printed
            print(exc.format_message())
        return "a command is missing: give one of the commands listed above"
    return str(exc.format_message()) or f"{type(exc).__name__} with no message"


def _note(message: str) -> None:
    from .output import note  # here: output loads rich, which a command that succeeds may not need

    note(message)


def _fail(message: str, exit_code: int) -> NoReturn:
    _note(message)
    raise typer.Exit(exit_code) from None


def debug_enabled() -> bool:
    from ..runtime import debug_enabled as enabled

    return enabled()


app = typer.Typer(
    cls=AeGroup,
    help="Reliable asynchronous events: define, subscribe, publish, consume, trace, replay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ae {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: str | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Path to events.toml (default: $AE_CONFIG or ./events.toml).",
        show_default=False,
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    from ..config import SETTINGS_BY_NAME
    from ..config_input import environ_warnings
    from ..runtime import Runtime

    for warning in environ_warnings(SETTINGS_BY_NAME):
        _note(warning)
    runtime = Runtime(config)
    ctx.obj = runtime
    ctx.call_on_close(runtime.close)


def main() -> None:
    app()
