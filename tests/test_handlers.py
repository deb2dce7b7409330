"""Pure handler tests: a message in, operations out (semantics §2, §3, §6, §7).

Every message is sent in the three serialisations of a real fleet (string ids,
integer ids, legacy pretty-printed with escapes); the operations must not
depend on which.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers.batch import blob_bytes
from tests.factories import (
    DAY,
    KEEPALIVE,
    KILL_CHAIN,
    KILL_CHAIN_MEMBER,
    NOW,
    ORGC,
    OTHER_TOPICS,
    STYLES,
    TLP_AMBER,
    TLP_AMBER_MEMBER,
    attribute,
    attribute_msg,
    audit_login_msg,
    domain_ip_object,
    event_header,
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
from tests.harness import Pure, body_of

CATEGS = f"TRENDINGS_CATEGS:{DAY}"
EVENTS = f"TRENDINGS_EVENTS:{DAY}"
TAGS = f"TRENDINGS_TAGS:{DAY}"
DISC = f"TRENDINGS_DISC:{DAY}"
INFO = "Phishing wave targeting finance – Q4"


def live_entries(batch: Any) -> list[tuple[str, dict[str, Any]]]:
    """(channel, message with its ``log`` decoded) for every publication."""
    out = []
    for channel, message in batch.publications():
        decoded = json.loads(message)
        decoded["log"] = json.loads(decoded["log"])
        out.append((channel, decoded))
    return out


# --- misp_json_attribute -------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_attribute_add_counts_its_category_and_goes_live(style: str) -> None:
    raw = frame("misp_json_attribute", attribute_msg(), style)
    batch = Pure().send_raw(raw)
    assert batch.zincr == {(CATEGS, "Network activity"): 1}
    assert batch.incr == {} and batch.calls == []
    sent = body_of(raw)
    header = dict(sent["Event"])
    assert live_entries(batch) == [("1", {"name": "Attribute", "zmqName": "misp1",
                                          "log": {"Attribute": sent["Attribute"],
                                                  "Event": header}})]
    (maxlen, values), = batch.lists.values()
    assert list(batch.lists) == ["TEMP_CACHE_LIVE:Attribute"] and maxlen == 100
    assert json.loads(blob_bytes(values[0])) == {"name": "Attribute", "zmqName": "misp1",
                                     "log": {"Attribute": sent["Attribute"], "Event": header}}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("object_id", ["5521", 5521])
def test_object_attribute_is_published_as_object_attribute(style: str, object_id: Any) -> None:
    batch = Pure().send("misp_json_attribute", attribute_msg(attribute(object_id=object_id)),
                        style)
    assert [m["name"] for _, m in live_entries(batch)] == ["ObjectAttribute"]
    assert list(batch.lists) == ["TEMP_CACHE_LIVE:ObjectAttribute"]


@pytest.mark.parametrize("style", STYLES)
def test_attribute_edit_counts_again_with_its_tags(style: str) -> None:
    msg = attribute_msg(attribute(Tag=[TLP_AMBER, KILL_CHAIN]), action="edit")
    batch = Pure().send("misp_json_attribute", msg, style)
    assert batch.zincr == {(CATEGS, "Network activity"): 1, (TAGS, TLP_AMBER_MEMBER): 1,
                           (TAGS, KILL_CHAIN_MEMBER): 1}


@pytest.mark.parametrize("tags", [None, [], {}])
def test_attribute_without_tags_absent_or_empty_counts_no_tag(tags: Any) -> None:
    attr = attribute() if tags is None else attribute(Tag=tags)
    batch = Pure().send("misp_json_attribute", attribute_msg(attr))
    assert batch.zincr == {(CATEGS, "Network activity"): 1}


@pytest.mark.parametrize("action", ["soft-delete", "delete", "publish", None])
def test_attribute_deletions_and_unknown_actions_count_nothing(action: Any) -> None:
    msg = attribute_msg()
    msg["action"] = action
    pure = Pure()
    batch = pure.send("misp_json_attribute", msg)
    assert not batch.zincr and not batch.pubs and not batch.lists
    assert pure.stats.processed == 1 and pure.stats.skipped == 0


def test_attribute_hard_delete_without_event_counts_nothing() -> None:
    batch = Pure().send("misp_json_attribute", {"Attribute": attribute(), "action": "delete"})
    assert not batch.zincr and not batch.pubs


def test_attribute_whose_category_is_not_a_string_is_not_an_observation() -> None:
    batch = Pure().send("misp_json_attribute", attribute_msg(attribute(category=7)))
    assert not batch.zincr and not batch.pubs


def test_attribute_without_event_still_counts_and_goes_live_without_event() -> None:
    batch = Pure().send("misp_json_attribute", {"Attribute": attribute(), "action": "add"})
    assert batch.zincr == {(CATEGS, "Network activity"): 1}
    assert live_entries(batch)[0][1]["log"] == {"Attribute": attribute()}


def test_attachment_data_is_not_published_on_the_live_channel() -> None:
    attr = attribute(atype="malware-sample", value="x.exe|44d88612", data="TVqQAAMAAAAEAAAA")
    batch = Pure().send("misp_json_attribute", attribute_msg(attr))
    assert "data" not in live_entries(batch)[0][1]["log"]["Attribute"]


# --- misp_json (publish) ---------------------------------------------------------------


def _published() -> dict[str, Any]:
    return published_msg(
        attrs=[attribute(Tag=[KILL_CHAIN]), attribute("Payload delivery", "md5", "44d8")],
        objects=[domain_ip_object(attribute(atype="domain", value="x.example", object_id="5521"),
                                  attribute(object_id="5521"))],
        tags=[TLP_AMBER])


@pytest.mark.parametrize("style", STYLES)
def test_published_event_counts_event_attributes_objects_and_tags(style: str) -> None:
    batch = Pure().send("misp_json", _published(), style)
    assert batch.zincr == {(EVENTS, INFO): 1, (TAGS, TLP_AMBER_MEMBER): 1,
                           (TAGS, KILL_CHAIN_MEMBER): 1, (CATEGS, "Network activity"): 3,
                           (CATEGS, "Payload delivery"): 1}
    names = [m["name"] for _, m in live_entries(batch)]
    assert names == ["Attribute", "Attribute", "ObjectAttribute", "ObjectAttribute"]


def test_published_event_live_log_carries_the_header_not_the_lists() -> None:
    raw = frame("misp_json", _published())
    batch = Pure().send_raw(raw)
    event = body_of(raw)["Event"]
    header = {k: v for k, v in event.items()
              if k not in ("Attribute", "Object", "ShadowAttribute", "RelatedEvent", "Galaxy",
                           "EventReport", "CryptographicKey")}
    for _, message in live_entries(batch):
        assert message["log"]["Event"] == header


@pytest.mark.parametrize("tags", [None, []])
def test_published_event_without_tags_absent_or_empty(tags: Any) -> None:
    batch = Pure().send("misp_json", published_msg(tags=tags))
    assert batch.zincr == {(EVENTS, INFO): 1, (CATEGS, "Network activity"): 1}


def test_published_event_attribute_list_as_legacy_dict_of_index() -> None:
    msg = published_msg()
    msg["Event"]["Attribute"] = {"0": attribute(), "1": attribute("Other", "comment", "x")}
    batch = Pure().send("misp_json", msg, "legacy")
    assert batch.zincr == {(EVENTS, INFO): 1, (CATEGS, "Network activity"): 1,
                           (CATEGS, "Other"): 1}


@pytest.mark.parametrize("attrs", [None, []])
def test_published_event_without_attributes_counts_the_event(attrs: Any) -> None:
    msg = published_msg()
    if attrs is None:
        del msg["Event"]["Attribute"]
    else:
        msg["Event"]["Attribute"] = attrs
    batch = Pure().send("misp_json", msg)
    assert batch.zincr == {(EVENTS, INFO): 1} and not batch.pubs


def test_published_event_without_string_info_still_counts_attributes() -> None:
    msg = published_msg()
    msg["Event"]["info"] = 12
    pure = Pure()
    batch = pure.send("misp_json", msg)
    assert batch.zincr == {(CATEGS, "Network activity"): 1}
    assert pure.stats.reasons["event_without_info"] == 1


@pytest.mark.parametrize("event", ["1299", 1299, None, ["1299"]])
def test_published_event_that_is_not_an_object_counts_nothing(event: Any) -> None:
    pure = Pure()
    batch = pure.send("misp_json", {"Event": event})
    assert not batch.zincr and not batch.pubs
    assert pure.stats.processed == 1


# --- misp_json_event ---------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("action", ["add", "edit"])
def test_event_add_edit_counts_event_and_event_tags(style: str, action: str) -> None:
    batch = Pure().send("misp_json_event", event_msg(action, [TLP_AMBER, KILL_CHAIN]), style)
    assert batch.zincr == {(EVENTS, INFO): 1, (TAGS, TLP_AMBER_MEMBER): 1,
                           (TAGS, KILL_CHAIN_MEMBER): 1}
    assert not batch.pubs  # events are not attribute observations


def test_event_add_with_empty_event_tag_counts_the_event_only() -> None:
    batch = Pure().send("misp_json_event", event_msg("add", []))
    assert batch.zincr == {(EVENTS, INFO): 1}


@pytest.mark.parametrize("body", [
    {"Event": event_header(), "action": "delete"},
    {"Event": "1290", "Server": "2", "action": "add_from_connected_server"},
    {"Event": 1290, "Server": 2, "action": "edit_from_connected_server"},
])
def test_event_deletions_and_sync_notices_count_nothing(body: dict[str, Any]) -> None:
    pure = Pure()
    batch = pure.send("misp_json_event", body)
    assert not batch.zincr and pure.stats.processed == 1


# --- misp_json_sighting -------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("kind", "counter"), [("0", "sightings"), ("1", "false_positive")])
def test_sighting_counts_its_type_and_is_an_attribute_observation(style: str, kind: str,
                                                                  counter: str) -> None:
    batch = Pure().send("misp_json_sighting", sighting_msg(kind), style)
    assert batch.incr == {f"TRENDINGS_SIGHT_{counter}:{DAY}": 1}
    assert batch.zincr == {(CATEGS, "Network activity"): 1}
    assert [m["name"] for _, m in live_entries(batch)] == ["Attribute"]


@pytest.mark.parametrize("body", [sighting_msg("2"), sighting_msg("0", action="delete"),
                                  sighting_msg("7"), sighting_msg("x")])
def test_expirations_deletions_and_unknown_types_count_nothing(body: dict[str, Any]) -> None:
    batch = Pure().send("misp_json_sighting", body)
    assert not batch.incr and not batch.zincr and not batch.pubs


def test_sighting_type_compares_as_an_integer() -> None:
    pure = Pure()
    msg = sighting_msg()
    msg["Sighting"]["type"] = 1
    assert pure.send("misp_json_sighting", msg).incr == {f"TRENDINGS_SIGHT_false_positive:{DAY}": 1}


# --- misp_json_tag ---------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("action", ["attached to event", "attached to attribute"])
def test_tag_attachments_count_the_tag(style: str, action: str) -> None:
    batch = Pure().send("misp_json_tag", tag_msg(action), style)
    assert batch.zincr == {(TAGS, TLP_AMBER_MEMBER): 1}


@pytest.mark.parametrize("action", ["detached from event", "detached from attribute", "add",
                                    "edit", "delete", None])
def test_tag_crud_and_detachments_count_nothing(action: Any) -> None:
    assert not Pure().send("misp_json_tag", tag_msg(action)).zincr


def test_tag_member_keeps_unicode_and_quotes_and_stringifies_the_id() -> None:
    tag = {"id": 41, "name": 'misp-galaxy:threat-actor="Ours 🐻"', "colour": "#0088cc"}
    batch = Pure().send("misp_json_tag", tag_msg(tag=tag))
    assert batch.zincr == {(TAGS, '{"id": "41", "name": "misp-galaxy:threat-actor=\\"Ours 🐻\\"",'
                                  ' "colour": "#0088cc"}'): 1}


def test_tag_without_name_is_skipped_and_counted() -> None:
    pure = Pure()
    assert not pure.send("misp_json_tag", tag_msg(tag={"id": "3", "colour": "#fff"})).zincr
    assert pure.stats.reasons["tag_without_name"] == 1


# --- logins ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_audit_login_invokes_the_login_procedure(style: str) -> None:
    batch = Pure().send("misp_json_audit", audit_login_msg("Банк-CERT"), style)
    assert batch.calls == [["pc", "login", f"LOGIN_ORG:{DAY}", "LOGIN_TIMESTAMPSET:2024101409",
                            f"LOGIN_TIMESTAMP:{DAY}", "Банк-CERT", int(NOW)]]


@pytest.mark.parametrize("body", [
    audit_login_msg(action="login_fail"), audit_login_msg(action="logout"),
    audit_login_msg(org=""), audit_login_msg(org=4),
    {"AuditLog": {"action": "login", "org_id": "4"}, "action": "log"},
    {"created": "2024-10-14 09:16:40.123456", "user_id": 7, "org_id": 4, "action": "log"},
])
def test_audit_messages_that_are_not_logins(body: dict[str, Any]) -> None:
    assert Pure().send("misp_json_audit", body).calls == []


def test_user_login_is_ignored_when_audit_is_the_login_source() -> None:
    assert Pure().send("misp_json_user", user_msg()).calls == []


@pytest.mark.parametrize("style", STYLES)
def test_user_login_counts_when_selected_and_audit_then_does_not(style: str) -> None:
    pure = Pure(login_source="user")
    batch = pure.send("misp_json_user", user_msg("KISA-Example"), style)
    assert [c[5] for c in batch.calls] == ["KISA-Example"]
    assert pure.send("misp_json_audit", audit_login_msg()).calls == []
    assert pure.send("misp_json_user", user_msg(action="add")).calls == []


# --- conversations -------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_thread_then_post_counts_the_title_and_remembers_it(style: str) -> None:
    pure = Pure()
    assert not pure.send("misp_json_conversation", thread_msg(), style)
    batch = pure.send("misp_json_conversation", post_msg("311"), style)
    assert batch.zincr == {(DISC, "Same C2 seen in our sinkhole 🚩"): 1}
    assert batch.hashes == {"INGEST:threads:misp1": {"311": "Same C2 seen in our sinkhole 🚩"}}
    later = pure.send("misp_json_conversation", post_msg(311), style)
    assert later.zincr == {(DISC, "Same C2 seen in our sinkhole 🚩"): 1} and not later.hashes


@pytest.mark.parametrize("thread_id", ["311", 311])
def test_post_of_an_unknown_thread_counts_as_thread_id(thread_id: Any) -> None:
    batch = Pure().send("misp_json_conversation", post_msg(thread_id))
    assert batch.zincr == {(DISC, "Thread 311"): 1} and not batch.hashes


@pytest.mark.parametrize("thread_id", [None, "", [], {}])
def test_post_without_thread_id_is_not_a_discussion(thread_id: Any) -> None:
    assert not Pure().send("misp_json_conversation", post_msg(thread_id)).zincr


def test_titles_are_per_instance_state() -> None:
    one, two = Pure(), Pure(instance="misp2")
    one.send("misp_json_conversation", thread_msg("Only on misp1"))
    assert two.send("misp_json_conversation", post_msg()).zincr == {(DISC, "Thread 311"): 1}


# --- keepalive and the topics that count nothing ---------------------------------------


@pytest.mark.parametrize(("uptime", "log"), [(9170, "[9170]"), ("130", "[130]"), (None, "[0]")])
def test_keepalive_message_format(uptime: Any, log: str) -> None:
    body = {**KEEPALIVE, "uptime": uptime}
    raw = f"misp_json_self {json.dumps(body)}".encode()  # stdlib separators, as mispzmq.py
    batch = Pure().send_raw(raw)
    assert batch.publications() == [
        ("1", f'{{"name":"Keepalive","log":"{log}","zmqName":"misp1"}}')]
    assert not batch.lists and not batch.zincr


@pytest.mark.parametrize("topic", sorted(OTHER_TOPICS))
def test_counter_only_topics_write_nothing(topic: str) -> None:
    pure = Pure()
    batch = pure.send(topic, OTHER_TOPICS[topic])
    assert not batch.zincr and not batch.pubs and not batch.hashes
    assert pure.stats.processed == 1 and pure.stats.topics[topic] == 1


@pytest.mark.parametrize("alias", ["Organisation", "Orgc", "Org"])
@pytest.mark.parametrize("style", STYLES)
def test_organisation_messages_feed_the_directory(alias: str, style: str) -> None:
    pure = Pure()
    batch = pure.send("misp_json_organisation", organisation_msg(alias), style)
    assert batch.hashes == {"INGEST:orgs:misp1": {"23": "Example Bank"}}
    assert pure.state.orgs == {"23": "Example Bank"}
    assert not pure.send("misp_json_organisation", organisation_msg(alias)).hashes  # unchanged


def test_unknown_topic_is_counted_and_ignored() -> None:
    pure = Pure()
    batch = pure.send("misp_json_future", {"Event": event_header()})
    assert not batch.zincr
    assert (pure.stats.received, pure.stats.skipped, pure.stats.processed) == (1, 1, 0)
    assert pure.stats.reasons["unknown_topic"] == 1


def test_day_and_hour_keys_follow_now_in_the_zone() -> None:
    late = 1728948600.0  # 2024-10-14 23:30 UTC = 2024-10-15 01:30 in Luxembourg
    batch = Pure(tz="Europe/Luxembourg").send("misp_json_audit", audit_login_msg(), now=late)
    assert batch.calls[0][2:5] == ["LOGIN_ORG:20241015", "LOGIN_TIMESTAMPSET:2024101501",
                                   "LOGIN_TIMESTAMP:20241015"]
    utc_batch = Pure(tz="UTC").send("misp_json_attribute", attribute_msg(), now=late)
    assert list(utc_batch.zincr) == [("TRENDINGS_CATEGS:20241014", "Network activity")]


def test_orgc_name_reaches_the_attribute_observation() -> None:
    from helpers.observations import AttributeObs, InstanceState, extract_attribute

    (obs,) = extract_attribute(attribute_msg(), InstanceState("misp1"))
    assert isinstance(obs, AttributeObs) and obs.org == ORGC["name"] and obs.source == "attribute"


# --- the organisation directory and the reporting organisation (semantics §2) ----------


@pytest.mark.parametrize("org_id", ["9", 9])
def test_sighting_is_credited_to_the_reporter_when_its_id_is_known(org_id: Any) -> None:
    from helpers.observations import InstanceState, SightingObs, extract_sighting

    state = InstanceState("misp1", orgs={"9": "Example SOC"})
    obs = next(extract_sighting(sighting_msg("0", org_id), state))
    assert obs == SightingObs(0, "Example SOC", False, "Network activity", 1728920001)


def test_sighting_of_an_unknown_reporter_falls_back_to_the_event_creator() -> None:
    from helpers.observations import InstanceState, SightingObs, extract_sighting

    obs = next(extract_sighting(sighting_msg("1", "77"), InstanceState("misp1")))
    assert obs == SightingObs(1, "CERT-Example", True, "Network activity", 1728920001)


def test_directory_learns_from_event_orgc_before_the_message_effects() -> None:
    from helpers.observations import extract_sighting

    pure = Pure()
    batch = pure.send("misp_json_attribute", attribute_msg(), "ints")
    assert batch.hashes == {"INGEST:orgs:misp1": {"4": "CERT-Example"}}
    obs = next(extract_sighting(sighting_msg("0", "4"), pure.state))
    assert (obs.org, obs.org_is_fallback) == ("CERT-Example", False)


def test_directory_ignores_organisations_without_id_or_name() -> None:
    pure = Pure()
    body = {"Orgc": {"name": "No id"}, "Org": {"id": "5", "name": ""}}
    assert not pure.send("misp_json_organisation", body).hashes and pure.state.orgs == {}


def test_a_thread_pairs_only_with_the_post_right_after_it() -> None:
    pure = Pure()
    pure.send("misp_json_conversation", thread_msg("Title of thread 311"))
    assert not pure.send("misp_json_conversation", post_msg(None))  # its first post, broken
    batch = pure.send("misp_json_conversation", post_msg("50"))  # a reply elsewhere
    assert batch.zincr == {(DISC, "Thread 50"): 1} and not batch.hashes
    assert pure.state.threads == {}
