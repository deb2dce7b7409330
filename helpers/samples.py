"""The bundled sample feed: realistic MISP messages of every topic, generated deterministically.

``python -m helpers.samples`` (re)writes ``doc/examples/sample-capture.jsonl``
byte for byte; ``--check`` says whether the bundled file is current.  The
messages follow the shapes of the reference (misp-zmq-format.md §3) with the
variations a real fleet shows: string and integer ids, booleans as ``true``,
``1`` or ``"1"``, absent and empty collections, the pre-2.4.148 pretty-printed
bodies with ``\\/`` and ``\\uXXXX`` escapes, Unicode everywhere, and a few frames
that no MISP sends but a broken relay might.  Values are invented; the IP
addresses are real public resolvers and hosts so that geolocation has
something to find (and ``10.0.0.1`` so that it has something to skip).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.capture import encode_line
from helpers.config import PROJECT_DIR

SEED = 20241014
BASE_TIME = 1728892800.0  # 2024-10-14 08:00:00 UTC
DEFAULT_PATH = PROJECT_DIR / "doc" / "examples" / "sample-capture.jsonl"
ROUNDS = 8  # bursts of activity per instance


@dataclass(frozen=True)
class Org:
    id: int
    name: str
    nationality: str
    sector: str


ORGS = (
    Org(1, "CIRCL", "Luxembourg", "Government"),
    Org(4, "CERT-Example", "Luxembourg", "Government"),
    Org(7, "Банк-CERT", "Russia", "Finance"),
    Org(9, "Example SOC 🛡️", "Belgium", "Telecoms"),
    Org(12, "مركز الأمن السيبراني", "Jordan", "Government"),
    Org(15, "KISA-Example", "South Korea", "Government"),
    Org(23, "Example Bank", "Belgium", "Finance"),
)
UNKNOWN_ORG_ID = 77  # reports sightings but is never described on the feed


@dataclass(frozen=True)
class InstanceProfile:
    """How one simulated MISP serialises: its PHP and MISP versions, as odds."""

    name: str
    host: Org
    int_ids: float  # PHP >= 8.1 without ATTR_STRINGIFY_FETCHES
    legacy: float  # pre-2.4.148 pretty-printed bodies
    escaped_slashes: float  # 2.4.148-2.4.150


PROFILES = (
    InstanceProfile("misp-cert", ORGS[0], int_ids=0.15, legacy=0.12, escaped_slashes=0.1),
    InstanceProfile("misp-partner", ORGS[3], int_ids=0.7, legacy=0.1, escaped_slashes=0.05),
)

ATTRIBUTES = (
    ("Network activity", "ip-dst", "8.8.8.8"),
    ("Network activity", "ip-src", "1.1.1.1"),
    ("Network activity", "ip-dst", "81.2.69.160"),
    ("Network activity", "ip-dst", "2001:4860:4860::8888"),
    ("Network activity", "ip-src", "10.0.0.1"),
    ("Network activity", "domain|ip", "cdn-update.example.net|195.154.0.1"),
    ("Network activity", "ip-dst|port", "9.9.9.9|443"),
    ("Network activity", "ip-src|port", "2a00:1450:4001:82a::200e|8443"),
    ("Network activity", "url", "https://login-paypa1.example.net/secure/verify.php?id=42"),
    ("Network activity", "domain", "пример-фишинг.example"),
    ("Payload delivery", "filename|sha256",
     "invoice.pdf.exe|9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("Payload delivery", "md5", "44d88612fea8a8f36de82e1278abb02f"),
    ("Payload delivery", "email-src", "billing@bank-secure.example"),
    ("Payload delivery", "email-subject", "Votre facture 📄 – échéance dépassée"),
    ("Artifacts dropped", "sha1", "3395856ce81f2b7382dee72602f798b642f14140"),
    ("Attribution", "phone-number", "+7 495 123-45-67"),
    ("Attribution", "whois-registrant-phone", "+82 2 1234 5678"),
    ("Attribution", "phone-number", "+98 21 2222 3333"),
    ("Attribution", "whois-registrant-phone", "+352 26 12 34 56"),
    ("Attribution", "phone-number", "+55 11 3003 4000"),
    ("External analysis", "text", "Sandbox report:\n- beacon every 60 s\n- persistence: Run key"),
    ("External analysis", "link", "https://sandbox.example.org/report/2024/10/14/a1b2c3"),
    ("Financial fraud", "btc", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    ("Payload installation", "yara", 'rule Example_Loader {\n  strings: $a = "upd8r"\n'
                                     "  condition: $a\n}"),
    ("Other", "comment", "تم رصد النشاط من عدة مصادر — مثال"),
    ("Persistence mechanism", "regkey",
     "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\updater"),
)

OBJECTS = (
    ("domain-ip", "network", (("domain", "Network activity", "domain", "c2.example-apt.net"),
                              ("ip", "Network activity", "ip-dst", "185.220.101.1"))),
    ("file", "file", (("filename", "Payload delivery", "filename", "setup_x64.msi"),
                      ("sha256", "Payload delivery", "sha256",
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))),
    ("person", "misc", (("phone-number", "Attribution", "phone-number", "+81 3 3580 3311"),
                        ("first-name", "Attribution", "first-name", "Ярослав"))),
)

TAGS = (
    (3, "tlp:amber", "#FFC000"),
    (5, "tlp:red", "#CC0033"),
    (6, "tlp:green", "#339900"),
    (12, "kill-chain:Command and Control", "#0088cc"),
    (41, 'misp-galaxy:threat-actor="Example Spider"', "#0088cc"),
    (44, 'circl:incident-classification="phishing"', "#7f2e9e"),
    (50, "ransomware 🔒", "#000000"),
    (51, "تهديد-عالي", "#e60000"),
)

EVENT_INFOS = (
    "Phishing wave targeting finance – Q4 (Ünïcödé test)",
    "Ransomware 🔒 campaign against hospitals",
    "حملة تصيد تستهدف البنوك",
    "Кампания APT против госсектора",
    "Credential stuffing on VPN portals",
    "Malspam with ISO/LNK chains",
    "北朝鮮関連のマルウェア配布",
    "Sinkhole review — weekly",
)

THREAD_TITLES = (
    "Same C2 seen in our sinkhole 🚩",
    "False positive on 8.8.8.8?",
    "تنسيق الاستجابة للحادث",
    "Attribution: Example Spider or copycat?",
)

KEEPALIVE_STATUSES = (
    "And when you're dead I will be still alive.",
    "And believe me I am still alive.",
    "I'm doing science and I'm still alive.",
    "I feel FANTASTIC and I'm still alive.",
    "While you're dying I'll be still alive.",
)

# Integer columns: numeric strings here become numbers on a PHP >= 8.1 instance.
_INT_KEYS = frozenset((
    "id", "timestamp", "publish_timestamp", "sighting_timestamp", "date_sighting",
    "distribution", "analysis", "threat_level_id", "attribute_count", "template_version",
    "referenced_type", "last_login", "newsread", "post_count", "version",
))


def retype(obj: Any, ints: bool, bools: str | None) -> Any:
    """The same message as another MISP/PHP version would type it."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if ints and isinstance(v, str) and v.isdigit() and (
                    k in _INT_KEYS or k.endswith("_id") or (k == "type" and len(v) == 1)):
                out[k] = int(v)
            else:
                out[k] = retype(v, ints, bools)
        return out
    if isinstance(obj, list):
        return [retype(v, ints, bools) for v in obj]
    if isinstance(obj, bool) and bools is not None:
        return ("1" if obj else "0") if bools == "str" else int(obj)
    return obj


@dataclass
class Event:
    id: int
    uuid: str
    info: str
    date: str
    orgc: Org
    threat: int
    attributes: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    tags: list[tuple[int, str, str]] = field(default_factory=list)


class Feed:
    """The messages of one simulated MISP instance, with their receive times."""

    def __init__(self, profile: InstanceProfile, rng: random.Random, start: float) -> None:
        self.p = profile
        self.rng = rng
        self.t = start
        self.frames: list[tuple[float, str, bytes]] = []
        self.next_id = {"event": 1280, "attribute": 90200, "object": 5520, "sighting": 44000,
                        "reference": 810, "thread": 310}
        self.threads: list[int] = []
        self.events: list[Event] = []
        self.uptime = 40

    # --- plumbing -----------------------------------------------------------------

    def new_id(self, kind: str) -> int:
        self.next_id[kind] += 1
        return self.next_id[kind]

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ts(self) -> str:
        return str(int(self.t))

    def emit(self, topic: str, body: Any, *, style: str | None = None) -> None:
        """Serialise ``body`` as this instance would and queue the frame."""
        self.t = round(self.t + self.rng.uniform(0.2, 9.0), 3)
        style = style or self._style()
        if style == "legacy":
            bools = self.rng.choice(("str", "int", None))
            text = json.dumps(retype(body, False, bools), indent=4).replace("/", "\\/")
        else:
            typed = retype(body, self.rng.random() < self.p.int_ids, None)
            text = json.dumps(typed, ensure_ascii=False, separators=(",", ":"))
            if style == "escaped":
                text = text.replace("/", "\\/")
        self.raw(f"{topic} {text}".encode())

    def raw(self, frame: bytes) -> None:
        self.frames.append((self.t, self.p.name, frame))

    def _style(self) -> str:
        x = self.rng.random()
        if x < self.p.legacy:
            return "legacy"
        return "escaped" if x < self.p.legacy + self.p.escaped_slashes else "current"

    # --- building blocks -----------------------------------------------------------

    def org(self, org: Org, *, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(org.id), "name": org.name,
                               "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{org.id}.org.example"))}
        if full:
            out.update(description="", nationality=org.nationality, sector=org.sector,
                       type="CSIRT", local=org == self.p.host)
        return out

    def tag(self, tag: tuple[int, str, str], **extra: Any) -> dict[str, Any]:
        return {"id": str(tag[0]), "name": tag[1], "colour": tag[2], "exportable": True, **extra}

    def attribute(self, ev: Event, category: str, atype: str, value: str,
                  object_id: int = 0, relation: str | None = None) -> dict[str, Any]:
        v1, _, v2 = value.partition("|") if "|" in atype else (value, "", "")
        return {"id": str(self.new_id("attribute")), "event_id": str(ev.id),
                "object_id": str(object_id), "object_relation": relation, "category": category,
                "type": atype, "value1": v1, "value2": v2, "to_ids": atype != "comment",
                "uuid": self.uuid(), "timestamp": self.ts(), "distribution": "5",
                "sharing_group_id": "0", "comment": "", "deleted": False,
                "disable_correlation": False, "first_seen": None, "last_seen": None,
                "value": value}

    def event_header(self, ev: Event) -> dict[str, Any]:
        return {"id": str(ev.id), "date": ev.date, "info": ev.info, "uuid": ev.uuid,
                "published": False, "analysis": "1", "threat_level_id": str(ev.threat),
                "org_id": str(self.p.host.id), "orgc_id": str(ev.orgc.id), "distribution": "1",
                "sharing_group_id": "0"}

    def event_row(self, ev: Event) -> dict[str, Any]:
        return {**self.event_header(ev), "user_id": "7", "attribute_count": str(
                    len(ev.attributes) + sum(len(o["Attribute"]) for o in ev.objects)),
                "timestamp": self.ts(), "proposal_email_lock": False, "locked": False,
                "publish_timestamp": "0", "sighting_timestamp": "0",
                "disable_correlation": False, "extends_uuid": "", "protected": None}

    def object_row(self, ev: Event, obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("Attribute", "ObjectReference")}


# --- the story of one instance ---------------------------------------------------


def keepalive(feed: Feed) -> None:
    """``misp_json_self``, as mispzmq.py sends it when its queue is idle."""
    feed.uptime += feed.rng.randint(10, 600)
    status = KEEPALIVE_STATUSES[(feed.uptime // 10) % len(KEEPALIVE_STATUSES)]
    # Written by mispzmq.py with the stdlib: Python's default separators.
    feed.raw(f"misp_json_self {json.dumps({'status': status, 'uptime': feed.uptime})}".encode())
    feed.t = round(feed.t + feed.rng.uniform(5, 15), 3)


def organisations(feed: Feed) -> None:
    """The directory's sources: the three aliases MISP uses for an organisation save."""
    for alias, org in zip(("Organisation", "Orgc", "Org"), ORGS[1:4], strict=True):
        body = {"name": org.name, "description": "", "type": "CSIRT",
                "nationality": org.nationality, "sector": org.sector,
                "uuid": feed.org(org)["uuid"], "contacts": "", "local": "1",
                "restricted_to_domain": '["example.org"]', "landingpage": "",
                "created_by": "1", "date_created": "2024-10-14 09:12:01",
                "date_modified": "2024-10-14 09:12:01", "id": str(org.id)}
        feed.emit("misp_json_organisation", {alias: body})
    # An organisation without an id: a captureOrg() save; learns nothing.
    feed.emit("misp_json_organisation", {"Orgc": {"name": "Unregistered Partner", "local": False,
                                                  "created_by": "0"}})


def audit_login(feed: Feed, org: Org, action: str = "login") -> None:
    """A legacy ``Log`` audit entry: login, login_fail or logout."""
    email = f"analyst{org.id}@{'cert' if org.id < 10 else 'soc'}.example.org"
    change = json.dumps({"user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "ip": "192.0.2.10",
                         "accept_lang": "en-GB,en;q=0.9"}, separators=(",", ":"))
    feed.emit("misp_json_audit", {"Log": {
        "org": org.name, "email": email, "user_id": str(org.id + 100), "action": action,
        "title": f"User ({org.id + 100}): {email}", "change": change if action == "login" else "",
        "model": "User", "model_id": str(org.id + 100), "request_is_rest": False, "ip": "",
        "description": "", "created": "2024-10-14 09:15:22"}, "action": "log"})


def user_message(feed: Feed, org: Org, action: str) -> None:
    """``misp_json_user`` with the re-read User and Organisation."""
    feed.emit("misp_json_user", {
        "User": {"id": str(org.id + 100), "email": f"analyst{org.id}@example.org",
                 "last_login": str(int(BASE_TIME) - 86400), "org_id": str(org.id),
                 "termsaccepted": True, "autoalert": False, "newsread": "1728000000",
                 "disabled": False},
        "Organisation": feed.org(org, full=True), "action": action})


def logins(feed: Feed, round_no: int) -> None:
    """Several organisations log in, one of them twice; a failure, a logout, the
    matching ``misp_json_user`` messages and the other two audit shapes."""
    orgs = feed.rng.sample(ORGS, 3)
    for org in (*orgs, orgs[0]):
        audit_login(feed, org)
        if feed.rng.random() < 0.5:
            user_message(feed, org, "login")
    audit_login(feed, feed.rng.choice(ORGS), "login_fail" if round_no % 2 else "logout")
    if round_no % 3 == 0:
        user_message(feed, orgs[1], "add")  # an API access-time update (add/edit are swapped)
        feed.emit("misp_json_audit", {"AuditLog": {
            "action": "add", "model": "Attribute", "model_id": "90211",
            "model_title": "Network activity/ip-dst 8.8.8.8", "event_id": "1287",
            "change": {"category": "Network activity", "to_ids": 1, "distribution": 5},
            "created": "2024-10-14 09:16:40", "user_id": "7", "org_id": "4",
            "request_type": 1, "authkey_id": "15"}, "action": "log"})
    if round_no % 4 == 1:
        feed.emit("misp_json_audit", {
            "created": "2024-10-14 09:16:40.123456", "request_id": None, "user_id": 7,
            "org_id": 4, "authkey_id": 15, "ip": None, "user_agent": "PyMISP 2.5.1",
            "request_method": "POST", "controller": "attributes", "action": "log",
            "url": "/attributes/add/1287", "response_code": 200, "duration": 87})


def new_event(feed: Feed, round_no: int) -> Event:
    """An event with a few attributes, one object and zero to two tags."""
    orgc = feed.rng.choice(ORGS[:5])
    ev = Event(feed.new_id("event"), feed.uuid(), EVENT_INFOS[round_no % len(EVENT_INFOS)],
               "2024-10-14", orgc, feed.rng.randint(1, 4))
    for category, atype, value in feed.rng.sample(ATTRIBUTES, feed.rng.randint(4, 7)):
        ev.attributes.append(feed.attribute(ev, category, atype, value))
    name, meta, attrs = OBJECTS[round_no % len(OBJECTS)]
    obj_id = feed.new_id("object")
    ev.objects.append({
        "id": str(obj_id), "name": name, "meta-category": meta, "description": f"{name} object",
        "template_uuid": str(uuid.UUID(int=obj_id, version=4)), "template_version": "10",
        "event_id": str(ev.id), "uuid": feed.uuid(), "timestamp": feed.ts(), "distribution": "5",
        "sharing_group_id": "0", "comment": "", "deleted": False, "first_seen": None,
        "last_seen": None, "ObjectReference": [],
        "Attribute": [feed.attribute(ev, c, t, v, obj_id, rel) for rel, c, t, v in attrs]})
    ev.tags = feed.rng.sample(TAGS, feed.rng.randint(0, 2))
    feed.events.append(ev)
    return ev


def event_message(feed: Feed, ev: Event, action: str, with_tags: bool) -> None:
    """``misp_json_event``: Orgc and EventTag beside Event, not in it."""
    tags = [{"id": str(5500 + t[0]), "event_id": str(ev.id), "tag_id": str(t[0]), "local": False,
             "relationship_type": "", "Tag": feed.tag(t)} for t in ev.tags] if with_tags else []
    feed.emit("misp_json_event", {"Event": feed.event_row(ev), "Orgc": feed.org(ev.orgc),
                                  "EventTag": tags, "action": action})


def attribute_message(feed: Feed, ev: Event, attr: dict[str, Any], action: str,
                      obj: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {"Attribute": {**attr, "Sighting": []},
                            "Event": {**feed.event_header(ev), "Orgc": feed.org(ev.orgc)}}
    if action == "edit" and feed.rng.random() < 0.6:
        body["Attribute"]["Tag"] = [feed.tag(feed.rng.choice(TAGS), local=False)]
    if obj is not None:
        body["Object"] = feed.object_row(ev, obj)
    body["action"] = action
    feed.emit("misp_json_attribute", body)


def build_event(feed: Feed, ev: Event) -> None:
    """How MISP announces a new event: the row, each attribute, each object and its
    attributes, a reference, then the tags one by one."""
    event_message(feed, ev, "add", with_tags=False)
    for attr in ev.attributes:
        attribute_message(feed, ev, attr, "add")
    for obj in ev.objects:
        feed.emit("misp_json_object", {"Object": feed.object_row(ev, obj), "action": "add"})
        for attr in obj["Attribute"]:
            attribute_message(feed, ev, attr, "add", obj)
        feed.emit("misp_json_object_reference", {"ObjectReference": {
            "id": str(feed.new_id("reference")), "uuid": feed.uuid(), "timestamp": feed.ts(),
            "object_id": obj["id"], "event_id": str(ev.id), "source_uuid": obj["uuid"],
            "referenced_uuid": ev.attributes[0]["uuid"], "referenced_id": ev.attributes[0]["id"],
            "referenced_type": "0", "relationship_type": "related-to", "comment": "",
            "deleted": False}, "action": "add"})
    for t in ev.tags:
        feed.emit("misp_json_tag", {"Tag": {**feed.tag(t), "org_id": "0", "user_id": "0",
                                            "hide_tag": False, "numerical_value": None,
                                            "is_galaxy": t[1].startswith("misp-galaxy"),
                                            "is_custom_galaxy": False, "local_only": False,
                                            "event_id": str(ev.id), "local": False},
                                    "action": "attached to event"})
    attr = feed.rng.choice(ev.attributes)
    feed.emit("misp_json_tag", {"Tag": {**feed.tag(feed.rng.choice(TAGS)), "org_id": "0",
                                        "attribute_id": attr["id"], "event_id": str(ev.id)},
                                "action": "attached to attribute"})
    event_message(feed, ev, "edit", with_tags=True)


def published_event(feed: Feed, ev: Event, legacy_dict: bool) -> dict[str, Any]:
    """The ``misp_json`` body of a publish; ``legacy_dict``: attributes as an index map."""
    attrs = []
    for attr in ev.attributes:
        a = {**attr, "ShadowAttribute": []}
        if feed.rng.random() < 0.3:
            a["Tag"] = [feed.tag(feed.rng.choice(TAGS), local=False, relationship_type=None)]
        attrs.append(a)
    event: dict[str, Any] = {
        **feed.event_row(ev), "event_creator_email": "analyst@cert.example.org",
        "Org": {**feed.org(feed.p.host), "local": True}, "Orgc": {**feed.org(ev.orgc),
                                                                  "local": False},
        "Attribute": {str(i): a for i, a in enumerate(attrs)} if legacy_dict else attrs,
        "ShadowAttribute": [], "RelatedEvent": [], "Galaxy": [], "Object": ev.objects,
        "EventReport": [], "CryptographicKey": []}
    del event["user_id"]
    if ev.tags:  # absent, not [], when the event has no tags
        event["Tag"] = [feed.tag(t, local=False, relationship_type=None) for t in ev.tags]
    return {"Event": event}


def sightings(feed: Feed, ev: Event) -> None:
    """Sightings of every type, by known and unknown reporters, and one delete."""
    known = [o.id for o in ORGS]
    plan = [(0, feed.rng.choice(known)), (0, UNKNOWN_ORG_ID), (1, feed.rng.choice(known)),
            (2, feed.rng.choice(known))]
    if feed.rng.random() < 0.5:
        plan.append((0, feed.p.host.id))
    first: dict[str, Any] | None = None
    for i, (kind, org_id) in enumerate(plan):
        attr = ev.attributes[i % len(ev.attributes)]
        body = {"Sighting": {
            "id": str(feed.new_id("sighting")), "attribute_id": attr["id"],
            "event_id": str(ev.id), "org_id": str(org_id), "date_sighting": feed.ts(),
            "uuid": feed.uuid(), "source": feed.rng.choice(("", "ids-sensor-3", "honeypot")),
            "type": str(kind),
            "Event": {"id": str(ev.id), "uuid": ev.uuid, "orgc_id": str(ev.orgc.id),
                      "org_id": str(feed.p.host.id), "info": ev.info,
                      "Orgc": {"name": ev.orgc.name}},
            "Attribute": {k: attr[k] for k in ("value", "id", "uuid", "type", "category",
                                               "to_ids")}},
            "action": "add"}
        feed.emit("misp_json_sighting", body)
        first = first or body
    if first is not None and feed.rng.random() < 0.4:
        feed.emit("misp_json_sighting", {**first, "action": "delete"})


def conversation(feed: Feed, ev: Event, round_no: int) -> None:
    """A new thread (Thread then its first Post), and a reply to an older thread."""
    org = feed.rng.choice(ORGS)
    if round_no % 2 == 0:
        feed.emit("misp_json_conversation", {"Thread": {
            "date_created": "2024/10/14 09:20:11", "date_modified": "2024/10/14 09:20:11",
            "user_id": "7", "event_id": str(ev.id), "title": THREAD_TITLES[round_no // 2 % 4],
            "distribution": "1", "sharing_group_id": "0", "post_count": 1,
            "org_id": str(org.id), "org_name": org.name, "user_email": "analyst@example.org"}})
        feed.threads.append(feed.new_id("thread"))
        post(feed, org, feed.threads[-1], "First post 🚩 — details in the sightings.\nTLP:AMBER")
    else:
        post(feed, org, feed.rng.choice(feed.threads), "Agreed, same infrastructure.")
    if round_no == 3:
        # A thread whose creation this capture never saw: counted as "Thread <id>".
        post(feed, feed.rng.choice(ORGS), 42, "Bumping this old one: هل من جديد؟")


def post(feed: Feed, org: Org, thread_id: int, contents: str) -> None:
    """A ``Post`` (no id of its own, the thread's id, no action)."""
    feed.emit("misp_json_conversation", {"Post": {
        "date_created": "2024/10/14 09:21:00", "date_modified": "2024/10/14 09:21:00",
        "user_id": "7", "contents": contents, "post_id": 0, "thread_id": str(thread_id),
        "user_email": "analyst@example.org", "org_id": str(org.id), "org_name": org.name}})


def housekeeping(feed: Feed, ev: Event, round_no: int) -> None:
    """Edits, deletions, sync notices, warninglists, workflows, tag CRUD."""
    attr = feed.rng.choice(ev.attributes)
    attribute_message(feed, ev, {**attr, "comment": "confirmed by sandbox 📦"}, "edit")
    attribute_message(feed, ev, {**attr, "deleted": True}, "soft-delete")
    if round_no % 2:
        feed.emit("misp_json_attribute", {"Attribute": attr, "action": "delete"})
        feed.emit("misp_json_object", {"Object": feed.object_row(ev, ev.objects[0]),
                                       "action": "soft-delete"})
    if round_no % 3 == 2:
        feed.emit("misp_json_event", {"Event": str(9000 + round_no), "Server": "2",
                                      "action": "add_from_connected_server"})
        feed.emit("misp_json_event", {"Event": feed.event_row(ev), "action": "delete"})
        feed.emit("misp_json_tag", {"Tag": {**feed.tag(TAGS[0]), "event_id": str(ev.id)},
                                    "action": "detached from event"})
    if round_no % 4 == 0:
        feed.emit("misp_json_warninglist", {"Warninglist": {
            "id": "112", "name": "Internal sinkhole ranges", "type": "cidr",
            "description": "Our sinkholes – never alert on these", "version": str(3 + round_no),
            "enabled": True, "default": False, "category": "known_identifier"},
            "action": "edit"})
        feed.emit("misp_json_tag", {"Tag": {**feed.tag(TAGS[6]), "org_id": "0"},
                                    "action": "add"})
    if round_no % 4 == 3:
        feed.emit("misp_json_workflow", ["tlp:red", "malware"])
        feed.emit("misp_json_workflow", {"Enriching event": str(ev.id), "Attribute added": 3})


def bad_frames(feed: Feed) -> None:
    """What no MISP sends, but a broken relay or a future version might."""
    feed.raw(b"misp_json_self")  # no space, no body
    feed.raw(b'misp_json_event {"Event": {"id": "1299", "info": "truncated in trans')
    feed.raw(b'misp_json_tag ["tlp:red", "malware"]')  # an array on a non-workflow topic
    feed.raw(b'misp_json {"Event": "1299"}')  # Event as a scalar
    feed.raw(b"misp_json_self 42")
    feed.raw(b'misp_json_conversation {"Post": {"contents": "\xff\xfe broken"}}')  # not UTF-8
    feed.raw(b'misp_json_future_topic {"Something": {"id": "1"}}')


def instance_story(profile: InstanceProfile, rng: random.Random, start: float) -> Feed:
    """Everything one instance sends: ROUNDS bursts of activity, then the bad frames."""
    feed = Feed(profile, rng, start)
    keepalive(feed)
    organisations(feed)
    for round_no in range(ROUNDS):
        logins(feed, round_no)
        ev = new_event(feed, round_no)
        build_event(feed, ev)
        feed.emit("misp_json", published_event(feed, ev, legacy_dict=round_no == 5),
                  style="legacy" if round_no == 4 else None)
        sightings(feed, ev)
        conversation(feed, ev, round_no)
        housekeeping(feed, ev, round_no)
        if round_no % 2:
            keepalive(feed)
        feed.t = round(feed.t + rng.uniform(300, 900), 3)  # a quieter spell between bursts
    bad_frames(feed)
    return feed


def generate(seed: int = SEED) -> Iterator[tuple[str, float, bytes]]:
    """Every sample frame as (instance, receive time, frame), in receive order."""
    rng = random.Random(seed)
    frames: list[tuple[float, str, bytes]] = []
    for i, profile in enumerate(PROFILES):
        frames.extend(instance_story(profile, rng, BASE_TIME + 0.5 * i).frames)
    frames.sort(key=lambda f: (f[0], f[1]))
    for received, instance, frame in frames:
        yield instance, received, frame


def render(seed: int = SEED) -> bytes:
    """The capture file's bytes."""
    return b"".join(encode_line(inst, t, frame) for inst, t, frame in generate(seed))


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.samples [--out PATH] [--check]``."""
    p = argparse.ArgumentParser(prog="python -m helpers.samples", description=__doc__.split(
        "\n")[0])
    p.add_argument("--out", default=str(DEFAULT_PATH), help="capture file to write")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if the file differs from what the generator writes")
    args = p.parse_args(argv)
    data = render()
    out = Path(args.out)
    if args.check:
        same = out.is_file() and out.read_bytes() == data
        print(f"{out}: {'up to date' if same else 'OUT OF DATE'}")
        return 0 if same else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {len(data.splitlines())} frames to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
