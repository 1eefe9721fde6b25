"""Notifiers deliver events to subscribers: `http` (signed webhooks, the default) and
`eventbridge`, plus any installed package's, found through entry points (see `registry`)."""

from typing import Any

from .base import Notifier, NotifyResult
from .registry import NotifierPlugin, Notifiers, check_name, find, load_errors, names, plugins, register


def __getattr__(name: str) -> Any:
    """`HttpNotifier`, `sign` and `request_headers` on first use: `ae --help` need not load aiohttp."""
    if name in ("HttpNotifier", "sign", "request_headers"):
        from . import http

        return getattr(http, name)
    raise AttributeError(name)


__all__ = ["Notifier", "NotifyResult", "Notifiers", "NotifierPlugin", "HttpNotifier", "register", "names",
           "check_name", "find", "load_errors", "plugins", "sign", "request_headers"]
