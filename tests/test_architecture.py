"""The layering the project keeps (docs/architecture.md draws it): only `asyncevents_cli/cli/`
imports typer or rich, nothing imports click (typer vendors its own), only `serve/` imports
the web framework, SQL lives in store/ and queues/, imports run down the layers, no module
imports another in a circle, and importing a module changes nothing outside it."""

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


LAYERS_BOTTOM_UP: list[tuple[str, list[str]]] = [
    (
        "foundations",
        [
            "backoff",
            "config",
            "config_input",
            "database_errors",
            "envelopes",
            "errors",
            "event_definitions",
            "jsonlog",
            "messages",
            "netguard",
            "operator_events",
            "pacing",
            "private_files",
            "redaction",
            "secretbox",
            "settings",
            "states",
            "strict_json",
            "version",
        ],
    ),
    ("backends", ["metrics", "notifiers", "queues", "search", "store"]),
    ("engine", ["engine"]),
    (
        "operations",
        [
            "__init__",
            "client",
            "demo",
            "health",
            "keys",
            "listen",
            "metrics.endpoint",
            "metrics.scrape",
            "moments",
            "ping",
            "publishing",
            "receiver",
            "relay",
            "replay",
            "runtime",
            "search_replay",
            "starter",
            "status",
            "subscribe",
            "tokens",
            "trace",
        ],
    ),
    ("web", ["serve"]),
    ("command line", ["__main__", "cli"]),
]
"""Each layer and the modules in it, by name relative to the package: a name covers the
module and, for a package, every module inside it (so a new module in queues/ is a
backend without a word here); the longest name that matches decides (metrics/ is a
backend, but metrics/scrape.py reads through the runtime, an operation). A module may
import its own layer and the layers below it, never one above. The package root
(`__init__`, the public API that re-exports `Client`) is an operation. docs/architecture.md
shows this table; `test_the_architecture_doc_shows_these_layers` keeps the two in step."""

#: Cycles that another branch of issue 23 is removing, each with who removes it. Empty it
#: as they land: `test_every_allowed_cycle_still_exists` fails once one is gone.
CYCLES_ALLOWED_FOR_NOW: list[set[str]] = [
    # branch `store`: the Store's `__new__` factory and its backends import each other.
    {"store.api", "store.postgres", "store.sqlite"},
]
#: Imports running up the layers that another branch is removing (importer, imported).
UPWARD_ALLOWED_FOR_NOW: set[tuple[str, str]] = set()


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package, by dotted name relative to it (`store.api`); the
    package root is `__init__`, a subpackage its own name."""
    names: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }


def _imported_by(name: str, path: Path, known: dict[str, Path], package_name: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    here = [] if name == "__init__" else name.split(".")
    base = here if path.name == "__init__.py" else here[:-1]  # what `from . import` means here
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                origin = base[: len(base) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            elif (node.module or "").split(".")[0] == package_name:
                origin = (node.module or "").split(".")[1:]
            else:
                continue
            module = ".".join(origin) or "__init__"
            for alias in node.names:
                submodule = ".".join([*origin, alias.name])
                found.add(submodule if submodule in known else module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == package_name:
                    found.add(".".join(parts[1:]) or "__init__")
    return {module for module in found if module in known and module != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports, wherever the import sits (a function's
    lazy import closes a cycle as surely as one at the top); imports under
    `if TYPE_CHECKING:` are left out, as they never run."""
    known = module_names(package)
    return {name: _imported_by(name, path, known, package.name) for name, path in known.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The import cycles: each group of modules that reach each other (Tarjan), largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups, key=lambda group: (-len(group), sorted(group)))


def layer_of(module: str, layers: list[tuple[str, list[str]]] = LAYERS_BOTTOM_UP) -> int | None:
    """The position (0 = foundations) of the layer whose longest name covers `module`."""
    best: tuple[int, int] | None = None
    for position, (_layer, names) in enumerate(layers):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), position)
    return None if best is None else best[1]


def upward_imports(
    graph: dict[str, set[str]], layers: list[tuple[str, list[str]]] = LAYERS_BOTTOM_UP
) -> set[tuple[str, str]]:
    return {
        (importer, imported)
        for importer, targets in graph.items()
        for imported in targets
        if (layer_of(imported, layers) or 0) > (layer_of(importer, layers) or 0)
    }


GRAPH = import_graph()


def test_the_graph_sees_every_kind_of_import() -> None:
    """(The synthetic package in `test_the_checks_find_a_cycle_and_an_upward_import` covers
    relative, absolute, lazy and TYPE_CHECKING imports one by one.)"""
    assert "cli" in GRAPH["__main__"]  # from .cli import main: a package
    assert {"version", "netguard", "notifiers.signing"} <= GRAPH["notifiers.http"]  # from ..x / from .x
    assert "subscribe" not in GRAPH["notifiers.http"]  # the URL rules live in netguard
    assert len(GRAPH) > 100


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(module for module in GRAPH if layer_of(module) is None)
    assert not unplaced, f"place these modules in LAYERS_BOTTOM_UP (and docs/architecture.md): {unplaced}"


def test_no_import_cycle_in_the_package() -> None:
    found = [group for group in strongly_connected(GRAPH) if group not in CYCLES_ALLOWED_FOR_NOW]
    assert found == [], "modules that import each other in a circle: " + "; ".join(
        " <-> ".join(sorted(group)) for group in found
    )


def test_every_allowed_cycle_still_exists() -> None:
    gone = [group for group in CYCLES_ALLOWED_FOR_NOW if group not in strongly_connected(GRAPH)]
    assert gone == [], f"drop these from CYCLES_ALLOWED_FOR_NOW: {gone}"


def test_no_import_runs_up_the_layers() -> None:
    upward = sorted(upward_imports(GRAPH) - UPWARD_ALLOWED_FOR_NOW)
    assert upward == [], "imports running up the layers (importer, imported): " + ", ".join(map(str, upward))


def test_the_checks_find_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("from .a import thing\n")
    (package / "low" / "a.py").write_text("def thing():\n    from ..top import other  # lazy: still counts\n")
    (package / "low" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.top\n")
    (package / "top.py").write_text("from pkg.low import a\n\ndef other():\n    pass\n")
    graph = import_graph(package)
    assert graph == {"__init__": set(), "low": {"low.a"}, "low.a": {"top"}, "low.b": set(), "top": {"low.a"}}
    assert strongly_connected(graph) == [{"low.a", "top"}]
    layers = [("bottom", ["low"]), ("top", ["top", "__init__"])]
    assert upward_imports(graph, layers) == {("low.a", "top")}
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert layer_of("metrics.scrape") == 3 and layer_of("metrics.instruments") == 1


IMPORT_PROBE = r"""
import importlib, json, logging, os, sys
from pathlib import Path

def state():
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    files = sorted(str(p) for folder in (Path.cwd(), Path.home()) for p in folder.rglob("*"))
    return {
        # a library's NullHandler (pika adds one, as logging's HOWTO asks of libraries) changes nothing
        "handlers": sorted(
            f"{l.name}: {h!r}" for l in loggers for h in l.handlers if not isinstance(h, logging.NullHandler)
        ),
        "filters": sorted(f"{l.name}: {type(f).__name__}" for l in loggers for f in l.filters),
        "levels": sorted(f"{l.name}: {l.level}" for l in loggers if l.level),
        "environ": sorted(f"{k}={v}" for k, v in os.environ.items()),
        "files": files,
        "cwd": [os.getcwd()],
    }

def changes(before, after):
    return {key: sorted(set(after[key]) ^ set(before[key])) for key in before if after[key] != before[key]}

before = state()
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(changes(before, state())))
"""


def import_changes(modules: list[str], tmp_path: Path, path: Path | None = None) -> dict[str, list[str]]:
    """What importing `modules` (of the package, or of `path` when given), in a fresh
    interpreter in an empty folder, changed."""
    import json
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    environ = {**os.environ, "HOME": str(home)}
    names = [f"asyncevents_cli.{m}" if m != "__init__" else "asyncevents_cli" for m in modules]
    if path is not None:
        environ["PYTHONPATH"] = str(path)
        names = modules
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *names], cwd=work, env=environ, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_importing_every_module_changes_nothing_outside_it(tmp_path: Path) -> None:
    """No logging handler or filter, no file, no environment variable: an import only defines.
    (`__main__` runs the CLI by design, and is left out.)"""
    modules = [m for m in GRAPH if m != "__main__"]
    assert import_changes(modules, tmp_path) == {}


def test_the_import_probe_sees_a_side_effect(tmp_path: Path) -> None:
    (tmp_path / "noisy.py").write_text(
        "import logging, os, pathlib\n"
        "logging.getLogger('noisy').addFilter(logging.Filter('x'))\n"
        "logging.getLogger().addHandler(logging.StreamHandler())\n"
        "os.environ['NOISY'] = '1'\n"
        "pathlib.Path('made.txt').write_text('')\n"
    )
    (tmp_path / "quiet.py").write_text("import logging\nlogging.getLogger('quiet').addHandler(logging.NullHandler())\n")
    assert import_changes(["quiet"], tmp_path, path=tmp_path) == {}
    changed = import_changes(["noisy"], tmp_path / "again", path=tmp_path)
    assert set(changed) == {"filters", "handlers", "environ", "files"}
    assert changed["filters"] == ["noisy: Filter"] and changed["environ"] == ["NOISY=1"]


def documented_layers(doc: Path = PACKAGE.parent / "docs" / "architecture.md") -> list[tuple[str, list[str], str]]:
    """The layer table of docs/architecture.md, bottom up: (layer, module names, may import)."""
    text = doc.read_text(encoding="utf-8")
    section = text[text.index("## Layers, and who may import whom") :]
    rows = re.findall(r"^\| (?!layer |---)([^|]+)\| ([^|]+)\| ([^|]+)\|$", section, re.MULTILINE)
    found = []
    for layer, modules, may_import in rows:
        names = [
            name.removesuffix("/").removesuffix(".py").replace("/", ".") for name in re.findall(r"`([^`]+)`", modules)
        ]
        found.append((layer.strip(), sorted(names), may_import.strip()))
    return found[::-1]


def test_the_architecture_doc_shows_these_layers() -> None:
    documented = documented_layers()
    assert [(layer, names) for layer, names, _ in documented] == [
        (layer, sorted(names)) for layer, names in LAYERS_BOTTOM_UP
    ]
    below = [layer for layer, _ in LAYERS_BOTTOM_UP]
    for position, (layer, _, may_import) in enumerate(documented[1:], start=1):
        assert may_import == ", ".join(below[:position][::-1]), f"the '{layer}' row's 'may import' column"


def _power_of_two_minus_one(node: ast.AST) -> int | None:
    """`2**n - 1` written out, as the id bounds are: its n."""
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Sub)
        and isinstance(node.right, ast.Constant)
        and node.right.value == 1
        and isinstance(node.left, ast.BinOp)
        and isinstance(node.left.op, ast.Pow)
        and isinstance(node.left.left, ast.Constant)
        and node.left.left.value == 2
        and isinstance(node.left.right, ast.Constant)
    ):
        return int(node.left.right.value)
    return None


def test_each_integer_bound_is_written_once() -> None:
    """The 2^63-1 id bound (and 2^31-1) live in messages.py, the lowest layer that needs them."""
    written: dict[int, list[str]] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (power := _power_of_two_minus_one(node)) is not None:
                written.setdefault(power, []).append(str(path.relative_to(PACKAGE)))
    assert written[63] == ["messages.py"]
    assert set(written[31]) == {"messages.py"}


def test_urls_are_redacted_in_one_place() -> None:
    """`redaction.redact_url` is the one function that hides URL credentials, and every
    module takes it from there (no re-export through config or a queue)."""
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.lstrip("_").startswith("redact")
        ]
        if path.name != "redaction.py":
            assert not defined, f"{path.name} defines {defined}: use redaction.redact_url"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and any(a.name == "redact_url" for a in node.names):
                assert node.module == "redaction", f"{path.name} imports redact_url from {node.module}"
