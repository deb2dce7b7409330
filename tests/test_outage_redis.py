"""Redis outages while tens of thousands of messages are published: nothing is lost,
nothing is counted twice.

Each test publishes the same feed in three equal parts: before the fault, during
it (the daemon must keep draining ZeroMQ and hold the batches), and after it.
The keys must then equal those of an undisturbed ingestion of the same feed,
exactly.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers.redis_server import RedisServer, free_port
from tests.daemon_proc import wait_for
from tests.outage_kit import Misp, RunningDaemon, daemon_config, dump, feed, reference

N = 24000


@pytest.fixture
def misp() -> Iterator[Misp]:
    m = Misp(free_port()).bind()
    yield m
    m.destroy()


def run_through_fault(srv: RedisServer, misp: Misp, journal: Path,
                      begin: Callable[[], None], end: Callable[[], None],
                      min_fault_seconds: float = 0.0) -> RunningDaemon:
    """Publish a third of the feed, ``begin()`` the fault, publish the second third
    (checking it is all received and held), ``end()`` it, publish the rest; the
    daemon is stopped and the keys checked against the undisturbed run."""
    frames, third = feed(N), N // 3
    expected = reference(N)
    daemon = RunningDaemon(daemon_config(srv.url, misp.url, str(journal)))
    try:
        misp.wait_subscriber()
        misp.send(frames[:third])
        daemon.wait_received(third)
        begin()
        began = time.monotonic()
        misp.send(frames[third:2 * third])
        daemon.wait_received(2 * third)  # the loop never waits for Redis
        writer = daemon.writer
        wait_for(lambda: writer.outage_since is not None or writer.outage_seconds_total > 0, 5,
                 "the outage to be noticed")
        if writer.outage_since is not None:  # (a loaded machine may be slower than the fault)
            assert writer.backlog + writer.journal_batches > 0
        time.sleep(max(0.0, min_fault_seconds - (time.monotonic() - began)))
        end()
        misp.send(frames[2 * third:])
        daemon.wait_received(N)
        assert daemon.writer.drain(30), "the held batches were not all applied"
    finally:
        daemon.stop()
    client = srv.client()
    assert dump(client) == expected
    status = {k.decode(): v.decode() for k, v in client.hgetall("INGEST:status:misp1").items()}
    assert (status["received"], status["errors"]) == (str(N), "0")
    # The final status was written before Redis took the last batches: no backlog check.
    assert (status["redis_outage"], status["redis_outage_seconds"]) == ("0", "0")
    assert int(status["redis_outage_seconds_total"]) >= 1
    return daemon


def test_client_pause_loses_nothing_and_counts_nothing_twice(
        tmp_path: Path, misp: Misp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="helpers.writer")
    pause_ms = 8000
    with RedisServer() as srv:
        admin = srv.client()
        paused = 0.0

        def pause() -> None:
            nonlocal paused
            admin.execute_command("CLIENT", "PAUSE", pause_ms, "ALL")
            paused = time.monotonic()

        def wait_for_the_end() -> None:
            # Under ALL, CLIENT UNPAUSE would wait too: the pause ends when it expires.
            time.sleep(max(0.0, paused + pause_ms / 1000 - time.monotonic()))

        run_through_fault(srv, misp, tmp_path, begin=pause, end=wait_for_the_end)
    outage = [r.getMessage() for r in caplog.records]
    # One line when it starts, one when it ends: no flood while it lasts.
    assert len([m for m in outage if "unreachable" in m]) == 1
    assert len([m for m in outage if "is back after" in m]) == 1


def test_stopped_redis_loses_nothing_and_counts_nothing_twice(tmp_path: Path,
                                                              misp: Misp) -> None:
    with RedisServer() as srv:
        assert srv.proc is not None
        pid = srv.proc.pid
        daemon = run_through_fault(srv, misp, tmp_path,
                                   begin=lambda: os.kill(pid, signal.SIGSTOP),
                                   end=lambda: os.kill(pid, signal.SIGCONT),
                                   min_fault_seconds=2.5)
    # The batch in flight when Redis froze timed out on our side, yet Redis ran it once
    # it woke up: the retry found the marker and was skipped.
    assert daemon.writer.duplicates_skipped >= 1


def test_redis_killed_and_restarted_with_aof_loses_nothing_and_counts_nothing_twice(
        tmp_path: Path, misp: Misp) -> None:
    # appendfsync always: a batch Redis acknowledged is on disk; together with the
    # marker in the same script, a kill at any moment leaves both or neither.
    with RedisServer(appendonly=True, extra=["--appendfsync", "always"]) as srv:
        run_through_fault(srv, misp, tmp_path, begin=srv.kill, end=srv.start,
                          min_fault_seconds=1.0)
