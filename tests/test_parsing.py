"""The edge: frames to (topic, body), and the tolerant accessors."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.clock import DayClock
from helpers.message import (
    FrameError,
    as_dict,
    as_dicts,
    as_int,
    as_list,
    id_str,
    nonempty_str,
    path,
    split_frame,
    truthy,
)
from tests.factories import STYLES, attribute_msg, frame
from tests.harness import Pure


@pytest.mark.parametrize("style", STYLES)
def test_the_three_serialisations_decode_to_the_same_text(style: str) -> None:
    topic, body = split_frame(frame("misp_json_attribute", attribute_msg(), style))
    assert topic == "misp_json_attribute"
    assert isinstance(body, dict)
    assert body["Event"]["info"] == "Phishing wave targeting finance – Q4"
    assert body["Attribute"]["comment"] == "C2 / beacon"


def test_legacy_body_is_multi_line_with_escapes() -> None:
    raw = frame("misp_json_attribute", attribute_msg(), "legacy")
    assert b"\n" in raw and b"C2 \\/ beacon" in raw and b"\\u2013" in raw


def test_split_at_the_first_space_only() -> None:
    assert split_frame(b'misp_json_self {"status": "a b c", "uptime": 1}') == (
        "misp_json_self", {"status": "a b c", "uptime": 1})


def test_workflow_arrays_pass_the_edge() -> None:
    assert split_frame(b'misp_json_workflow ["tlp:red"]') == ("misp_json_workflow", ["tlp:red"])


@pytest.mark.parametrize(("raw", "reason", "topic"), [
    (b"misp_json_self", "no_topic", None),
    (b" {}", "no_topic", None),
    (b"", "no_topic", None),
    (b"\xffmisp {}", "bad_topic", None),
    (b'misp_json_event {"Event": {"id": "12", "info": "trunc', "bad_json", "misp_json_event"),
    (b"misp_json_event ", "bad_json", "misp_json_event"),
    (b'misp_json_conversation {"Post": "\xff\xfe"}', "not_utf8", "misp_json_conversation"),
    (b"misp_json_self 42", "not_an_object", "misp_json_self"),
    (b'misp_json_self "alive"', "not_an_object", "misp_json_self"),
])
def test_unusable_frames_raise_a_reason_and_the_topic_once_known(raw: bytes, reason: str,
                                                                 topic: str | None) -> None:
    with pytest.raises(FrameError) as info:
        split_frame(raw)
    assert (info.value.reason, info.value.topic) == (reason, topic)


def test_skip_warning_names_the_topic_and_instance(caplog: pytest.LogCaptureFixture) -> None:
    pure = Pure()
    pure.send_raw(b'misp_json_event {"Event": ')
    assert pure.stats.reasons["bad_json"] == 1
    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert "misp1" in record.getMessage() and "topic misp_json_event" in record.getMessage()


@pytest.mark.parametrize(("value", "expected"), [
    ("12", 12), (12, 12), (" 12 ", 12), (12.0, 12), (True, 1), ("x", None), (None, None),
    ([], None), (12.5, None), ("", None),
])
def test_as_int(value: Any, expected: int | None) -> None:
    assert as_int(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (1, True), ("1", True), ("true", True), (False, False), (0, False),
    ("0", False), ("", False), (None, False), ([], False),
])
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, []), ([], []), ({}, []), ([1, 2], [1, 2]), ({"0": "a", "1": "b"}, ["a", "b"]),
    ({"id": "1"}, [{"id": "1"}]), ("x", []), (3, []),
])
def test_as_list(value: Any, expected: list[Any]) -> None:
    assert as_list(value) == expected


def test_as_dicts_and_as_dict_drop_what_is_not_a_dict() -> None:
    assert as_dicts([{"a": 1}, "x", None, [1]]) == [{"a": 1}]
    assert as_dict([]) == {} and as_dict({"a": 1}) == {"a": 1}


@pytest.mark.parametrize(("value", "expected"), [
    ("12", "12"), (12, "12"), (12.0, "12"), (" 12", "12"), (True, None), ("", None),
    (None, None), ({}, None),
])
def test_id_str(value: Any, expected: str | None) -> None:
    assert id_str(value) == expected


def test_nonempty_str_and_path() -> None:
    assert nonempty_str("  ") is None and nonempty_str("a") == "a" and nonempty_str(1) is None
    body = {"Event": {"Orgc": {"name": "X"}}, "Other": []}
    assert path(body, "Event", "Orgc", "name") == "X"
    assert path(body, "Other", "name") is None and path("scalar", "a") is None


# --- the day clock ------------------------------------------------------------------

ZONES = ["UTC", "Europe/Luxembourg", "America/New_York", "Asia/Kolkata", "America/St_Johns",
         "Australia/Adelaide", "Pacific/Chatham", "Asia/Tehran"]


@settings(max_examples=100, deadline=None)
@given(zone=st.sampled_from(ZONES), start=st.integers(1_700_000_000, 1_800_000_000),
       steps=st.lists(st.integers(-5400, 5400), min_size=1, max_size=40))
def test_day_clock_cache_agrees_with_the_calendar(zone: str, start: int,
                                                  steps: list[int]) -> None:
    """Hour by hour, across DST changes and half-hour zones, forwards and backwards."""
    clock, tz = DayClock(zone), zoneinfo.ZoneInfo(zone)
    now = float(start)
    for step in steps:
        now += step
        local = dt.datetime.fromtimestamp(now, tz)
        assert clock.keys(now) == (local.strftime("%Y%m%d"), local.strftime("%Y%m%d%H"))


def test_day_clock_across_the_luxembourg_dst_end() -> None:
    clock = DayClock("Europe/Luxembourg")
    # 2024-10-27: 00:30 UTC is 02:30 CEST, 01:30 UTC is 02:30 CET (the hour repeats).
    assert clock.keys(1729989000.0) == ("20241027", "2024102702")
    assert clock.keys(1729992600.0) == ("20241027", "2024102702")
    assert clock.keys(1729996200.0) == ("20241027", "2024102703")
    assert clock.keys(1729971000.0) == ("20241026", "2024102621")  # and back in time
