"""Captures (issue #2 §7): record a feed, replay it through the handlers with the
recorded receive times, or publish it on a PUB socket at a rate."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
import zmq

from helpers.capture import Progress, encode_line, publish, read_capture, record
from helpers.clock import DayClock
from helpers.config import Config, InstanceConfig, RedisConfig, WriterConfig
from helpers.daemon import replay_capture
from helpers.redis_server import RedisServer, free_port
from tests.factories import (
    KEEPALIVE,
    attribute,
    attribute_msg,
    audit_login_msg,
    frame,
    organisation_msg,
    sighting_msg,
    utc,
)

ROOT = Path(__file__).resolve().parent.parent
DAY1 = utc(2024, 10, 14, 10, 0)  # 12:00 in Luxembourg: 20241014
DAY2 = utc(2024, 10, 14, 23, 30)  # 01:30 on the 15th in Luxembourg: 20241015


def write_capture(path: Path, items: list[tuple[str, float, bytes]]) -> None:
    path.write_bytes(b"".join(encode_line(inst, t, raw) for inst, t, raw in items))


def config(tmp_path: Path, redis_url: str, *names: str) -> Config:
    return Config(redis=RedisConfig(url=redis_url),
                  instances=tuple(InstanceConfig(n) for n in names or ("misp1",)),
                  timezone="Europe/Luxembourg",
                  writer=WriterConfig(journal_dir=str(tmp_path / "journal")))


def zset(r: redis.Redis, key: str) -> dict[str, float]:
    return {m.decode(): s for m, s in r.zrange(key, 0, -1, withscores=True)}


# --- record -----------------------------------------------------------------------------


def test_record_appends_every_frame_with_instance_and_receive_time(
        tmp_path: Path, r: redis.Redis, redis_server: RedisServer) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    url = f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}"
    out = tmp_path / "feed.jsonl"
    out.write_bytes(encode_line("misp-old", 1.5, b"misp_json_self {}"))  # appended to
    sent = [frame("misp_json_self", KEEPALIVE), frame("misp_json_attribute", attribute_msg()),
            frame("misp_json_attribute", attribute_msg(), "legacy"),
            b'misp_json_conversation {"Post": "\xff\xfe"}']
    counts: list[int] = []
    thread = threading.Thread(target=lambda: counts.append(
        record(url, "misp-x", out, count=len(sent), seconds=20)))
    thread.start()
    try:
        assert pub.poll(10000) and pub.recv() == b"\x01"  # the recorder subscribed
        before = time.time()
        for raw in sent:
            pub.send(raw)
        thread.join(20)
        after = time.time()
    finally:
        ctx.destroy(linger=0)
    assert counts == [len(sent)]
    items = list(read_capture(out))
    assert [(i.instance, i.frame) for i in items] == [("misp-old", b"misp_json_self {}")] + [
        ("misp-x", raw) for raw in sent]
    assert all(before <= i.received <= after for i in items[1:])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert "frame_b64" in lines[-1] and "frame" not in lines[-1]  # not UTF-8: kept as base64
    assert lines[2]["frame"].startswith("misp_json_attribute {")
    # Replayed, the recording lands on the day it was recorded (Luxembourg time).
    stats = replay_capture(config(tmp_path, redis_server.url, "misp-x"), str(out),
                           progress=False)
    day = DayClock("Europe/Luxembourg").keys(items[2].received)[0]
    assert zset(r, f"TRENDINGS_CATEGS:{day}") == {"Network activity": 2.0}
    assert (stats["misp-x"].processed, stats["misp-x"].skipped) == (3, 1)
    assert stats["misp-old"].processed == 1


def test_unreadable_capture_lines_are_skipped(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "feed.jsonl"
    bad = [b"not json", b'{"instance": "a"}', b"[1, 2]", b"5", b'"text"',
           b'{"instance": "a", "received": 1, "frame": 5}',
           b'{"instance": "a", "received": 1e20, "frame": "x y"}',
           b'{"instance": "a", "received": -1, "frame": "x y"}',
           b'{"instance": "a", "received": "1", "frame": "x y"}',
           b'{"instance": "a", "received": true, "frame": "x y"}',
           b'{"instance": 7, "received": 1, "frame": "x y"}',
           b'{"instance": "a", "received": 1, "frame_b64": "%%%"}',
           b'{"instance": "a", "received": 1, "frame": "\\ud800"}']
    path.write_bytes(encode_line("a", 1.0, b"x y") + b"\n".join(bad) + b"\n\n"
                     + encode_line("b", 2.0, b"z \xff"))
    assert [(i.instance, i.received, i.frame) for i in read_capture(path)] == [
        ("a", 1.0, b"x y"), ("b", 2.0, b"z \xff")]
    skipped = [r.getMessage() for r in caplog.records if "not a capture line" in r.getMessage()]
    assert len(skipped) == len(bad) and skipped[0].startswith(f"{path}:2: ")


# --- replay through the handlers --------------------------------------------------------


def test_replay_uses_the_recorded_receive_times(tmp_path: Path, r: redis.Redis,
                                                redis_server: RedisServer) -> None:
    path = tmp_path / "feed.jsonl"
    write_capture(path, [
        ("misp1", DAY1, frame("misp_json_audit", audit_login_msg("CERT-Example"))),
        ("misp1", DAY1 + 1, frame("misp_json_attribute", attribute_msg(), "ints")),
        ("misp1", DAY2, frame("misp_json_audit", audit_login_msg("CERT-Example"))),
        ("misp1", DAY2 + 1, frame("misp_json_attribute", attribute_msg(), "legacy")),
        ("misp1", DAY2 + 2, frame("misp_json_attribute",
                                  attribute_msg(attribute("Other", "comment", "x")))),
        ("misp1", DAY2 + 3, b"garbage"),
    ])
    stats = replay_capture(config(tmp_path, redis_server.url), str(path), progress=False)
    assert (stats["misp1"].received, stats["misp1"].processed, stats["misp1"].skipped) == (6, 5, 1)
    assert zset(r, "TRENDINGS_CATEGS:20241014") == {"Network activity": 1.0}
    assert zset(r, "TRENDINGS_CATEGS:20241015") == {"Network activity": 1.0, "Other": 1.0}
    assert r.smembers("LOGIN_TIMESTAMP:20241014") == {str(int(DAY1)).encode()}
    assert r.smembers("LOGIN_TIMESTAMP:20241015") == {str(int(DAY2)).encode()}
    assert r.smembers("LOGIN_TIMESTAMPSET:2024101412") == {b"CERT-Example"}
    assert r.smembers("LOGIN_TIMESTAMPSET:2024101501") == {b"CERT-Example"}
    assert r.hget("INGEST:status:misp1", "received") == b"6"
    assert r.hget("INGEST:status:misp1", "last_message") == str(int(DAY2 + 3)).encode()


def test_replay_keeps_instances_the_configuration_does_not_name(
        tmp_path: Path, r: redis.Redis, redis_server: RedisServer) -> None:
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    write_capture(first, [("misp-other", DAY1, frame("misp_json_organisation",
                                                     organisation_msg("Orgc", "9", "Ex SOC")))])
    write_capture(second, [("misp-other", DAY1 + 5, frame("misp_json_sighting",
                                                          sighting_msg("0", "9")))])
    cfg = config(tmp_path, redis_server.url)
    assert set(replay_capture(cfg, str(first), progress=False)) == {"misp1", "misp-other"}
    replay_capture(cfg, str(second), progress=False)
    assert r.hgetall("INGEST:orgs:misp-other") == {b"9": b"Ex SOC"}
    assert r.hget("INGEST:status:misp-other", "received") == b"1"
    # The second replay remembered the directory of the first: the reporter is credited.
    assert zset(r, "CONTRIB_DAY:20241014") == {"Ex SOC": 2.0}


def test_replay_command_shows_progress_and_counts(tmp_path: Path, r: redis.Redis,
                                                  redis_server: RedisServer) -> None:
    path = tmp_path / "feed.jsonl"
    write_capture(path, [("misp1", DAY1 + i, frame("misp_json_attribute", attribute_msg()))
                         for i in range(3)])
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "redis": {"url": redis_server.url}, "timezone": "UTC",
        "writer": {"journal_dir": str(tmp_path / "journal")}}))
    out = subprocess.run([sys.executable, str(ROOT / "zmq_subscriber.py"), "--config",
                          str(cfg_path), "replay", str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "replay: 3/3 (100%)" in out.stderr
    assert "misp1: received=3 processed=3 skipped=0 errors=0" in out.stdout
    assert zset(r, "TRENDINGS_CATEGS:20241014") == {"Network activity": 3.0}


def test_progress_line() -> None:
    stream = io.StringIO()
    bar = Progress(200, "replay", every=0.0, stream=stream)
    bar.update(50)
    bar.update(200, force=True)
    lines = stream.getvalue().split("\r")
    assert lines[1].startswith("replay: 50/200 (25%) ")
    assert lines[2].startswith("replay: 200/200 (100%) ") and lines[2].endswith("\n")


# --- replay onto a PUB socket -----------------------------------------------------------


def test_publish_replays_every_frame_in_order_at_the_rate(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    frames = [frame("misp_json_attribute", attribute_msg(attribute(value=f"192.0.2.{i}")))
              for i in range(20)] + [b'misp_json_tag {"Post": "\xff"}']
    write_capture(path, [("misp1", DAY1 + i, raw) for i, raw in enumerate(frames)])
    url = f"tcp://127.0.0.1:{free_port()}"
    ctx: zmq.Context[Any] = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(url)  # before the publisher binds: ZeroMQ retries until it does
    sent: list[tuple[int, float]] = []

    def run() -> None:
        started = time.monotonic()
        n = publish(path, url, rate=40, wait_subscriber=1.0, progress=False)
        sent.append((n, time.monotonic() - started))

    thread = threading.Thread(target=run)
    thread.start()
    got = []
    try:
        while len(got) < len(frames) and sub.poll(10000):
            got.append(sub.recv())
        thread.join(20)
    finally:
        ctx.destroy(linger=0)
    assert got == frames
    (count, took), = sent
    assert count == len(frames)
    # 1 s for subscribers to join, then 21 frames at 40/s: paced, not a burst.
    assert took >= 1.0 + 0.9 * (len(frames) - 1) / 40


def test_replay_command_publishes_one_instance_of_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    mine = [frame("misp_json_self", {**KEEPALIVE, "uptime": i}) for i in range(5)]
    write_capture(path, [(name, DAY1 + i, raw) for i, raw in enumerate(mine)
                         for name in ("misp1", "misp2")])
    url = f"tcp://127.0.0.1:{free_port()}"
    ctx: zmq.Context[Any] = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(url)
    proc = subprocess.Popen([sys.executable, str(ROOT / "zmq_subscriber.py"), "replay", str(path),
                             "--publish", url, "--rate", "1000", "--instance", "misp2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = []
    try:
        while len(got) < len(mine) and sub.poll(10000):
            got.append(sub.recv())
        assert not sub.poll(300)  # and nothing of misp1
        _, err = proc.communicate(timeout=30)
    finally:
        ctx.destroy(linger=0)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert got == mine
    assert "publish: 5/5 (100%)" in err


def test_record_reads_the_plain_password_from_a_file(tmp_path: Path) -> None:
    from zmq.auth.thread import ThreadAuthenticator

    ctx: zmq.Context[Any] = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_plain(domain="*", passwords={"recorder": "s3cret pass"})
    pub = ctx.socket(zmq.PUB)
    pub.plain_server = True
    url = f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}"
    secret = tmp_path / "password"
    secret.write_text("s3cret pass\n")
    out = tmp_path / "feed.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "zmq_subscriber.py"), "record", "--url", url,
         "--username", "recorder", "--password-file", str(secret), "--out", str(out),
         "--count", "1", "--seconds", "20"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            pub.send(frame("misp_json_self", KEEPALIVE))  # until the recorder has one
            time.sleep(0.05)
        _, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        auth.stop()
        ctx.destroy(linger=0)
    assert proc.returncode == 0, err.decode()
    assert [i.frame for i in read_capture(out)] == [frame("misp_json_self", KEEPALIVE)]
    assert b"s3cret" not in err
