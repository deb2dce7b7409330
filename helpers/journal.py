"""The journal: sealed batches kept on local disk while Redis cannot take them.

When the writer's in-memory backlog exceeds its bound, and when the daemon
stops with batches Redis has not taken, the oldest batches are written to
*segment* files here; the writer replays them, oldest first, before anything
newer.  A batch keeps its writer id and sequence number on disk, so the
exactly-once marker in Redis still recognises it, even after a restart of the
daemon: a segment that was half applied when the daemon died is replayed
whole, and the part already applied is skipped by the batch script.

A segment is written to a temporary file, fsynced, then renamed into place
(and the directory fsynced), so a reader never sees half a segment.  Its name
``<run>-<first seq>-<writer tag>.jnl`` sorts in replay order: ``run`` grows
with every daemon start that finds a journal, and within one run sequence
numbers grow.  The header names the Redis server the batches are meant for;
segments for another server are left alone, with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = ".jnl"
_NAME = re.compile(r"^(\d{6})-(\d{12})-[0-9a-f]{8}\.jnl$")


class JournalError(OSError):
    """The journal directory or a segment cannot be used; the message says why."""


@dataclass(slots=True)
class SealedBatch:
    """An encoded batch with the identity the exactly-once marker checks."""

    writer: str  # the writer id whose marker key guards this batch
    seq: int
    payload: bytes
    messages: int
    sealed_at: float


@dataclass(slots=True)
class Segment:
    """One journal file: consecutive batches of one writer, oldest first."""

    path: Path
    writer: str
    target: str
    count: int
    size: int


class Journal:
    """A directory of segment files, locked against a second daemon."""

    def __init__(self, directory: Path, target: str, max_file_bytes: int) -> None:
        self.dir = directory
        self.target = target  # the Redis server (URL without credentials) the batches are for
        self.max_file_bytes = max_file_bytes
        self.run = 1
        self._lock_fd: int | None = None

    def open(self) -> list[Segment]:
        """Create and lock the directory; return the segments left for our Redis, in order.

        Raises :class:`JournalError` with an operator-readable message.
        """
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot create the journal directory {self.dir}: "
                               f"{exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(f"the journal directory {self.dir} is in use by another "
                               "misp-ingest process; give each daemon its own") from None
        self._lock_fd = fd
        for stale in self.dir.glob(".tmp-*"):  # a write interrupted by a crash
            stale.unlink(missing_ok=True)
        names = sorted(p.name for p in self.dir.iterdir() if _NAME.match(p.name))
        if names:
            self.run = int(names[-1][:6]) + 1
        return self._ours([self._read_header(self.dir / n) for n in names])

    def _ours(self, found: list[Segment | None]) -> list[Segment]:
        segments = []
        for seg in found:
            if seg is None:
                continue
            if seg.target != self.target:
                log.warning("journal segment %s holds %d batch(es) for Redis %s, not %s; "
                            "left in place", seg.path, seg.count, seg.target, self.target)
                continue
            segments.append(seg)
        return segments

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    # --- writing ------------------------------------------------------------------

    def write(self, batches: list[SealedBatch], *, into: str | None = None) -> Segment:
        """Write batches of one writer (oldest first) as one segment, atomically
        (``into``: a subdirectory, never replayed, e.g. for rejected batches)."""
        writer = batches[0].writer
        body = b"".join(b.payload for b in batches)
        header = orjson.dumps({
            "format": FORMAT, "writer": writer, "target": self.target,
            "crc": zlib.crc32(body),
            "batches": [[b.seq, b.messages, b.sealed_at, len(b.payload)] for b in batches],
        })
        tag = hashlib.sha1(writer.encode()).hexdigest()[:8]
        directory = self.dir / into if into else self.dir
        directory.mkdir(exist_ok=True)
        path = directory / f"{self.run:06d}-{batches[0].seq:012d}-{tag}{SUFFIX}"
        tmp = directory / f".tmp-{path.name}"
        with open(tmp, "wb") as f:
            f.write(header + b"\n" + body)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        self._sync_dir(directory)
        return Segment(path, writer, self.target, len(batches), len(header) + 1 + len(body))

    def split(self, batches: list[SealedBatch]) -> list[list[SealedBatch]]:
        """Cut batches into runs of one writer each at most ``max_file_bytes`` big
        (a single larger batch gets a segment of its own)."""
        runs: list[list[SealedBatch]] = []
        size = 0
        for b in batches:
            if not runs or runs[-1][0].writer != b.writer or \
                    size + len(b.payload) > self.max_file_bytes:
                runs.append([])
                size = 0
            runs[-1].append(b)
            size += len(b.payload)
        return runs

    def remove(self, seg: Segment) -> None:
        """Forget a segment whose batches are all applied."""
        seg.path.unlink(missing_ok=True)
        self._sync_dir()

    def quarantine(self, seg: Segment) -> None:
        """Move an unreadable segment aside (kept for the operator, never replayed)."""
        with contextlib.suppress(OSError):
            seg.path.rename(seg.path.with_suffix(".corrupt"))

    def _sync_dir(self, directory: Path | None = None) -> None:
        fd = os.open(directory or self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- reading ------------------------------------------------------------------

    def _read_header(self, path: Path) -> Segment | None:
        try:
            with open(path, "rb") as f:
                header = orjson.loads(f.readline())
            return Segment(path, str(header["writer"]), str(header["target"]),
                           len(header["batches"]), path.stat().st_size)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("journal segment %s is unreadable (%s); moved aside as .corrupt",
                      path, exc)
            with contextlib.suppress(OSError):
                path.rename(path.with_suffix(".corrupt"))
            return None

    def read(self, seg: Segment) -> list[SealedBatch]:
        """The batches of a segment; :class:`JournalError` if it is damaged."""
        try:
            data = seg.path.read_bytes()
            cut = data.index(b"\n")
            header = orjson.loads(data[:cut])
            body = memoryview(data)[cut + 1:]
            if header.get("format") != FORMAT or zlib.crc32(body) != header["crc"]:
                raise ValueError("bad format or checksum")
            batches, at = [], 0
            for seq, messages, sealed_at, length in header["batches"]:
                batches.append(SealedBatch(seg.writer, int(seq), bytes(body[at:at + length]),
                                           int(messages), float(sealed_at)))
                at += length
            if at != len(body):
                raise ValueError("length mismatch")
            return batches
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"journal segment {seg.path} is damaged: {exc}") from None
