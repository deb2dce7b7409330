"""geo_helper end to end on the test Redis: frames -> Dispatcher -> RedisWriter -> keys."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from helpers.batch import Batch
from helpers.clock import DayClock
from helpers.config import Config, RedisConfig, WriterConfig
from helpers.geo_helper import Geo
from helpers.observations import InstanceState
from helpers.redis_server import RedisServer
from helpers.router import Dispatcher
from helpers.stats import InstanceStats
from helpers.writer import RedisWriter

NOW = 1735819200.0  # 2025-01-02 12:00 UTC
DAY = "20250102"


def frame(topic: str, body: dict[str, Any]) -> bytes:
    return topic.encode() + b" " + orjson.dumps(body)


def attribute_frame(atype: str, value: str, category: str) -> bytes:
    return frame("misp_json_attribute", {
        "action": "add",
        "Attribute": {"id": "1", "event_id": "7", "object_id": "0", "type": atype,
                      "category": category, "value": value},
        "Event": {"id": "7", "info": "geo", "Orgc": {"id": "1", "name": "CIRCL"}},
    })


def apply(redis_server: RedisServer, tmp_path: Path, frames: list[bytes]) -> InstanceStats:
    """Push frames through a Dispatcher with only the geo feature, then into Redis."""
    stats = InstanceStats("misp1")
    sealed: list[Batch] = []
    dispatcher = Dispatcher([Geo(Config())], DayClock("UTC"),
                            {"misp1": (InstanceState("misp1"), stats)}, sealed.append)
    for f in frames:
        dispatcher.handle("misp1", f, NOW)
    sealed.append(dispatcher.take_batch())
    writer = RedisWriter(RedisConfig(url=redis_server.url),
                         WriterConfig(journal_dir=str(tmp_path)), {})
    writer.start()
    for batch in sealed:
        writer.submit(batch.encode(), batch.messages)
    assert writer.drain(10)
    writer.stop()
    return stats


def received(pubsub: redis.client.PubSub, n: int) -> list[str]:
    out: list[str] = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.2)
        if msg and msg["type"] == "message":
            out.append(msg["data"].decode())
    return out


def test_geo_keys_and_map_messages_in_redis(redis_server: RedisServer, r: redis.Redis,
                                            tmp_path: Path) -> None:
    pubsub = r.pubsub()
    pubsub.subscribe("PicToDisplay")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
    published_event = frame("misp_json", {"Event": {
        "id": "8", "info": "published", "Orgc": {"id": "1", "name": "CIRCL"},
        "Attribute": [
            {"type": "ip-dst|port", "category": "Network activity", "value": "8.8.8.8|53"},
            {"type": "ip-src", "category": "Network activity", "value": "10.0.0.1"},
            {"type": "domain", "category": "Network activity", "value": "example.com"},
        ],
        "Object": [{"Attribute": [
            {"type": "phone-number", "category": "Person", "value": "+420 212 345 678",
             "object_id": "3"},
        ]}],
    }})
    stats = apply(redis_server, tmp_path, [
        attribute_frame("ip-dst", "8.8.8.8", "Network activity"),
        attribute_frame("domain|ip", "dns.google|2001:4860:4860::8888", "Payload delivery"),
        published_event,
    ])
    assert dict(stats.reasons) == {"geo_private": 1}
    assert (stats.processed, stats.errors) == (3, 0)

    us_point, mv_point = '{"lat": 37.751, "lon": -97.822}', '{"lat": 37.4192, "lon": -122.0574}'
    cz_point = '{"lat": 49.75, "lon": 15.5}'
    assert r.zrange(f"GEO_COORD:{DAY}", 0, -1, withscores=True) == [
        (mv_point.encode(), 1.0), (cz_point.encode(), 1.0), (us_point.encode(), 2.0)]
    assert r.zrange(f"GEO_COUNTRY:{DAY}", 0, -1, withscores=True) == [
        (b"CZ", 1.0), (b"US", 3.0)]

    members = {
        '{"categ": "Network activity", "value": "8.8.8.8"}': (-97.822, 37.751),
        '{"categ": "Network activity", "value": "8.8.8.8|53"}': (-97.822, 37.751),
        '{"categ": "Payload delivery", "value": "dns.google|2001:4860:4860::8888"}':
            (-122.0574, 37.4192),
        '{"categ": "Person", "value": "+420 212 345 678"}': (15.5, 49.75),
    }
    assert sorted(m.decode() for m in r.zrange(f"GEO_RAD:{DAY}", 0, -1)) == sorted(members)
    for member, (lon, lat) in members.items():
        near = r.geosearch(f"GEO_RAD:{DAY}", longitude=lon, latitude=lat, radius=1, unit="km")
        assert member.encode() in near
        ((got_lon, got_lat),) = r.geopos(f"GEO_RAD:{DAY}", member)
        assert got_lon == pytest.approx(lon, abs=1e-4)
        assert got_lat == pytest.approx(lat, abs=1e-4)
    far = r.geosearch(f"GEO_RAD:{DAY}", longitude=15.5, latitude=49.75, radius=100, unit="km")
    assert far == [b'{"categ": "Person", "value": "+420 212 345 678"}']

    def msg(coord: dict[str, float], categ: str, value: str, country: str, sub: str, city: str,
            iso: str) -> str:
        return json.dumps({"coord": coord, "categ": categ, "value": value, "country": country,
                           "specifName": sub, "cityName": city, "regionCode": iso},
                          ensure_ascii=False)

    us, mv, cz = json.loads(us_point), json.loads(mv_point), json.loads(cz_point)
    assert received(pubsub, 4) == [
        msg(us, "Network activity", "8.8.8.8", "United States", "", "", "US"),
        msg(mv, "Payload delivery", "dns.google|2001:4860:4860::8888", "United States",
            "California", "Mountain View", "US"),
        msg(us, "Network activity", "8.8.8.8|53", "United States", "", "", "US"),
        msg(cz, "Person", "+420 212 345 678", "Czechia", "", "", "CZ"),
    ]
    pubsub.close()
