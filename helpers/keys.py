"""Every Redis key and pub/sub channel name the daemon writes, in one place.

This module is the founding document's table as code: features never build a
key name themselves, they call one of these functions.  Date formats live here
too, because a key and its date format are one contract.
"""

from __future__ import annotations

DAY_FORMAT = "%Y%m%d"
HOUR_FORMAT = "%Y%m%d%H"

# --- Geolocation (geo_helper) ---------------------------------------------


def geo_coord(day: str) -> str:
    return f"GEO_COORD:{day}"


def geo_country(day: str) -> str:
    return f"GEO_COUNTRY:{day}"


def geo_rad(day: str) -> str:
    return f"GEO_RAD:{day}"


# --- Contribution (contributor_helper) -------------------------------------

CONTRIB_ALL_ORG = "CONTRIB_ALL_ORG"


def contrib_day(day: str) -> str:
    return f"CONTRIB_DAY:{day}"


def contrib_categ(day: str, categ: str) -> str:
    return f"CONTRIB_CATEG:{day}:{categ}"


def contrib_last(day: str) -> str:
    return f"CONTRIB_LAST:{day}"


def contrib_org(org: str, req: str) -> str:
    """``CONTRIB_ORG:org:req`` where req is ``points``, ``CONTRIB_REQ_i``,
    ``ATTR_WEEK_COUNT`` … or ``BADGE_i``."""
    return f"CONTRIB_ORG:{org}:{req}"


# The week/month counters of ``CONTRIB_ORG:org:<counter>`` (windows in the ranking file).
ATTR_WEEK_COUNT = "ATTR_WEEK_COUNT"
PROP_WEEK_COUNT = "PROP_WEEK_COUNT"  # proposals: MISP does not publish them on ZeroMQ
SIGHT_WEEK_COUNT = "SIGHT_WEEK_COUNT"
EVENT_WEEK_COUNT = "EVENT_WEEK_COUNT"
EVENT_MONTH_COUNT = "EVENT_MONTH_COUNT"


def contrib_points(org: str) -> str:
    """``CONTRIB_ORG:org:points``: the organisation's total, never expires."""
    return contrib_org(org, "points")


def contrib_req(org: str, i: int) -> str:
    """``CONTRIB_ORG:org:CONTRIB_REQ_i``: requirement ``i`` held (with its TTL)."""
    return contrib_org(org, f"CONTRIB_REQ_{i}")


def contrib_badge(org: str, n: int) -> str:
    """``CONTRIB_ORG:org:BADGE_n``: honour badge ``n``, given by an administrator."""
    return contrib_org(org, f"BADGE_{n}")


def contrib_trophy(categ: str) -> str:
    return f"CONTRIB_TROPHY:{categ}"


def contrib_last_awards(day: str) -> str:
    return f"CONTRIB_LAST_AWARDS:{day}"


# --- Users (users_helper) ---------------------------------------------------


def login_timestampset(date_hour: str) -> str:
    return f"LOGIN_TIMESTAMPSET:{date_hour}"


def login_timestamp(day: str) -> str:
    return f"LOGIN_TIMESTAMP:{day}"


def login_org(day: str) -> str:
    return f"LOGIN_ORG:{day}"


# --- Trendings (trendings_helper) -------------------------------------------

TRENDING_KINDS = ("EVENTS", "CATEGS", "TAGS", "DISC")
SIGHTING_KINDS = ("sightings", "false_positive")


def trendings(kind: str, day: str) -> str:
    """``TRENDINGS_<kind>:date`` with kind one of :data:`TRENDING_KINDS`."""
    return f"TRENDINGS_{kind}:{day}"


def trendings_sight(kind: str, day: str) -> str:
    """``TRENDINGS_SIGHT_<kind>:date`` with kind one of :data:`SIGHTING_KINDS`."""
    return f"TRENDINGS_SIGHT_{kind}:{day}"


# --- Live feed (live_helper) ------------------------------------------------


def live_cache(name: str) -> str:
    return f"TEMP_CACHE_LIVE:{name}"


# --- The daemon's own keys (semantics §8) -----------------------------------

INGEST_PREFIX = "INGEST:"
DEAD_LETTER = "INGEST:dead_letter"


def ingest_status(instance: str) -> str:
    return f"INGEST:status:{instance}"


def ingest_orgs(instance: str) -> str:
    """Per-instance directory of organisation id -> name (hash)."""
    return f"INGEST:orgs:{instance}"


def ingest_threads(instance: str) -> str:
    """Per-instance discussion thread id -> title (hash)."""
    return f"INGEST:threads:{instance}"


def ingest_applied(writer_id: str) -> str:
    """Highest batch sequence number applied by one writer (exactly-once marker)."""
    return f"INGEST:applied:{writer_id}"


# Keys whose name ends in a day (or day-hour) and so may get a retention TTL.
PER_DAY_PREFIXES = (
    "GEO_COORD:",
    "GEO_COUNTRY:",
    "GEO_RAD:",
    "CONTRIB_DAY:",
    "CONTRIB_CATEG:",
    "CONTRIB_LAST:",
    "CONTRIB_LAST_AWARDS:",
    "LOGIN_TIMESTAMP:",
    "LOGIN_ORG:",
    "TRENDINGS_",
)
