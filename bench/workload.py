"""A deterministic, realistic mixed MISP ZeroMQ workload for the benchmark.

The frames follow the shapes of /work/shared/reference/misp-zmq-format.md §3
(the reference's "invented values with the true shapes"), with the variations
of §2 and §7: ids as strings or numbers, booleans as ``true`` or ``"1"``, tags
present or absent, three body encodings (current compact UTF-8, 2.4.148-2.4.150
escaped slashes, pre-2.4.148 pretty-printed ASCII), unicode everywhere, IPs that
geolocate and ones that do not, phone numbers valid and not, a few unusable
frames.

Mix, per 100 messages (weights in :data:`MIX`): 45 ``misp_json_attribute``,
10 ``misp_json`` (whole events), 10 sightings, 10 audit logins, 3 other audit
entries, 3 conversations, 5 tags, 4 ``misp_json_event``, 4 objects, 2 object
references, 2 users, 0.5 organisations, 0.4 warninglists, 0.4 workflows,
0.5 keepalives, 0.2 unusable frames.

Event size (attributes, object attributes included): ``floor(exp(N(ln 8, 1.3)))``
clipped to 0..500, a log-normal: median 8, mean about 18, 2.6 % above 100, a few
near 500 -- most events small, a few large.  About 30 % of an event's attributes
sit in objects of 2-6 attributes.

Beside each frame the generator records what it implies in Redis (its
*effects*: attribute observations per category, event titles, logins per
organisation, tags, discussions, sightings), computed from the generator's own
knowledge of the message and the contract in the spec, never by running the
daemon's code -- so the benchmark can check the daemon's totals against them.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

SEED = 20241014
TS_TOKEN = b"BENCHTS"  # followed by 19 digits: the send time (ns) in latency runs
TS_PLACEHOLDER = TS_TOKEN + b"0" * 19
BASE_TIME = 1728915342

MIX: tuple[tuple[str, float], ...] = (
    ("attribute", 45.0), ("event", 10.0), ("sighting", 10.0), ("login", 10.0),
    ("audit_other", 3.0), ("conversation", 3.0), ("tag", 5.0), ("event_meta", 4.0),
    ("object", 4.0), ("object_reference", 2.0), ("user", 2.0), ("organisation", 0.5),
    ("warninglist", 0.4), ("workflow", 0.4), ("keepalive", 0.5), ("junk", 0.2),
)

ORGS = (
    "CERT-Example", "CIRCL", "Example SOC", "Équipe Réponse à Incidents", "CERT-Ünïcödé",
    "情報セキュリティ推進室", "فريق الاستجابة", "Банк-СОК", "ACME Corp 🛡️", "NCSC-NL", "CERT-PL",
    "Bundesamt Test", "Østlandet CSIRT", "Ελληνικό CERT", "SOC Δelta", "Example Bank",
    "Telco Europe", "Hospital Network", "University CSIRT", "Energy ISAC", "Finance ISAC",
    "Aviation ISAC", "Retail SOC", "Gov CERT-LU", "Cloud Provider X", "MSSP Alpha",
    "MSSP Beta", "Research Lab ☢", "Municipal IT", "Water Utility", "CERT-BR", "JPCERT/CC",
    "KrCERT/CC", "CERT-In", "TWCERT/CC", "SingCERT", "AusCERT", "CERT NZ", "CanCERT", "US-Ex",
)

# (category, weight, attribute types)
CATEGORIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Network activity", 35, ("ip-dst", "ip-src", "ip-dst|port", "domain", "domain|ip",
                              "hostname", "url", "ip-dst", "ip-src")),
    ("Payload delivery", 25, ("sha256", "md5", "sha1", "filename|sha256", "url", "filename",
                              "email-src", "email-subject", "ip-src")),
    ("External analysis", 10, ("link", "text", "comment", "vulnerability")),
    ("Artifacts dropped", 8, ("filename", "sha256", "mutex", "regkey")),
    ("Payload installation", 5, ("sha256", "filename", "yara")),
    ("Other", 5, ("text", "comment", "phone-number")),
    ("Attribution", 3, ("whois-registrant-email", "whois-registrant-phone", "text")),
    ("Persistence mechanism", 2, ("regkey", "filename")),
    ("Financial fraud", 2, ("phone-number", "iban", "btc")),
    ("Social network", 2, ("whois-registrant-phone", "email", "twitter-id")),
    ("Targeting data", 1, ("target-org", "target-user", "phone-number")),
    ("Antivirus detection", 1, ("text", "link")),
    ("Internal reference", 1, ("text", "link")),
)

TAGS: tuple[tuple[int, str, str], ...] = (
    (1, "tlp:white", "#ffffff"), (2, "tlp:green", "#33FF00"), (3, "tlp:amber", "#FFC000"),
    (4, "tlp:red", "#FF0000"), (5, "tlp:clear", "#ffffff"),
    (12, "kill-chain:Command and Control", "#0088cc"), (13, "kill-chain:Delivery", "#0088cc"),
    (14, "kill-chain:Exploitation", "#0088cc"),
    (41, 'misp-galaxy:threat-actor="Example Spider"', "#0088cc"),
    (42, 'misp-galaxy:threat-actor="Sofacy"', "#0088cc"),
    (43, 'misp-galaxy:ransomware="LockBit"', "#0088cc"),
    (44, 'misp-galaxy:mitre-attack-pattern="Phishing - T1566"', "#0088cc"),
    (60, "source:Ünïcödé-feed", "#12e000"), (61, "osint:source-type=\"blog-post\"", "#00223b"),
    (62, "circl:incident-classification=\"phishing\"", "#5b92d6"),
    (63, "admiralty-scale:source-reliability=\"b\"", "#0040ff"),
    (64, "workflow:state=\"complete\"", "#002b4c"), (65, "type:OSINT", "#004646"),
    (66, "priorité:haute 🔥", "#aa0000"), (67, "情報:共有", "#555555"),
)

THREATS = ("Phishing wave", "Ransomware campaign", "Credential harvesting", "C2 infrastructure",
           "Malspam", "Watering hole", "Supply-chain compromise", "Botnet activity",
           "Kampagne gegen Banken", "Campagne d'hameçonnage", "Фишинговая кампания",
           "標的型攻撃", "حملة تصيد", "Skimmer 💳")
SECTORS = ("finance", "healthcare", "energy", "government", "telecoms", "retail", "aviation",
           "education", "les collectivités", "Behörden")

# Public addresses in blocks that are allocated and geolocated (plus some IPv6) ...
GEO_IPS_V4_PREFIXES = (8, 23, 31, 37, 45, 46, 62, 77, 78, 80, 81, 82, 83, 85, 86, 87, 88, 89,
                       91, 93, 94, 95, 104, 109, 151, 176, 178, 185, 188, 193, 194, 195, 212,
                       213, 217)
GEO_IPS_V6 = ("2a00:1450:4007:80e::200e", "2001:4860:4860::8888", "2a02:26f0:fe::5c",
              "2606:4700:4700::1111", "2001:67c:2e8:22::c100:68b")
# ... and ones that never geolocate: private, documentation, loopback, link-local.
NOGEO_IPS = ("10.0.0.5", "10.12.7.200", "192.168.1.20", "172.16.5.4", "127.0.0.1",
             "169.254.10.3", "192.0.2.10", "198.51.100.7", "203.0.113.45", "2001:db8::1",
             "::1", "fe80::1")
PHONES = ("+33 1 42 68 53 00", "+49 30 901820", "+1 202-456-1111", "+44 20 7946 0958",
          "+81 3-3580-3311", "+352 26 12 34 1", "+7 495 695-37-76", "+55 11 3071-0000",
          "+91 11 2301 2380", "+61 2 6277 7111", "+27 21 403 2911", "+86 10 6512 3456",
          "+971 4 330 0000", "+234 9 234 1234", "+39 06 6982", "+34 913 08 22 00")
BAD_PHONES = ("12345", "+999 1234", "call me", "+00 0000")
DOMAINS = ("login-paypa1.example.net", "bücher.example", "пример.рф", "update-check.example.org",
           "cdn-static.example.com", "例え.テスト", "secure-bank.example", "mail.example.io")
WORDS = ("invoice", "payment", "update", "docs", "счёт", "rechnung", "facture", "請求書",
         "report", "urgent 📎", "scan", "order")


@dataclass
class Workload:
    """A pool of frames and, per frame, what it implies in Redis."""

    frames: list[bytes]
    effects: list[Counter[tuple[str, str]]]
    topics: list[str]
    _total: Counter[tuple[str, str]] | None = field(default=None, repr=False)

    def expected(self, n: int) -> Counter[tuple[str, str]]:
        """The effects of sending the first ``n`` frames of the endless cycle of the pool."""
        if self._total is None:
            self._total = Counter()
            for eff in self.effects:
                self._total.update(eff)
        cycles, rest = divmod(n, len(self.frames))
        total: Counter[tuple[str, str]] = Counter()
        for key, amount in self._total.items():
            total[key] = amount * cycles
        for eff in self.effects[:rest]:
            total.update(eff)
        return +total

    def frame(self, i: int) -> bytes:
        return self.frames[i % len(self.frames)]


def tag_member(tag_id: str, name: str, colour: str) -> str:
    """The spec's (§1, §3) TRENDINGS_TAGS member: keys in order, default separators."""
    return json.dumps({"id": tag_id, "name": name, "colour": colour}, ensure_ascii=False)


class Generator:
    """Builds frames one message at a time, remembering what each implies."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.next_event = 1000
        self.next_attr = 90000
        self.next_object = 5000
        self.next_thread = 300
        self.threads: list[tuple[str, str]] = []  # (thread id, title) paired so far
        self.infos = [self._make_info(i) for i in range(1500)]
        self.hot_ips = [self.fresh_ip() for _ in range(3000)]
        self.cat_weights = [c[1] for c in CATEGORIES]
        self.kinds = [k for k, _ in MIX]
        self.kind_weights = [w for _, w in MIX]
        self.builders: dict[str, Callable[[], None]] = {
            "attribute": self.attribute, "event": self.event, "sighting": self.sighting,
            "login": self.login, "audit_other": self.audit_other,
            "conversation": self.conversation, "tag": self.tag, "event_meta": self.event_meta,
            "object": self.object, "object_reference": self.object_reference, "user": self.user,
            "organisation": self.organisation, "warninglist": self.warninglist,
            "workflow": self.workflow, "keepalive": self.keepalive, "junk": self.junk,
        }
        self.out = Workload([], [], [])
        self.ids: Callable[[int], Any] = str

    # --- driver ---------------------------------------------------------------------

    def build(self, count: int) -> Workload:
        """At least ``count`` frames (a new thread adds two); returns the pool."""
        while len(self.out.frames) < count:
            kind = self.rng.choices(self.kinds, self.kind_weights)[0]
            # PHP >= 8.1 instances without stringified fetches send numbers (reference §2.2).
            self.ids = str if self.rng.random() < 0.7 else int
            self.builders[kind]()
        return self.out

    def emit(self, topic: str, body: Any, effects: Counter[tuple[str, str]] | None = None,
             encoding: str | None = None) -> None:
        self.out.frames.append(topic.encode() + b" " + self._encode(body, encoding))
        self.out.effects.append(effects or Counter())
        self.out.topics.append(topic)

    def _encode(self, body: Any, encoding: str | None) -> bytes:
        u = self.rng.random() if encoding is None else {"compact": 0.0, "legacy": 0.99}[encoding]
        if u < 0.94:  # MISP >= 2.4.151: compact, raw UTF-8, slashes unescaped
            return orjson.dumps(body)
        if u < 0.98:  # 2.4.148-2.4.150: raw UTF-8, slashes escaped
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")) \
                .replace("/", "\\/").encode()
        # before 2.4.148: pretty-printed, \uXXXX escapes, \/
        return json.dumps(body, indent=4).replace("/", "\\/").encode()

    # --- value pools ----------------------------------------------------------------

    def _make_info(self, i: int) -> str:
        r = self.rng
        return (f"{r.choice(THREATS)} targeting {r.choice(SECTORS)} – "
                f"Q{r.randint(1, 4)} {r.randint(2019, 2024)} #{i}")

    def org(self) -> tuple[int, str]:
        i = min(int(self.rng.paretovariate(1.2)) - 1, len(ORGS) - 1)  # a few orgs dominate
        return i + 1, ORGS[i]

    def org_obj(self, org_id: int, name: str, full: bool = True) -> dict[str, Any]:
        obj: dict[str, Any] = {"id": self.ids(org_id), "name": name,
                               "uuid": f"7c9e6679-7425-40de-944b-{org_id:012d}"}
        if full:
            obj["local"] = org_id < 5
        return obj

    def ip(self) -> str:
        """60 % from 3,000 recurring addresses (C2s, scanners seen again and again),
        40 % fresh: the geolocation cache sees both hits and misses."""
        if self.rng.random() < 0.6:
            return self.rng.choice(self.hot_ips)
        return self.fresh_ip()

    def fresh_ip(self) -> str:
        r = self.rng
        u = r.random()
        if u < 0.70:
            return (f"{r.choice(GEO_IPS_V4_PREFIXES)}.{r.randint(0, 255)}."
                    f"{r.randint(0, 255)}.{r.randint(1, 254)}")
        if u < 0.78:
            return r.choice(GEO_IPS_V6)
        return r.choice(NOGEO_IPS)

    def value(self, atype: str) -> str:
        r = self.rng
        if atype in ("ip-src", "ip-dst"):
            return self.ip()
        if atype.endswith("|port"):
            return f"{self.ip()}|{r.choice((80, 443, 8080, 4444, 53))}"
        if atype == "domain|ip":
            return f"{r.choice(DOMAINS)}|{self.ip()}"
        if atype in ("phone-number", "whois-registrant-phone"):
            return r.choice(PHONES) if r.random() < 0.85 else r.choice(BAD_PHONES)
        if atype in ("sha256", "md5", "sha1"):
            n = {"sha256": 32, "md5": 16, "sha1": 20}[atype]
            return r.randbytes(n).hex()
        if atype == "filename|sha256":
            return f"{r.choice(WORDS)}.pdf.exe|{r.randbytes(32).hex()}"
        if atype in ("domain", "hostname"):
            return r.choice(DOMAINS)
        if atype in ("url", "link"):
            return f"https://{r.choice(DOMAINS)}/{r.choice(WORDS)}/{r.randint(1, 99999)}.php"
        if atype == "yara":
            return (f'rule Example_{r.randint(1, 999)} {{\n  strings:\n    $a = "évasion"\n'
                    '  condition:\n    $a\n}')
        return f"{r.choice(WORDS)} {r.choice(THREATS)} {r.randint(1, 10**6)}"

    def tags(self, n_max: int, attribute_style: bool) -> list[dict[str, Any]]:
        picked = self.rng.sample(TAGS, self.rng.randint(1, n_max))
        out = []
        for tid, name, colour in picked:
            t: dict[str, Any] = {"id": self.ids(tid), "name": name, "colour": colour,
                                 "exportable": True}
            if not attribute_style:
                t.update(user_id="0", hide_tag=False, numerical_value=None,
                         is_galaxy=name.startswith("misp-galaxy"), is_custom_galaxy=False,
                         local_only=False, relationship_type=None)
            t["local"] = False
            out.append(t)
        return out

    # --- attributes and events -------------------------------------------------------

    def category(self) -> tuple[str, str]:
        cat = self.rng.choices(CATEGORIES, self.cat_weights)[0]
        return cat[0], self.rng.choice(cat[2])

    def attr(self, event_id: int, object_id: int = 0, relation: str | None = None,
             comment: str = "") -> dict[str, Any]:
        category, atype = self.category()
        value = self.value(atype)
        self.next_attr += 1
        v1, _, v2 = value.partition("|")
        ts = BASE_TIME + self.rng.randint(0, 86400)
        a: dict[str, Any] = {
            "id": self.ids(self.next_attr), "event_id": self.ids(event_id),
            "object_id": self.ids(object_id), "object_relation": relation,
            "category": category, "type": atype, "value1": v1, "value2": v2,
            "to_ids": self.rng.random() < 0.6,
            "uuid": f"a1a1a1a1-0000-4000-8000-{self.next_attr:012d}",
            "timestamp": self.ids(ts), "distribution": self.ids(5),
            "sharing_group_id": self.ids(0), "comment": comment, "deleted": False,
            "disable_correlation": False, "first_seen": None, "last_seen": None,
            "value": value,
        }
        return a

    def observe(self, eff: Counter[tuple[str, str]], a: dict[str, Any]) -> None:
        """The effects of one attribute observation (semantics §2-§4)."""
        eff[("OBS", "")] += 1
        eff[("CATEGS", a["category"])] += 1
        eff[("GEO_CANDIDATE", f'{a["type"]}\t{a["value"]}')] += 1
        for t in a.get("Tag", ()):
            eff[("TAGS", tag_member(str(t["id"]), t["name"], t["colour"]))] += 1

    def event_size(self) -> int:
        return max(0, min(500, int(math.exp(self.rng.gauss(math.log(8), 1.3)))))

    def event_header(self, org: tuple[int, str], info: str) -> dict[str, Any]:
        self.next_event += 1
        e = self.next_event
        return {
            "id": self.ids(e), "orgc_id": self.ids(org[0]), "org_id": self.ids(1),
            "date": f"2024-10-{self.rng.randint(1, 28):02d}", "threat_level_id": self.ids(2),
            "info": info, "published": False, "uuid": f"6f1c2a4e-3b1d-4c55-9a0e-{e:012d}",
            "attribute_count": self.ids(0), "analysis": self.ids(self.rng.randint(0, 2)),
            "timestamp": self.ids(BASE_TIME), "distribution": self.ids(1),
            "proposal_email_lock": False, "locked": False,
            "publish_timestamp": self.ids(BASE_TIME - 15342), "sharing_group_id": self.ids(0),
            "disable_correlation": False, "extends_uuid": "", "protected": None,
        }

    def attribute(self) -> None:
        """``misp_json_attribute``: add (70 %), edit (23 %), soft-delete / delete (7 %)."""
        u = self.rng.random()
        action = "add" if u < 0.70 else "edit" if u < 0.93 else "soft-delete" if u < 0.97 \
            else "delete"
        org = self.org()
        e = self.rng.randint(900, 999)
        a = self.attr(e, comment=f"seen by sensor {self.rng.randint(1, 40)} "
                                 f"{TS_PLACEHOLDER.decode()}")
        body: dict[str, Any] = {"Attribute": a, "action": action}
        eff: Counter[tuple[str, str]] = Counter()
        if action != "delete":
            if self.rng.random() < 0.25 or (action == "edit" and self.rng.random() < 0.5):
                a["Tag"] = self.tags(3, attribute_style=True)
            a["Sighting"] = []
            body["Event"] = {
                "id": self.ids(e), "date": "2024-10-14", "info": self.rng.choice(self.infos),
                "uuid": f"6f1c2a4e-3b1d-4c55-9a0e-{e:012d}", "published": False,
                "analysis": self.ids(1), "threat_level_id": self.ids(2), "org_id": self.ids(1),
                "orgc_id": self.ids(org[0]), "distribution": self.ids(1),
                "sharing_group_id": self.ids(0), "Orgc": self.org_obj(*org, full=False)}
            if self.rng.random() < 0.3:  # an object attribute: the Object row comes along
                self.next_object += 1
                a["object_id"] = self.ids(self.next_object)
                a["object_relation"] = "ip"
                body["Object"] = self.object_row(self.next_object, e)
        if action in ("add", "edit"):
            self.observe(eff, a)
        self.emit("misp_json_attribute", body, eff)

    def object_row(self, object_id: int, event_id: int) -> dict[str, Any]:
        return {"id": self.ids(object_id), "name": "domain-ip", "meta-category": "network",
                "description": "A domain/hostname and IP address seen as a tuple",
                "template_uuid": "43b3b146-77eb-4931-b4cc-b66c60f28734",
                "template_version": "10", "event_id": self.ids(event_id),
                "uuid": f"d4d4d4d4-0000-4000-8000-{object_id:012d}",
                "timestamp": self.ids(BASE_TIME), "distribution": self.ids(5),
                "sharing_group_id": self.ids(0), "comment": "", "deleted": False,
                "first_seen": None, "last_seen": None}

    def event_body(self, n_attrs: int, eff: Counter[tuple[str, str]]) -> dict[str, Any]:
        """A whole ``misp_json`` event of ``n_attrs`` attributes, 30 % in objects."""
        org = self.org()
        info = self.rng.choice(self.infos)
        ev = self.event_header(org, info)
        e = self.next_event
        ev["event_creator_email"] = "analyst@cert.example.org"
        ev["Org"] = self.org_obj(1, ORGS[0])
        ev["Orgc"] = self.org_obj(*org)
        in_objects = int(n_attrs * 0.3)
        ev["Attribute"] = [self._event_attr(e, eff) for _ in range(n_attrs - in_objects)]
        ev["ShadowAttribute"], ev["RelatedEvent"], ev["Galaxy"] = [], [], []
        objects = []
        while in_objects > 0:
            size = min(in_objects, self.rng.randint(2, 6))
            in_objects -= size
            self.next_object += 1
            obj = self.object_row(self.next_object, e)
            obj["ObjectReference"] = []
            obj["Attribute"] = [self._event_attr(e, eff, self.next_object) for _ in range(size)]
            objects.append(obj)
        ev["Object"] = objects
        ev["EventReport"], ev["CryptographicKey"] = [], []
        eff[("EVENTS", info)] += 1
        if self.rng.random() < 0.8:  # Event.Tag is absent when the event has no tags
            ev["Tag"] = self.tags(4, attribute_style=False)
            for t in ev["Tag"]:
                eff[("TAGS", tag_member(str(t["id"]), t["name"], t["colour"]))] += 1
        return {"Event": ev}

    def _event_attr(self, e: int, eff: Counter[tuple[str, str]],
                    object_id: int = 0) -> dict[str, Any]:
        a = self.attr(e, object_id, "ip" if object_id else None,
                      comment="C2 / beacon" if self.rng.random() < 0.2 else "")
        a["ShadowAttribute"] = []
        if self.rng.random() < 0.1:
            a["Tag"] = self.tags(2, attribute_style=False)
        self.observe(eff, a)
        return a

    def event(self) -> None:
        eff: Counter[tuple[str, str]] = Counter()
        self.emit("misp_json", self.event_body(self.event_size(), eff), eff)

    def event_meta(self) -> None:
        """``misp_json_event``: add/edit count as events; deletes and sync notices do not."""
        u = self.rng.random()
        eff: Counter[tuple[str, str]] = Counter()
        if u < 0.1:
            body: dict[str, Any] = {"Event": self.ids(self.rng.randint(1, 5000)),
                                    "Server": self.ids(2), "action": "add_from_connected_server"}
        else:
            action = "add" if u < 0.5 else "edit" if u < 0.95 else "delete"
            org = self.org()
            info = self.rng.choice(self.infos)
            ev = self.event_header(org, info)
            ev["user_id"] = self.ids(7)
            ev["sighting_timestamp"] = self.ids(0)
            body = {"Event": ev, "action": action}
            if action != "delete":
                body["Orgc"] = self.org_obj(*org, full=False)
                tags = self.tags(3, attribute_style=True) if action == "edit" else []
                body["EventTag"] = [{"id": self.ids(5531 + i), "event_id": ev["id"],
                                     "tag_id": t["id"], "local": False, "relationship_type": "",
                                     "Tag": t} for i, t in enumerate(tags)]
                eff[("EVENTS", info)] += 1
                for t in tags:
                    eff[("TAGS", tag_member(str(t["id"]), t["name"], t["colour"]))] += 1
        self.emit("misp_json_event", body, eff)

    # --- sightings, tags, users, audit --------------------------------------------

    def sighting(self) -> None:
        """Type 0 (70 %), 1 (22 %), 2 (5 %, an expiration); 3 % are deletes."""
        u = self.rng.random()
        kind = 0 if u < 0.70 else 1 if u < 0.92 else 2
        action = "delete" if self.rng.random() < 0.03 else "add"
        reporter, creator = self.org(), self.org()
        category, atype = self.category()
        e = self.rng.randint(900, 999)
        body = {"Sighting": {
            "id": self.ids(44000 + len(self.out.frames)), "attribute_id": self.ids(90211),
            "event_id": self.ids(e), "org_id": self.ids(reporter[0]),
            "date_sighting": self.ids(BASE_TIME + self.rng.randint(0, 3600)),
            "uuid": "2c2c2c2c-0000-4000-8000-00000000002c",
            "source": self.rng.choice(("", "ids-sensor-3", "honeypot ☂")), "type": self.ids(kind),
            "Event": {"id": self.ids(e), "uuid": f"6f1c2a4e-3b1d-4c55-9a0e-{e:012d}",
                      "orgc_id": self.ids(creator[0]), "org_id": self.ids(1),
                      "info": self.rng.choice(self.infos), "Orgc": {"name": creator[1]}},
            "Attribute": {"value": self.value(atype), "id": self.ids(90211),
                          "uuid": "a1a1a1a1-0000-4000-8000-000000000001", "type": atype,
                          "category": category, "to_ids": True}},
            "action": action}
        eff: Counter[tuple[str, str]] = Counter()
        if action == "add" and kind in (0, 1):
            eff[("SIGHT", "sightings" if kind == 0 else "false_positive")] += 1
            self.observe(eff, body["Sighting"]["Attribute"])
        self.emit("misp_json_sighting", body, eff)

    def tag(self) -> None:
        action = self.rng.choice(("attached to event", "attached to attribute",
                                  "attached to event", "detached from event", "add", "edit"))
        t = self.tags(1, attribute_style=False)[0]
        t.pop("relationship_type")
        t["org_id"] = self.ids(0)
        eff: Counter[tuple[str, str]] = Counter()
        if action.startswith("attached"):
            t["event_id"] = self.ids(self.rng.randint(900, 999))
            if action == "attached to attribute":
                t["attribute_id"] = self.ids(self.rng.randint(90000, 99999))
                del t["local"]
            eff[("TAGS", tag_member(str(t["id"]), t["name"], t["colour"]))] += 1
        self.emit("misp_json_tag", {"Tag": t, "action": action}, eff)

    def login(self) -> None:
        """An audit ``Log`` login (the default login source)."""
        org = self.org()
        uid = self.rng.randint(2, 400)
        email = f"user{uid}@{org[1].split()[0].lower()}.example"
        change = orjson.dumps({"user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                               "ip": "192.0.2.10", "accept_lang": "en-GB,en;q=0.9",
                               "geoip": "None", "ua_pattern": "Mozilla/5.0 (X11; Linux x86_64)",
                               "ua_platform": "Linux", "ua_browser": "browser"}).decode()
        body = {"Log": {"org": org[1], "email": email, "user_id": self.ids(uid),
                        "action": "login", "title": f"User ({uid}): {email}", "change": change,
                        "model": "User", "model_id": self.ids(uid), "request_is_rest": False,
                        "ip": "", "description": "", "created": "2024-10-14 09:15:22"},
                "action": "log"}
        eff: Counter[tuple[str, str]] = Counter()
        eff[("LOGIN", org[1])] += 1
        self.emit("misp_json_audit", body, eff)

    def audit_other(self) -> None:
        u = self.rng.random()
        if u < 0.4:
            body: dict[str, Any] = {"Log": {
                "org": self.org()[1], "email": "analyst@cert.example.org", "user_id": "7",
                "action": self.rng.choice(("add", "edit", "publish", "logout", "login_fail")),
                "title": "Attribute (90211) added", "change": "value () => (203.0.113.45)",
                "model": "Attribute", "model_id": "90211", "request_is_rest": True, "ip": "",
                "description": "", "created": "2024-10-14 09:16:40"}, "action": "log"}
        elif u < 0.8:
            body = {"AuditLog": {
                "action": "add", "model": "Attribute", "model_id": "90211",
                "model_title": "Network activity/ip-dst 203.0.113.45", "event_id": "1287",
                "change": {"event_id": 1287, "category": "Network activity", "type": "ip-dst",
                           "value1": "203.0.113.45", "to_ids": 1, "distribution": 5},
                "created": "2024-10-14 09:16:40", "user_id": "7", "org_id": "4",
                "request_type": 1, "authkey_id": "15"}, "action": "log"}
        else:
            body = {"created": "2024-10-14 09:16:40.123456", "request_id": None, "user_id": 7,
                    "org_id": 4, "authkey_id": 15, "ip": None,
                    "user_agent": "PyMISP 2.5.1 - Python 3.11", "request_method": "POST",
                    "controller": "attributes", "action": "log", "url": "/attributes/add/1287",
                    "response_code": 200, "memory_usage": 12582912, "query_count": 41,
                    "duration": 87}
        self.emit("misp_json_audit", body)

    def user(self) -> None:
        org = self.org()
        uid = self.rng.randint(2, 400)
        body = {"User": {"id": self.ids(uid), "email": f"user{uid}@example.org",
                         "last_login": self.ids(BASE_TIME - 86400), "org_id": self.ids(org[0]),
                         "termsaccepted": True, "autoalert": False,
                         "newsread": self.ids(BASE_TIME), "disabled": False},
                "Organisation": {**self.org_obj(*org), "description": "", "nationality": "",
                                 "sector": "Government", "type": "CSIRT"},
                "action": self.rng.choice(("login", "logout", "add", "edit"))}
        self.emit("misp_json_user", body)  # the user topic is not the login source here

    # --- conversations ----------------------------------------------------------------

    def conversation(self) -> None:
        """A new thread (``Thread`` then its first ``Post``) or a post in a known thread."""
        org = self.org()
        post = {"date_created": "2024/10/14 09:20:00", "date_modified": "2024/10/14 09:20:00",
                "user_id": self.ids(7), "contents": "Seen here too 👀\n> quoted **markdown**",
                "post_id": 0, "user_email": "analyst@cert.example.org",
                "org_id": self.ids(org[0]), "org_name": org[1]}
        eff: Counter[tuple[str, str]] = Counter()
        u = self.rng.random()
        if u < 0.4 or not self.threads:
            self.next_thread += 1
            tid, title = str(self.next_thread), f"Discussion about {self.rng.choice(self.infos)}"
            thread = {"date_created": "2024/10/14 09:20:00",
                      "date_modified": "2024/10/14 09:20:00", "user_id": self.ids(7),
                      "event_id": self.ids(0), "title": title, "distribution": self.ids(1),
                      "sharing_group_id": self.ids(0), "post_count": 1,
                      "org_id": self.ids(org[0]), "org_name": org[1],
                      "user_email": "analyst@cert.example.org"}
            self.emit("misp_json_conversation", {"Thread": thread})
            self.threads.append((tid, title))
        elif u < 0.9:
            tid, title = self.rng.choice(self.threads)
        else:  # a thread created before the daemon started: its title is unknown
            tid = str(self.rng.randint(1, 299))
            title = f"Thread {tid}"
        post["thread_id"] = tid if self.ids is str else int(tid)
        eff[("DISC", title)] += 1
        self.emit("misp_json_conversation", {"Post": post}, eff)

    # --- topics that only count ---------------------------------------------------------

    def object(self) -> None:
        self.next_object += 1
        action = self.rng.choice(("add", "add", "edit", "soft-delete", "delete"))
        self.emit("misp_json_object",
                  {"Object": self.object_row(self.next_object, self.rng.randint(900, 999)),
                   "action": action})

    def object_reference(self) -> None:
        body = {"ObjectReference": {
            "id": self.ids(812), "uuid": "1b1b1b1b-0000-4000-8000-00000000001b",
            "timestamp": self.ids(BASE_TIME), "object_id": self.ids(self.next_object),
            "event_id": self.ids(1287), "source_uuid": "d4d4d4d4-0000-4000-8000-000000000004",
            "referenced_uuid": "a1a1a1a1-0000-4000-8000-000000000001",
            "referenced_id": self.ids(90211), "referenced_type": self.ids(0),
            "relationship_type": "related-to", "comment": "", "deleted": False},
            "action": "add"}
        self.emit("misp_json_object_reference", body)

    def organisation(self) -> None:
        org = self.org()
        self.emit("misp_json_organisation", {"Organisation": {
            "name": org[1], "description": "", "type": "Financial", "nationality": "Belgium",
            "sector": "Finance", "uuid": "3d3d3d3d-0000-4000-8000-00000000003d",
            "contacts": "", "local": "1", "restricted_to_domain": "[\"bank.example\"]",
            "landingpage": "", "created_by": "1", "date_created": "2024-10-14 09:12:01",
            "date_modified": "2024-10-14 09:12:01", "id": str(org[0])}})

    def warninglist(self) -> None:
        self.emit("misp_json_warninglist", {"Warninglist": {
            "id": "12", "name": "List of known public DNS resolvers", "type": "cidr",
            "version": "20241001", "enabled": True}, "action": "edit"})

    def workflow(self) -> None:
        body: Any = [{"module": "push-zmq", "data": {"Event": {"info": "wf", "id": "1"}}}] \
            if self.rng.random() < 0.5 else {"workflow": "enrich-event", "data": {"ok": True}}
        self.emit("misp_json_workflow", body)

    def keepalive(self) -> None:
        self.emit("misp_json_self", {"status": "I'm doing science and I'm still alive.",
                                     "uptime": self.rng.randint(10, 10**6)}, encoding="compact")

    def junk(self) -> None:
        """Unusable frames: counted as skipped, never stop the loop."""
        kind = self.rng.choice(("bad_json", "no_topic", "unknown_topic"))
        eff: Counter[tuple[str, str]] = Counter({("SKIPPED", kind): 1})
        frame = {"bad_json": b'misp_json_attribute {"Attribute": {"id": "1", "val',
                 "no_topic": b"garbage-without-separator",
                 "unknown_topic": b'misp_json_future {"Future": {}}'}[kind]
        self.out.frames.append(frame)
        self.out.effects.append(eff)
        self.out.topics.append("junk")


def build_workload(count: int, seed: int = SEED) -> Workload:
    """The pool of about ``count`` frames for ``seed``: same seed, same bytes."""
    return Generator(seed).build(count)


def big_event(n_attrs: int, seed: int = SEED) -> tuple[bytes, Counter[tuple[str, str]]]:
    """One ``misp_json`` frame of ``n_attrs`` attributes, and its effects."""
    gen = Generator(seed)
    eff: Counter[tuple[str, str]] = Counter()
    body = gen.event_body(n_attrs, eff)
    return b"misp_json " + orjson.dumps(body), eff
