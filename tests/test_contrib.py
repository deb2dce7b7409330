"""Contributions: points, category counts, counters, trophies, awards (semantics §5)."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import orjson
import pytest
import redis

from helpers.batch import Batch, split_payload
from helpers.clock import DayClock
from helpers.config import Config
from helpers.context import Context
from helpers.contributor_helper import Contributions
from helpers.observations import InstanceState
from helpers.ranking import Points, Ranking
from helpers.router import Dispatcher
from helpers.stats import InstanceStats
from tests.contrib_support import (
    DAY,
    DAYS,
    NOW,
    Harness,
    attribute,
    awards,
    event,
    organisation,
    post,
    published_event,
    sighting,
)

WEEK = 7 * DAYS


def zset(r: redis.Redis, key: str) -> dict[str, float]:
    return {m.decode(): s for m, s in r.zrange(key, 0, -1, withscores=True)}


def ttl_about(r: redis.Redis, key: str, seconds: int) -> bool:
    return seconds - 5 <= r.ttl(key) <= seconds


# --- points and category counts, per kind ------------------------------------------------


def test_attribute_contribution_writes_every_key(r: redis.Redis) -> None:
    Harness(r).send("misp_json_attribute", attribute("Org A", "Network activity"))
    assert zset(r, f"CONTRIB_DAY:{DAY}") == {"Org A": 1}
    assert zset(r, f"CONTRIB_CATEG:{DAY}:network_activity") == {"Org A": 1}
    assert r.smembers("CONTRIB_ALL_ORG") == {b"Org A"}
    assert zset(r, f"CONTRIB_LAST:{DAY}") == {"Org A": NOW}
    assert ttl_about(r, f"CONTRIB_LAST:{DAY}", WEEK)
    assert r.get("CONTRIB_ORG:Org A:points") == b"1"
    assert r.ttl("CONTRIB_ORG:Org A:points") == -1
    assert r.get("CONTRIB_ORG:Org A:ATTR_WEEK_COUNT") == b"1"
    assert ttl_about(r, "CONTRIB_ORG:Org A:ATTR_WEEK_COUNT", WEEK)
    assert zset(r, "CONTRIB_TROPHY:network_activity") == {"Org A": 1}


def test_category_points_come_from_the_ranking_table(r: redis.Redis) -> None:
    ranking = Ranking(points=Points(default=3, categories={"network_activity": 5}))
    h = Harness(r, ranking)
    h.send("misp_json_attribute", attribute("Org A", "Network activity"))
    h.send("misp_json_attribute", attribute("Org A", "Other"))
    assert zset(r, f"CONTRIB_DAY:{DAY}") == {"Org A": 8}
    assert r.get("CONTRIB_ORG:Org A:points") == b"8"
    assert zset(r, f"CONTRIB_CATEG:{DAY}:network_activity") == {"Org A": 1}  # counts, not points
    assert zset(r, f"CONTRIB_CATEG:{DAY}:other") == {"Org A": 1}


def test_published_event_credits_the_event_and_every_attribute(r: redis.Redis) -> None:
    ranking = Ranking(points=Points(categories={"payload_delivery": 3}, event=2))
    body = published_event("Org A", ["Network activity", "Network activity", "Other"],
                           ["Payload delivery", "Payload delivery"])
    Harness(r, ranking).send("misp_json", body)
    # event 2 + network_activity 1 + 1 + other 1 + object attributes 3 + 3
    assert r.get("CONTRIB_ORG:Org A:points") == b"11"
    assert zset(r, f"CONTRIB_DAY:{DAY}") == {"Org A": 11}
    assert zset(r, f"CONTRIB_CATEG:{DAY}:network_activity") == {"Org A": 2}
    assert zset(r, f"CONTRIB_CATEG:{DAY}:other") == {"Org A": 1}
    assert zset(r, f"CONTRIB_CATEG:{DAY}:payload_delivery") == {"Org A": 2}
    assert r.get("CONTRIB_ORG:Org A:ATTR_WEEK_COUNT") == b"5"  # object attributes count
    assert r.get("CONTRIB_ORG:Org A:EVENT_WEEK_COUNT") == b"1"
    assert r.get("CONTRIB_ORG:Org A:EVENT_MONTH_COUNT") == b"1"
    assert ttl_about(r, "CONTRIB_ORG:Org A:EVENT_MONTH_COUNT", 31 * DAYS)
    assert zset(r, "CONTRIB_TROPHY:payload_delivery") == {"Org A": 2}
    assert zset(r, "CONTRIB_TROPHY:network_activity") == {"Org A": 2}


def test_event_contribution_has_no_category(r: redis.Redis) -> None:
    Harness(r).send("misp_json_event", event("Org E"))
    assert r.get("CONTRIB_ORG:Org E:points") == b"1"
    assert zset(r, f"CONTRIB_DAY:{DAY}") == {"Org E": 1}
    assert r.keys("CONTRIB_CATEG:*") == []
    assert r.keys("CONTRIB_TROPHY:*") == []
    assert ttl_about(r, "CONTRIB_ORG:Org E:EVENT_WEEK_COUNT", WEEK)


def test_sighting_credits_the_reporting_org_with_multiplied_points(r: redis.Redis) -> None:
    ranking = Ranking(points=Points(categories={"payload_delivery": 3}, sighting_multiplier=2))
    h = Harness(r, ranking)
    h.send("misp_json_organisation", organisation("5", "Reporter"))
    h.send("misp_json_sighting", sighting("5", "Creator", "Payload delivery"))
    assert zset(r, f"CONTRIB_DAY:{DAY}") == {"Reporter": 6}
    assert r.get("CONTRIB_ORG:Reporter:points") == b"6"
    assert zset(r, f"CONTRIB_CATEG:{DAY}:sighting") == {"Reporter": 1}
    assert zset(r, "CONTRIB_TROPHY:payload_delivery") == {"Reporter": 1}
    assert r.get("CONTRIB_ORG:Reporter:SIGHT_WEEK_COUNT") == b"1"
    # The sighting's attribute is not an attribute contribution.
    assert r.get("CONTRIB_ORG:Reporter:ATTR_WEEK_COUNT") is None
    assert r.keys(f"CONTRIB_CATEG:{DAY}:payload_delivery") == []
    assert h.stats.reasons["sighting_org_fallback"] == 0


def test_sighting_of_an_unknown_reporter_falls_back_to_the_creator(r: redis.Redis) -> None:
    h = Harness(r)
    h.send("misp_json_sighting", sighting("99", "Creator", "Other"))
    assert zset(r, f"CONTRIB_DAY:{DAY}") == {"Creator": 2}
    assert h.stats.reasons["sighting_org_fallback"] == 1


def test_false_positive_counts_and_expiration_does_not(r: redis.Redis) -> None:
    h = Harness(r)
    h.send("misp_json_sighting", sighting("99", "Creator", "Other", kind="1"))
    h.send("misp_json_sighting", sighting("99", "Creator", "Other", kind="2"))
    assert r.get("CONTRIB_ORG:Creator:points") == b"2"


def test_discussion_post(r: redis.Redis) -> None:
    Harness(r).send("misp_json_conversation", post("Talker"))
    assert zset(r, f"CONTRIB_DAY:{DAY}") == {"Talker": 1}
    assert zset(r, f"CONTRIB_CATEG:{DAY}:discussion") == {"Talker": 1}
    assert r.get("CONTRIB_ORG:Talker:points") == b"1"
    assert r.keys("CONTRIB_TROPHY:*") == []


def test_edits_count_and_deletions_do_not(r: redis.Redis) -> None:
    h = Harness(r)
    h.send("misp_json_attribute", attribute("Org A", action="add"))
    h.send("misp_json_attribute", attribute("Org A", action="edit"))
    h.send("misp_json_attribute", attribute("Org A", action="delete"))
    assert r.get("CONTRIB_ORG:Org A:points") == b"2"


def test_empty_category_never_makes_an_empty_key(r: redis.Redis) -> None:
    h = Harness(r)
    h.send("misp_json_attribute", attribute("Org A", category=""))
    assert r.get("CONTRIB_ORG:Org A:points") == b"1"
    assert r.keys("CONTRIB_TROPHY:*") == [] and r.keys("CONTRIB_CATEG:*") == []
    assert h.stats.reasons["contrib_empty_category"] == 1


def test_week_window_opens_at_first_contribution_and_is_not_extended(r: redis.Redis) -> None:
    h = Harness(r)
    h.send("misp_json_event", event("Org E"))
    r.expire("CONTRIB_ORG:Org E:EVENT_WEEK_COUNT", 100)  # the window is nearly over
    r.expire("CONTRIB_ORG:Org E:EVENT_MONTH_COUNT", 200)
    h.send("misp_json_event", event("Org E"), now=NOW + 3 * DAYS)
    assert r.get("CONTRIB_ORG:Org E:EVENT_WEEK_COUNT") == b"2"
    assert 95 <= r.ttl("CONTRIB_ORG:Org E:EVENT_WEEK_COUNT") <= 100
    assert 195 <= r.ttl("CONTRIB_ORG:Org E:EVENT_MONTH_COUNT") <= 200


def test_last_contributor_is_published_for_attributes_and_sightings(r: redis.Redis) -> None:
    sub = r.pubsub()
    sub.subscribe("lastContributor")
    sub.get_message(timeout=1)
    h = Harness(r)
    h.send("misp_json_attribute", attribute("Org A", "Network activity", action="edit"))
    h.send("misp_json_sighting", sighting("99", "Créateur", "Other"))
    h.send("misp_json_event", event("Org E"))
    got = _messages(sub, 2)
    assert [json.loads(m) for m in got] == [
        {"name": "CONTRIBUTION", "zmqName": "misp1", "log": json.dumps(
            {"org": "Org A", "categ": "Network activity", "action": "edit", "epoch": int(NOW)})},
        {"name": "CONTRIBUTION", "zmqName": "misp1", "log": json.dumps(
            {"org": "Créateur", "categ": "Other", "action": "add", "epoch": int(NOW)},
            ensure_ascii=False)},
    ]
    assert sub.get_message(timeout=0.2) is None  # events are not published there
    sub.close()


def _messages(sub: Any, n: int, timeout: float = 5.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        msg = sub.get_message(timeout=0.2)
        if msg and msg["type"] == "message":
            got.append(msg["data"].decode())
    return got


# --- awards ---------------------------------------------------------------------------


def test_awards_are_emitted_once(r: redis.Redis) -> None:
    sub = r.pubsub()
    sub.subscribe("lastAwards")
    sub.get_message(timeout=1)
    h = Harness(r)
    for i in range(6):  # points 1..6: requirement 2 (4 points, attributes) from the 4th on
        h.send("misp_json_attribute", attribute("Orgé A", "Network activity"), now=NOW + i)
    expected = [
        {"org": "Orgé A", "award": ["trophy", ["network_activity", 12]], "epoch": int(NOW)},
        {"org": "Orgé A", "award": ["contribution_status", 2], "epoch": int(NOW) + 3},
    ]
    assert awards(r) == expected
    assert ttl_about(r, f"CONTRIB_LAST_AWARDS:{DAY}", WEEK)
    # The member is deterministic JSON: Python's separators, non-ASCII kept.
    members = [m.decode() for m in r.zrange(f"CONTRIB_LAST_AWARDS:{DAY}", 0, -1)]
    assert members == [json.dumps(a, ensure_ascii=False) for a in expected]
    published = _messages(sub, 3, timeout=1.0)
    assert published == [json.dumps({"name": "CONTRIBUTION", "log": m, "zmqName": "misp1"},
                                    ensure_ascii=False) for m in members]
    sub.close()


def test_trophy_rank_up_awards_each_rank_reached(r: redis.Redis) -> None:
    # Ten organisations in "other" with 2, 4, ... 20; a newcomer climbs one score at a time.
    r.zadd("CONTRIB_TROPHY:other", {f"o{i:02d}": 2 * i for i in range(1, 11)})
    h = Harness(r)
    # Scores 1..5 among 11: positions 10, 10, 9, 9, 8 -> ranks 1, 1, 2, 2, 3 (mapping
    # 2,9,9,10.. cumulated 2,11,20,..,80,90,100: 10/11 -> <=100 -> 12-11; 9/11 -> <=90 ...).
    h.send("misp_json", published_event("Org O", ["Other"] * 5))
    trophies = [a["award"] for a in awards(r) if a["award"][0] == "trophy"]
    assert trophies == [["trophy", ["other", 1]], ["trophy", ["other", 2]],
                        ["trophy", ["other", 3]]]
    h.send("misp_json_attribute", attribute("Org O", "Other"), now=NOW + 1)  # 6: tie, still 3
    h.send("misp_json_attribute", attribute("Org O", "Other"), now=NOW + 2)  # 7: position 7
    assert [a["award"] for a in awards(r)][-1] == ["trophy", ["other", 4]]
    assert len([a for a in awards(r) if a["award"][0] == "trophy"]) == 4


def test_a_rank_jumped_over_in_one_step_is_not_awarded(r: redis.Redis) -> None:
    # Twenty organisations tied at 5: the newcomer is last until it passes all at once.
    r.zadd("CONTRIB_TROPHY:other", {f"o{i:02d}": 5 for i in range(20)})
    Harness(r).send("misp_json", published_event("Org O", ["Other"] * 6))
    trophies = [a["award"] for a in awards(r) if a["award"][0] == "trophy"]
    assert sorted(trophies, key=lambda a: a[1][1]) == [
        ["trophy", ["other", 1]], ["trophy", ["other", 12]]]


# --- merging within a batch is exactly equivalent -----------------------------------------


def _dump(r: redis.Redis) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in sorted(r.keys("CONTRIB_*")):
        key = raw.decode()
        kind = r.type(key).decode()
        if kind == "zset":
            out[key] = r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            out[key] = sorted(r.smembers(key))
        else:
            out[key] = r.get(key)
        out[key + " has TTL"] = r.ttl(key) > 0
    return out


def _random_feed(rng: random.Random) -> list[tuple[str, dict[str, Any], float]]:
    orgs = ["A", "B", "C"]
    categs = ["Other", "Network activity", "Payload delivery"]
    feed = []
    for i in range(12):
        now = NOW + rng.choice([0, 0, i])  # equal receive times invite merging
        org = rng.choice(orgs)
        roll = rng.random()
        if roll < 0.5:
            attrs = [rng.choice(categs) for _ in range(rng.randint(1, 15))]
            feed.append(("misp_json", published_event(org, attrs, tags=rng.random() < .5), now))
        elif roll < 0.8:
            feed.append(("misp_json_attribute", attribute(org, rng.choice(categs)), now))
        elif roll < 0.9:
            feed.append(("misp_json_sighting", sighting("0", org, rng.choice(categs)), now))
        else:
            feed.append(("misp_json_event", event(org, tags=True), now))
    return feed


def _replay(r: redis.Redis, feed: list[tuple[str, dict[str, Any], float]],
            trophies: dict[str, int], keys: dict[str, int], *, merge: bool = True,
            per_message: bool = False, inline: bool = False) -> dict[str, Any]:
    """A fresh keyspace (trophy sets and keys seeded), the feed through a Harness, the
    CONTRIB_* keys after."""
    r.flushall()
    if trophies:
        for categ in ("other", "network_activity", "payload_delivery"):
            r.zadd(f"CONTRIB_TROPHY:{categ}", trophies)
    for key, value in keys.items():
        r.set(key, value)
    h = Harness(r, Ranking())
    h.feature.merge = merge
    h.inline_shared = inline
    for topic, body, now in feed:
        h.send(topic, body, now, flush=per_message)
    h.flush()
    return _dump(r)


def test_merging_attribute_contributions_is_exactly_equivalent(r: redis.Redis) -> None:
    for seed in range(12):
        rng = random.Random(seed)
        seeded = {f"x{i}": rng.randint(1, 30) for i in range(rng.randint(0, 12))}
        feed = _random_feed(rng)
        keys = {"CONTRIB_ORG:A:points": rng.randint(0, 20)}
        assert _replay(r, feed, seeded, keys, merge=True) == \
            _replay(r, feed, seeded, keys, merge=False), f"seed {seed}"


def test_what_the_script_remembers_within_a_batch_changes_no_reply(r: redis.Redis) -> None:
    """One batch for a whole feed (the procedure reuses totals, counters, requirements and
    trophy scores it learnt earlier in the batch) against one batch per message (every
    value read from Redis): the same keys, TTLs and awards."""
    for seed in range(12):
        rng = random.Random(1000 + seed)
        seeded = {f"x{i}": rng.randint(1, 30) for i in range(rng.randint(0, 12))}
        feed = _random_feed(rng) + _random_feed(rng)
        keys = {"CONTRIB_ORG:A:points": rng.randint(0, 3000),  # near thresholds, sometimes
                "CONTRIB_ORG:B:ATTR_WEEK_COUNT": rng.randint(0, 12)}  # about heavilyCount
        assert _replay(r, feed, seeded, keys, per_message=True) == \
            _replay(r, feed, seeded, keys, per_message=False), f"seed {seed}"


def test_calls_with_shared_arguments_apply_as_calls_with_them_inline(r: redis.Redis) -> None:
    """Batches share the arguments that recur in calls (Batch.share); payloads journaled
    by earlier versions carry them in every call, and still apply the same."""
    for seed in range(6):
        rng = random.Random(2000 + seed)
        seeded = {f"x{i}": rng.randint(1, 30) for i in range(rng.randint(0, 12))}
        feed = _random_feed(rng) + _random_feed(rng)
        keys = {"CONTRIB_ORG:A:points": rng.randint(0, 3000)}
        shared = _replay(r, feed, seeded, keys)
        assert shared == _replay(r, feed, seeded, keys, inline=True), f"seed {seed}"
        assert any(k.startswith("CONTRIB_LAST_AWARDS:") for k in shared), "no award compared"


def test_a_batch_sends_the_shared_arguments_once() -> None:
    feature = Contributions(Config(timezone="UTC"))
    feeds = {"m1": (InstanceState("m1"), InstanceStats("m1"))}
    disp = Dispatcher([feature], DayClock("UTC"), feeds, lambda batch: None)
    for i in range(20):
        frame = f"misp_json_attribute {json.dumps(attribute('Org A' if i % 2 else 'Org B'))}"
        disp.handle("m1", frame.encode(), NOW + i)  # no merging: one call per message
    batch = disp.take_batch()
    assert len(batch.calls) == 20 and len(batch.shared) == 2
    assert [c[8] for c in batch.calls[:3]] == [1, 2, 1]  # numbered from 1, as in Lua
    assert batch.shared[0][3] == "CONTRIB_ORG:Org B:points"
    ops = orjson.loads(bytes(split_payload(batch.encode())[0]).split(b"\n")[0])
    assert [op[0] for op in ops[:2]] == ["sh", "sh"]  # before any call that reads them
    assert sum(op[0] == "sh" for op in ops) == 2


def test_merging_never_mixes_feeds_or_actions() -> None:
    feature = Contributions(Config(timezone="UTC"))
    sealed: list[Batch] = []
    disp = Dispatcher([feature], DayClock("UTC"),
                      {n: (InstanceState(n), InstanceStats(n)) for n in ("m1", "m2")},
                      sealed.append)
    for instance, action in (("m1", "add"), ("m1", "add"), ("m2", "add"), ("m2", "edit")):
        frame = f"misp_json_attribute {json.dumps(attribute('Org A', action=action))}"
        disp.handle(instance, frame.encode(), NOW)  # one receive time for all four
    batch = disp.take_batch()
    assert [c[6] for c in batch.calls] == [2, 1, 1]  # counts: m1 add x2, m2 add, m2 edit
    logs = [(json.loads(m)["zmqName"], json.loads(json.loads(m)["log"])["action"])
            for _, m in batch.publications()]
    assert logs == [("m1", "add"), ("m1", "add"), ("m2", "add"), ("m2", "edit")]


def test_a_key_of_the_wrong_type_spoils_one_effect_not_the_batch(r: redis.Redis) -> None:
    r.set("CONTRIB_TROPHY:other", "an operator's string")
    r.set("CONTRIB_ORG:Org B:points", "not a number")
    h = Harness(r)
    for org, categ in (("Org A", "Other"), ("Org B", "Network activity"), ("Org C", "Person")):
        h.dispatcher.handle("misp1", f"misp_json_attribute "
                            f"{json.dumps(attribute(org, categ))}".encode(), NOW)
    h.seq += 1
    ops, _ = split_payload(h.dispatcher.take_batch().encode())
    applied, failed = h.script(keys=["INGEST:applied:test"], args=[h.seq, ops, 0])
    # Org A's trophy: ZSCORE, ZCARD, ZADD, ZREVRANK fail; Org B's INCRBY fails.  The script
    # goes on: no Lua error, which would make the writer retry the batch forever.
    assert applied > 0 and failed == 5
    assert r.get("CONTRIB_ORG:Org A:points") == b"1"  # its trophy failed, not its points
    assert r.get("CONTRIB_ORG:Org B:points") == b"not a number"
    assert zset(r, f"CONTRIB_DAY:{DAY}") == {"Org A": 1, "Org B": 1, "Org C": 1}
    assert zset(r, "CONTRIB_TROPHY:person") == {"Org C": 1}
    assert r.get("INGEST:applied:test") == str(h.seq).encode()


@pytest.mark.parametrize(("org", "categ", "action", "instance"), [
    ("CIRCL", "Network activity", "add", "misp1"),
    ('O"r\\g 🛡️ ц', None, None, 'i"n\\st\n'),
    ("987654321987654321", "987654321987654321", "edit", "987654321987654321"),
])
def test_the_last_contributor_line_is_the_plain_serialisation(
        org: str, categ: str | None, action: str | None, instance: str) -> None:
    feature = Contributions(Config(timezone="UTC"))
    for now in (1767139200.7, 1767139201.2):  # one line kept per (org, categ, action, feed)
        ctx = Context(now, "20251231", "2025123100", instance, Batch(), InstanceStats(instance))
        log = json.dumps({"org": org, "categ": categ, "action": action, "epoch": int(now)},
                         ensure_ascii=False)
        assert feature._last_contributor(ctx, org, categ, action) == json.dumps(
            {"name": "CONTRIBUTION", "log": log, "zmqName": instance},
            ensure_ascii=False).encode()
