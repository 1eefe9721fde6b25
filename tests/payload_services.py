"""Services for tests/contract/test_services.py: what `service = "payload_services:..."` names."""

import threading
from typing import Any

#: `hang` waits for this: the test sets it when it is done, so no thread outlives the test.
RELEASE = threading.Event()


def hang(**arguments: Any) -> dict[str, Any]:
    RELEASE.wait(60)
    return arguments


def exit_now(**arguments: Any) -> dict[str, Any]:
    raise SystemExit(3)


def interrupt(**arguments: Any) -> dict[str, Any]:
    raise KeyboardInterrupt("pressed\nin the service")


def five_megabytes(**arguments: Any) -> dict[str, Any]:
    return {"blob": "x" * (5 * 1024 * 1024)}


def not_json(**arguments: Any) -> Any:
    return {"ids": {1, 2}}


def not_finite(**arguments: Any) -> Any:
    return {"total": float("nan")}


def echo(**arguments: Any) -> dict[str, Any]:
    return {"echo": arguments}
