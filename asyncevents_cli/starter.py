"""The commented events.toml that `ae init` writes, and the repository's own events.toml.

    python -m asyncevents_cli.starter > events.toml   # regenerate the repository's file

Both come from `render`, so every setting appears, commented out at its default
with its help, and a test keeps the repository's file equal to what this writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .config import SETTINGS

#: The Magento module's example events: the repository's events.toml holds both,
#: `ae init` starts a new project with the first.
EXAMPLE_EVENTS: tuple[tuple[str, str], ...] = (
    ("sales.order.created", "An order was placed"),
    ("customer.created", "A customer signed up"),
)

HEADER = """\
# events.toml: the events `ae` knows, and its settings.
#
# `ae events list` shows the events; `ae config show` shows every setting's
# effective value and where it came from. An environment variable
# AE_<SETTING> (e.g. AE_QUEUE=amqp) overrides the file.
"""

EVENT_NOTE = """\
# An event, as the module's io_events.xml declares one: publishers and
# subscribers use its name.
"""

SERVICE_NOTE = """\
# A service builds the payload from the published arguments: "module:function",
# called with the arguments as keyword arguments. A module beside this file is
# found without PYTHONPATH (this folder is on the import path, after installed
# packages). Without one, the published JSON object is the payload.
# service = "order_service:load_order"
"""

SETTINGS_NOTE = """\
# Every setting, commented out at its default. Uncomment a line to change it.
"""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def render(events: Sequence[tuple[str, str]] = EXAMPLE_EVENTS[:1]) -> str:
    """An events.toml with `events` (the first one showing a commented service) and every setting."""
    parts = [HEADER, "\n", EVENT_NOTE]
    for n, (name, description) in enumerate(events):
        parts.append(f'[events."{name}"]\ndescription = {toml_value(description)}\n')
        if n == 0:
            parts.append(SERVICE_NOTE)
        parts.append("\n")
    parts += ["[settings]\n", SETTINGS_NOTE]
    for setting in SETTINGS:
        parts.append(f"\n# {setting.help}\n# {setting.name} = {toml_value(setting.default)}\n")
    return "".join(parts)


if __name__ == "__main__":
    print(render(EXAMPLE_EVENTS), end="")
