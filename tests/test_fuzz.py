"""Bad input never stops the loop (issue #2 §8).

Random frames and random mutations of valid messages of every topic (wrong
types at any depth, ``Event`` as a scalar, missing keys, arrays where objects
are expected, non-UTF-8 bytes, no space) go through the Dispatcher with every
feature; it never raises, its counters add up, and a valid message sent after
them still lands with exactly its operations.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.batch import Batch
from helpers.clock import DayClock
from helpers.config import Config
from helpers.daemon import build_features
from helpers.observations import InstanceState
from helpers.router import Dispatcher
from helpers.stats import InstanceStats
from tests.factories import (
    DAY,
    KEEPALIVE,
    KILL_CHAIN,
    NOW,
    OTHER_TOPICS,
    TLP_AMBER,
    attribute,
    attribute_msg,
    audit_login_msg,
    domain_ip_object,
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

VALID: list[tuple[str, Any]] = [
    ("misp_json", published_msg(
        attrs=[attribute(Tag=[KILL_CHAIN]), attribute("Attribution", "phone-number",
                                                      "+82 2 1234 5678")],
        objects=[domain_ip_object(attribute(object_id="5521", value="81.2.69.160"))],
        tags=[TLP_AMBER])),
    ("misp_json_event", event_msg("edit", [TLP_AMBER])),
    ("misp_json_attribute", attribute_msg(attribute(atype="domain|ip",
                                                    value="a.example|1.1.1.1"))),
    ("misp_json_sighting", sighting_msg("0", "9")),
    ("misp_json_sighting", sighting_msg("1", "77")),
    ("misp_json_tag", tag_msg("attached to attribute")),
    ("misp_json_audit", audit_login_msg()),
    ("misp_json_user", user_msg()),
    ("misp_json_conversation", thread_msg()),
    ("misp_json_conversation", post_msg()),
    ("misp_json_organisation", organisation_msg()),
    ("misp_json_self", KEEPALIVE),
    *OTHER_TOPICS.items(),
]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6)
ODD_VALUES = st.sampled_from(["1299", 1299, None, True, "", [], {}, "0", 0, -1, 1e300,
                              "‮RTL", "🚩" * 3])


def slots(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value in ``obj``, at any depth."""
    items: Any = obj.items() if isinstance(obj, dict) else (
        enumerate(obj) if isinstance(obj, list) else ())
    out: list[tuple[Any, ...]] = []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(slots(value, (*prefix, key)))
    return out


def mutate(data: st.DataObject, body: Any) -> Any:
    body = copy.deepcopy(body)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        paths = slots(body)
        if not paths:
            break
        where = data.draw(st.sampled_from(paths), label="path")
        parent = body
        for key in where[:-1]:
            parent = parent[key]
        key = where[-1]
        kind = data.draw(st.sampled_from(["replace", "odd", "delete", "listify"]), label="kind")
        if kind == "replace":
            parent[key] = data.draw(JSON, label="value")
        elif kind == "odd":
            parent[key] = data.draw(ODD_VALUES, label="odd")
        elif kind == "delete":
            del parent[key]
        else:
            parent[key] = [parent[key]]
    return body


def bad_frame(data: st.DataObject) -> bytes:
    """One frame no MISP should send."""
    topic, body = data.draw(st.sampled_from(VALID), label="message")
    how = data.draw(st.sampled_from(["mutated", "mutated", "mutated", "array", "scalar",
                                     "no_space", "not_utf8", "truncated", "random"]),
                    label="how")
    if how == "random":
        return data.draw(st.binary(max_size=64), label="bytes")
    if how == "array":
        return f"{topic} ".encode() + orjson.dumps([body])
    if how == "scalar":
        return f"{topic} ".encode() + orjson.dumps(data.draw(ODD_VALUES, label="scalar"))
    raw = f"{topic} ".encode() + orjson.dumps(mutate(data, body) if how == "mutated" else body)
    if how == "no_space":
        return raw.replace(b" ", b"", 1)
    cut = data.draw(st.integers(0, max(0, len(raw) - 1)), label="cut")
    if how == "not_utf8":
        return raw[:cut] + b"\xff\xfe" + raw[cut:]
    return raw if how == "mutated" else raw[:cut]


class Loop:
    """One dispatcher with every feature, shared by the examples (state carries over,
    as it does in the daemon)."""

    def __init__(self) -> None:
        self.cfg = Config(timezone="UTC")
        self.state = InstanceState("misp1")
        self.stats = InstanceStats("misp1")
        self.sealed: list[Batch] = []
        self.dispatcher = Dispatcher(build_features(self.cfg), DayClock("UTC"),
                                     {"misp1": (self.state, self.stats)}, self.sealed.append)

    def counters_add_up(self) -> bool:
        s = self.stats
        return s.received == s.processed + s.skipped + s.errors


@functools.cache
def loop() -> Loop:
    return Loop()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_bad_input_never_stops_the_loop(data: st.DataObject) -> None:
    lp = loop()
    frames = [bad_frame(data) for _ in range(data.draw(st.integers(1, 5), label="frames"))]
    before = lp.stats.received
    for raw in frames:
        lp.dispatcher.handle("misp1", raw, NOW)  # never raises
    assert lp.stats.received == before + len(frames)
    assert lp.counters_add_up()
    lp.dispatcher.take_batch()
    lp.dispatcher.handle("misp1", frame("misp_json_attribute", attribute_msg()), NOW)
    batch = lp.dispatcher.take_batch()
    assert batch.zincr[(f"TRENDINGS_CATEGS:{DAY}", "Network activity")] == 1
    assert batch.zincr[(f"GEO_COUNTRY:{DAY}", "US")] == 1
    assert [(ch, orjson.loads(m)["name"]) for ch, m in batch.publications() if ch == "1"] == [
        ("1", "Attribute")]
    assert lp.counters_add_up()


@pytest.mark.parametrize(("topic", "body"), VALID, ids=[t for t, _ in VALID])
def test_every_valid_message_is_processed_without_error(topic: str, body: Any) -> None:
    lp = Loop()
    lp.dispatcher.handle("misp1", frame(topic, body), NOW)
    assert (lp.stats.processed, lp.stats.errors, lp.stats.skipped) == (1, 0, 0)


def test_bad_frames_are_logged_with_topic_and_instance_at_a_limited_rate(
        caplog: pytest.LogCaptureFixture) -> None:
    lp = Loop()
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            lp.dispatcher.handle("misp1", b'misp_json_event {"Event": ', NOW)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(lines) <= 5
    assert all("misp1" in line and "misp_json_event" in line for line in lines)
    assert (lp.stats.skipped, lp.stats.reasons["bad_json"]) == (50, 50)


@pytest.fixture(scope="module")
def redis_ingest(redis_server: Any) -> Any:
    from tests.harness import Ingest

    redis_server.client().flushall()
    ing = Ingest(redis_server.url, tz="UTC")
    yield ing
    ing.close()


_days = iter(range(1, 10**6))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_bad_input_through_redis_spoils_nothing(redis_ingest: Any, data: st.DataObject) -> None:
    """The same, down to Redis: no failed operation in the batch script, and the valid
    message's keys hold exactly its effects."""
    ing = redis_ingest
    for _ in range(data.draw(st.integers(1, 5), label="frames")):
        ing.daemon.dispatcher.handle("misp1", bad_frame(data), NOW)
    later = NOW + 86400 * next(_days)  # a day of its own: only the valid message lands there
    ing.send("misp_json_attribute", attribute_msg(), now=later)
    ing.flush()
    day = DayClock("UTC").keys(later)[0]
    client = ing.daemon.writer.client
    assert client.zrange(f"TRENDINGS_CATEGS:{day}", 0, -1, withscores=True) == [
        (b"Network activity", 1.0)]
    assert client.zrange(f"GEO_COUNTRY:{day}", 0, -1, withscores=True) == [(b"US", 1.0)]
    assert ing.daemon.writer.failed_ops == 0
    stats = ing.daemon.instances["misp1"][1]
    assert stats.received == stats.processed + stats.skipped + stats.errors
