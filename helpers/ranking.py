"""The ranking file: points, requirements, ranks, badges and trophies (semantics §5).

``config/ranking.yaml`` -> frozen dataclasses, validated like the main
configuration (an unknown key or a bad value names its dotted path).  Every
default is the reference dashboard's value, so an empty file behaves like it.

The requirement *rules* (which kind of contribution, which counter, which TTL)
are the specification's table and live in :data:`RULES`; the file sets their
thresholds, windows and texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from helpers.config import ConfigError, build_dataclass

DAY = 86400

# Contribution kinds, as the procedure receives them.
ATTRIBUTE, EVENT, SIGHTING, DISCUSSION = "a", "e", "s", "d"

# Counter conditions of the requirement table.
NONE, MONTH_AT_LEAST_1, WEEK_AT_LEAST_1, WEEK_HEAVY = 0, 1, 2, 3
# TTL classes of the requirement table.
YEAR, RECENT, REGULARLY = "year", "recent", "regularly"


@dataclass(frozen=True)
class Rule:
    """One row of the requirement table (semantics §5)."""

    req: int
    kind: str
    counter: int = NONE  # condition on the kind's week/month counter
    needs_flag: bool = False  # recent (sightings) or tagged (events)
    ttl: str = YEAR


# Requirements 5 and 12 are about proposals, which MISP does not publish on
# ZeroMQ; 15 and 16 are given by an administrator.
RULES: tuple[Rule, ...] = (
    Rule(1, SIGHTING),
    Rule(2, ATTRIBUTE),
    Rule(3, DISCUSSION),
    Rule(4, SIGHTING, needs_flag=True, ttl=RECENT),
    Rule(6, EVENT),
    Rule(7, EVENT, MONTH_AT_LEAST_1, ttl=RECENT),
    Rule(8, EVENT, WEEK_AT_LEAST_1, ttl=REGULARLY),
    Rule(9, EVENT, needs_flag=True, ttl=REGULARLY),
    Rule(10, SIGHTING, WEEK_HEAVY, ttl=REGULARLY),
    Rule(11, ATTRIBUTE, WEEK_HEAVY, ttl=REGULARLY),
    Rule(13, EVENT, WEEK_HEAVY, ttl=REGULARLY),
    Rule(14, EVENT, WEEK_HEAVY, needs_flag=True, ttl=REGULARLY),
)
MANUAL_REQUIREMENTS = (15, 16)
LEVELS = 16  # requirements 1..16, one rank title each


@dataclass(frozen=True)
class Points:
    default: int = 1
    categories: dict[str, int] = field(default_factory=lambda: {
        "payload_delivery": 1, "artifacts_dropped": 1, "network_activity": 1})
    sighting_multiplier: int = 2
    event: int = 1
    discussion: int = 1


@dataclass(frozen=True)
class Requirements:
    points: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
                               16384, 0, 0)
    recent_days: int = 31
    regularly_days: int = 7
    heavily_count: int = 10
    year_days: int = 365
    week_days: int = 7  # window of the *_WEEK_COUNT counters
    month_days: int = 31  # window of EVENT_MONTH_COUNT
    texts: tuple[str, ...] = (
        "Contributing via sighting at least once a year",
        "Contributing via attributes or objects to events at least once a year",
        "Contributing via proposals or discussions at least once a year",
        "Contributing via sighting to recent events",
        "Contributing proposals to recent events",
        "Contributing by creating new events at least once a year",
        "Contributing by creating new events at least once a month",
        "Regularly creating events",
        "Regularly creating events with classification",
        "Heavily contributing via sighting to recent events",
        "Heavily adding attributes or objects to recent events",
        "Heavily contributing proposals to recent events",
        "Heavily posting events",
        "Heavily posting events with classification",
        "Heavily contributing quality content (delivered by instance administrators)",
        "Honorable contributor (delivered by instance administrators)",
    )


@dataclass(frozen=True)
class Trophies:
    # titles[0] is "no trophy"; the last one is the top organisation's.
    titles: tuple[str, ...] = ("No trophy", "Novice", "Beginner", "Intermediate", "Competent",
                               "Experienced", "Talented", "Skilled", "Advanced", "Expert",
                               "Pro", "Master", "Grand Master")
    # Percent of the organisations of a category in each rank below the top one, best first.
    mapping: tuple[int, ...] = (2, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10)
    categories: tuple[str, ...] = (
        "internal_reference", "targeting_data", "antivirus_detection", "payload_delivery",
        "artifacts_dropped", "payload_installation", "persistence_mechanism",
        "network_activity", "payload_type", "attribution", "external_analysis",
        "financial_fraud", "support_tool", "social_network", "person", "other")


@dataclass(frozen=True)
class Ranking:
    points: Points = field(default_factory=Points)
    requirements: Requirements = field(default_factory=Requirements)
    rank_titles: tuple[str, ...] = (
        "Ensign", "Junior Lieutenant", "Second Lieutenant", "Lieutenant", "Senior Lieutenant",
        "Captain", "Senior Captain", "Major", "Lieutenant Colonel", "Colonel",
        "Senior Colonel", "Major General", "Lieutenant General", "General", "Marshal",
        "Grand General")
    badges: tuple[str, ...] = (
        "Has made at least one pull request on the MISP project",
        "Is a donator for the MISP project",
        "Has published content upvoted by the community",
        "Has published valuable content for the community",
        "Has published loads of valuable content for the community")
    trophies: Trophies = field(default_factory=Trophies)

    # --- derived values -------------------------------------------------------------

    def category_points(self, categ: str) -> int:
        """Points of one contribution in the normalised category ``categ``."""
        return self.points.categories.get(categ, self.points.default)

    def ttl(self, rule: Rule) -> int:
        r = self.requirements
        days = {YEAR: r.year_days, RECENT: r.recent_days, REGULARLY: r.regularly_days}
        return days[rule.ttl] * DAY

    @property
    def trophy_top(self) -> int:
        """The best trophy rank (held by the first organisation of a category)."""
        return len(self.trophies.titles) - 1

    @property
    def trophy_cumulative(self) -> tuple[int, ...]:
        """Upper percentile bound of each rank below the top, best first (ends at 100)."""
        out, total = [], 0
        for pct in self.trophies.mapping:
            total += pct
            out.append(total)
        return tuple(out)

    def trophy_rank(self, pos: int | None, card: int) -> int:
        """Trophy rank of the organisation at 0-based position ``pos`` (best first) among
        ``card`` organisations; 0 when it is not in the category.

        The top organisation gets the best rank; the others fall in percentile buckets of
        ``trophies.mapping``.  Integer arithmetic: ``pos/card*100 <= bound`` is computed as
        ``pos*100 <= bound*card``, so a boundary never depends on float rounding.
        """
        if pos is None or card <= 0:
            return 0
        if pos == 0:
            return self.trophy_top
        for j, bound in enumerate(self.trophy_cumulative, 1):
            if pos * 100 <= bound * card:
                return self.trophy_top - j
        return self.trophy_top - len(self.trophies.mapping)


def normalise_category(category: str) -> str:
    """Semantics §1: lower-case, spaces replaced by ``_``."""
    return category.lower().replace(" ", "_")


# --- loading and validation ------------------------------------------------------------


def load_ranking(path: str | Path) -> Ranking:
    """Read and validate the ranking file at ``path``."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read ranking file {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    try:
        ranking = build_dataclass(Ranking, data, "")
        check_ranking(ranking)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return ranking


def check_ranking(rk: Ranking) -> None:
    """Semantic checks: counts that must match, values that must be positive."""
    _check_points(rk.points)
    req = rk.requirements
    _check_count("requirements.points", req.points, LEVELS)
    _check_count("requirements.texts", req.texts, LEVELS)
    _check_count("rank_titles", rk.rank_titles, LEVELS)
    for i, pts in enumerate(req.points):
        _non_negative(f"requirements.points[{i}]", pts)
    for name in ("recent_days", "regularly_days", "year_days", "week_days", "month_days"):
        if getattr(req, name) <= 0:
            raise ConfigError(f"requirements.{name}: must be positive")
    _non_negative("requirements.heavily_count", req.heavily_count)
    if not rk.badges:
        raise ConfigError("badges: expected at least one badge")
    _check_trophies(rk.trophies)


def _check_points(points: Points) -> None:
    for name in ("default", "sighting_multiplier", "event", "discussion"):
        _non_negative(f"points.{name}", getattr(points, name))
    for categ, pts in points.categories.items():
        if categ != normalise_category(categ):
            raise ConfigError(f"points.categories.{categ}: write the category normalised "
                              f"({normalise_category(categ)!r})")
        _non_negative(f"points.categories.{categ}", pts)


def _check_trophies(tr: Trophies) -> None:
    if not tr.mapping or any(pct <= 0 for pct in tr.mapping) or sum(tr.mapping) != 100:
        raise ConfigError("trophies.mapping: expected positive percentages that add up to 100")
    if len(tr.titles) != len(tr.mapping) + 2:
        raise ConfigError(f"trophies.titles: expected {len(tr.mapping) + 2} titles (no trophy, "
                          f"one per mapping entry, and the top one), got {len(tr.titles)}")
    for i, categ in enumerate(tr.categories):
        if categ != normalise_category(categ):
            raise ConfigError(f"trophies.categories[{i}]: write the category normalised "
                              f"({normalise_category(categ)!r})")


def _check_count(path: str, values: tuple[Any, ...], n: int) -> None:
    if len(values) != n:
        raise ConfigError(f"{path}: expected {n} entries, got {len(values)}")


def _non_negative(path: str, value: int) -> None:
    if value < 0:
        raise ConfigError(f"{path}: must not be negative")
