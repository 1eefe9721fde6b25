"""Each private typer name `ae` relies on (cli/typer_hooks.py, `HOOKS`) is still there and
still works as ae uses it. When typer changes, the failing test names the hook.

`ae` keeps working without any of them (each use falls back to typer's own way,
only slower): without these tests a typer upgrade would cost start-up time silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import typer
import typer.core

from asyncevents_cli.cli.typer_hooks import HOOKS, PlainValues, is_missing_command, typer_conversion


def broken(hook: str, what: str) -> str:
    assert hook in HOOKS, f"{hook!r} is not listed in typer_hooks.HOOKS"
    return f"typer {typer.__version__} changed the private hook {hook} ({HOOKS[hook]}): {what}; see cli/typer_hooks.py"


def a_command() -> Any:
    """A typer command with one plain option of each kind ae converts itself."""
    app = typer.Typer(add_completion=False)

    @app.command()
    def run(
        name: str = typer.Option("x", "--name"),
        count: int = typer.Option(1, "--count", min=1, max=9),
        verbose: bool = typer.Option(False, "--verbose"),
    ) -> None:
        """A command."""

    return typer.main.get_command(app)


def option(name: str) -> Any:
    return next(p for p in a_command().params if p.name == name)


def test_every_hook_is_covered_here() -> None:
    covered = {
        "typer.core._TyperParameter._runtime_param",
        "typer._coercion.build_runtime_param",
        "typer.core._TyperParameter.type_descriptor",
        "typer.rich_utils imports rich.markdown and rich.traceback",
        "typer._click.exceptions.NoArgsIsHelpError",
    }
    assert set(HOOKS) == covered, "a hook was added or removed in cli/typer_hooks.py: test it here"


def test_runtime_param_is_the_conversion_typer_calls() -> None:
    hook = "typer.core._TyperParameter._runtime_param"
    param = option("count")
    assert hasattr(param, "_runtime_param"), broken(hook, "parameters have no _runtime_param")
    assert param._runtime_param is None, broken(hook, "it is set before the first value is converted")

    class Recorder:
        def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
            seen.append(value)
            return 5

    seen: list[Any] = []
    param._runtime_param = Recorder()
    converted = param.process_value(typer.Context(a_command()), "3")
    assert (seen, converted) == (["3"], 5), broken(hook, "typer no longer converts a value through it")


def test_build_runtime_param_is_typers_own_conversion() -> None:
    hook = "typer._coercion.build_runtime_param"
    try:
        from typer._coercion import build_runtime_param
    except ImportError as exc:
        pytest.fail(broken(hook, f"it cannot be imported ({exc})"))
    param = option("count")
    context = typer.Context(a_command())
    assert build_runtime_param(param.type_descriptor).coerce("3", param=param, ctx=context) == 3, broken(
        hook, "it no longer converts '3' to 3"
    )
    with pytest.raises(typer.BadParameter):
        typer_conversion(param).coerce("12", param=param, ctx=context)  # above max=9


def test_type_descriptor_gives_the_annotation_and_bounds() -> None:
    hook = "typer.core._TyperParameter.type_descriptor"
    param = option("count")
    descriptor = getattr(param, "type_descriptor", None)
    assert descriptor is not None, broken(hook, "parameters have no type_descriptor")
    info = getattr(descriptor, "parameter_info", None)
    for name, holder in [("annotation", descriptor), ("file_annotation", descriptor), ("parameter_info", descriptor)]:
        assert hasattr(holder, name), broken(hook, f"type_descriptor has no {name}")
    for name in ("parser", "clamp", "min", "max"):  # a custom parser or clamping is left to typer
        assert hasattr(info, name), broken(hook, f"type_descriptor.parameter_info has no {name}")
    assert (descriptor.annotation, info.min, info.max) == (int, 1, 9), broken(hook, "its values changed meaning")
    assert all(PlainValues.applies_to(option(name)) for name in ("name", "count", "verbose")), broken(
        hook, "plain str, int and bool options are no longer recognised"
    )


def test_rich_utils_still_imports_what_help_defers() -> None:
    hook = "typer.rich_utils imports rich.markdown and rich.traceback"
    code = "import sys, json, typer.rich_utils; print(json.dumps(sorted(m for m in sys.modules if m[:5] == 'rich.')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(done.stdout))
    assert {"rich.markdown", "rich.traceback"} <= loaded, broken(
        hook, f"it no longer imports both ({sorted(loaded & {'rich.markdown', 'rich.traceback'})}): drop the stand-ins"
    )


def test_no_args_is_help_error_is_raised_by_that_name() -> None:
    hook = "typer._click.exceptions.NoArgsIsHelpError"
    app = typer.Typer(no_args_is_help=True, add_completion=False)

    @app.command()
    def one() -> None:
        """One."""

    @app.command()
    def two() -> None:
        """Two."""

    with pytest.raises(Exception) as raised:
        typer.main.get_command(app).main([], standalone_mode=False)
    assert is_missing_command(raised.value), broken(hook, f"a bare group raises {type(raised.value).__name__}")
    assert isinstance(raised.value, typer.TyperException), broken(hook, "it is no longer a typer usage error")
