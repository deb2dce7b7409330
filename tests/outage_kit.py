"""What the fault tests share: a feed of tens of thousands of small messages of
every counting topic, the daemon running in a thread against real sockets, a
publisher standing for MISP, and full key dumps to compare runs with.

The reference for a feed is an undisturbed ingestion of the same frames into a
private Redis; every fault run must end with exactly the same keys (``INGEST:*``
excluded: they describe the run, not the data; TTLs excluded).
"""

from __future__ import annotations

import tempfile
import threading
import time
from functools import cache
from typing import Any

import redis
import zmq

from helpers.config import Config, InstanceConfig, RedisConfig, WriterConfig
from helpers.daemon import Daemon
from helpers.redis_server import RedisServer
from helpers.stats import InstanceStats
from tests import factories as f
from tests.daemon_proc import wait_for

NOW = f.NOW  # every message is received "now": the runs must not depend on the wall clock
ORGS = ("CERT-Example", "CIRCL", "Example Bank", "ACME SOC", "Org Ñ", "NorthCERT")
CATEGS = ("Network activity", "Payload delivery", "External analysis", "Artifacts dropped",
          "Other")
TAGS = (f.TLP_AMBER, f.KILL_CHAIN, {"id": "7", "name": "tlp:green", "colour": "#33FF00"})


def message(i: int) -> bytes:
    """The ``i``-th frame of the test feed (deterministic)."""
    org_id, org = str(i % 6 + 1), ORGS[i % 6]
    kind = i % 10
    if kind == 1:
        return f.frame("misp_json_sighting", f.sighting_msg(str(i // 10 % 2), org_id, "add",
                                                             CATEGS[i % 5]))
    if kind == 2:
        return f.frame("misp_json_event", f.event_msg(event_tags=[TAGS[i % 3]],
                                                      info=f"Event {i % 97}"))
    if kind == 3:
        return f.frame("misp_json_tag", f.tag_msg(tag=TAGS[i % 3]))
    if kind == 4:
        return f.frame("misp_json_audit", f.audit_login_msg(org))
    if kind == 5:
        return f.frame("misp_json_conversation", f.thread_msg(f"Thread {i % 41}"))
    if kind == 6:
        return f.frame("misp_json_conversation", f.post_msg(str(i % 41), org))
    if kind == 7:
        return f.frame("misp_json_self", f.KEEPALIVE)
    attr = f.attribute(CATEGS[i % 5], "ip-dst", f"198.51.{i % 7}.{i % 200}",
                       Tag=[TAGS[i % 3]] if i % 3 == 0 else [])
    msg = f.attribute_msg(attr, info=f"Event {i % 97}")
    msg["Event"]["Orgc"] = {"id": org_id, "name": org}
    return f.frame("misp_json_attribute", msg)


@cache
def feed(n: int) -> tuple[bytes, ...]:
    return tuple(message(i) for i in range(n))


def dump(client: redis.Redis) -> dict[str, Any]:
    """Every key but ``INGEST:*`` with its full value (no TTLs)."""
    out: dict[str, Any] = {}
    for key in client.scan_iter(count=1000):
        if key.startswith(b"INGEST:"):
            continue
        kind = client.type(key)
        if kind == b"string":
            out[key] = client.get(key)
        elif kind == b"hash":
            out[key] = client.hgetall(key)
        elif kind == b"zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            out[key] = sorted(client.smembers(key))
        elif kind == b"list":
            out[key] = client.lrange(key, 0, -1)
        else:
            raise AssertionError(f"unexpected type {kind!r} of {key!r}")
    return out


def daemon_config(redis_url: str, pub_url: str, journal_dir: str, **writer: Any) -> Config:
    """One feed ``misp1``; short timeouts so that an outage is noticed within a second."""
    return Config(redis=RedisConfig(url=redis_url, socket_timeout=1.0),
                  instances=(InstanceConfig("misp1", url=pub_url),), timezone="UTC",
                  writer=WriterConfig(journal_dir=journal_dir, retry_max_seconds=0.5, **writer),
                  status_interval_seconds=0.1)


@cache
def reference(n: int) -> dict[str, Any]:
    """The keys an undisturbed ingestion of ``feed(n)`` leaves (computed once per size)."""
    with RedisServer() as srv, tempfile.TemporaryDirectory() as journal:
        daemon = Daemon(daemon_config(srv.url, "tcp://127.0.0.1:1", journal),
                        clock=lambda: NOW)
        daemon.writer.start()
        for frame in feed(n):
            daemon.dispatcher.handle("misp1", frame, NOW)
            if daemon.dispatcher.batch.messages >= 500:
                daemon._seal(daemon.dispatcher.take_batch())
        daemon._seal(daemon.dispatcher.take_batch())
        assert daemon.writer.drain(60)
        daemon.writer.stop()
        daemon.zmq.destroy(linger=0)
        assert daemon.instances["misp1"][1].errors == 0
        return dump(srv.client())


class RunningDaemon:
    """The real daemon loop in a thread, with a fixed clock (its sockets stay in it)."""

    def __init__(self, cfg: Config) -> None:
        self.daemon = Daemon(cfg, clock=lambda: NOW)
        self.writer = self.daemon.writer
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daemon", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.daemon.start()
            while not self._stop.is_set():
                self.daemon.step(20)
            self.daemon.shutdown()
        except BaseException as exc:  # re-raised by stop()
            self.error = exc

    @property
    def stats(self) -> InstanceStats:
        return self.daemon.instances["misp1"][1]

    def wait_received(self, n: int, timeout: float = 30.0) -> None:
        wait_for(lambda: self.stats.received >= n or self.error, timeout,
                 f"{n} messages received (have {self.stats.received})")
        assert self.error is None, self.error
        assert self.stats.received == n

    def stop(self) -> float:
        """Stop as on SIGTERM; returns how long the shutdown took."""
        started = time.monotonic()
        self._stop.set()
        self._thread.join(15)
        assert not self._thread.is_alive(), "the daemon did not stop"
        if self.error is not None:
            raise self.error
        return time.monotonic() - started


class Misp:
    """An XPUB socket on a fixed port standing for MISP's publisher; it can be closed
    and bound again on the same port, as when MISP restarts."""

    def __init__(self, port: int) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.url = f"tcp://127.0.0.1:{port}"
        self.sock: zmq.Socket[Any] | None = None

    def bind(self) -> Misp:
        sock = self.ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.LINGER, 2000)
        deadline = time.monotonic() + 5
        while True:
            try:
                sock.bind(self.url)
                break
            except zmq.ZMQError:  # the previous socket's port is released asynchronously
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock = sock
        return self

    def wait_subscriber(self, timeout: float = 10.0) -> None:
        assert self.sock is not None
        assert self.sock.poll(int(timeout * 1000)), "the daemon did not subscribe"
        self.sock.recv()

    def send(self, frames: tuple[bytes, ...], chunk: int = 1000) -> None:
        """Publish steadily, like a busy MISP (not one burst)."""
        assert self.sock is not None
        for start in range(0, len(frames), chunk):
            for frame in frames[start:start + chunk]:
                self.sock.send(frame)
            time.sleep(0.005)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    def destroy(self) -> None:
        self.close()
        self.ctx.destroy(linger=0)
