"""The layering the project keeps: only `asyncevents_cli/cli/` imports typer or rich,
and nothing imports click (typer vendors its own)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asyncevents_cli"
SOURCES = sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_there_are_sources_to_check() -> None:
    assert len(SOURCES) > 20


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_cli_package_imports_typer_or_rich(path: Path) -> None:
    imports = imported_modules(path)
    assert "click" not in imports
    if "cli" not in path.relative_to(PACKAGE).parts:
        assert not imports & {"typer", "rich"}, f"{path.name} is core code and imports {imports & {'typer', 'rich'}}"


WEB = {"fastapi", "starlette", "uvicorn", "jinja2", "itsdangerous", "multipart", "python_multipart"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_serve_package_imports_the_web_framework(path: Path) -> None:
    if "serve" not in path.relative_to(PACKAGE).parts[:1]:
        assert not imported_modules(path) & WEB, f"{path.name} imports {imported_modules(path) & WEB}"


def test_importing_the_core_does_not_load_typer() -> None:
    # (click and rich may still load: sqlite-utils and httpx import them for their own CLIs.)
    import subprocess
    import sys

    code = (
        "import sys, asyncevents_cli.runtime, asyncevents_cli.search, asyncevents_cli.demo; "
        "print('typer' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


SQL_STATEMENT = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TEMP )?(TABLE|INDEX)"
    r"|ALTER TABLE|DROP TABLE|PRAGMA \w)\b",
    re.DOTALL,
)
SQL_HOMES = {"store", "queues"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_store_and_queues_write_sql(path: Path) -> None:
    if path.relative_to(PACKAGE).parts[0] in SQL_HOMES:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    statements = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_STATEMENT.search(node.value)
    ]
    assert not statements, f"{path.name} holds SQL: {statements[0]!r}"
