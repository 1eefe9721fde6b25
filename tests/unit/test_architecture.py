"""The layering the project keeps: only `asyncevents_cli/cli/` imports typer or rich,
and nothing imports click (typer vendors its own)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "asyncevents_cli"
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


def package_imports(package: Path, name: str) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports, wherever the import sits (a
    function's lazy import closes a cycle as surely as one at the top); imports
    under `if TYPE_CHECKING:` are left out, as they never run."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        module = path.stem
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(name + "."):
                found.add((node.module or "").split(".")[len(name.split("."))])
            elif isinstance(node, ast.Import):
                found.update(
                    a.name.split(".")[len(name.split("."))] for a in node.names if a.name.startswith(name + ".")
                )
        graph[module] = {m for m in found if (package / f"{m}.py").exists() and m != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the path of modules that closes it (depth-first search)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    return found


# The packages whose modules must not import each other in a circle.
ACYCLIC_PACKAGES = ["search"]


@pytest.mark.parametrize("package", ACYCLIC_PACKAGES)
def test_no_import_cycle_inside_the_package(package: str) -> None:
    graph = package_imports(PACKAGE / package, f"asyncevents_cli.{package}")
    assert graph, "no modules found"
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"index": {"parallel", "query"}, "parallel": {"index"}, "query": set()}) == [
        ["index", "parallel", "index"]
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
