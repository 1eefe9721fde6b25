"""The version of `ae`, written once. The package root re-exports it (pyproject reads it
there); the CLI, the web app and the webhook User-Agent import it from here, a foundation,
so that no lower layer imports the package root, which lazily imports the whole client."""

__version__ = "0.1.0"
