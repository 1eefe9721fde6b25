"""Parts of the RabbitMQ backend that need no broker: import hygiene and ack arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asyncevents_cli.queues.amqp_consume import multiple_ack_split

# Every logger's filters, handlers, level and switches, before and after an import.
LOGGER_STATE = """
import json, logging, sys

def state():
    loggers = {"": logging.getLogger()}
    loggers.update((n, l) for n, l in logging.Logger.manager.loggerDict.items() if isinstance(l, logging.Logger))
    return {
        name: [sorted(map(repr, logger.filters)), sorted(map(repr, logger.handlers)), logger.level,
               logger.propagate, logger.disabled]
        for name, logger in loggers.items()
    }

import pika, pika.channel  # loaded first: the loggers pika makes itself are not the import's doing
before = state()
import asyncevents_cli.queues.amqp
after = state()
changed = {name: [before.get(name), now] for name, now in after.items() if before.get(name, now) != now}
print(json.dumps(changed))
"""


def test_importing_the_amqp_backend_changes_no_logger() -> None:
    """Its filter for pika's expected 404 warnings is installed when a connection opens, not on import."""
    done = subprocess.run([sys.executable, "-c", LOGGER_STATE], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {}


def test_the_delay_queue_filter_is_installed_once() -> None:
    import logging

    from asyncevents_cli.queues.amqp_connection import _MissingDelayQueueFilter, quiet_missing_delay_queues

    pika_channel = logging.getLogger("pika.channel")
    before = list(pika_channel.filters)
    kept = [f for f in before if not isinstance(f, _MissingDelayQueueFilter)]  # a connection opened earlier
    pika_channel.filters[:] = kept
    try:
        quiet_missing_delay_queues()
        quiet_missing_delay_queues()
        added = [f for f in pika_channel.filters if f not in kept]
        assert len(added) == 1
        record = logging.LogRecord(
            "pika.channel", logging.WARNING, "", 0, "NOT_FOUND - no queue 'event.delay.4'", (), None
        )
        assert not added[0].filter(record)
    finally:
        pika_channel.filters[:] = before


@pytest.mark.parametrize(
    ("tags", "unsettled", "multiple", "one_by_one"),
    [
        ([1, 2, 3], [], 3, []),  # nothing else outstanding: one frame
        ([3, 1, 2], [], 3, []),  # in any order
        ([1, 2, 5], [4], 2, [5]),  # 4 is still held: the multiple ack stops below it
        ([5, 6], [1], None, [5, 6]),  # an older delivery still held: no multiple ack at all
        ([2], [1, 3], None, [2]),
        ([1, 2, 7, 9], [3, 8], 2, [7, 9]),
    ],
)
def test_multiple_ack_never_reaches_an_unsettled_tag(
    tags: list[int], unsettled: list[int], multiple: int | None, one_by_one: list[int]
) -> None:
    assert multiple_ack_split(tags, unsettled) == (multiple, one_by_one)
    acked = set(range(1, multiple + 1)) if multiple is not None else set()
    assert not acked & set(unsettled)
    assert acked | set(one_by_one) >= set(tags)
