"""A consumer's options (issue 23): built once from the settings and the flags, typed, and
refused with an `InputError` when out of range, never quietly raised to 1 or replaced by
the setting. The command line's refusals are in the bad-input catalogue
(`test_bad_input.py`); these are the library's own, for Python callers of `Runtime`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config

from asyncevents_cli.config import MAX_CONCURRENCY, Settings
from asyncevents_cli.engine import Consumer, ConsumerOptions
from asyncevents_cli.errors import InputError
from asyncevents_cli.queues.base import KINDS, RETRY, TRIGGER
from asyncevents_cli.runtime import Runtime


def test_the_settings_are_the_defaults_and_a_flag_given_overrides_one() -> None:
    settings = Settings(concurrency=12, subscription_concurrency=3)
    options = ConsumerOptions.from_settings(settings)
    assert (options.kinds, options.concurrency, options.per_subscription) == (KINDS, 12, 3)
    assert options.held_limit == 24  # twice the window
    flagged = ConsumerOptions.from_settings(settings, (RETRY,), concurrency=5, poll_timeout=0.02)
    assert (flagged.kinds, flagged.concurrency, flagged.per_subscription, flagged.poll_timeout) == (
        (RETRY,),
        5,
        3,
        0.02,
    )


def test_a_bare_options_object_carries_the_settings_defaults() -> None:
    defaults = Settings()
    options = ConsumerOptions()
    assert (options.concurrency, options.per_subscription) == (
        defaults.concurrency,
        defaults.subscription_concurrency,
    )


BAD: list[tuple[dict[str, Any], str]] = [
    ({"concurrency": 0}, "concurrency must be between 1 and 10000, got 0"),
    ({"concurrency": -3}, "concurrency must be between 1 and 10000, got -3"),
    ({"concurrency": MAX_CONCURRENCY + 1}, "concurrency must be between 1 and 10000, got 10001"),
    ({"concurrency": 2.5}, "concurrency must be a whole number, got 2.5"),
    ({"concurrency": True}, "concurrency must be a whole number, got True"),
    ({"per_subscription": 0}, "per_subscription must be between 1 and 10000, got 0"),
    ({"per_subscription": 10**6}, "per_subscription must be between 1 and 10000, got 1000000"),
    ({"poll_timeout": -0.1}, "poll_timeout must be at least 0 seconds, got -0.1"),
    ({"poll_timeout": math.nan}, "poll_timeout must be a finite number of seconds, got nan"),
    ({"poll_timeout": math.inf}, "poll_timeout must be a finite number of seconds, got inf"),
    ({"kinds": ("trigger", "nothing")}, "unknown queue kind(s): nothing; known: trigger, retry"),
]


@pytest.mark.parametrize("given, message", BAD, ids=[m for _g, m in BAD])
def test_out_of_range_is_refused_with_the_bounds(given: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        ConsumerOptions(**given)
    assert caught.value.message == message
    assert caught.value.exit_code == 2


def test_the_bounds_themselves_are_accepted() -> None:
    ConsumerOptions(concurrency=1, per_subscription=1, poll_timeout=0)
    ConsumerOptions(concurrency=MAX_CONCURRENCY, per_subscription=MAX_CONCURRENCY)


def test_runtime_refuses_before_opening_anything(tmp_path: Path) -> None:
    """What was once clamped (`concurrency=0` ran with the setting, `-3` with 1) is an
    error now, raised before the store or the queue is opened: nothing changes."""
    config = write_config(tmp_path)
    with Runtime(config, environ={}) as rt:
        for bad in (0, -3):
            with pytest.raises(InputError, match="concurrency must be between 1 and 10000"):
                rt.consumer(concurrency=bad)
        with pytest.raises(InputError, match="per_subscription"):
            rt.consumer((TRIGGER,), per_subscription=0)
        assert rt._store is None and rt._queue is None
    assert not (tmp_path / ".ae").exists()


def test_runtime_builds_the_consumer_with_the_options_given(tmp_path: Path) -> None:
    with Runtime(write_config(tmp_path, concurrency=7, subscription_concurrency=2), environ={}) as rt:
        options = rt.consumer_options((TRIGGER,), concurrency=3)
        consumer = rt.consumer_for(options)
        assert isinstance(consumer, Consumer)
        assert consumer.options is options
        assert consumer.lanes.ceiling == 2
        assert rt.consumer().options == ConsumerOptions(KINDS, 7, 2)
