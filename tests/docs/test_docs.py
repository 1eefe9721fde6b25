"""The README and docs/: every module is on the README's module map, and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "asyncevents_cli"
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def module_map() -> dict[str, str]:
    """The README's map of asyncevents_cli/: entry name -> its text (continuation lines included)."""
    block = README.read_text(encoding="utf-8").split("```\nasyncevents_cli/\n", 1)[1].split("```", 1)[0]
    entries: dict[str, str] = {}
    name = ""
    for line in block.splitlines():
        if re.match(r"^  \S", line):
            name, _, text = line.strip().partition(" ")
            entries[name] = text
        elif line.startswith("   ") and name:
            entries[name] += " " + line.strip()
        else:
            name = ""  # tests/, bench/, docs/: outside the package
    return entries


def modules() -> list[Path]:
    return sorted(
        p.relative_to(PACKAGE)
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py") and "templates" not in p.parts
    )


@pytest.mark.parametrize("module", modules(), ids=str)
def test_the_readme_module_map_names_every_module(module: Path) -> None:
    entries = module_map()
    if len(module.parts) == 1:
        named = module.name in entries or any(re.search(rf"\b{re.escape(module.name)}\b", t) for t in entries.values())
        assert named, f"README.md's module map does not list asyncevents_cli/{module}"
        return
    package = f"{module.parts[0]}/"
    assert package in entries, f"README.md's module map does not list asyncevents_cli/{package}"
    assert re.search(rf"\b{re.escape(module.stem)}\b", entries[package]), (
        f"README.md's module map does not name {module.stem} under {package}"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links in code are not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_every_docs_page_is_linked_from_the_readme(page: Path) -> None:
    assert f"](docs/{page.name})" in README.read_text(encoding="utf-8"), f"README.md does not link docs/{page.name}"
