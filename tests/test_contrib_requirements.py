"""Requirements 1-14, one test per rule (semantics §5 table): granted exactly when the
condition holds and not before, with the table's TTL.  Defaults of the ranking file:
thresholds 2, 4, 8 ... 16384; recentDays 31, regularlyDays 7, heavilyCount 10.

Points are seeded just below a threshold (``CONTRIB_ORG:<org>:points``), so each test
crosses it with one or two contributions; the clock is the harness's ``now``.
"""

from __future__ import annotations

import redis

from tests.contrib_support import (
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

YEAR, RECENT, REGULARLY = 365 * DAYS, 31 * DAYS, 7 * DAYS
ORG = "Org R"


def req(r: redis.Redis, i: int) -> bool:
    return r.get(f"CONTRIB_ORG:{ORG}:CONTRIB_REQ_{i}") == b"1"


def ttl_is(r: redis.Redis, i: int, seconds: int) -> bool:
    return seconds - 5 <= r.ttl(f"CONTRIB_ORG:{ORG}:CONTRIB_REQ_{i}") <= seconds


def seed(r: redis.Redis, points: int, **counters: int) -> None:
    r.set(f"CONTRIB_ORG:{ORG}:points", points)
    for name, value in counters.items():
        r.set(f"CONTRIB_ORG:{ORG}:{name}", value, ex=3 * DAYS)


def status_awards(r: redis.Redis) -> list[int]:
    return [a["award"][1] for a in awards(r) if a["award"][0] == "contribution_status"]


def harness(r: redis.Redis) -> Harness:
    h = Harness(r)
    h.send("misp_json_organisation", organisation("5", ORG))  # ORG reports sightings as id 5
    return h


def test_req_1_sighting_with_2_points(r: redis.Redis) -> None:
    h = harness(r)
    h.send("misp_json_attribute", attribute(ORG))
    h.send("misp_json_attribute", attribute(ORG))  # 2 points, but not by a sighting
    assert not req(r, 1)
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))  # 4 points
    assert req(r, 1) and ttl_is(r, 1, YEAR)
    assert 1 in status_awards(r)


def test_req_2_attribute_or_object_attribute_with_4_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 2)
    h.send("misp_json_attribute", attribute(ORG, object_id="3"))  # 3
    assert not req(r, 2)
    h.send("misp_json_attribute", attribute(ORG, object_id="3"))  # 4: object attributes count
    assert req(r, 2) and ttl_is(r, 2, YEAR)


def test_req_3_discussion_only_above_8_points(r: redis.Redis) -> None:
    h = harness(r)
    h.send("misp_json_conversation", post(ORG))  # 1 point: the reference would grant 3 here
    assert not req(r, 3)
    seed(r, 6)
    h.send("misp_json_conversation", post(ORG))  # 7
    assert not req(r, 3)
    h.send("misp_json_event", event(ORG))  # 8, but an event
    assert not req(r, 3)
    h.send("misp_json_conversation", post(ORG))  # 9
    assert req(r, 3) and ttl_is(r, 3, YEAR)


def test_req_4_recent_sighting_with_16_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 20)
    h.send("misp_json_sighting", sighting("5", "Creator", "Other",
                                          date_sighting=NOW - 31 * DAYS - 1))  # 22, not recent
    assert not req(r, 4)
    assert req(r, 1)
    later = NOW + 10 * DAYS  # the clock moves: a date_sighting is recent relative to now
    h.send("misp_json_sighting", sighting("5", "Creator", "Other",
                                          date_sighting=later - 31 * DAYS), now=later)
    assert req(r, 4) and ttl_is(r, 4, RECENT)


def test_req_4_needs_16_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 12)
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))  # 14
    assert not req(r, 4)
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))  # 16
    assert req(r, 4)


def test_req_6_event_with_64_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 62)
    h.send("misp_json_event", event(ORG))  # 63
    assert not req(r, 6)
    h.send("misp_json_event", event(ORG))  # 64
    assert req(r, 6) and ttl_is(r, 6, YEAR)


def test_req_7_event_this_month_with_128_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 126)
    h.send("misp_json_event", event(ORG))  # 127
    assert not req(r, 7)
    h.send("misp_json_event", event(ORG))  # 128, month counter 2
    assert req(r, 7) and ttl_is(r, 7, RECENT)


def test_req_8_event_this_week_with_256_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 254)
    h.send("misp_json_event", event(ORG))  # 255
    assert not req(r, 8)
    h.send("misp_json_event", event(ORG))  # 256
    assert req(r, 8) and ttl_is(r, 8, REGULARLY)


def test_req_9_tagged_event_with_512_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 510)
    h.send("misp_json_event", event(ORG, tags=True))  # 511
    assert not req(r, 9)
    h.send("misp_json_event", event(ORG, tags=False))  # 512, no tags
    assert not req(r, 9) and req(r, 8)
    h.send("misp_json", published_event(ORG, [], tags=True))  # 513, tags on the published event
    assert req(r, 9) and ttl_is(r, 9, REGULARLY)


def test_req_10_heavy_sightings_with_1024_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 1100, SIGHT_WEEK_COUNT=9)
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))  # 10th this week
    assert not req(r, 10)
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))  # 11th: more than 10
    assert req(r, 10) and ttl_is(r, 10, REGULARLY)


def test_req_10_needs_1024_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 1018, SIGHT_WEEK_COUNT=20)
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))  # 1020
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))  # 1022
    assert not req(r, 10)
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))  # 1024
    assert req(r, 10)


def test_req_11_heavy_attributes_with_2048_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 2046, ATTR_WEEK_COUNT=9)
    h.send("misp_json_attribute", attribute(ORG))  # 2047, 10th this week
    assert not req(r, 11)
    h.send("misp_json_attribute", attribute(ORG))  # 2048, 11th
    assert req(r, 11) and ttl_is(r, 11, REGULARLY)


def test_req_11_counts_the_attributes_of_a_published_event(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 3000)
    h.send("misp_json", published_event(ORG, ["Other"] * 10))  # 10 attributes this week
    assert not req(r, 11)
    h.send("misp_json", published_event(ORG, ["Other"] * 1))  # 11
    assert req(r, 11)


def test_req_13_heavy_events_with_8192_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 9000, EVENT_WEEK_COUNT=9)
    h.send("misp_json_event", event(ORG))  # 10th event this week
    assert not req(r, 13)
    h.send("misp_json_event", event(ORG))  # 11th
    assert req(r, 13) and ttl_is(r, 13, REGULARLY)


def test_req_13_needs_8192_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 8190, EVENT_WEEK_COUNT=30)
    h.send("misp_json_event", event(ORG))  # 8191
    assert not req(r, 13)
    h.send("misp_json_event", event(ORG))  # 8192
    assert req(r, 13)


def test_req_14_heavy_tagged_events_with_16384_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 17000, EVENT_WEEK_COUNT=10)
    h.send("misp_json_event", event(ORG, tags=False))  # 11th, no tags
    assert not req(r, 14) and req(r, 13)
    h.send("misp_json_event", event(ORG, tags=True))  # 12th, tagged
    assert req(r, 14) and ttl_is(r, 14, REGULARLY)


def test_req_14_needs_16384_points(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 16382, EVENT_WEEK_COUNT=30)
    h.send("misp_json_event", event(ORG, tags=True))  # 16383
    assert not req(r, 14)
    h.send("misp_json_event", event(ORG, tags=True))  # 16384
    assert req(r, 14)


def test_req_5_and_12_are_never_granted_by_the_feed(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 100000, ATTR_WEEK_COUNT=50, SIGHT_WEEK_COUNT=50, EVENT_WEEK_COUNT=50)
    h.send("misp_json", published_event(ORG, ["Other"], tags=True))
    h.send("misp_json_sighting", sighting("5", "Creator", "Other"))
    h.send("misp_json_conversation", post(ORG))
    held = [i for i in range(1, 17) if req(r, i)]
    assert held == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 13, 14]
    assert sorted(status_awards(r)) == held  # each one awarded once


def test_a_held_requirement_is_renewed_without_a_second_award(r: redis.Redis) -> None:
    h = harness(r)
    seed(r, 254)
    h.send("misp_json_event", event(ORG))
    h.send("misp_json_event", event(ORG))  # 256: requirement 8
    r.expire(f"CONTRIB_ORG:{ORG}:CONTRIB_REQ_8", 60)
    h.send("misp_json_event", event(ORG))
    assert ttl_is(r, 8, REGULARLY)  # its TTL restarts
    assert status_awards(r).count(8) == 1
