"""docs/cli.md is generated from the command tree; it must match the code."""

from pathlib import Path

from asyncevents_cli.cli.reference import render, walk

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: run `python -m asyncevents_cli.cli.reference > docs/cli.md`"
    )


def test_reference_names_every_command() -> None:
    import typer

    from asyncevents_cli.cli import app

    text = REFERENCE.read_text(encoding="utf-8")
    for path, _ in walk(typer.main.get_command(app)):
        assert f"## `{' '.join(('ae', *path))}`" in text
