"""``zmq_subscriber.py demo``: the daemon's main job on a bundled sample feed.

Starts a private Redis, binds one ZeroMQ PUB socket per instance found in the
capture, runs the real daemon against them (in a thread, as configured by a
:class:`Config` like any other), publishes the capture, waits until the
daemon has counted every frame, stops it cleanly and prints what landed.
Nothing outside the temporary Redis is touched.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import zmq

from helpers import keys
from helpers.capture import CapturedFrame, read_capture
from helpers.config import Config, InstanceConfig, RedisConfig, WriterConfig
from helpers.daemon import Daemon
from helpers.redis_server import RedisServer
from helpers.samples import DEFAULT_PATH
from helpers.status_cli import print_status
from helpers.writer import text

CONNECT_TIMEOUT = 15.0
INGEST_TIMEOUT = 30.0


class DemoError(RuntimeError):
    """The demo could not complete; the message says what went wrong."""


class DaemonThread:
    """The real daemon, stepping in a thread (its sockets never leave that thread)."""

    def __init__(self, cfg: Config) -> None:
        self.daemon = Daemon(cfg)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="daemon", daemon=True)

    def _run(self) -> None:
        try:
            self.daemon.start()
            try:
                while not self.stop_event.is_set():
                    self.daemon.step(50)
            finally:
                self.daemon.shutdown()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise DemoError("the daemon did not stop within 10 s")
        if self.error is not None:
            raise DemoError(f"the daemon failed: {self.error!r}")


def wait_for(what: str, check: Callable[[], bool], timeout: float,
             daemon: DaemonThread | None = None) -> None:
    """Poll ``check`` until true; DemoError naming ``what`` on timeout or daemon failure."""
    deadline = time.monotonic() + timeout
    while not check():
        if daemon is not None and daemon.error is not None:
            raise DemoError(f"the daemon failed while waiting for {what}: {daemon.error!r}")
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def status_field(client: redis.Redis, instance: str, name: str) -> str:
    """One field of an instance's status hash, as text ("" if absent)."""
    value = client.hget(keys.ingest_status(instance), name)
    return text(value) if value is not None else ""


def bind_publishers(ctx: zmq.Context[Any], instances: list[str]) -> dict[str, Any]:
    """One XPUB socket per instance: it publishes like PUB and also tells us when
    the daemon's subscription has arrived, so no frame is sent into the void."""
    socks: dict[str, Any] = {}
    for name in instances:
        sock = ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.LINGER, 2000)
        sock.bind_to_random_port("tcp://127.0.0.1")
        socks[name] = sock
    return socks


def wait_subscribed(socks: dict[str, Any], timeout: float) -> None:
    for name, sock in socks.items():
        if not sock.poll(int(timeout * 1000)):
            raise DemoError(f"the daemon never subscribed to the feed of {name}")
        sock.recv()  # b"\x01": subscribe to everything


def publish_and_wait(client: redis.Redis, socks: dict[str, Any],
                     frames: list[CapturedFrame], daemon: DaemonThread) -> None:
    expected = Counter(f.instance for f in frames)
    wait_for("every instance to show connected=1 in INGEST:status",
             lambda: all(status_field(client, n, "connected") == "1" for n in socks),
             CONNECT_TIMEOUT, daemon)
    wait_subscribed(socks, CONNECT_TIMEOUT)
    for item in frames:
        socks[item.instance].send(item.frame)
    wait_for("the daemon to count every published frame",
             lambda: all(status_field(client, n, "received") == str(expected[n])
                         for n in socks), INGEST_TIMEOUT, daemon)


def run_demo(capture_path: str | None) -> int:
    """Publish a capture (default: the bundled sample) into the daemon against a
    private Redis and print a summary; 0 on success, 1 with a message otherwise."""
    path = Path(capture_path) if capture_path else DEFAULT_PATH
    try:
        frames = list(read_capture(path))
    except OSError as exc:
        print(f"demo: cannot read the capture {path}: {exc.strerror}", file=sys.stderr)
        return 1
    if not frames:
        print(f"demo: the capture {path} holds no frames", file=sys.stderr)
        return 1
    try:
        with RedisServer() as srv:
            cfg = _ingest(srv, frames, path)
            print_summary(srv.client(), frames)
            print("\nStatus of every feed (zmq_subscriber.py --status; the daemon has stopped, "
                  "so none is connected now):")
            print_status(cfg)
    except (DemoError, RuntimeError, OSError, zmq.ZMQError, redis.RedisError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _ingest(srv: RedisServer, frames: list[CapturedFrame], path: Path) -> Config:
    instances = list(dict.fromkeys(f.instance for f in frames))
    ctx: zmq.Context[Any] = zmq.Context()
    socks = bind_publishers(ctx, instances)
    try:
        cfg = Config(
            redis=RedisConfig(url=srv.url),
            instances=tuple(InstanceConfig(name, url=text(s.getsockopt(zmq.LAST_ENDPOINT)))
                            for name, s in socks.items()),
            writer=WriterConfig(journal_dir=str(Path(srv.dir) / "journal")),  # not /var/lib
            status_interval_seconds=0.2, summary_interval_seconds=3600.0)
        print(f"misp-ingest demo: {len(frames)} frames of {len(instances)} MISP instance(s) "
              f"({', '.join(instances)}) from {path}\ninto a private Redis at {srv.url}; "
              "the sample holds a few broken frames on purpose, so expect warnings.\n",
              flush=True)
        daemon = DaemonThread(cfg)
        daemon.start()
        started = time.monotonic()
        try:
            publish_and_wait(srv.client(), socks, frames, daemon)
        finally:
            daemon.stop()
        print(f"\nIngested in {time.monotonic() - started:.1f} s.\n")
        return cfg
    finally:
        ctx.destroy(linger=0)


# --- the summary ------------------------------------------------------------------


def zsum(client: redis.Redis, pattern: str) -> Counter[str]:
    """Members and scores summed over every key matching ``pattern`` (all days)."""
    total: Counter[str] = Counter()
    for key in sorted(client.scan_iter(match=pattern, count=1000)):
        if text(client.type(key)) != "zset":
            continue
        pairs: Any = client.zrange(key, 0, -1, withscores=True)
        for member, score in pairs:
            total[text(member)] += int(score)
    return total


def set_sum(client: redis.Redis, pattern: str) -> int:
    """Members of every set matching ``pattern``, added up."""
    return sum(int(client.scard(k)) for k in client.scan_iter(match=pattern, count=1000))


def counter_sum(client: redis.Redis, pattern: str) -> int:
    """Every string counter matching ``pattern``, added up."""
    return sum(int(client.get(k) or 0) for k in client.scan_iter(match=pattern, count=1000))


def top(counts: Counter[str], n: int = 5, empty: str = "none yet") -> str:
    """``a (3), b (2)``: the ``n`` largest, or ``empty``."""
    if not counts:
        return empty
    return ", ".join(f"{member} ({score})" for member, score in counts.most_common(n))


def print_summary(client: redis.Redis, frames: list[CapturedFrame]) -> None:
    """What landed, read back from Redis."""
    logins = zsum(client, keys.login_org("*"))
    events = zsum(client, keys.trendings("EVENTS", "*"))
    rows = [
        ("Top categories", top(zsum(client, keys.trendings("CATEGS", "*")))),
        ("Top organisations", top(zsum(client, keys.contrib_day("*")),
                                  empty="none yet (contributions not written yet)")),
        ("Countries", top(zsum(client, keys.geo_country("*")), 8,
                          empty="none yet (geolocation not written yet)")),
        ("Logins by organisation", top(logins, 7)),
        ("Login hours", f"{sum(logins.values())} logins; "
                        f"{set_sum(client, keys.login_timestampset('*'))} organisation-hours "
                        "(LOGIN_TIMESTAMPSET: one per organisation per hour)"),
        ("Events", f"{len(events)} distinct, {sum(events.values())} observations; "
                   f"busiest: {top(events, 1)}"),
        ("Tags", top(_tag_names(zsum(client, keys.trendings("TAGS", "*"))))),
        ("Sightings", f"{counter_sum(client, keys.trendings_sight('sightings', '*'))} sightings, "
                      f"{counter_sum(client, keys.trendings_sight('false_positive', '*'))} "
                      "false positives"),
        ("Discussions", top(zsum(client, keys.trendings("DISC", "*")))),
        ("Live history", ", ".join(f"{name} {client.llen(keys.live_cache(name))}"
                                   for name in ("Attribute", "ObjectAttribute"))),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


def _tag_names(tags: Counter[str]) -> Counter[str]:
    names: Counter[str] = Counter()
    for member, score in tags.items():
        try:
            names[str(json.loads(member)["name"])] += score
        except (ValueError, KeyError, TypeError):
            names[member] += score
    return names
