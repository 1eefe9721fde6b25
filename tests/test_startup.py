"""Start-up: `ae --help` lists every command without importing any command module,
and the summaries it shows are the commands' own.

The guards are about what gets imported, not about time: a timing assertion
would be flaky on a shared machine, while an import that creeps back into the
start-up path shows up in `sys.modules` every time. bench/RESULTS.md has the
times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import typer
from conftest import runner
from typer.core import TyperGroup

from asyncevents_cli.cli.app import COMMANDS, app
from asyncevents_cli.cli.lazy import summary_of

#: Libraries `ae --help` has no use for. Each one was on the start-up path once.
HEAVY = (
    "pika",
    "aiohttp",
    "httpx",
    "yarl",
    "whoosh",
    "sqlite_utils",
    "pydantic",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "cryptography",
    "asyncio",
    "rich.progress",
    "rich.json",
    "rich.markdown",
    "rich.traceback",
    "markdown_it",
    "pygments",
    "attr",
)


def modules_after(argv: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Run `ae ARGV` in a fresh interpreter and return the modules it had imported when it exited."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
        f"sys.argv = ['ae', *{argv!r}]\n"
        "from asyncevents_cli.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return set(json.loads(line.removeprefix("MODULES ")))


def test_ae_help_imports_no_command_module_and_no_heavy_library() -> None:
    loaded = modules_after(["--help"])
    assert "asyncevents_cli.cli.app" in loaded  # the probe itself works
    needed = {
        "asyncevents_cli.cli",
        "asyncevents_cli.cli.app",
        "asyncevents_cli.cli.lazy",
        "asyncevents_cli.cli.parameters",
        "asyncevents_cli.cli.typer_hooks",
        "asyncevents_cli.errors",
        "asyncevents_cli.version",  # the package root's __version__
    }
    commands = sorted(m for m in loaded if m.startswith("asyncevents_cli.") and m not in needed)
    assert commands == []
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == []


def test_the_app_registers_commands_only_through_the_table() -> None:
    """A command added with `app.command`/`app.add_typer` would be imported by every `ae` run."""
    assert (app.registered_commands, app.registered_groups) == ([], [])


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_summary_in_the_table_is_the_commands_own(name: str) -> None:
    real = COMMANDS[name].load(name)
    assert real.name == name
    assert COMMANDS[name].summary == summary_of(real), (
        f"COMMANDS[{name!r}] in cli/app.py: copy the first paragraph of the command's help"
    )


def root_help(load_everything: bool, capsys: pytest.CaptureFixture[str]) -> str:
    group: Any = typer.main.get_command(app)
    if load_everything:
        for name in COMMANDS:
            command = group.commands[name]  # the real one: a group, or a command with its function
            assert isinstance(command, TyperGroup) or command.callback is not None
    context = typer.Context(group, info_name="ae", terminal_width=100)
    returned = group.get_help(context)  # typer's rich help prints instead of returning
    return returned + capsys.readouterr().out


def test_help_from_the_table_is_the_help_of_the_loaded_commands(capsys: pytest.CaptureFixture[str]) -> None:
    lazy, loaded = root_help(False, capsys), root_help(True, capsys)
    assert lazy == loaded
    for name in COMMANDS:
        assert f" {name} " in lazy


def test_every_command_still_runs_and_shows_its_own_help() -> None:
    for name in COMMANDS:
        result = runner.invoke(app, [name, "--help"], prog_name="ae")
        assert result.exit_code == 0, result.output
        assert f"Usage: ae {name}" in " ".join(result.stdout.split())


def test_a_mistyped_command_is_still_suggested_the_right_one() -> None:
    result = runner.invoke(app, ["serach"])
    assert result.exit_code == 2
    assert "No such command 'serach'. Did you mean 'search'?" in result.stderr


# -- plain parameter values skip typer's pydantic conversion ----------------------------


def every_parameter() -> list[tuple[str, Any]]:
    from asyncevents_cli.cli.reference import walk

    found = []
    for path, command in walk(typer.main.get_command(app)):
        help_option = command.get_help_option(typer.Context(command))
        for param in [*command.params, help_option]:
            found.append((" ".join(("ae", *path, param.name)), param))
    return found


def samples(param: Any) -> list[Any]:
    """Values a parameter gets: its default, nothing, and a few of each type, in and out of bounds."""
    values = [None, param.default]
    annotation = param.type_descriptor.annotation
    if annotation is str:
        values += ["", "x y", "ünïcode", "5"]
    elif annotation in (int, float):
        values += [annotation(0), annotation(1), annotation(5), annotation(10**6), "7", "abc", -1]
    elif annotation is bool:
        values += [True, False, "true", "no"]
    return values


def outcome(runtime_param: Any, value: Any, param: Any) -> tuple[str, Any]:
    context = typer.Context(typer.main.get_command(app))
    try:
        return "value", runtime_param.coerce(value, param=param, ctx=context)
    except typer.BadParameter as exc:
        return "error", exc.format_message()


def test_plain_values_come_out_as_typer_itself_would_convert_them() -> None:
    from asyncevents_cli.cli.typer_hooks import PlainValues, typer_conversion

    covered = 0
    for name, param in every_parameter():
        if not PlainValues.applies_to(param):
            continue
        covered += 1
        typer_own = typer_conversion(param)
        for value in samples(param):
            ours, theirs = outcome(PlainValues(param), value, param), outcome(typer_own, value, param)
            assert ours == theirs and type(ours[1]) is type(theirs[1]), (name, value)
    assert covered > 40  # str, int, float and bool parameters all over the tree


def test_ae_trace_reads_the_store_with_no_engine_search_or_pydantic(tmp_path: Any) -> None:
    from asyncevents_cli.runtime import Runtime
    from asyncevents_cli.states import DeliveryState
    from asyncevents_cli.store import Attempt
    from asyncevents_cli.subscribe import subscribe

    config = tmp_path / "events.toml"
    config.write_text('[events."a.b"]\n')
    uuid = "00000000-0000-0000-0000-000000000001"
    with Runtime(config, environ={}) as rt:
        sub, _ = subscribe(rt.config, rt.store, "a.b", "http://127.0.0.1:9/hook", secret="s" * 32)
        with rt.store.transaction():
            rt.store.log_attempt(
                Attempt(uuid, sub.subscription_id, "a.b", True, 200, "ok", '{"data": {}}', 0, 0.001, "m1")
            )
            rt.store.set_delivery_state(uuid, sub.subscription_id, "a.b", DeliveryState.DELIVERED, 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")} | {"AE_CONFIG": str(config)}
    loaded = modules_after(["trace", uuid], env)
    assert "asyncevents_cli.trace" in loaded
    unneeded = sorted(
        m
        for m in loaded
        if m.split(".")[0] in ("pydantic", "whoosh", "aiohttp", "httpx", "pika", "yarl", "asyncio", "fastapi")
        or m.startswith(
            (
                "asyncevents_cli.engine",
                "asyncevents_cli.search",
                "asyncevents_cli.queues",
                "asyncevents_cli.notifiers",
                "rich.progress",
            )
        )
    )
    assert unneeded == []


# -- typer's help renderer without rich.markdown and rich.traceback ------------------------


def help_text(preload_renderer: bool) -> str:
    code = (
        "import typer.rich_utils\n" if preload_renderer else ""
    ) + "import sys\nsys.argv = ['ae', '--help']\nfrom asyncevents_cli.cli import main\nmain()\n"
    env = os.environ | {"COLUMNS": "100", "TERMINAL_WIDTH": "100"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_looks_the_same_with_the_renderer_imported_as_typer_does_it() -> None:
    ours, typers = help_text(preload_renderer=False), help_text(preload_renderer=True)
    assert "Commands" in ours and "--config" in ours
    assert ours == typers


def test_the_stand_ins_give_the_real_classes_and_leave_nothing_behind() -> None:
    code = (
        "import sys\n"
        "from asyncevents_cli.cli.typer_hooks import DEFERRED, import_help_renderer\n"
        "import_help_renderer()\n"
        "print(sorted(set(DEFERRED) & set(sys.modules)))\n"
        "import typer.rich_utils as renderer\n"
        "from rich.markdown import Markdown\n"
        "from rich.traceback import Traceback\n"
        "print(type(renderer.Markdown('*x*')) is Markdown, isinstance(Markdown('y'), renderer.Markdown))\n"
        "print(renderer.Traceback.from_exception.__func__ is Traceback.from_exception.__func__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.splitlines() == ["[]", "True True", "True"]
