"""Notifiers deliver events to subscribers: `http` (signed webhooks, the default) and
`eventbridge`, plus any installed package's, found through entry points (see `registry`).

Each notifier module is imported when it is first needed, so naming them does not
load every notifier's dependencies (the HTTP client, boto3)."""

from __future__ import annotations

from typing import Any

from .base import Notifier, NotifyResult
from .registry import NotifierPlugin, Notifiers, check_name, find, load_errors, names, plugins, register


def __getattr__(name: str) -> Any:
    """`HttpNotifier`, `sign` and `request_headers` from `http`, on first use."""
    if name in ("HttpNotifier", "sign", "request_headers"):
        from . import http

        return getattr(http, name)
    raise AttributeError(name)


__all__ = [
    "Notifier",
    "NotifyResult",
    "Notifiers",
    "NotifierPlugin",
    "HttpNotifier",
    "register",
    "names",
    "check_name",
    "find",
    "load_errors",
    "plugins",
    "sign",
    "request_headers",
]
