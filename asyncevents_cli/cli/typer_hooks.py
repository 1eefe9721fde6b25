"""Every use `ae` makes of typer's private internals, in one module.

typer documents no way to do these three things, and each is worth its cost
(bench/RESULTS.md has the figures). Each hook is listed in `HOOKS`, and
tests/unit/test_typer_hooks.py checks every one against the installed typer and
fails naming it when typer changes. Without a hook `ae` still works, only
slower: each use falls back to what typer does itself.

- **Plain values** (`_runtime_param`, `typer._coercion.build_runtime_param`, the
  `type_descriptor` of a parameter). Typer 0.29 converts every parameter value
  through a pydantic `TypeAdapter`, even a `None` default or a string for a
  `str` parameter. Importing pydantic and building the first adapter costs more
  CPU than the rest of `ae trace` together. A value that already has the
  parameter's type and is within its bounds comes out of that conversion
  unchanged, so `ae` hands such values back at once; anything else (a number
  typed on the command line, a path, a list, a choice) still goes through
  typer's own conversion, with its messages.
- **The help renderer without rich.markdown and rich.traceback**
  (`typer.rich_utils` imports both at its top). They serve typer's "markdown"
  markup mode and its pretty tracebacks; `ae` uses neither (rich markup,
  `pretty_exceptions_enable=False`), yet the two imports are about a third of
  `ae --help`'s CPU time. So `import_help_renderer` imports `typer.rich_utils`
  while those two modules are stand-ins whose classes import the real ones on
  first use, then removes the stand-ins: the rest of the process imports the
  real modules as usual. If typer ever needs more of them at import time, the
  stand-ins are dropped and it is imported as it is.
- **A group run without its command** raises typer's `NoArgsIsHelpError`, a
  class of its private copy of click (`typer._click`): `ae` knows it by name,
  as typer itself does.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: hook -> what `ae` uses it for. tests/unit/test_typer_hooks.py checks each one.
HOOKS: dict[str, str] = {
    "typer.core._TyperParameter._runtime_param": "plain values: the conversion typer calls for a parameter's value",
    "typer._coercion.build_runtime_param": "plain values: typer's own conversion, for values that are not plain",
    "typer.core._TyperParameter.type_descriptor": "plain values: a parameter's annotation and bounds",
    "typer.rich_utils imports rich.markdown and rich.traceback": "help: the imports `ae --help` defers",
    "typer._click.exceptions.NoArgsIsHelpError": "a group run without its command: one line, not a usage block",
}

# -- plain values ---------------------------------------------------------------------------


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
            self._typer_own = typer_conversion(self.param)
        return self._typer_own


def typer_conversion(param: Any) -> Any:
    """The conversion typer itself builds for `param` (pydantic, imported on first use)."""
    from typer._coercion import build_runtime_param

    return build_runtime_param(param.type_descriptor)


def take_plain_values(param: Any) -> None:
    """Let `param` take plain values as they are, if it can (and typer has not converted one yet)."""
    if PlainValues.applies_to(param) and param._runtime_param is None:
        param._runtime_param = PlainValues(param)


# -- the help renderer ----------------------------------------------------------------------

DEFERRED = ("rich.markdown", "rich.traceback")


class _OnFirstUse(type):
    """A stand-in class: calling it, or reading its attributes, uses the real class."""

    _module: str

    def real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls.real(), name)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.real())


def _stand_in(module: str) -> types.ModuleType:
    stand_in = types.ModuleType(module)

    def attribute(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _OnFirstUse(name, (), {"_module": module})

    stand_in.__getattr__ = attribute  # type: ignore[method-assign]
    return stand_in


def import_help_renderer() -> None:
    """Import `typer.rich_utils` (once) with `DEFERRED` standing in for the real modules."""
    if "typer.rich_utils" in sys.modules:
        return
    missing = [name for name in DEFERRED if name not in sys.modules]
    for name in missing:
        sys.modules[name] = _stand_in(name)
    try:
        importlib.import_module("typer.rich_utils")
    except Exception:  # a typer that uses them at import time: import it with the real ones
        sys.modules.pop("typer.rich_utils", None)
        for name in missing:
            sys.modules.pop(name, None)
        importlib.import_module("typer.rich_utils")
    finally:
        for name in missing:
            if (
                isinstance(sys.modules.get(name), types.ModuleType)
                and getattr(sys.modules[name], "__spec__", None) is None
            ):
                del sys.modules[name]


# -- usage errors ---------------------------------------------------------------------------


def is_missing_command(exc: BaseException) -> bool:
    """Whether a usage error is a group run without its command (its help has been shown)."""
    return type(exc).__name__ == "NoArgsIsHelpError"  # by name: typer keeps click's classes private
