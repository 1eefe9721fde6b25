"""What the text of a setting may be, before `config` types and bounds it.

- Numbers from the environment are ASCII digits only: Python's int() and float()
  take full-width digits (`５`) and underscores (`5_0`), which no operator means.
- A path or URL with a control character (a newline pasted with a value) is
  refused rather than becoming part of a file name.
- The config file must be a regular file of at most `MAX_CONFIG_BYTES`:
  `AE_CONFIG=/dev/zero` or a FIFO would otherwise read forever.
- An `AE_*` variable that `ae` does not know is probably a typo of one it does:
  `unknown_variables` names the nearest known one (difflib).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import ConfigError

MAX_CONFIG_BYTES = 1024 * 1024  # events.toml is a page of text; a MiB is far beyond any real one
INTEGER = re.compile(r"[+-]?[0-9]+")
# inf and nan parse here so that the bounds check can say "must be a finite number"
FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: AE_* variables read outside the settings table: by the CLI, the secret box, and
#: the test suite and benchmarks (which run `ae` with them set).
OTHER_VARIABLES = frozenset({"AE_CONFIG", "AE_DEBUG", "AE_SECRET_KEY"})
HARNESS_PREFIXES = ("AE_REQUIRE_", "AE_TEST_", "AE_BENCH_")


def is_ascii_number(text: str, kind: type) -> bool:
    """`text` (stripped, lower case) spells an int or float in ASCII digits only."""
    pattern = INTEGER if kind is int else FLOAT
    return pattern.fullmatch(text) is not None


def control_character(value: str) -> str | None:
    """The first control character in `value`, escaped for a message, or None."""
    found = CONTROL.search(value)
    return None if found is None else repr(found.group())[1:-1]


def read_config_text(path: Path) -> str:
    """The config file's text: FileNotFoundError if missing, ConfigError if it is not a
    regular file, larger than MAX_CONFIG_BYTES or not UTF-8."""
    mode = path.stat().st_mode  # a stat never blocks, where opening a FIFO would
    if not stat.S_ISREG(mode):
        raise ConfigError(f"config file {path} is not a regular file")
    with path.open("rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def unknown_variables(environ: Mapping[str, str], settings: Iterable[str]) -> list[str]:
    """One warning per AE_* variable that nothing reads, naming the nearest known one."""
    known = sorted(OTHER_VARIABLES | {f"AE_{name.upper()}" for name in settings})
    warnings = []
    for name in sorted(environ):
        if not name.startswith("AE_") or name in known or name.startswith(HARNESS_PREFIXES):
            continue
        nearest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {nearest[0]}?" if nearest else f"; known: {', '.join(known)}"
        warnings.append(f"ae: warning: {name} is not an ae setting and is ignored{hint}")
    return warnings


def environ_warnings(settings: Iterable[str]) -> list[str]:
    """`unknown_variables` of this process's environment."""
    return unknown_variables(os.environ, settings)


__all__ = [
    "MAX_CONFIG_BYTES",
    "control_character",
    "environ_warnings",
    "is_ascii_number",
    "read_config_text",
    "unknown_variables",
]
