"""Integration: messages through the daemon's handlers and writer into the test
Redis; every key family of semantics §3, §6 and §7 with exact members and scores."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from helpers.observations import extract_sighting
from helpers.redis_server import RedisServer
from tests.factories import (
    DAY,
    KEEPALIVE,
    KILL_CHAIN,
    KILL_CHAIN_MEMBER,
    NOW,
    TLP_AMBER,
    TLP_AMBER_MEMBER,
    attribute,
    attribute_msg,
    audit_login_msg,
    event_msg,
    organisation_msg,
    post_msg,
    published_msg,
    sighting_msg,
    tag_msg,
    thread_msg,
    utc,
)
from tests.harness import Ingest

INFO = "Phishing wave targeting finance – Q4"


@pytest.fixture
def ingest(r: redis.Redis, redis_server: RedisServer) -> Iterator[Ingest]:
    ing = Ingest(redis_server.url)
    yield ing
    ing.close()


def zset(r: redis.Redis, key: str) -> dict[str, float]:
    return {m.decode(): s for m, s in r.zrange(key, 0, -1, withscores=True)}


def members(r: redis.Redis, key: str) -> set[str]:
    return {m.decode() for m in r.smembers(key)}


# --- trendings (§3) -------------------------------------------------------------------


def test_trendings_events_categs_and_tags(r: redis.Redis, ingest: Ingest) -> None:
    ingest.send("misp_json_event", event_msg("add", [TLP_AMBER]))
    ingest.send("misp_json_attribute", attribute_msg(), style="ints")
    ingest.send("misp_json_attribute", attribute_msg(attribute(Tag=[KILL_CHAIN]), "edit"))
    ingest.send("misp_json", published_msg(
        attrs=[attribute(), attribute("Payload delivery", "md5", "44d8")], tags=[TLP_AMBER]),
        style="legacy")
    ingest.send("misp_json_attribute", attribute_msg(action="soft-delete"))
    ingest.flush()
    assert zset(r, f"TRENDINGS_EVENTS:{DAY}") == {INFO: 2.0}
    assert zset(r, f"TRENDINGS_CATEGS:{DAY}") == {"Network activity": 3.0,
                                                  "Payload delivery": 1.0}
    assert zset(r, f"TRENDINGS_TAGS:{DAY}") == {TLP_AMBER_MEMBER: 2.0, KILL_CHAIN_MEMBER: 1.0}


def test_tags_arriving_through_misp_json_tag(r: redis.Redis, ingest: Ingest) -> None:
    ingest.send("misp_json_tag", tag_msg("attached to event"))
    ingest.send("misp_json_tag", tag_msg("attached to attribute", KILL_CHAIN), style="ints")
    ingest.send("misp_json_tag", tag_msg("attached to attribute"), style="legacy")
    ingest.send("misp_json_tag", tag_msg("detached from event"))
    ingest.send("misp_json_tag", tag_msg("add"))
    ingest.flush()
    assert zset(r, f"TRENDINGS_TAGS:{DAY}") == {TLP_AMBER_MEMBER: 2.0, KILL_CHAIN_MEMBER: 1.0}
    assert json.loads(TLP_AMBER_MEMBER) == {"id": "3", "name": "tlp:amber", "colour": "#FFC000"}


def test_sighting_counters(r: redis.Redis, ingest: Ingest) -> None:
    for kind in ("0", "0", "1", "2"):
        ingest.send("misp_json_sighting", sighting_msg(kind))
    ingest.send("misp_json_sighting", sighting_msg("0", action="delete"))
    ingest.send("misp_json_sighting", sighting_msg("1"), style="ints")
    ingest.flush()
    assert r.get(f"TRENDINGS_SIGHT_sightings:{DAY}") == b"2"
    assert r.get(f"TRENDINGS_SIGHT_false_positive:{DAY}") == b"2"
    assert zset(r, f"TRENDINGS_CATEGS:{DAY}") == {"Network activity": 4.0}


def test_thread_titles_pairing_and_fallback(r: redis.Redis, ingest: Ingest) -> None:
    ingest.send("misp_json_conversation", thread_msg("Attribution ⚖ مثال"))
    ingest.send("misp_json_conversation", post_msg("311"))
    ingest.send("misp_json_conversation", post_msg(311), style="ints")
    ingest.send("misp_json_conversation", post_msg("42"))
    ingest.flush()
    assert zset(r, f"TRENDINGS_DISC:{DAY}") == {"Attribution ⚖ مثال": 2.0, "Thread 42": 1.0}
    assert r.hgetall("INGEST:threads:misp1") == {b"311": "Attribution ⚖ مثال".encode()}


def test_thread_titles_survive_a_restart(r: redis.Redis, ingest: Ingest,
                                         redis_server: RedisServer) -> None:
    ingest.send("misp_json_conversation", thread_msg("Kept"))
    ingest.send("misp_json_conversation", post_msg("311"))
    ingest.close()
    again = Ingest(redis_server.url)
    again.send("misp_json_conversation", post_msg("311"))
    again.close()
    assert zset(r, f"TRENDINGS_DISC:{DAY}") == {"Kept": 2.0}


# --- users (§6) ---------------------------------------------------------------------


def test_one_login_timestamp_per_org_per_hour(r: redis.Redis, ingest: Ingest) -> None:
    for i in range(10):
        ingest.send("misp_json_audit", audit_login_msg("CERT-Example"), now=NOW + i * 60)
    ingest.send("misp_json_audit", audit_login_msg("Банк-CERT"), now=NOW + 700)
    ingest.send("misp_json_audit", audit_login_msg("CERT-Example", "login_fail"), now=NOW + 800)
    next_hour = utc(2024, 10, 14, 10, 5)
    ingest.send("misp_json_audit", audit_login_msg("CERT-Example"), now=next_hour)
    ingest.flush()
    # 09:30 UTC is 11:30 in Luxembourg (CEST), 10:05 UTC is 12:05.
    assert zset(r, f"LOGIN_ORG:{DAY}") == {"CERT-Example": 11.0, "Банк-CERT": 1.0}
    assert members(r, f"LOGIN_TIMESTAMP:{DAY}") == {str(int(NOW)), str(int(NOW + 700)),
                                                    str(int(next_hour))}
    assert members(r, "LOGIN_TIMESTAMPSET:2024101411") == {"CERT-Example", "Банк-CERT"}
    assert members(r, "LOGIN_TIMESTAMPSET:2024101412") == {"CERT-Example"}


def test_login_timestampset_expires_one_hour_after_creation(r: redis.Redis,
                                                            ingest: Ingest) -> None:
    key = "LOGIN_TIMESTAMPSET:2024101411"
    ingest.send("misp_json_audit", audit_login_msg("CERT-Example"))
    ingest.flush()
    first = r.pttl(key)
    assert 3_500_000 < first <= 3_600_000  # an hour, give or take a slow machine
    time.sleep(0.05)
    ingest.send("misp_json_audit", audit_login_msg("CERT-Example"), now=NOW + 10)
    ingest.send("misp_json_audit", audit_login_msg("Банк-CERT"), now=NOW + 20)
    ingest.flush()
    assert members(r, key) == {"CERT-Example", "Банк-CERT"}
    assert 0 < r.pttl(key) <= first - 50  # set at creation, never extended


def test_login_day_follows_the_time_zone(r: redis.Redis, ingest: Ingest,
                                         redis_server: RedisServer) -> None:
    late = utc(2024, 10, 14, 23, 30)  # 01:30 on the 15th in Luxembourg
    ingest.send("misp_json_audit", audit_login_msg("CERT-Example"), now=late)
    ingest.send("misp_json_attribute", attribute_msg(), now=late)
    ingest.flush()
    utc_ingest = Ingest(redis_server.url, tz="UTC")
    utc_ingest.send("misp_json_attribute", attribute_msg(), now=late)
    utc_ingest.close()
    assert zset(r, "LOGIN_ORG:20241015") == {"CERT-Example": 1.0}
    assert members(r, "LOGIN_TIMESTAMP:20241015") == {str(int(late))}
    assert members(r, "LOGIN_TIMESTAMPSET:2024101501") == {"CERT-Example"}
    assert zset(r, "TRENDINGS_CATEGS:20241015") == {"Network activity": 1.0}
    assert zset(r, "TRENDINGS_CATEGS:20241014") == {"Network activity": 1.0}  # the UTC daemon
    assert not r.exists("LOGIN_ORG:20241014")


def test_user_topic_logins_when_selected(r: redis.Redis, redis_server: RedisServer) -> None:
    from tests.factories import user_msg

    ing = Ingest(redis_server.url, login_source="user")
    ing.send("misp_json_user", user_msg("KISA-Example"))
    ing.send("misp_json_user", user_msg("KISA-Example", "logout"))
    ing.send("misp_json_audit", audit_login_msg("CERT-Example"))
    ing.close()
    assert zset(r, f"LOGIN_ORG:{DAY}") == {"KISA-Example": 1.0}


# --- live feed (§7) ----------------------------------------------------------------


def _listen(r: redis.Redis) -> Any:
    sub = r.pubsub()
    sub.subscribe("1")
    assert sub.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
    return sub


def _messages(sub: Any, n: int) -> list[dict[str, Any]]:
    out = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        msg = sub.get_message(timeout=1)
        if msg and msg["type"] == "message":
            out.append(json.loads(msg["data"]))
    return out


def test_live_channel_messages(r: redis.Redis, ingest: Ingest) -> None:
    sub = _listen(r)
    ingest.send("misp_json_attribute", attribute_msg())
    ingest.send("misp_json_attribute", attribute_msg(attribute(object_id="5521")))
    ingest.send("misp_json_self", KEEPALIVE, instance="misp1")
    ingest.flush()
    got = _messages(sub, 3)
    sub.close()
    assert [(m["name"], m["zmqName"]) for m in got] == [
        ("Attribute", "misp1"), ("ObjectAttribute", "misp1"), ("Keepalive", "misp1")]
    log = json.loads(got[0]["log"])
    assert log["Attribute"]["value"] == "8.8.8.8"
    assert log["Event"]["info"] == INFO and log["Event"]["Orgc"]["name"] == "CERT-Example"
    assert got[2]["log"] == "[9170]"


def test_live_cache_is_capped_newest_first(r: redis.Redis, redis_server: RedisServer) -> None:
    ing = Ingest(redis_server.url, max_cache_history=3)
    for i in range(5):
        ing.send("misp_json_attribute", attribute_msg(attribute(value=f"192.0.2.{i}")))
        if i == 1:
            ing.flush()  # the cap holds across batches too
    ing.send("misp_json_self", KEEPALIVE)
    ing.close()
    cached = [json.loads(x) for x in r.lrange("TEMP_CACHE_LIVE:Attribute", 0, -1)]
    assert [c["log"]["Attribute"]["value"] for c in cached] == [
        "192.0.2.4", "192.0.2.3", "192.0.2.2"]
    assert {c["name"] for c in cached} == {"Attribute"}
    assert not r.exists("TEMP_CACHE_LIVE:Keepalive")


# --- the organisation directory (§2) ------------------------------------------------


def test_organisation_directory_is_persisted_and_reloaded(r: redis.Redis, ingest: Ingest,
                                                          redis_server: RedisServer) -> None:
    ingest.send("misp_json_organisation", organisation_msg("Organisation", "23", "Example Bank"))
    ingest.send("misp_json_attribute", attribute_msg(), style="ints")  # Event.Orgc id 4
    ingest.send("misp_json_organisation", organisation_msg("Orgc", "9", "Example SOC 🛡️"),
                instance="misp1")
    ingest.close()
    assert r.hgetall("INGEST:orgs:misp1") == {b"23": b"Example Bank", b"4": b"CERT-Example",
                                              b"9": "Example SOC 🛡️".encode()}
    again = Ingest(redis_server.url)
    state = again.state()
    assert state.orgs == {"23": "Example Bank", "4": "CERT-Example", "9": "Example SOC 🛡️"}
    obs = next(extract_sighting(sighting_msg("0", "9"), state))
    assert (obs.org, obs.org_is_fallback) == ("Example SOC 🛡️", False)
    again.close()


def test_organisation_directories_are_per_instance(r: redis.Redis,
                                                   redis_server: RedisServer) -> None:
    ing = Ingest(redis_server.url, instances=("misp1", "misp2"))
    ing.send("misp_json_organisation", organisation_msg(), instance="misp2")
    ing.close()
    assert r.hgetall("INGEST:orgs:misp2") == {b"23": b"Example Bank"}
    assert not r.exists("INGEST:orgs:misp1")


def test_a_huge_event_sealed_part_way_still_counts_exactly(r: redis.Redis,
                                                           ingest: Ingest) -> None:
    ingest.daemon.dispatcher.max_batch_ops = 10  # as if the event had 50,000 attributes
    attrs = [attribute(value=f"198.51.100.{i}") for i in range(40)]
    ingest.send("misp_json", published_msg(attrs=attrs, tags=[TLP_AMBER]))
    ingest.flush()
    assert ingest.daemon.writer.applied_batches > 3
    assert zset(r, f"TRENDINGS_CATEGS:{DAY}") == {"Network activity": 40.0}
    assert zset(r, f"TRENDINGS_EVENTS:{DAY}") == {INFO: 1.0}
    assert r.llen("TEMP_CACHE_LIVE:Attribute") == 40
    first = json.loads(r.lindex("TEMP_CACHE_LIVE:Attribute", 0))  # type: ignore[arg-type]
    assert first["log"]["Attribute"]["value"] == "198.51.100.39"
    stats = ingest.daemon.instances["misp1"][1]
    assert (stats.received, stats.processed) == (1, 1)
