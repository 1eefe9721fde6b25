"""The command-line interface. The only package that imports typer or rich."""

from .app import app, main

__all__ = ["app", "main"]
