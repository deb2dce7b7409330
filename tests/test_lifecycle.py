"""Signals and the systemd notify protocol, on the daemon run as a real process."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helpers.daemon import Daemon
from helpers.geo_helper import Geo
from helpers.redis_server import RedisServer, free_port
from helpers.sdnotify import Notifier
from tests.daemon_proc import (
    DaemonProcess,
    Publisher,
    base_config,
    make_config,
    sighting,
    wait_for,
)


@pytest.fixture
def pub() -> Iterator[Publisher]:
    p = Publisher()
    yield p
    p.close()


@pytest.fixture
def procs() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        d.stop()


def sightings_total(r: redis.Redis) -> int:
    return sum(int(r.get(k) or 0) for k in r.scan_iter("TRENDINGS_SIGHT_sightings:*"))


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_flushes_what_was_received_and_exits_0_within_5_s(
        sig: int, tmp_path: Path, r: redis.Redis, redis_server: RedisServer, pub: Publisher,
        procs: list[DaemonProcess]) -> None:
    port = free_port()
    # Nothing is flushed by time (60 s window, no status refresh): only the stop can flush.
    cfg = base_config(redis_server.url, pub.url, status_interval_seconds=3600,
                      writer={"flush_interval_ms": 60000, "max_batch_messages": 100000},
                      metrics={"listen": f"127.0.0.1:{port}"})
    d = DaemonProcess(tmp_path, cfg).start()
    procs.append(d)
    d.wait_log("started:")
    pub.wait_subscriber()
    # The first status (written on the first loop turn) seals a batch: let it pass first.
    wait_for(lambda: r.exists("INGEST:status:misp1"), what="the first status")
    for i in range(3000):
        pub.send("misp_json_sighting", sighting(i))
    wanted = 'misp_ingest_received_total{instance="misp1",topic="misp_json_sighting"} 3000'
    wait_for(lambda: wanted in scrape(port), timeout=30, what="3000 messages received")
    assert sightings_total(r) == 0  # still pending in the daemon

    started = time.monotonic()
    d.signal(sig)
    assert d.wait(5) == 0
    assert time.monotonic() - started < 5.0, d.stderr
    assert sightings_total(r) == 3000
    status = r.hgetall("INGEST:status:misp1")
    assert (status[b"received"], status[b"processed"], status[b"connected"]) == \
        (b"3000", b"3000", b"0")
    assert "stopping: no longer receiving; flushing 3000 pending message(s)" in d.stderr


def test_sigterm_exits_0_within_5_s_even_when_redis_hangs(
        tmp_path: Path, pub: Publisher, procs: list[DaemonProcess]) -> None:
    with RedisServer() as frozen:
        cfg = base_config(frozen.url, pub.url, redis={"url": frozen.url, "socket_timeout": 30})
        d = DaemonProcess(tmp_path, cfg).start()
        procs.append(d)
        d.wait_log("started:")
        pub.wait_subscriber()
        wait_for(lambda: frozen.client().exists("INGEST:status:misp1"), what="first status")
        assert frozen.proc is not None
        frozen.proc.send_signal(signal.SIGSTOP)  # a hung Redis: connected, never answering
        try:
            for i in range(100):
                pub.send("misp_json_sighting", sighting(i))
            time.sleep(0.5)
            started = time.monotonic()
            d.signal(signal.SIGTERM)
            assert d.wait(6) == 0
            assert time.monotonic() - started < 5.0
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
    assert "saved to the journal" in d.stderr  # kept for the next start, not lost


def test_a_second_stop_signal_exits_at_once_while_the_flush_waits(
        tmp_path: Path, pub: Publisher, procs: list[DaemonProcess]) -> None:
    with RedisServer() as frozen:
        cfg = base_config(frozen.url, pub.url, redis={"url": frozen.url, "socket_timeout": 30})
        d = DaemonProcess(tmp_path, cfg).start()
        procs.append(d)
        d.wait_log("started:")
        wait_for(lambda: frozen.client().exists("INGEST:status:misp1"), what="first status")
        assert frozen.proc is not None
        frozen.proc.send_signal(signal.SIGSTOP)  # the final flush now waits for Redis
        try:
            d.signal(signal.SIGTERM)
            d.wait_log("stopping:")
            time.sleep(0.2)
            assert d.proc is not None and d.proc.poll() is None  # still flushing
            started = time.monotonic()
            d.signal(signal.SIGINT)
            assert d.wait(2) == 128 + signal.SIGINT
            assert time.monotonic() - started < 1.5
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
    assert "second stop signal: exiting at once" in d.stderr


def test_sighup_reopens_the_log_file_after_it_was_moved(
        tmp_path: Path, redis_server: RedisServer, pub: Publisher,
        procs: list[DaemonProcess]) -> None:
    log_file = tmp_path / "daemon.log"
    d = DaemonProcess(tmp_path, base_config(redis_server.url, pub.url,
                                            logging={"file": str(log_file)})).start()
    procs.append(d)
    d.wait_log("started:", path=log_file)
    rotated = tmp_path / "daemon.log.1"
    log_file.rename(rotated)  # what logrotate does before it signals

    d.signal(signal.SIGHUP)
    d.wait_log("SIGHUP: log files reopened", path=log_file)
    d.signal(signal.SIGTERM)
    assert d.wait(5) == 0
    new_lines = log_file.read_text(encoding="utf-8")
    old_lines = rotated.read_text(encoding="utf-8")
    assert "started:" in old_lines and "started:" not in new_lines
    assert "SIGHUP" not in old_lines
    assert "stopping: no longer receiving" in new_lines  # later lines keep going to it
    # The GeoIP database was really reopened by this SIGHUP (it announces itself).
    assert "geo: using the GeoLite2-City database" in old_lines
    assert "geo: using the GeoLite2-City database" in new_lines


def test_sighup_reloads_the_geoip_database(redis_server: RedisServer) -> None:
    cfg = make_config(redis_server.url)
    daemon = Daemon(cfg)
    (geo,) = [f for f in daemon.features if isinstance(f, Geo)]
    calls: list[str] = []
    geo.reload = lambda: calls.append("reload")  # type: ignore[method-assign]
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        daemon._install_signals()
        os.kill(os.getpid(), signal.SIGHUP)
        daemon.step(timeout_ms=0)
        assert calls == ["reload"]
        daemon.step(timeout_ms=0)
        assert calls == ["reload"]  # once per SIGHUP
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        daemon.zmq.destroy(linger=0)


def test_sd_notify_ready_watchdog_and_stopping(
        tmp_path: Path, redis_server: RedisServer, pub: Publisher,
        procs: list[DaemonProcess]) -> None:
    sock_dir = tempfile.mkdtemp(prefix="mi-notify-")  # AF_UNIX paths must stay short
    address = os.path.join(sock_dir, "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(10)
        d = DaemonProcess(tmp_path, base_config(redis_server.url, pub.url),
                          env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}).start()
        procs.append(d)

        def receive() -> str:
            return listener.recv(4096).decode()

        assert receive() == "READY=1"
        # READY comes after the feeds' sockets exist (systemd orders dependants on it).
        assert "subscribing to" in d.stderr and "started:" in d.stderr
        started = time.monotonic()
        messages = [receive() for _ in range(5)]
        assert messages == ["WATCHDOG=1"] * 5  # every WATCHDOG_USEC/2 = 0.1 s
        assert 0.3 < time.monotonic() - started < 3.0  # paced, not sent on every loop turn
        d.signal(signal.SIGTERM)
        while (msg := receive()) == "WATCHDOG=1":
            pass
        assert msg == "STOPPING=1"
        assert d.wait(5) == 0
    os.unlink(address)
    os.rmdir(sock_dir)


def test_notifier_speaks_to_an_abstract_socket_and_reads_the_watchdog_period() -> None:
    name = f"misp-ingest-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000"})
        assert notifier.watchdog_interval == 15.0
        notifier.ready()
        notifier.status("misp1: received=3")
        notifier.stopping()
        assert [listener.recv(100) for _ in range(3)] == [
            b"READY=1", b"STATUS=misp1: received=3", b"STOPPING=1"]


def test_notifier_is_silent_outside_systemd() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "garbage"})
    assert (notifier.address, notifier.watchdog_interval) == (None, None)
    notifier.ready()  # nothing to send to: no error either
