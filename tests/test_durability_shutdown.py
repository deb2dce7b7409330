"""Batches Redis has not taken survive an outage longer than the memory bound and a
daemon stop (SIGTERM) during the outage: they wait in the journal and are applied,
once, in order, when Redis is back -- by the same daemon or the next one."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import orjson

from helpers.keys import ingest_applied
from helpers.redis_server import RedisServer, free_port
from tests.daemon_proc import DaemonProcess, base_config, wait_for
from tests.factories import DAY
from tests.outage_kit import Misp, RunningDaemon, daemon_config, dump, feed, reference

N = 6000


def segment_headers(journal: Path) -> list[dict[str, object]]:
    headers = []
    for path in sorted(journal.glob("*.jnl")):
        with open(path, "rb") as f:
            headers.append(orjson.loads(f.readline()))
    return headers


def test_outage_longer_than_the_backlog_bound_goes_to_the_journal_and_is_applied_once(
        tmp_path: Path) -> None:
    srv = RedisServer(port=free_port())  # not started yet: Redis is down from the start
    misp = Misp(free_port()).bind()
    daemon = RunningDaemon(daemon_config(srv.url, misp.url, str(tmp_path),
                                         backlog_max_batches=8))
    try:
        misp.wait_subscriber()
        misp.send(feed(N))
        daemon.wait_received(N)
        wait_for(lambda: daemon.writer.journal_batches > 0, 5, "batches in the journal")
        assert segment_headers(tmp_path)
        assert daemon.writer.backlog <= 9  # the bound, plus one sealed since the check
        srv.start()
        assert daemon.writer.drain(20)
        assert segment_headers(tmp_path) == []
        assert daemon.writer.journal_batches == 0
    finally:
        daemon.stop()
        misp.destroy()
    try:
        assert dump(srv.client()) == reference(N)
    finally:
        srv.cleanup()


def test_sigterm_during_an_outage_journals_everything_then_the_next_start_applies_it(
        tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    misp = Misp(free_port()).bind()
    srv = RedisServer().start()
    config = base_config(srv.url, misp.url, writer={"journal_dir": str(journal),
                                                    "retry_max_seconds": 0.5},
                         summary_interval_seconds=0.2, status_interval_seconds=0.2)
    config["redis"]["socket_timeout"] = 1.0
    proc = DaemonProcess(tmp_path, config).start()
    try:
        misp.wait_subscriber()
        srv.kill()  # nothing but status hashes written so far
        misp.send(feed(N))
        proc.wait_log(f"misp1: received={N} ")
        started = time.monotonic()
        proc.signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5
    finally:
        proc.stop()
        misp.destroy()
    assert "saved to the journal" in proc.stderr
    headers = segment_headers(journal)
    assert headers, "nothing was journaled"
    (old_writer,) = {h["writer"] for h in headers}
    last_seq = max(b[0] for h in headers for b in h["batches"])  # type: ignore[attr-defined]
    # Every message the daemon received is in the journal (status batches carry none).
    assert sum(b[1] for h in headers for b in h["batches"]) == N  # type: ignore[attr-defined]
    srv.start()  # an empty Redis on the same port
    try:
        daemon = RunningDaemon(daemon_config(srv.url, "tcp://127.0.0.1:1", str(journal)))
        wait_for(lambda: daemon.writer.journal_batches == 0 and not segment_headers(journal),
                 20, "the journal to be replayed")
        assert daemon.writer.drain(10)
        daemon.stop()
        client = srv.client()
        assert client.get(ingest_applied(str(old_writer))) == str(last_seq).encode()
        # The process stamped the messages with its own clock: compare the day's counts.
        day = time.strftime("%Y%m%d", time.gmtime())
        expected = trendings(reference(N), DAY)
        assert len(expected) == 6  # events, categories, tags, discussions, 2 sighting kinds
        assert trendings(dump(client), day) == expected
    finally:
        srv.cleanup()


def trendings(keys: dict[bytes, Any], day: str) -> dict[bytes, Any]:
    """The TRENDINGS_* keys of ``day`` (pure counts of the feed's content), day removed."""
    suffix = f":{day}".encode()
    return {k.removesuffix(suffix): v for k, v in keys.items()
            if k.startswith(b"TRENDINGS_") and k.endswith(suffix)}
