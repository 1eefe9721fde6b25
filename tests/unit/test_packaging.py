"""What the distribution declares matches what it ships: one version, the licence, typing."""

from __future__ import annotations

import tomllib
from importlib.metadata import metadata, version
from pathlib import Path

from conftest import runner

import asyncevents_cli
from asyncevents_cli.cli import app

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_written_once_and_shown_by_ae_version() -> None:
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "asyncevents_cli.__version__"}
    assert version("asyncevents-cli") == asyncevents_cli.__version__
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"ae {asyncevents_cli.__version__}\n")


def test_the_licence_file_matches_the_declared_licence() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")
    assert metadata("asyncevents-cli")["License-Expression"] == "MIT"


def test_the_package_says_it_is_typed() -> None:
    assert (Path(asyncevents_cli.__file__).parent / "py.typed").is_file()
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]
