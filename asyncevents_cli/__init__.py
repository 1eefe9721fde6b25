"""ae: reliable asynchronous events from the command line.

The library is usable without the CLI: load a `Config`, open a `Store` and a
queue, then `publish` and run a `Consumer` (`Runtime.consumer`). Only
`asyncevents_cli.cli` imports typer or rich.
"""

__version__ = "0.1.0"
