"""retention_days: a TTL on every per-day key when it is written, none when 0."""

from __future__ import annotations

import tempfile

import pytest
import redis

from helpers import keys
from helpers.batch import Batch
from helpers.config import RedisConfig, WriterConfig
from helpers.daemon import Daemon
from helpers.redis_server import RedisServer
from helpers.writer import RedisWriter
from tests.daemon_proc import make_config, sighting

DAY = 86400
NOW = 1764115200.0  # 2025-11-26 00:00 UTC
SIGHT_KEY = "TRENDINGS_SIGHT_sightings:20251126"


def apply(redis_server: RedisServer, batch: Batch, retention_days: int,
          procs: dict[str, str] | None = None) -> None:
    journal = tempfile.mkdtemp(prefix="mi-journal-")
    writer = RedisWriter(RedisConfig(url=redis_server.url), WriterConfig(journal_dir=journal),
                         procs or {}, retention_days)
    writer.start()
    writer.submit(batch.encode(retention_days), batch.messages)
    assert writer.drain(10)
    writer.stop()


def ingest_one_sighting(redis_server: RedisServer, retention_days: int) -> None:
    daemon = Daemon(make_config(redis_server.url, retention_days=retention_days))
    daemon.writer.start()
    daemon.dispatcher.handle("misp1", b"misp_json_sighting " + sighting(), NOW)
    daemon.write_status()
    assert daemon.writer.drain(10)
    daemon.writer.stop()


@pytest.mark.parametrize("days", [1, 30])
def test_per_day_keys_get_retention_days_ttl(r: redis.Redis, redis_server: RedisServer,
                                             days: int) -> None:
    ingest_one_sighting(redis_server, days)
    assert r.get(SIGHT_KEY) == b"1"
    assert days * DAY - 30 < r.ttl(SIGHT_KEY) <= days * DAY
    assert r.ttl("INGEST:status:misp1") == -1  # not a per-day key: never expires


def test_no_ttl_when_retention_is_0(r: redis.Redis, redis_server: RedisServer) -> None:
    ingest_one_sighting(redis_server, 0)
    assert r.get(SIGHT_KEY) == b"1"
    assert r.ttl(SIGHT_KEY) == -1


def test_every_write_restarts_the_ttl(r: redis.Redis, redis_server: RedisServer) -> None:
    r.set(SIGHT_KEY, 5)
    r.expire(SIGHT_KEY, 100)
    ingest_one_sighting(redis_server, 2)
    assert r.get(SIGHT_KEY) == b"6"
    assert 2 * DAY - 30 < r.ttl(SIGHT_KEY) <= 2 * DAY


@pytest.mark.parametrize(("days", "expected"), [(3, 3 * DAY), (0, -1)])
def test_keep_applies_the_retention_inside_procedures(
        r: redis.Redis, redis_server: RedisServer, days: int, expected: int) -> None:
    procs = {"count_and_keep": "call('INCRBY', op[3], 1); keep(op[3])"}
    batch = Batch()
    batch.call("count_and_keep", keys.contrib_day("20251126"))
    apply(redis_server, batch, days, procs)
    assert r.get("CONTRIB_DAY:20251126") == b"1"
    assert expected - 30 < r.ttl("CONTRIB_DAY:20251126") <= expected


def test_a_ttl_of_the_feature_wins_over_the_retention(
        r: redis.Redis, redis_server: RedisServer) -> None:
    batch = Batch()
    awards = keys.contrib_last_awards("20251126")
    batch.zadd(awards, "award", NOW)
    batch.expire(awards, 7 * DAY)
    window = keys.login_org("20251126")
    batch.zincrby(window, "ORG")
    batch.expire_if_unset(window, 3600)
    batch.zincrby(keys.trendings("CATEGS", "20251126"), "Network activity")
    apply(redis_server, batch, 30)
    assert 7 * DAY - 30 < r.ttl(awards) <= 7 * DAY
    assert 3600 - 30 < r.ttl(window) <= 3600
    assert 30 * DAY - 30 < r.ttl("TRENDINGS_CATEGS:20251126") <= 30 * DAY


def test_every_dated_key_name_is_a_per_day_key() -> None:
    d = "20251126"
    dated = [keys.geo_coord(d), keys.geo_country(d), keys.geo_rad(d), keys.contrib_day(d),
             keys.contrib_categ(d, "Network activity"), keys.contrib_last(d),
             keys.contrib_last_awards(d), keys.login_timestamp(d), keys.login_org(d),
             *(keys.trendings(k, d) for k in keys.TRENDING_KINDS),
             *(keys.trendings_sight(k, d) for k in keys.SIGHTING_KINDS)]
    undated = [keys.CONTRIB_ALL_ORG, keys.contrib_org("ORG", "points"),
               keys.contrib_trophy("Network activity"), keys.live_cache("1"),
               keys.ingest_status("misp1"), keys.DEAD_LETTER, keys.ingest_orgs("misp1"),
               keys.login_timestampset("2025112600")]  # hourly, with its own 1-hour TTL
    assert [k for k in dated if not k.startswith(keys.PER_DAY_PREFIXES)] == []
    assert [k for k in undated if k.startswith(keys.PER_DAY_PREFIXES)] == []
