"""docs/search.md's examples are generated from a real store and the real `ae search`; they must match."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "search_examples.py"


def test_search_reference_examples_are_current() -> None:
    spec = importlib.util.spec_from_file_location("search_examples", SCRIPT)
    assert spec and spec.loader
    examples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(examples)
    doc = examples.DOC.read_text()
    assert examples.replace_examples(doc, examples.render()) == doc, (
        "docs/search.md is stale: run `python docs/search_examples.py --write`"
    )


def test_the_readme_links_the_search_reference() -> None:
    readme = (SCRIPT.parent.parent / "README.md").read_text()
    assert "(docs/search.md)" in readme
