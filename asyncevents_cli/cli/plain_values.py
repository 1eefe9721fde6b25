"""Parameter values that need no conversion, taken as they are, without pydantic.

Typer 0.29 converts every parameter value through a pydantic `TypeAdapter`, even
a `None` default or a string for a `str` parameter. Importing pydantic and
building the first adapter costs more CPU than the rest of `ae trace` together
(bench/RESULTS.md). A value that already has the parameter's type and is within
its bounds comes out of that conversion unchanged, so `ae` hands such values
back at once; anything else (a number typed on the command line, a path, a
list, a choice) still goes through typer's own conversion, with its messages.

This leans on typer's private `_runtime_param` hook; with a typer that lacks it,
`install` does nothing and typer converts everything itself, only slower.
"""

from __future__ import annotations

from typing import Any


class PlainValues:
    """Stands in for typer's conversion of one parameter, deferring to it for anything not plain."""

    def __init__(self, param: Any) -> None:
        self.param = param
        self._typer_own: Any = None

    @staticmethod
    def applies_to(param: Any) -> bool:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or not hasattr(param, "_runtime_param"):
            return False
        info = descriptor.parameter_info
        return (
            descriptor.annotation in (str, int, float, bool)
            and descriptor.file_annotation is None
            and getattr(info, "parser", None) is None
            and getattr(info, "click_type", None) is None
            and not getattr(info, "clamp", False)
            and not param.multiple
            and param.nargs == 1
        )

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return None  # what typer returns for a missing single value, before any conversion
        if type(value) is self.param.type_descriptor.annotation and self._within_bounds(value):
            return value
        return self.typer_own().coerce(value, param=param, ctx=ctx)

    def _within_bounds(self, value: Any) -> bool:
        if isinstance(value, (str, bool)):
            return True
        info = self.param.type_descriptor.parameter_info
        return (info.min is None or value >= info.min) and (info.max is None or value <= info.max)

    def typer_own(self) -> Any:
        if self._typer_own is None:
            from typer._coercion import build_runtime_param

            self._typer_own = build_runtime_param(self.param.type_descriptor)
        return self._typer_own


def install(command: Any, with_subcommands: bool = True) -> None:
    """Take plain values as they are in `command`'s parameters (with its --help, which
    click makes on first use and then keeps), and its subcommands'."""
    import typer

    help_option = command.get_help_option(typer.Context(command))
    for param in [*getattr(command, "params", ()), *([help_option] if help_option else [])]:
        if PlainValues.applies_to(param) and param._runtime_param is None:
            param._runtime_param = PlainValues(param)
    if with_subcommands:
        for sub in getattr(command, "commands", {}).values():
            install(sub)
