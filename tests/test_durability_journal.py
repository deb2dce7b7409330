"""The writer's journal and exactly-once marker, against real Redis servers.

Batches here carry an ``LPUSH`` of their own number, so the list in Redis shows
both that every batch was applied once and in which order.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from helpers.batch import Batch
from helpers.config import RedisConfig, WriterConfig
from helpers.journal import Journal, JournalError, SealedBatch
from helpers.keys import ingest_applied
from helpers.redis_server import RedisServer, free_port
from helpers.writer import RedisWriter
from tests.daemon_proc import wait_for


def payload(i: int) -> bytes:
    batch = Batch()
    batch.incrby("total", i)
    batch.lpush_capped("order", str(i), 100000)
    return batch.encode()


def make_writer(url: str, journal: Path, *, backlog: int = 4) -> RedisWriter:
    return RedisWriter(RedisConfig(url=url, socket_timeout=0.5),
                       WriterConfig(backlog_max_batches=backlog, retry_max_seconds=0.2,
                                    journal_dir=str(journal)), {}, journal_dir=journal)


def segments(journal: Path) -> list[str]:
    return sorted(p.name for p in journal.glob("*.jnl"))


def applied_order(srv: RedisServer) -> list[int]:
    return [int(x) for x in reversed(srv.client().lrange("order", 0, -1))]


@pytest.fixture
def down_port() -> int:
    """A port where no Redis listens (yet)."""
    return free_port()


# --- the journal files ---------------------------------------------------------------


def test_segment_round_trip_is_atomic_and_sorted(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "redis://x/0", max_file_bytes=1 << 20)
    assert journal.open() == []
    batches = [SealedBatch("w1", i, payload(i), i, 1.5) for i in (7, 8, 9)]
    seg = journal.write(batches)
    later = journal.write([SealedBatch("w1", 10, payload(10), 1, 2.0)])
    assert journal.read(seg) == batches
    assert seg.count == 3 and seg.writer == "w1"
    assert segments(tmp_path) == sorted([seg.path.name, later.path.name])
    assert seg.path.name < later.path.name
    assert not list(tmp_path.glob(".tmp-*"))
    journal.close()


def test_split_bounds_file_size_and_keeps_one_writer_per_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "redis://x/0", max_file_bytes=25)
    batches = [SealedBatch("a", 1, b"x" * 10, 1, 0), SealedBatch("a", 2, b"x" * 10, 1, 0),
               SealedBatch("a", 3, b"x" * 10, 1, 0), SealedBatch("a", 4, b"x" * 40, 1, 0),
               SealedBatch("b", 1, b"x", 1, 0)]
    runs = journal.split(batches)
    assert [[(b.writer, b.seq) for b in run] for run in runs] == [
        [("a", 1), ("a", 2)], [("a", 3)], [("a", 4)], [("b", 1)]]


def test_damaged_segment_is_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "redis://x/0", max_file_bytes=1 << 20)
    journal.open()
    seg = journal.write([SealedBatch("w1", 1, payload(1), 1, 0.0)])
    data = bytearray(seg.path.read_bytes())
    data[-3] ^= 0xFF
    seg.path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="damaged"):
        journal.read(seg)


def test_a_second_process_cannot_share_the_journal(tmp_path: Path) -> None:
    first = Journal(tmp_path, "redis://x/0", 1 << 20)
    first.open()
    with pytest.raises(JournalError, match="in use by another misp-ingest"):
        Journal(tmp_path, "redis://x/0", 1 << 20).open()
    first.close()
    Journal(tmp_path, "redis://x/0", 1 << 20).open()


def test_segments_for_another_redis_are_left_alone(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    other = Journal(tmp_path, "redis://elsewhere:6380/0", 1 << 20)
    other.open()
    seg = other.write([SealedBatch("w1", 1, payload(1), 1, 0.0)])
    other.close()
    assert Journal(tmp_path, "redis://here:6379/0", 1 << 20).open() == []
    assert seg.path.exists()
    assert "for Redis redis://elsewhere:6380/0, not redis://here:6379/0" in caplog.text


def test_journal_directory_that_cannot_be_created_is_reported_at_start(
        tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    writer = make_writer(redis_server.url, blocker / "journal")
    with caplog.at_level(logging.ERROR):
        writer.start()
    assert f"cannot create the journal directory {blocker / 'journal'}" in caplog.text
    assert "set writer.journal_dir" in caplog.text
    writer.submit(payload(1), 1)  # still works, in memory
    assert writer.drain(5)
    writer.stop()


# --- the writer and the journal --------------------------------------------------------


def test_backlog_beyond_its_bound_goes_to_the_journal_and_is_replayed_in_order_once(
        tmp_path: Path, down_port: int) -> None:
    writer = make_writer(f"redis://127.0.0.1:{down_port}/0", tmp_path, backlog=4)
    writer.start()
    for i in range(1, 31):
        writer.submit(payload(i), 1)
    wait_for(lambda: writer.outage_since is not None, 5, "the outage to be noticed")
    assert segments(tmp_path), "no journal segment was written"
    assert writer.backlog <= 4
    assert writer.backlog + writer.journal_batches == 30
    with RedisServer(port=down_port) as srv:
        assert writer.drain(15)
        assert applied_order(srv) == list(range(1, 31))
        assert int(srv.client().get("total") or 0) == sum(range(1, 31))
        assert segments(tmp_path) == []
        assert (writer.backlog, writer.journal_batches, writer.outage_since) == (0, 0, None)
        assert writer.journaled_batches >= 26
        writer.stop()


def test_journal_is_replayed_after_a_restart_under_the_old_writer_id_and_only_once(
        tmp_path: Path, down_port: int) -> None:
    journal = tmp_path / "journal"
    first = make_writer(f"redis://127.0.0.1:{down_port}/0", journal, backlog=100)
    first.start()
    for i in range(1, 11):
        first.submit(payload(i), 1)
    assert first.spill_all() == 10  # what shutdown does when Redis is down
    first.stop()
    saved = tmp_path / "saved"
    shutil.copytree(journal, saved, ignore=shutil.ignore_patterns(".lock"))
    with RedisServer(port=down_port) as srv:
        second = make_writer(srv.url, journal)
        second.start()
        second.submit(payload(11), 1)  # a new batch waits for the old ones
        assert second.drain(10)
        second.stop()
        assert applied_order(srv) == list(range(1, 12))
        assert srv.client().get(ingest_applied(first.writer_id)) == b"10"
        # A crash after applying but before deleting the files: they are replayed again.
        for name in segments(saved):
            shutil.copy(saved / name, journal / name)
        third = make_writer(srv.url, journal)
        third.start()
        assert third.drain(10)
        third.stop()
        assert third.duplicates_skipped == 10
        assert applied_order(srv) == list(range(1, 12))
        assert int(srv.client().get("total") or 0) == sum(range(1, 12))
        assert segments(journal) == []


# --- exactly once when the reply is lost ---------------------------------------------------


def test_a_retried_batch_that_was_applied_is_a_no_op(tmp_path: Path,
                                                      redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.flushall()
    writer = make_writer(redis_server.url, tmp_path)
    seq = writer.submit(payload(5), 1)
    writer.start()
    assert writer.drain(5)
    again = writer.script(keys=[writer.marker], args=[seq, payload(5), 0])
    assert [int(x) for x in again] == [-1, 0]
    assert client.get("total") == b"5" and client.lrange("order", 0, -1) == [b"5"]
    writer.stop()


class ReplyEater:
    """A TCP relay to Redis that, once armed, forwards the next command but drops its
    reply and cuts the connection: Redis executed the batch, the writer never hears."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.eaten = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if replies and self.armed.is_set():
                    self.armed.clear()
                    self.eaten.set()
                    break
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # a FIN now, even while the other thread reads
            s.close()


def test_a_reply_lost_after_redis_applied_the_batch_does_not_apply_it_twice(
        tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    client = redis_server.client()
    client.flushall()
    relay = ReplyEater(redis_server.port)
    writer = make_writer(f"redis://127.0.0.1:{relay.port}/0", tmp_path)
    caplog.set_level(logging.INFO, logger="helpers.writer")
    writer.start()
    writer.submit(payload(1), 1)  # loads the script: the next call is one EVALSHA
    assert writer.drain(5)
    relay.armed.set()
    writer.submit(payload(2), 1)
    assert writer.drain(10)
    assert relay.eaten.is_set()
    assert writer.duplicates_skipped == 1
    assert client.get("total") == b"3"
    assert client.lrange("order", 0, -1) == [b"2", b"1"]
    assert "batch 2 of writer" in caplog.text and "not applied again" in caplog.text
    writer.stop()
    relay.listener.close()



def test_a_batch_the_script_fails_on_is_set_aside_and_the_next_ones_go_on(
        tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    client = redis_server.client()
    client.flushall()
    writer = make_writer(redis_server.url, tmp_path)
    writer.start()
    writer.submit(payload(1), 1)
    writer.submit(b"not an op list", 7)  # a bug somewhere: the script cannot decode it
    writer.submit(payload(3), 1)
    assert writer.drain(5)
    writer.stop()
    assert client.lrange("order", 0, -1) == [b"3", b"1"]
    assert writer.rejected_batches == 1 and writer.outage_since is None
    (rejected,) = (tmp_path / "rejected").glob("*.jnl")
    journal = Journal(tmp_path, writer.journal.target, 1 << 20)
    assert journal.open() == []  # never replayed
    (seg,) = [s for s in [journal._read_header(rejected)] if s]
    assert [(b.seq, b.payload, b.messages) for b in journal.read(seg)] == \
        [(2, b"not an op list", 7)]
    assert "the batch script failed on batch 2" in caplog.text
    assert "7 messages" in caplog.text


def test_an_unexpected_error_in_the_writer_thread_is_retried_not_fatal(
        tmp_path: Path, redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.flushall()
    writer = make_writer(redis_server.url, tmp_path)
    real_script, calls = writer.script, []

    def odd_once(**kwargs: object) -> object:  # a client library failing in an odd way
        calls.append(kwargs)
        if len(calls) == 1:
            raise ValueError("odd")
        return real_script(**kwargs)  # type: ignore[arg-type]

    writer.script = odd_once  # type: ignore[assignment]
    writer.start()
    writer.submit(payload(4), 1)
    assert writer.drain(5)
    writer.stop()
    assert len(calls) == 2
    assert client.get("total") == b"4"


def test_a_long_outage_is_recalled_periodically_not_at_every_retry(
        tmp_path: Path, down_port: int, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("helpers.writer.OUTAGE_REMINDER_SECONDS", 0.5)
    caplog.set_level(logging.DEBUG, logger="helpers.writer")
    writer = make_writer(f"redis://127.0.0.1:{down_port}/0", tmp_path)
    writer.start()
    writer.submit(payload(1), 1)
    wait_for(lambda: "still unreachable" in caplog.text, 5, "a reminder")
    time.sleep(1.2)
    writer.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    retries = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len([m for m in warnings if "unreachable (" in m and "still" not in m]) == 1
    reminders = [m for m in warnings if "still unreachable after" in m]
    assert 2 <= len(reminders) <= 4  # one per 0.5 s over about 1.5 s
    assert "1 batch(es) in memory, 0 in the journal" in reminders[0]
    assert len(retries) > len(reminders)  # the retries themselves only at DEBUG
