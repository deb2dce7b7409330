"""Captures: what a MISP feed sent, kept so it can be replayed exactly.

Format: one JSON object per line (JSON Lines), in receive order::

    {"instance": "misp1", "received": 1732570000.123456, "frame": "misp_json_self {...}"}

``frame`` is the raw frame as text.  A frame that is not valid UTF-8 (MISP never
sends one, but a broken relay might) is kept as ``"frame_b64"`` instead, so
nothing that arrived is lost.
"""

from __future__ import annotations

import base64
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson
import zmq

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CapturedFrame:
    instance: str
    received: float
    frame: bytes


def encode_line(instance: str, received: float, frame: bytes) -> bytes:
    entry: dict[str, object] = {"instance": instance, "received": received}
    try:
        entry["frame"] = frame.decode("utf-8")
    except UnicodeDecodeError:
        entry["frame_b64"] = base64.b64encode(frame).decode("ascii")
    return orjson.dumps(entry) + b"\n"


# Receive times a day key can be computed for: 1970 to the year 3000.
_MAX_RECEIVED = 32503680000.0


def parse_line(line: bytes) -> CapturedFrame:
    """One capture line; ValueError if it is not one."""
    entry = orjson.loads(line)  # JSONDecodeError is a ValueError
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    instance, received = entry.get("instance"), entry.get("received")
    if not isinstance(instance, str) or not instance:
        raise ValueError("no instance name")
    if isinstance(received, bool) or not isinstance(received, (int, float)) \
            or not 0 <= received < _MAX_RECEIVED:
        raise ValueError(f"received is not an epoch time: {received!r}")
    if isinstance(entry.get("frame"), str):
        frame = entry["frame"].encode("utf-8")
    elif isinstance(entry.get("frame_b64"), str):
        frame = base64.b64decode(entry["frame_b64"], validate=True)
    else:
        raise ValueError("neither frame nor frame_b64")
    return CapturedFrame(instance, float(received), frame)


def read_capture(path: str | Path) -> Iterator[CapturedFrame]:
    """The frames of a capture file, in order; a malformed line is logged and skipped."""
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = parse_line(line)
            except (ValueError, UnicodeEncodeError) as exc:
                log.warning("%s:%d: not a capture line (%s); skipped", path, lineno, exc)
                continue
            yield item


def count_lines(path: str | Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


class Progress:
    """A one-line progress report on stderr for long replays (every ``every`` s)."""

    def __init__(self, total: int, label: str, every: float = 1.0,
                 stream: IO[str] | None = None) -> None:
        self.total, self.label, self.every = total, label, every
        self.stream = stream or sys.stderr
        self.started = self.last = time.monotonic()

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        pct = 100.0 * done / self.total if self.total else 100.0
        self.stream.write(f"\r{self.label}: {done}/{self.total} ({pct:.0f}%) {rate:,.0f} msg/s ")
        if force:
            self.stream.write("\n")
        self.stream.flush()


def record(url: str, instance: str, out: str | Path, *, count: int | None = None,
           seconds: float | None = None, username: str | None = None,
           password: str | None = None) -> int:
    """Subscribe to ``url`` and append every frame to ``out``; returns frames recorded."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    if username is not None and password is not None:
        sock.plain_username, sock.plain_password = username.encode(), password.encode()
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(url)
    deadline = time.monotonic() + seconds if seconds else None
    n = 0
    try:
        with open(out, "ab") as fh:
            while (count is None or n < count) and (deadline is None or
                                                    time.monotonic() < deadline):
                if not sock.poll(200):
                    continue
                fh.write(encode_line(instance, time.time(), sock.recv()))
                n += 1
    except KeyboardInterrupt:
        pass
    finally:
        sock.close(linger=0)
    return n


def instance_counts(path: str | Path) -> Counter[str]:
    """Frames per instance in a capture."""
    return Counter(item.instance for item in read_capture(path))


def publish(path: str | Path, bind: str, *, rate: float | None = None,
            wait_subscriber: float = 1.0, progress: bool = True,
            instance: str | None = None) -> int:
    """Publish a capture's frames on a PUB socket bound at ``bind``.

    ``rate``: messages per second (None: as fast as possible).  ``instance``:
    only that instance's frames (a PUB socket is one MISP feed).  Waits
    ``wait_subscriber`` seconds first, since a PUB socket drops what it sends
    before a subscriber has joined.
    """
    counts = instance_counts(path)
    if instance is None and len(counts) > 1:
        log.warning("%s holds %d instances (%s); publishing them all as one feed "
                    "(--instance NAME publishes one)", path, len(counts), ", ".join(counts))
    total = counts[instance] if instance is not None else sum(counts.values())
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.bind(bind)
    time.sleep(wait_subscriber)
    bar = Progress(total, "publish") if progress else None
    started = time.monotonic()
    frames = (item for item in read_capture(path) if instance in (None, item.instance))
    n = 0
    for n, item in enumerate(frames, 1):
        sock.send(item.frame)
        if rate:
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if bar:
            bar.update(n)
    if bar:
        bar.update(n, force=True)
    sock.close(linger=5000)
    return n
