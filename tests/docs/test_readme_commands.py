"""The README's two test commands: CI's runs every test, the fast one every test needing no service.

Each command is the line after its marker comment (`.ci/run` reads the CI one the same way), so
what the README shows is what runs. The fast command's `-m` must be conftest's FAST_SELECTION,
the one place that says which markers mean "needs a service".
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from conftest import FAST_SELECTION, MARKER_OF_FIXTURE, SERVICE_MARKERS

README = Path(__file__).resolve().parents[2] / "README.md"


def command_after(marker: str) -> str:
    """The first line of the code block after `<!-- MARKER ...`, as .ci/run's awk takes it."""
    lines = README.read_text(encoding="utf-8").splitlines()
    [at] = [n for n, line in enumerate(lines) if line.startswith(f"<!-- {marker}")]
    assert lines[at + 1] == "```sh", lines[at + 1]
    return lines[at + 2]


def pytest_arguments(command: str) -> list[str]:
    """The arguments after `python -m pytest` in the first `&&`-step that runs pytest."""
    [step] = [s for s in command.split("&&") if "-m pytest" in s]
    words = shlex.split(step)
    return words[words.index("pytest") + 1 :]


def test_the_fast_command_selects_every_test_that_needs_no_service() -> None:
    arguments = pytest_arguments(command_after("fast-test-command"))
    assert arguments[arguments.index("-m") + 1] == FAST_SELECTION


def test_the_ci_command_selects_every_test() -> None:
    arguments = pytest_arguments(command_after("ci-test-command"))
    assert "-m" not in arguments and "-k" not in arguments, arguments
    assert not [a for a in arguments if a.startswith("tests")], arguments  # pyproject's testpaths: all of tests/


@pytest.mark.parametrize("marker", sorted(SERVICE_MARKERS))
def test_the_readme_names_each_service_marker(marker: str) -> None:
    assert f"`{marker}`" in README.read_text(encoding="utf-8")


def test_every_fixture_marker_is_a_service_marker() -> None:
    assert set(MARKER_OF_FIXTURE.values()) <= set(SERVICE_MARKERS)
