"""`ae consume`'s SIGINT/SIGTERM handling: the handler only sets flags, and what it
has to say is said on the next poll (a handler that prints may import, and an import
inside a handler that interrupted another import breaks Python 3.11's import lock:
`KeyError: <thread id>`, seen when a consumer got SIGTERM while importing psycopg)."""

from __future__ import annotations

import signal

import pytest

from asyncevents_cli.cli.consume import StopFlag


def test_the_handler_says_nothing_until_the_flag_is_polled() -> None:
    said: list[str] = []
    stop = StopFlag(said.append)
    stop.handle(signal.SIGTERM, None)
    assert said == [] and stop.stopping
    assert stop() is True
    assert len(said) == 1 and said[0].startswith("ae: stopping")
    stop.handle(signal.SIGTERM, None)  # a second SIGTERM: nothing new to say
    assert stop() is True and len(said) == 1


def test_a_second_ctrl_c_aborts_and_the_way_out_says_so() -> None:
    said: list[str] = []
    aborted: list[bool] = []
    stop = StopFlag(said.append)
    stop.abort = lambda: aborted.append(True)
    stop.handle(signal.SIGINT, None)
    stop.handle(signal.SIGINT, None)
    assert aborted == [True] and said == []
    stop.flush()
    assert [line.split(":")[1].split()[0] for line in said] == ["stopping", "aborting"]


def test_a_second_ctrl_c_with_nothing_to_abort_interrupts() -> None:
    stop = StopFlag(lambda line: None)
    stop.handle(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):
        stop.handle(signal.SIGINT, None)
