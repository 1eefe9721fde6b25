"""Finding notifiers by name: the entry-point group ``asyncevents_cli.notifiers``.

A package adds a notifier by being installed with an entry point such as

    [project.entry-points."asyncevents_cli.notifiers"]
    sms = "my_package.sms:SmsNotifier"

`ae` registers its own notifiers the same way (see pyproject.toml).
`register()` adds one from code, e.g. in a test or an embedding program, and
wins over an entry point of the same name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ..config import Config
from ..errors import InputError
from ..store import Subscription
from .base import Notifier

GROUP = "asyncevents_cli.notifiers"
OWN_DISTRIBUTION = "asyncevents-cli"
# Used when `ae` runs from a source tree that was never installed, so has no entry points.
BUILT_INS = {
    "http": "asyncevents_cli.notifiers.http:HttpNotifier",
    "eventbridge": "asyncevents_cli.notifiers.eventbridge:EventBridgeNotifier",
}

NotifierFactory = Callable[..., Notifier]


class PluginLoadError(InputError):
    """An installed notifier whose entry point cannot be imported (exit 2 where it is asked for)."""


class NotifierPlugin:
    """One registered notifier: its name, what makes it, and where it came from.

    The factory is imported on first use, so naming the notifiers (or using one)
    does not import every notifier's dependencies."""

    def __init__(self, name: str, source: str, target: str, load: Callable[[], NotifierFactory]) -> None:
        self.name = name
        self.source = source  # the distribution providing it ("asyncevents-cli 0.1.0"), or how it was registered
        self.target = target  # "module:attribute"
        self._load = load
        self._factory: NotifierFactory | None = None
        self._error: str | None = None

    @property
    def factory(self) -> NotifierFactory:
        """A Notifier subclass, or any callable returning a Notifier."""
        if self._factory is None:
            if self._error is None:
                try:
                    self._factory = self._load()
                except Exception as exc:  # a broken third-party package must not break `ae`
                    self._error = f"{exc.__class__.__name__}: {exc}"
            if self._error is not None:
                raise PluginLoadError(f"notifier {self.name!r} is installed but failed to load: {self._error}")
        return self._factory  # type: ignore[return-value]

    @property
    def load_error(self) -> str | None:
        try:
            self.factory  # noqa: B018 - loading is the check
        except PluginLoadError:
            return self._error
        return None

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(getattr(self.factory, "aliases", ()))

    @property
    def signs_requests(self) -> bool:
        return bool(getattr(self.factory, "signs_requests", False))

    @property
    def recipient_help(self) -> str:
        return str(getattr(self.factory, "recipient_help", "any non-empty string"))

    def check_recipient(self, recipient: str, config: Config | None = None) -> str:
        check = getattr(self.factory, "check_recipient", None) or Notifier.check_recipient
        return str(check(recipient, config))

    def create(self, config: Config | None) -> Notifier:
        from_config = getattr(self.factory, "from_config", None)
        return from_config(config) if from_config is not None else self.factory()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "source": self.source,
            "target": self.target,
            "recipient": self.recipient_help,
            "signs_requests": self.signs_requests,
        }


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plugins: dict[str, NotifierPlugin] | None = None
        self._registered: dict[str, NotifierPlugin] = {}

    def register(self, name: str, factory: NotifierFactory, source: str | None = None) -> None:
        target = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', repr(factory))}"
        plugin = NotifierPlugin(name, source or "register()", target, lambda: factory)
        with self._lock:
            self._registered[name] = plugin
            if self._plugins is not None:
                self._plugins[name] = plugin

    def plugins(self) -> dict[str, NotifierPlugin]:
        with self._lock:
            if self._plugins is None:
                self._plugins = self._discover()
            return dict(self._plugins)

    def _discover(self) -> dict[str, NotifierPlugin]:
        found: dict[str, NotifierPlugin] = {}
        # Our own entry points first, so an installed package cannot shadow a built-in by accident.
        points = sorted(entry_points(group=GROUP), key=lambda ep: _distribution(ep) != OWN_DISTRIBUTION)
        for point in points:
            if point.name not in found:
                dist = point.dist
                source = f"{dist.name} {dist.version}" if dist is not None else "entry point"
                found[point.name] = NotifierPlugin(point.name, source, point.value, point.load)
        for name, target in BUILT_INS.items():
            if name not in found:
                found[name] = NotifierPlugin(name, "built-in", target, EntryPoint(name, target, GROUP).load)
        found.update(self._registered)
        return found


def _distribution(point: EntryPoint) -> str:
    return point.dist.name if point.dist is not None else ""


_registry = _Registry()


def register(name: str, factory: NotifierFactory, source: str | None = None) -> None:
    """Make a notifier available to subscriptions as ``--notifier NAME``."""
    _registry.register(name, factory, source)


def plugins() -> list[NotifierPlugin]:
    """Every notifier that loads, by name (see `load_errors` for the others)."""
    return [plugin for _, plugin in sorted(_registry.plugins().items()) if plugin.load_error is None]


def load_errors() -> dict[str, str]:
    """Installed notifiers that failed to load, by name, with the reason."""
    return {name: plugin.load_error for name, plugin in _registry.plugins().items() if plugin.load_error}


def names() -> list[str]:
    return sorted(_registry.plugins())


def find(name: str) -> NotifierPlugin:
    """The notifier called `name` or one of its aliases; InputError (exit 2) if there is none."""
    available = _registry.plugins()
    if name in available:
        available[name].factory  # noqa: B018 - raises PluginLoadError for a broken package
        return available[name]
    for plugin in available.values():  # aliases are class attributes: this imports them all
        if plugin.load_error is None and name in plugin.aliases:
            return plugin
    raise InputError(
        f"unknown notifier {name!r}; available: {', '.join(sorted(available))}",
        hint="run `ae notifiers list` to see them",
    )


def check_name(name: str) -> str:
    """The canonical name for `name` (an alias resolves to its notifier's name)."""
    return find(name).name


class Notifiers:
    """One instance of each notifier in use, created on first need."""

    def __init__(self, config: Config | None = None, overrides: dict[str, Notifier] | None = None) -> None:
        self.config = config
        self._instances: dict[str, Notifier] = dict(overrides or {})
        self._lock = threading.Lock()

    def for_subscription(self, subscription: Subscription) -> Notifier:
        name = subscription.notifier
        with self._lock:
            if name not in self._instances:
                plugin = find(name)
                self._instances[name] = self._instances.get(plugin.name) or plugin.create(self.config)
            return self._instances[name]

    def close(self) -> None:
        for notifier in {id(n): n for n in self._instances.values()}.values():
            notifier.close()

    async def aclose(self) -> None:
        """Close from inside the consumer's event loop (aiohttp sessions belong to it)."""
        for notifier in {id(n): n for n in self._instances.values()}.values():
            await notifier.aclose()
