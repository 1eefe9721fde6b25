"""Event definitions: the `[events]` tables of events.toml, and what an event name may be."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError

EVENT_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
EVENT_KEYS = {"description", "service"}


@dataclass(frozen=True)
class EventDefinition:
    name: str
    description: str = ""
    service: str | None = None  # "package.module:function"
    folder: Path | None = field(default=None, compare=False, repr=False)  # where a service module may sit

    def resolve_service(self) -> Callable[..., Any] | None:
        """Import the payload-building callable, if the event names one.

        The config file's folder is on the import path (after the installed packages,
        so a file there cannot shadow one of them): `service = "mysvc:fn"` finds
        `mysvc.py` beside events.toml without PYTHONPATH."""
        if not self.service:
            return None
        if self.folder is not None and str(self.folder) not in sys.path:
            sys.path.append(str(self.folder))
        module_name, _, attribute = self.service.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"event {self.name!r}: cannot import service {self.service!r}: {exc}") from exc
        if not callable(target):
            raise ConfigError(f"event {self.name!r}: service {self.service!r} is not callable")
        return target


def check_event_name(name: str) -> str:
    """A name that could be an event. (Filters such as `ae logs --event` accept names
    no longer defined: their logs and subscriptions outlive the definition.)"""
    if not EVENT_NAME.match(name or ""):
        raise InputError(f"invalid event name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def parse_events(raw: Any, path: Path) -> dict[str, EventDefinition]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [events] must be a table of event tables")
    events: dict[str, EventDefinition] = {}
    for name, body in raw.items():
        if not EVENT_NAME.match(name):
            raise ConfigError(f"{path}: invalid event name {name!r}: use letters, digits, '.', '_' and '-'")
        if not isinstance(body, dict):
            raise ConfigError(f'{path}: [events."{name}"] must be a table')
        unknown = set(body) - EVENT_KEYS
        if unknown:
            raise ConfigError(
                f'{path}: [events."{name}"] has unknown key(s) {", ".join(sorted(unknown))}; '
                f"allowed: {', '.join(sorted(EVENT_KEYS))}"
            )
        description = body.get("description", "")
        service = body.get("service")
        if not isinstance(description, str):
            raise ConfigError(f'{path}: [events."{name}"] description must be a string')
        if service is not None and (not isinstance(service, str) or not re.match(r"^[\w.]+:[\w.]+$", service)):
            raise ConfigError(f'{path}: [events."{name}"] service must look like "package.module:function"')
        events[name] = EventDefinition(name, description, service, path.parent)
    return events
