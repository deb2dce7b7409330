"""End to end: ``zmq_subscriber.py`` as a process, real ZeroMQ feeds (one of them
with PLAIN credentials, as MISP's ``Plugin.ZeroMQ_username``/``password``), the
test Redis, pub/sub listeners, and SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
import zmq
from zmq.auth.thread import ThreadAuthenticator

from helpers.clock import DayClock
from helpers.redis_server import RedisServer
from tests.factories import (
    KEEPALIVE,
    OTHER_TOPICS,
    TLP_AMBER,
    TLP_AMBER_MEMBER,
    attribute,
    attribute_msg,
    audit_login_msg,
    event_msg,
    frame,
    organisation_msg,
    post_msg,
    published_msg,
    sighting_msg,
    tag_msg,
    thread_msg,
    user_msg,
)

ROOT = Path(__file__).resolve().parent.parent
INFO = "Phishing wave targeting finance – Q4"

# (topic, body, serialisation): every topic MISP publishes, in the three encodings.
MISP1_FRAMES = [
    frame("misp_json_self", KEEPALIVE),
    frame("misp_json_organisation", organisation_msg("Organisation", "9", "Example SOC")),
    frame("misp_json_event", event_msg("add", [TLP_AMBER]), "ints"),
    frame("misp_json_attribute", attribute_msg(), "legacy"),
    frame("misp_json_object", OTHER_TOPICS["misp_json_object"]),
    frame("misp_json_attribute", attribute_msg(attribute(object_id="5521")), "ints"),
    frame("misp_json_object_reference", OTHER_TOPICS["misp_json_object_reference"]),
    frame("misp_json_tag", tag_msg("attached to attribute"), "legacy"),
    frame("misp_json", published_msg(attrs=[attribute("Payload delivery", "md5", "44d8")])),
    frame("misp_json_sighting", sighting_msg("0", "9")),
    frame("misp_json_sighting", sighting_msg("1", "77"), "ints"),
    frame("misp_json_audit", audit_login_msg("Банк-CERT")),
    frame("misp_json_audit", audit_login_msg("Банк-CERT")),
    frame("misp_json_user", user_msg("Банк-CERT", org_id="7")),
    frame("misp_json_conversation", thread_msg("Same C2 🚩")),
    frame("misp_json_conversation", post_msg("311")),
    frame("misp_json_warninglist", OTHER_TOPICS["misp_json_warninglist"]),
    frame("misp_json_workflow", OTHER_TOPICS["misp_json_workflow"]),
    b"misp_json_self",  # no space
    b'misp_json_event {"Event": ',  # bad JSON
    b'misp_json_tag ["tlp:red"]',  # an array where an object is expected
    b'misp_json {"Event": "1299"}',  # Event as a scalar: nothing to count, not an error
]
MISP2_FRAMES = [frame("misp_json_attribute", attribute_msg(attribute(value="1.1.1.1")), "ints"),
                frame("misp_json_self", {**KEEPALIVE, "uptime": 12})]


class Feed:
    """A MISP-like ZeroMQ publisher; XPUB so the test knows when the daemon subscribed."""

    def __init__(self, ctx: zmq.Context[Any], credentials: tuple[str, str] | None = None) -> None:
        self.sock = ctx.socket(zmq.XPUB)
        if credentials:
            self.sock.plain_server = True
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.url = f"tcp://127.0.0.1:{port}"

    def wait_subscribed(self, timeout: float = 15) -> None:
        assert self.sock.poll(int(timeout * 1000)), "the daemon never subscribed"
        assert self.sock.recv() == b"\x01"  # everything

    def publish(self, frames: list[bytes]) -> None:
        for raw in frames:
            self.sock.send(raw)


@pytest.fixture
def zctx() -> Iterator[zmq.Context[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_plain(domain="*", passwords={"dashboard": "s3cret"})
    yield ctx
    auth.stop()
    ctx.destroy(linger=0)


def write_config(tmp_path: Path, redis_url: str, feeds: dict[str, Feed]) -> Path:
    instances: list[dict[str, Any]] = [{"name": name, "url": f.url} for name, f in feeds.items()]
    instances[-1].update(username="dashboard", password="s3cret")
    cfg = {"redis": {"url": redis_url}, "instances": instances, "timezone": "UTC",
           "logging": {"level": "info"}, "status_interval_seconds": 0.2,
           "writer": {"journal_dir": str(tmp_path / "journal")}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    path.chmod(0o600)  # it holds a password: the daemon refuses a world-readable one
    return path


def wait_status(r: redis.Redis, instance: str, field: str, value: str,
                proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while r.hget(f"INGEST:status:{instance}", field) != value.encode():
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, (
            f"{instance}.{field} != {value}: {r.hgetall(f'INGEST:status:{instance}')}")
        time.sleep(0.05)


def zset(r: redis.Redis, key: str) -> dict[str, float]:
    return {m.decode(): s for m, s in r.zrange(key, 0, -1, withscores=True)}


def start(cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(ROOT / "zmq_subscriber.py"), "--config",
                             str(cfg)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_daemon_process_end_to_end(tmp_path: Path, r: redis.Redis, redis_server: RedisServer,
                                   zctx: zmq.Context[Any]) -> None:
    feeds = {"misp1": Feed(zctx), "misp2": Feed(zctx, ("dashboard", "s3cret"))}
    proc = start(write_config(tmp_path, redis_server.url, feeds))
    try:
        for name, feed in feeds.items():
            wait_status(r, name, "connected", "1", proc)
            feed.wait_subscribed()
        listener = r.pubsub()
        listener.subscribe("1")
        assert listener.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
        feeds["misp1"].publish(MISP1_FRAMES)
        feeds["misp2"].publish(MISP2_FRAMES)
        wait_status(r, "misp1", "received", str(len(MISP1_FRAMES)), proc)
        wait_status(r, "misp2", "received", str(len(MISP2_FRAMES)), proc)
        day = DayClock("UTC").keys(time.time())[0]
        published = _drain_channel(listener, 8)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, stderr
    _assert_keys(r, day)
    _assert_published(published)
    _assert_status(r)
    assert "misp1: received=22 processed=19 skipped=3 errors=0" in stderr


def _drain_channel(listener: Any, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        msg = listener.get_message(timeout=1)
        if msg and msg["type"] == "message":
            out.append(json.loads(msg["data"]))
    time.sleep(0.2)
    extra = listener.get_message(timeout=0.2)  # nothing beyond what the frames produce
    assert extra is None, extra
    listener.close()
    return out


def _assert_keys(r: redis.Redis, day: str) -> None:
    assert zset(r, f"TRENDINGS_EVENTS:{day}") == {INFO: 2.0}
    assert zset(r, f"TRENDINGS_CATEGS:{day}") == {"Network activity": 5.0,
                                                  "Payload delivery": 1.0}
    assert zset(r, f"TRENDINGS_TAGS:{day}") == {TLP_AMBER_MEMBER: 2.0}
    assert zset(r, f"TRENDINGS_DISC:{day}") == {"Same C2 🚩": 1.0}
    assert r.get(f"TRENDINGS_SIGHT_sightings:{day}") == b"1"
    assert r.get(f"TRENDINGS_SIGHT_false_positive:{day}") == b"1"
    assert zset(r, f"LOGIN_ORG:{day}") == {"Банк-CERT": 2.0}
    assert r.scard(f"LOGIN_TIMESTAMP:{day}") == 1
    assert r.hgetall("INGEST:orgs:misp1") == {b"9": b"Example SOC", b"4": b"CERT-Example",
                                              b"1": b"HostOrg", b"7": "Банк-CERT".encode()}
    assert r.llen("TEMP_CACHE_LIVE:Attribute") == 5
    assert r.llen("TEMP_CACHE_LIVE:ObjectAttribute") == 1


def _assert_published(published: list[dict[str, Any]]) -> None:
    by_instance = [(m["zmqName"], m["name"]) for m in published]
    assert sorted(by_instance) == sorted([
        ("misp1", "Keepalive"), ("misp1", "Attribute"), ("misp1", "ObjectAttribute"),
        ("misp1", "Attribute"), ("misp1", "Attribute"), ("misp1", "Attribute"),
        ("misp2", "Attribute"), ("misp2", "Keepalive")])
    misp1 = [m["name"] for m in published if m["zmqName"] == "misp1"]
    assert misp1 == ["Keepalive", "Attribute", "ObjectAttribute", "Attribute", "Attribute",
                     "Attribute"]  # the feed's order
    keepalives = {m["zmqName"]: m["log"] for m in published if m["name"] == "Keepalive"}
    assert keepalives == {"misp1": "[9170]", "misp2": "[12]"}
    via_plain = [json.loads(m["log"]) for m in published
                 if m["zmqName"] == "misp2" and m["name"] == "Attribute"]
    assert via_plain[0]["Attribute"]["value"] == "1.1.1.1"


def _assert_status(r: redis.Redis) -> None:
    one = {k.decode(): v.decode() for k, v in r.hgetall("INGEST:status:misp1").items()}
    assert (one["received"], one["processed"], one["skipped"], one["errors"]) == (
        "22", "19", "3", "0")
    assert one["connected"] == "0"  # written on shutdown
    two = r.hgetall("INGEST:status:misp2")
    assert (two[b"received"], two[b"processed"], two[b"skipped"]) == (b"2", b"2", b"0")


def test_status_command_prints_a_table(tmp_path: Path, r: redis.Redis,
                                       redis_server: RedisServer) -> None:
    now = int(time.time())
    r.hset("INGEST:status:misp1", mapping={"received": 1200, "processed": 1190, "skipped": 7,
                                           "errors": 3, "last_message": now - 5,
                                           "connected": 1, "started": now - 7200,
                                           "backlog": 0})
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"redis": {"url": redis_server.url},
                                   "instances": [{"name": "misp1"}, {"name": "misp2"}]}))
    out = subprocess.run([sys.executable, str(ROOT / "zmq_subscriber.py"), "--status",
                          "--config", str(cfg)], cwd=ROOT, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    assert lines[0].split() == ["instance", "connected", "received", "processed", "skipped",
                                "errors", "last", "message", "up", "since", "backlog",
                                "journal", "redis"]
    assert lines[1].split()[:6] == ["misp1", "yes", "1200", "1190", "7", "3"]
    assert "ago" in lines[1] and lines[1].split()[-3:] == ["0", "0", "ok"]
    assert lines[2].split() == ["misp2", "no", "status"]
    assert len(lines) == 3
