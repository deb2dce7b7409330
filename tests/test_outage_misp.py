"""MISP restarts: the SUB socket reconnects by itself, ``connected`` in the status
follows the real connection (socket monitor), a silent feed is reported once, and
the messages sent after the restart are all counted."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import redis

from helpers.redis_server import RedisServer, free_port
from tests.daemon_proc import wait_for
from tests.outage_kit import Misp, RunningDaemon, daemon_config, dump, feed, reference

N = 6000


def status(client: redis.Redis, field: str) -> str | None:
    value = client.hget("INGEST:status:misp1", field)
    return value.decode() if value is not None else None


def test_publisher_restart_reconnects_and_counts_what_is_sent_after(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames, half = feed(N), N // 2
    misp = Misp(free_port())
    with RedisServer() as srv:
        client = srv.client()
        cfg = dataclasses.replace(daemon_config(srv.url, misp.url, str(tmp_path)),
                                  silence_warning_seconds=1)
        daemon = RunningDaemon(cfg)
        try:
            wait_for(lambda: status(client, "connected") == "0", 5, "status with connected=0")
            misp.bind().wait_subscriber()
            wait_for(lambda: status(client, "connected") == "1", 5, "connected=1")
            misp.send(frames[:half])
            daemon.wait_received(half)
            caplog.clear()
            caplog.set_level(logging.INFO, logger="helpers.daemon")
            misp.close()  # MISP goes away
            wait_for(lambda: status(client, "connected") == "0", 5, "connected=0 after the close")
            wait_for(lambda: "no message for" in caplog.text, 5, "the silence warning")
            assert "(connected=0)" in caplog.text
            assert "disconnected from MISP; reconnecting" in caplog.text
            misp.bind().wait_subscriber()  # MISP is back on the same port
            wait_for(lambda: status(client, "connected") == "1", 5, "connected=1 again")
            misp.send(frames[half:])
            daemon.wait_received(N)
            wait_for(lambda: "misp1: messages again" in caplog.text, 5, "the all-clear")
            assert len([r for r in caplog.records if "no message for" in r.getMessage()]) == 1
            assert daemon.writer.drain(10)
        finally:
            daemon.stop()
            misp.destroy()
        assert dump(client) == reference(N)
        assert status(client, "received") == str(N)
