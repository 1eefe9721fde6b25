"""ae: reliable asynchronous events, from the command line and from Python.

The public Python API (documented in docs/python.md)::

    import asyncevents_cli as ae

    ae.publish("sales.order.created", {"increment_id": "CK1"})  # a default Client

    with ae.Client() as client:  # finds events.toml as `ae` does
        client.publish("sales.order.created", data, connection=conn)  # in conn's transaction

`Client` and `publish` are imported on first use, so ``import asyncevents_cli``
stays cheap; the exceptions (see `errors.py` for the tree) are the CLI's own.
Everything not in `__all__` is internal. Only `asyncevents_cli.cli` imports
typer or rich.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import AeError, ConfigError, DatabaseUnavailable, InputError, NotFound, QueueUnavailable
from .version import __version__

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "AeError",
    "Client",
    "ConfigError",
    "DatabaseUnavailable",
    "InputError",
    "NotFound",
    "QueueUnavailable",
    "__version__",
    "publish",
]

_default: Client | None = None
_default_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def publish(event: str, data: Mapping[str, Any], *, store_id: int = 0, connection: Any = None) -> str:
    """`Client.publish` on a default client, made on first use from AE_CONFIG or ./events.toml."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from .client import Client

                _default = Client()
    return _default.publish(event, data, store_id=store_id, connection=connection)
