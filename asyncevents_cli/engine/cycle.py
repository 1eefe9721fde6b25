"""One cycle of the consumer loop: what the loop hands the I/O thread (`Plan`), what comes
back (`CycleResult`), and when the loop last did what it does now and then (`Pace`).

Plain data: the loop (`consumer.py`) decides, the I/O thread carries it out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..queues.base import Envelope
from .decisions import Settlement
from .pump import PumpRequest, Taken


@dataclass
class Pace:
    """When the loop last did what it does now and then."""

    taken: int = 0
    just_worked: bool = False
    looked_empty_at: float | None = None  # the last lease that found nothing
    last_extend: float = field(default_factory=time.monotonic)
    last_pump: float = 0.0


@dataclass(frozen=True)
class Plan:
    """One cycle's work for the I/O thread."""

    settlements: list[Settlement]
    held: list[Envelope]  # messages whose leases to renew
    kept: list[str]  # kept deliveries (uuids) whose leases to renew
    room: int  # messages to lease at most
    timeout: float  # how long to wait for one
    probe_empty: bool  # say whether nothing at all is left
    pump: PumpRequest | None  # kept deliveries to take for lanes with room, circuits to probe


@dataclass(frozen=True)
class CycleResult:
    envelopes: list[Envelope]
    empty: bool
    taken: Taken  # kept deliveries taken for their lanes
