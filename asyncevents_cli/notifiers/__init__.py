"""Notifiers deliver events to subscribers; `http` (signed webhooks) is the default."""

from .base import NotifyResult, Notifier, Notifiers, check_name, names, register
from .http import HttpNotifier, sign

register("http", HttpNotifier)

__all__ = ["Notifier", "NotifyResult", "Notifiers", "HttpNotifier", "register", "names", "check_name", "sign"]
