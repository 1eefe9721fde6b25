"""Notifiers deliver events to subscribers: `http` (signed webhooks, the default) and
`eventbridge`, plus any installed package's, found through entry points (see `registry`)."""

from .base import Notifier, NotifyResult
from .http import HttpNotifier, sign
from .registry import NotifierPlugin, Notifiers, check_name, find, load_errors, names, plugins, register

__all__ = ["Notifier", "NotifyResult", "Notifiers", "NotifierPlugin", "HttpNotifier", "register", "names",
           "check_name", "find", "load_errors", "plugins", "sign"]
