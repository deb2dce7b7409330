"""INGEST:dead_letter: unusable frames, newest first, capped, with reason, topic and instance."""

from __future__ import annotations

from typing import Any

import orjson
import redis

from helpers.daemon import Daemon
from helpers.redis_server import RedisServer
from tests.daemon_proc import make_config

NOW = 1764115200.0


def ingest(redis_server: RedisServer, frames: list[bytes], *, dead_letter_max: int = 1000,
           batches: int = 1) -> Daemon:
    """Handle ``frames`` (split into ``batches`` batches) and apply them to Redis."""
    daemon = Daemon(make_config(redis_server.url, dead_letter_max=dead_letter_max))
    daemon.writer.start()
    per = -(-len(frames) // batches)
    for start in range(0, len(frames), per):
        for i, frame in enumerate(frames[start:start + per], start):
            daemon.dispatcher.handle("misp1", frame, NOW + i)
        daemon._seal(daemon.dispatcher.take_batch())
    assert daemon.writer.drain(10)
    daemon.writer.stop()
    return daemon


def dead_letters(r: redis.Redis) -> list[dict[str, Any]]:
    return [orjson.loads(e) for e in r.lrange("INGEST:dead_letter", 0, -1)]


def test_each_unusable_frame_is_kept_with_its_reason_and_topic(
        r: redis.Redis, redis_server: RedisServer) -> None:
    frames = [b"misp_json_event {not json", b"garbage-without-a-space",
              b'misp_json_attribute ["an", "array"]', b"misp_json_sighting 42",
              b'misp_json_self {"uptime": 1}']  # the last one is fine
    daemon = ingest(redis_server, frames)
    got = [(e["reason"], e["topic"], e["instance"], e["received"], e["frame"])
           for e in dead_letters(r)]
    assert got == [  # newest first
        ("not_an_object", "misp_json_sighting", "misp1", NOW + 3, "misp_json_sighting 42"),
        ("not_an_object", "misp_json_attribute", "misp1", NOW + 2,
         'misp_json_attribute ["an", "array"]'),
        ("no_topic", "?", "misp1", NOW + 1, "garbage-without-a-space"),
        ("bad_json", "misp_json_event", "misp1", NOW, "misp_json_event {not json"),
    ]
    stats = daemon.instances["misp1"][1]
    assert (stats.received, stats.processed, stats.skipped) == (5, 1, 4)
    assert dict(stats.topic_skipped) == {"misp_json_event": 1, "?": 1,
                                         "misp_json_attribute": 1, "misp_json_sighting": 1}
    assert sum(stats.topics.values()) == 5  # every frame is counted under some topic


def test_dead_letter_is_capped_to_the_newest_entries(
        r: redis.Redis, redis_server: RedisServer) -> None:
    frames = [b"misp_json_event {broken %d" % i for i in range(7)]
    ingest(redis_server, frames, dead_letter_max=3, batches=3)
    assert [e["frame"] for e in dead_letters(r)] == [
        "misp_json_event {broken 6", "misp_json_event {broken 5", "misp_json_event {broken 4"]


def test_dead_letter_keeps_only_the_first_4_kib_of_a_frame(
        r: redis.Redis, redis_server: RedisServer) -> None:
    frame = b'misp_json_event {"Event": "' + b"y" * 10000
    ingest(redis_server, [frame])
    (entry,) = dead_letters(r)
    assert entry["frame"] == frame[:4096].decode()
    assert entry["reason"] == "bad_json"
