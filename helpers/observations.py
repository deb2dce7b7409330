"""Typed observations: what a MISP message means, independent of its shape.

Each ``extract_*`` function takes one decoded message of its topic and yields
observations; the features (trendings, geo, contributions, users, live) only
ever see these.  Where MISP puts a field differs by topic and version
(reference §3, §6, §7); that knowledge lives here and nowhere else.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from helpers.message import as_dict, as_dicts, as_int, id_str, nonempty_str, path

# Event members that are large and not part of an event *header*.
_HEAVY_EVENT_KEYS = frozenset(
    ("Attribute", "Object", "ShadowAttribute", "RelatedEvent", "Galaxy", "EventReport",
     "CryptographicKey", "Sighting", "EventTag")
)
MAX_REMEMBERED_THREADS = 10000
GROUP_SIZE = 1000  # attributes per AttributesObs: the dispatcher may seal a batch between two


@dataclass(slots=True)
class AttributeObs:
    """One attribute seen in an add/edit (semantics §2)."""

    attribute: dict[str, Any]
    category: str
    type: str | None
    value: str | None
    is_object: bool
    org: str | None
    tags: list[dict[str, Any]]
    event: dict[str, Any] | None  # event header, for the live feed
    source: str  # "attribute", "event" or "sighting"
    action: str | None = None  # the message's action (misp_json has none)


@dataclass(slots=True)
class AttributesObs:
    """Consecutive attributes of one published event (same organisation, header and
    source): a feature may handle them together, which is the hot path of a big event.
    One that registers no handler for it gets each :class:`AttributeObs` in turn."""

    items: list[AttributeObs]


@dataclass(slots=True)
class EventObs:
    info: str | None
    org: str | None
    tags: list[dict[str, Any]]
    date: str | None  # Event.date, "YYYY-MM-DD"
    header: dict[str, Any]


@dataclass(slots=True)
class SightingObs:
    kind: int  # 0 sighting, 1 false positive
    org: str | None  # reporting organisation
    org_is_fallback: bool  # org is the event creator, the reporter's id was unknown
    category: str | None
    date_sighting: int | None


@dataclass(slots=True)
class TagObs:
    tag: dict[str, Any]


@dataclass(slots=True)
class LoginObs:
    org: str


@dataclass(slots=True)
class PostObs:
    org: str | None
    thread_id: str
    title: str | None
    paired: bool  # the title was learnt from this Post's Thread just now


@dataclass(slots=True)
class KeepaliveObs:
    uptime: Any
    status: Any


Observation = (AttributeObs | AttributesObs | EventObs | SightingObs | TagObs | LoginObs | PostObs
               | KeepaliveObs)


@dataclass
class InstanceState:
    """What the daemon remembers about one MISP feed between messages."""

    name: str
    orgs: dict[str, str] = field(default_factory=dict)  # organisation id -> name
    threads: OrderedDict[str, str] = field(default_factory=OrderedDict)  # thread id -> title
    pending_thread_title: str | None = None
    login_source: str = "audit"

    def remember_thread(self, thread_id: str, title: str) -> None:
        self.threads[thread_id] = title
        self.threads.move_to_end(thread_id)
        while len(self.threads) > MAX_REMEMBERED_THREADS:
            self.threads.popitem(last=False)


# --- Organisation directory (semantics §2) ------------------------------------

def learn_orgs(body: dict[str, Any], state: InstanceState) -> list[tuple[str, str]]:
    """Update the id -> name directory from every organisation object in ``body``.

    Returns the (id, name) pairs that are new or changed, for persistence.
    """
    changed: list[tuple[str, str]] = []
    event = body.get("Event")
    for org in (body.get("Orgc"), body.get("Org"), body.get("Organisation"),
                event.get("Orgc") if type(event) is dict else None,
                event.get("Org") if type(event) is dict else None):
        if type(org) is not dict:
            continue
        org_id, name = org.get("id"), org.get("name")
        # The hot path: a known organisation under the very same id and name.
        if type(org_id) is str and type(name) is str and state.orgs.get(org_id) == name:
            continue
        org_id, name = id_str(org_id), nonempty_str(name)
        if org_id and name and state.orgs.get(org_id) != name:
            state.orgs[org_id] = name
            changed.append((org_id, name))
    return changed


# --- Helpers --------------------------------------------------------------------


def _action(body: dict[str, Any]) -> Any:
    return body.get("action")


def event_header(event: dict[str, Any]) -> dict[str, Any]:
    """The event without its attribute, object... lists: the event itself when it has
    none (as in attribute messages); nothing downstream modifies it."""
    if _HEAVY_EVENT_KEYS.isdisjoint(event):
        return event
    return {k: v for k, v in event.items() if k not in _HEAVY_EVENT_KEYS}


def _attribute_obs(
    attr: dict[str, Any], org: str | None, event: dict[str, Any] | None, source: str,
    action: str | None = None,
) -> AttributeObs | None:
    category = attr.get("category")
    if type(category) is not str:
        return None  # semantics §1: not an observation at all
    atype, value, object_id, tags = (attr.get("type"), attr.get("value"), attr.get("object_id"),
                                     attr.get("Tag"))
    return AttributeObs(  # positional: this runs for every attribute of every event
        attr,
        category,
        atype if type(atype) is str else None,  # type
        value if type(value) is str else None,  # value
        object_id != "0" and bool(as_int(object_id, 0)),  # is_object; "0": the usual case
        org,
        as_dicts(tags) if tags else [],  # tags
        event,
        source,
        action,
    )


# --- Extractors, one per topic ----------------------------------------------------


def extract_published_event(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json``: a published (or pushed) event with all its attributes."""
    event = body.get("Event")
    if not isinstance(event, dict):
        return
    org = nonempty_str(path(event, "Orgc", "name"))
    header = event_header(event)
    info = event.get("info")
    yield EventObs(info if isinstance(info, str) else None, org, as_dicts(event.get("Tag")),
                   _str_or_none(event.get("date")), header)
    group: list[AttributeObs] = []
    for attrs in (event.get("Attribute"),
                  *(obj.get("Attribute") for obj in as_dicts(event.get("Object")))):
        for attr in as_dicts(attrs):
            obs = _attribute_obs(attr, org, header, "event")
            if obs:
                group.append(obs)
                if len(group) == GROUP_SIZE:
                    yield AttributesObs(group)
                    group = []
    if group:
        yield AttributesObs(group)


def extract_event(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json_event`` add/edit: the event header, Orgc and EventTag at top level."""
    event = body.get("Event")
    if _action(body) not in ("add", "edit") or not isinstance(event, dict):
        return
    tags = [t for t in (as_dict(et.get("Tag")) for et in as_dicts(body.get("EventTag"))) if t]
    info = event.get("info")
    yield EventObs(info if isinstance(info, str) else None,
                   nonempty_str(path(body, "Orgc", "name")), tags,
                   _str_or_none(event.get("date")), event_header(event))


def extract_attribute(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json_attribute`` add/edit."""
    attr = body.get("Attribute")
    if _action(body) not in ("add", "edit") or not isinstance(attr, dict):
        return
    event = body.get("Event")
    header = event_header(event) if isinstance(event, dict) else None
    obs = _attribute_obs(attr, nonempty_str(path(event, "Orgc", "name")), header, "attribute",
                         _action(body))
    if obs:
        yield obs


def extract_sighting(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json_sighting`` add of type 0 or 1, credited to the reporting org."""
    sighting = body.get("Sighting")
    if _action(body) != "add" or not isinstance(sighting, dict):
        return
    kind = as_int(sighting.get("type"))
    if kind not in (0, 1):
        return  # 2 is an expiration: counts nothing
    reporter_id = id_str(sighting.get("org_id"))
    org = state.orgs.get(reporter_id) if reporter_id else None
    fallback = org is None
    if fallback:
        org = nonempty_str(path(sighting, "Event", "Orgc", "name"))
    attr = as_dict(sighting.get("Attribute"))
    category = attr.get("category")
    yield SightingObs(kind, org, fallback, category if isinstance(category, str) else None,
                      as_int(sighting.get("date_sighting")))
    if attr:
        event = sighting.get("Event")
        obs = _attribute_obs(attr, org, event_header(event) if isinstance(event, dict) else None,
                             "sighting")
        if obs:
            yield obs


def extract_tag(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json_tag`` attached to an event or an attribute."""
    tag = body.get("Tag")
    if _action(body) in ("attached to event", "attached to attribute") and isinstance(tag, dict):
        yield TagObs(tag)


def extract_audit(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json_audit`` legacy ``Log`` entries with action ``login``."""
    if state.login_source != "audit":
        return
    log = body.get("Log")
    if isinstance(log, dict) and log.get("action") == "login":
        org = nonempty_str(log.get("org"))
        if org:
            yield LoginObs(org)


def extract_user(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json_user`` login, when the configuration selects it as the login source."""
    if state.login_source != "user" or _action(body) != "login":
        return
    org = nonempty_str(path(body, "Organisation", "name"))
    if org:
        yield LoginObs(org)


def extract_conversation(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json_conversation``: a new ``Thread`` (title, no id) is paired with
    the next ``Post`` of the same instance, which carries the thread id."""
    thread = body.get("Thread")
    if isinstance(thread, dict):
        state.pending_thread_title = nonempty_str(thread.get("title"))
    post = body.get("Post")
    if not isinstance(post, dict):
        return
    # The Post right after a Thread is its first post, whatever it carries: a title
    # left pending would otherwise be given to some later, unrelated thread.
    title, state.pending_thread_title = state.pending_thread_title, None
    thread_id = id_str(post.get("thread_id"))
    if not thread_id:
        return
    paired = title is not None
    if title is not None:
        state.remember_thread(thread_id, title)
    else:
        title = state.threads.get(thread_id)
    yield PostObs(nonempty_str(post.get("org_name")), thread_id, title, paired)


def extract_keepalive(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """``misp_json_self``: MISP's keepalive, sent only when its queue is idle."""
    yield KeepaliveObs(body.get("uptime"), body.get("status"))


def extract_nothing(body: dict[str, Any], state: InstanceState) -> Iterator[Observation]:
    """Topics that update nothing but counters (and the organisation directory)."""
    return iter(())


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
