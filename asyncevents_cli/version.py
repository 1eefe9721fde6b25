"""The version of `ae`, written once: pyproject reads it, and the package root, the CLI,
the web app and the webhook User-Agent import it from here (a foundation), so no lower
layer has to import the package root, which lazily imports the whole client."""

__version__ = "0.1.0"
