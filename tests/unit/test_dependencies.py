"""What pyproject.toml declares: no click (typer carries its own copy, and ae never
imports click), and lower bounds that the installed, tested versions meet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DEPENDENCIES = [Requirement(text) for text in PROJECT["dependencies"]]
USER_EXTRAS = [Requirement(text) for text in PROJECT["optional-dependencies"]["eventbridge"]]


def test_click_is_not_declared() -> None:
    declared = [*PROJECT["dependencies"], *(r for extra in PROJECT["optional-dependencies"].values() for r in extra)]
    assert not [text for text in declared if Requirement(text).name == "click"]


def modules_loaded_by(argv: list[str], cwd: Path) -> set[str]:
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
        f"sys.argv = ['ae', *{argv!r}]\n"
        "from asyncevents_cli.cli import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return set(json.loads(line.removeprefix("MODULES ")))


@pytest.mark.parametrize("argv", [["--help"], ["events", "list"], ["publish", "--help"]])
def test_ae_runs_on_typers_own_click(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "events.toml").write_text('[events."a.b"]\n', encoding="utf-8")
    loaded = modules_loaded_by(argv, tmp_path)
    assert "typer._click" in loaded
    assert not [m for m in loaded if m.split(".")[0] == "click"]


@pytest.mark.parametrize("requirement", [*DEPENDENCIES, *USER_EXTRAS], ids=str)
def test_the_installed_version_is_one_the_bounds_allow(requirement: Requirement) -> None:
    """The suite runs on what pyproject allows, and every dependency has a lower bound to run on."""
    assert any(spec.operator == ">=" for spec in requirement.specifier), f"{requirement} has no lower bound"
    assert requirement.specifier.contains(version(requirement.name), prereleases=True), (
        f"{requirement.name} {version(requirement.name)} is installed, outside {requirement}"
    )
