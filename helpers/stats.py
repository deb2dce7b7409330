"""Per-instance counters, the status hash, and rate-limited warnings."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from helpers.batch import Batch
from helpers.keys import ingest_status


@dataclass
class InstanceStats:
    """Counts since start for one MISP feed (semantics §8)."""

    name: str
    started: float = field(default_factory=time.time)
    received: int = 0
    processed: int = 0
    skipped: int = 0  # messages that could not be used at all
    errors: int = 0  # messages on which a feature raised
    last_message: float = 0.0
    connected: bool = False
    reasons: Counter[str] = field(default_factory=Counter)  # skipped messages and effects, by why
    topics: Counter[str] = field(default_factory=Counter)  # every frame, "?" if it had no topic
    # The rare outcomes per topic (processed = topics - skipped - errors): the metrics' labels.
    topic_skipped: Counter[str] = field(default_factory=Counter)
    topic_errors: Counter[str] = field(default_factory=Counter)

    def write_status(self, batch: Batch, extra: dict[str, str | int | float]) -> None:
        key = ingest_status(self.name)
        for name, value in (
            ("received", self.received), ("processed", self.processed),
            ("skipped", self.skipped), ("errors", self.errors),
            ("last_message", int(self.last_message)), ("connected", int(self.connected)),
            ("started", int(self.started)), *extra.items(),
        ):
            batch.hset(key, name, value)

    def summary(self) -> str:
        return (f"{self.name}: received={self.received} processed={self.processed} "
                f"skipped={self.skipped} errors={self.errors} "
                f"connected={int(self.connected)}")


class RateLimitedLog:
    """At most ``burst`` lines per key per ``interval`` seconds; says how many it held back."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0, burst: int = 5) -> None:
        self.logger = logger
        self.interval = interval
        self.burst = burst
        self._windows: dict[str, list[float]] = {}  # key -> [window start, lines, suppressed]

    def warning(self, key: str, msg: str, *args: object) -> None:
        self.log(logging.WARNING, key, msg, *args)

    def log(self, level: int, key: str, msg: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        w = self._windows.get(key)
        if w is None or now - w[0] >= self.interval:
            if w is not None and w[2]:
                self.logger.log(level, "%d more like %r were not logged in the last %.0f s",
                                int(w[2]), key, self.interval)
            w = self._windows[key] = [now, 0, 0]
        if w[1] < self.burst:
            w[1] += 1
            self.logger.log(level, msg, *args, exc_info=exc_info)
        else:
            w[2] += 1
