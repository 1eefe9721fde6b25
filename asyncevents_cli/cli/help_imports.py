"""Typer's help renderer, imported without the parts of rich that `ae` never uses.

`typer.rich_utils` imports `rich.markdown` (markdown-it, pygments) and
`rich.traceback` (rich.pretty, attrs) when it is first imported. They serve
typer's "markdown" markup mode and its pretty tracebacks; `ae` uses neither
(rich markup, `pretty_exceptions_enable=False`), yet the two imports are about
a third of `ae --help`'s CPU time (bench/RESULTS.md). So `import_help_renderer`
imports `typer.rich_utils` while those two modules are stand-ins whose classes
import the real ones on first use, then removes the stand-ins: the rest of the
process imports the real modules as usual. If typer ever needs more of them at
import time, the stand-ins are dropped and it is imported as it is.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

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
