"""What a feature handler gets besides its observation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helpers.batch import Batch
from helpers.stats import InstanceStats


@dataclass(slots=True)
class Context:
    now: float  # receive time, epoch seconds
    day: str  # YYYYMMDD of ``now`` in the configured zone
    hour: str  # YYYYMMDDHH
    instance: str
    batch: Batch
    stats: InstanceStats

    def skip(self, reason: str) -> None:
        """Count an effect that could not happen (the message's other effects still do)."""
        self.stats.reasons[reason] += 1


Handler = Callable[[Any, Context], None]
"""A feature's handler for one observation type."""
