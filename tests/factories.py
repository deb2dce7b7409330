"""Messages of every topic, in the shapes of the reference (misp-zmq-format.md §3),
and the three serialisations a real fleet uses, for the tests.

Ids here are strings (the PHP < 8.1 variant); :func:`variants` derives the
integer-id variant and the legacy pretty-printed one from the same message.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from helpers.samples import retype

ORGC = {"id": "4", "uuid": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "name": "CERT-Example"}
TLP_AMBER = {"id": "3", "name": "tlp:amber", "colour": "#FFC000", "exportable": True}
KILL_CHAIN = {"id": "12", "name": "kill-chain:Command and Control", "colour": "#0088cc",
              "exportable": True}
TLP_AMBER_MEMBER = '{"id": "3", "name": "tlp:amber", "colour": "#FFC000"}'
KILL_CHAIN_MEMBER = '{"id": "12", "name": "kill-chain:Command and Control", "colour": "#0088cc"}'


def utc(*args: int) -> float:
    """Epoch seconds of a UTC wall-clock time."""
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


NOW = utc(2024, 10, 14, 9, 30)  # day 20241014, hour 2024101409 in UTC and 11:30 in Luxembourg
DAY = "20241014"


def attribute(category: str = "Network activity", atype: str = "ip-dst",
              value: str = "8.8.8.8", object_id: str = "0", **extra: Any) -> dict[str, Any]:
    v1, _, v2 = value.partition("|") if "|" in atype else (value, "", "")
    return {"id": "90211", "event_id": "1287", "object_id": object_id, "object_relation": None,
            "category": category, "type": atype, "value1": v1, "value2": v2, "to_ids": True,
            "uuid": "a1a1a1a1-0000-4000-8000-000000000001", "timestamp": "1728915300",
            "distribution": "5", "sharing_group_id": "0", "comment": "C2 / beacon",
            "deleted": False, "disable_correlation": False, "first_seen": None,
            "last_seen": None, "value": value, **extra}


def event_header(info: str = "Phishing wave targeting finance – Q4") -> dict[str, Any]:
    return {"id": "1287", "date": "2024-10-14", "info": info,
            "uuid": "6f1c2a4e-3b1d-4c55-9a0e-2f1f8d0c7a11", "published": False, "analysis": "1",
            "threat_level_id": "2", "org_id": "1", "orgc_id": "4", "distribution": "1",
            "sharing_group_id": "0"}


def attribute_msg(attr: dict[str, Any] | None = None, action: str = "add",
                  info: str = "Phishing wave targeting finance – Q4") -> dict[str, Any]:
    """``misp_json_attribute``: Attribute, Event with Orgc nested, action."""
    return {"Attribute": {**(attr or attribute()), "Sighting": []},
            "Event": {**event_header(info), "Orgc": dict(ORGC)}, "action": action}


def published_msg(*, attrs: list[dict[str, Any]] | None = None,
                  objects: list[dict[str, Any]] | None = None,
                  tags: list[dict[str, Any]] | None = None,
                  info: str = "Phishing wave targeting finance – Q4") -> dict[str, Any]:
    """``misp_json``: a published event; ``tags=None`` leaves ``Event.Tag`` absent."""
    event: dict[str, Any] = {
        **event_header(info), "attribute_count": "3", "timestamp": "1728915342",
        "publish_timestamp": "1728900000", "event_creator_email": "analyst@cert.example.org",
        "Org": {"id": "1", "name": "HostOrg", "uuid": "0b5d1d1e-1111-4c2c-8a7e-5e2a1c3d4e5f",
                "local": True},
        "Orgc": {**ORGC, "local": False},
        "Attribute": attrs if attrs is not None else [attribute()],
        "ShadowAttribute": [], "RelatedEvent": [], "Galaxy": [],
        "Object": objects if objects is not None else [],
        "EventReport": [], "CryptographicKey": []}
    if tags is not None:
        event["Tag"] = tags
    return {"Event": event}


def domain_ip_object(*attrs: dict[str, Any]) -> dict[str, Any]:
    return {"id": "5521", "name": "domain-ip", "meta-category": "network",
            "event_id": "1287", "uuid": "d4d4d4d4-0000-4000-8000-000000000004",
            "timestamp": "1728915400", "distribution": "5", "deleted": False,
            "ObjectReference": [], "Attribute": list(attrs)}


def event_msg(action: str = "add", event_tags: list[dict[str, Any]] | None = None,
              info: str = "Phishing wave targeting finance – Q4") -> dict[str, Any]:
    """``misp_json_event``: Orgc and EventTag are top-level siblings of Event."""
    return {"Event": {**event_header(info), "user_id": "7", "attribute_count": "0",
                      "timestamp": "1728915342", "publish_timestamp": "0", "locked": False},
            "Orgc": dict(ORGC),
            "EventTag": [{"id": "5531", "event_id": "1287", "tag_id": t["id"], "local": False,
                          "relationship_type": "", "Tag": t} for t in (event_tags or [])],
            "action": action}


def sighting_msg(kind: str = "0", org_id: str = "9", action: str = "add",
                 category: str = "Network activity") -> dict[str, Any]:
    return {"Sighting": {
        "id": "44012", "attribute_id": "90211", "event_id": "1287", "org_id": org_id,
        "date_sighting": "1728920001", "uuid": "2c2c2c2c-0000-4000-8000-00000000002c",
        "source": "ids-sensor-3", "type": kind,
        "Event": {"id": "1287", "uuid": "6f1c2a4e-3b1d-4c55-9a0e-2f1f8d0c7a11", "orgc_id": "4",
                  "org_id": "1", "info": "Phishing wave targeting finance – Q4",
                  "Orgc": {"name": "CERT-Example"}},
        "Attribute": {"value": "203.0.113.45", "id": "90211",
                      "uuid": "a1a1a1a1-0000-4000-8000-000000000001", "type": "ip-dst",
                      "category": category, "to_ids": True}},
        "action": action}


def tag_msg(action: str = "attached to event", tag: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    return {"Tag": {**(tag or TLP_AMBER), "org_id": "0", "user_id": "0", "hide_tag": False,
                    "numerical_value": None, "is_galaxy": False, "event_id": "1287",
                    "local": False},
            "action": action}


def audit_login_msg(org: str = "CERT-Example", action: str = "login") -> dict[str, Any]:
    return {"Log": {"org": org, "email": "analyst@cert.example.org", "user_id": "7",
                    "action": action, "title": "User (7): analyst@cert.example.org",
                    "change": "", "model": "User", "model_id": "7", "request_is_rest": False,
                    "ip": "", "description": "", "created": "2024-10-14 09:15:22"},
            "action": "log"}


def user_msg(org: str = "CERT-Example", action: str = "login", org_id: str = "4"
             ) -> dict[str, Any]:
    return {"User": {"id": "7", "email": "analyst@cert.example.org", "last_login": "1728800000",
                     "org_id": org_id, "termsaccepted": True, "autoalert": False,
                     "disabled": False},
            "Organisation": {"id": org_id, "name": org, "uuid": ORGC["uuid"], "local": True},
            "action": action}


def thread_msg(title: str = "Same C2 seen in our sinkhole 🚩") -> dict[str, Any]:
    return {"Thread": {"date_created": "2024/10/14 09:20:11", "user_id": "7", "event_id": "1287",
                       "title": title, "distribution": "1", "post_count": 1, "org_id": "4",
                       "org_name": "CERT-Example", "user_email": "analyst@cert.example.org"}}


def post_msg(thread_id: Any = "311", org: str = "CERT-Example") -> dict[str, Any]:
    return {"Post": {"date_created": "2024/10/14 09:20:11", "user_id": "7",
                     "contents": "Seen the same C2 🚩\nTLP:AMBER", "post_id": 0,
                     "thread_id": thread_id, "user_email": "analyst@cert.example.org",
                     "org_id": "4", "org_name": org}}


def organisation_msg(alias: str = "Organisation", org_id: str = "23",
                     name: str = "Example Bank") -> dict[str, Any]:
    return {alias: {"name": name, "uuid": "3d3d3d3d-0000-4000-8000-00000000003d", "local": "1",
                    "restricted_to_domain": '["bank.example"]', "created_by": "1",
                    "date_created": "2024-10-14 09:12:01", "id": org_id}}


KEEPALIVE = {"status": "I'm doing science and I'm still alive.", "uptime": 9170}

OTHER_TOPICS: dict[str, Any] = {
    "misp_json_object": {"Object": {"id": "5521", "name": "domain-ip", "meta-category": "network",
                                    "event_id": "1287", "deleted": False}, "action": "add"},
    "misp_json_object_reference": {"ObjectReference": {
        "id": "812", "object_id": "5521", "event_id": "1287", "referenced_id": "90211",
        "referenced_type": "0", "relationship_type": "related-to", "deleted": False},
        "action": "add"},
    "misp_json_warninglist": {"Warninglist": {"id": "112", "name": "Internal sinkhole ranges",
                                              "type": "cidr", "enabled": True},
                              "action": "edit"},
    "misp_json_workflow": ["tlp:red", "malware"],
}


# --- serialisations ------------------------------------------------------------------


def frame(topic: str, body: Any, style: str = "strings") -> bytes:
    """``topic`` + space + body as a MISP of that vintage would write it.

    ``strings``: current MISP, string ids; ``ints``: PHP >= 8.1, integer ids;
    ``legacy``: before 2.4.148, pretty-printed, ``\\/`` and ``\\uXXXX`` escapes,
    booleans as ``"1"``/``"0"``.
    """
    if style == "legacy":
        text = json.dumps(retype(body, False, "str"), indent=4).replace("/", "\\/")
    else:
        text = json.dumps(retype(body, style == "ints", None), ensure_ascii=False,
                          separators=(",", ":"))
    return f"{topic} {text}".encode()


STYLES = ("strings", "ints", "legacy")
