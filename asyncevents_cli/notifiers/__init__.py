"""Notifiers deliver events to subscribers; `http` (signed webhooks) is the default."""

from __future__ import annotations

from typing import Any

from .base import NotifyResult, Notifier, Notifiers, check_name, names, register


def _http_notifier() -> Notifier:
    from .http import HttpNotifier  # aiohttp loads only when something is delivered

    return HttpNotifier()


register("http", _http_notifier)


def __getattr__(name: str) -> Any:
    """`HttpNotifier`, `sign` and `request_headers` on first use, without loading aiohttp early."""
    if name in ("HttpNotifier", "sign", "request_headers"):
        from . import http

        return getattr(http, name)
    raise AttributeError(name)


__all__ = ["Notifier", "NotifyResult", "Notifiers", "HttpNotifier", "register", "names", "check_name", "sign",
           "request_headers"]
