"""``zmq_subscriber.py admin``: honour badges, manual requirements, an organisation's standing.

    admin give-badge ORG N          give honour badge N (publishes the award)
    admin take-badge ORG N
    admin give-requirement ORG I    give requirement 15 or 16 (publishes the award)
    admin take-requirement ORG I
    admin show ORG                  points, rank, requirements, badges, trophies

Giving is atomic and idempotent: the key is set only if absent, and only then is
the award recorded in ``CONTRIB_LAST_AWARDS:date`` and published, exactly like an
award the feed earns.  Badges and manual requirements never expire.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import redis

from helpers import keys
from helpers.clock import DayClock
from helpers.config import Config
from helpers.contributor_helper import LAST_TTL, as_json
from helpers.ranking import LEVELS, MANUAL_REQUIREMENTS, Ranking, load_ranking
from helpers.writer import describe_redis_error, make_client, text

ADMIN_INSTANCE = "admin"  # zmqName of the awards this command publishes

# KEYS: the badge/requirement key, the day's awards key.  ARGV: award member, now,
# awards channel, message to publish, awards TTL.
_GIVE = """
if redis.call('SET', KEYS[1], 1, 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 1
end
return 0
"""


def add_parser(sub: Any) -> None:
    """Add the ``admin`` sub-command to the command line's sub-parsers."""
    adm = sub.add_parser("admin", help="give or take badges and manual requirements; "
                         "show an organisation's points, rank, badges and trophies")
    acts = adm.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    for name, what in (("give-badge", "honour badge number"), ("take-badge", "honour badge "
                       "number"), ("give-requirement", "requirement (15 or 16)"),
                       ("take-requirement", "requirement (1-16)")):
        act = acts.add_parser(name, help=f"{name.split('-')[0]} an organisation's {what}")
        act.add_argument("org", help="organisation name, as MISP sends it")
        act.add_argument("number", type=int, help=what)
    show = acts.add_parser("show", help="an organisation's points, rank, requirements, badges "
                           "and trophies")
    show.add_argument("org", help="organisation name, as MISP sends it")


class Admin:
    """The operations behind the command, on one Redis client (tests use it directly)."""

    def __init__(self, client: redis.Redis, ranking: Ranking, cfg: Config) -> None:
        self.client = client
        self.ranking = ranking
        self.channel = cfg.channels.last_awards
        self.clock = DayClock(cfg.timezone)
        self._give = client.register_script(_GIVE)

    def _award(self, key: str, org: str, award: list[Any], now: float) -> bool:
        member = as_json({"org": org, "award": award, "epoch": int(now)})
        message = as_json({"name": "CONTRIBUTION", "log": member, "zmqName": ADMIN_INSTANCE})
        day, _ = self.clock.keys(now)
        return bool(self._give(keys=[key, keys.contrib_last_awards(day)],
                               args=[member, int(now), self.channel, message, LAST_TTL]))

    def give_badge(self, org: str, n: int, now: float) -> bool:
        """Give badge ``n``; True if the organisation did not hold it (award published)."""
        self._check_badge(n)
        return self._award(keys.contrib_badge(org, n), org, ["badge", n], now)

    def take_badge(self, org: str, n: int) -> bool:
        self._check_badge(n)
        return bool(self.client.delete(keys.contrib_badge(org, n)))

    def give_requirement(self, org: str, i: int, now: float) -> bool:
        """Give manual requirement ``i`` (15 or 16); True if newly held (award published)."""
        if i not in MANUAL_REQUIREMENTS:
            raise ValueError(f"only requirements {MANUAL_REQUIREMENTS} are given by hand; "
                             "the others are earned from the feed")
        return self._award(keys.contrib_req(org, i), org, ["contribution_status", i], now)

    def take_requirement(self, org: str, i: int) -> bool:
        if not 1 <= i <= LEVELS:
            raise ValueError(f"requirements are numbered 1 to {LEVELS}")
        return bool(self.client.delete(keys.contrib_req(org, i)))

    def _check_badge(self, n: int) -> None:
        if not 1 <= n <= len(self.ranking.badges):
            raise ValueError(f"badges are numbered 1 to {len(self.ranking.badges)}")

    def show(self, org: str) -> list[str]:
        """An organisation's standing, as lines of text."""
        rk = self.ranking
        pipe = self.client.pipeline(transaction=False)
        pipe.get(keys.contrib_points(org))
        for i in range(1, LEVELS + 1):
            pipe.ttl(keys.contrib_req(org, i))
        for n in range(1, len(rk.badges) + 1):
            pipe.exists(keys.contrib_badge(org, n))
        replies = pipe.execute()
        req_ttls, badges = replies[1:LEVELS + 1], replies[LEVELS + 1:]
        held = [i for i, ttl in enumerate(req_ttls, 1) if ttl != -2]
        rank = len(held)
        lines = [f"organisation: {org}", f"points: {int(replies[0] or 0)}",
                 f"rank: {rank} ({rk.rank_titles[rank - 1] if rank else 'none'})",
                 "requirements:"]
        for i, ttl in enumerate(req_ttls, 1):
            mark = "x" if ttl != -2 else " "
            until = f" (expires in {_duration(ttl)})" if ttl >= 0 else ""
            lines.append(f"  [{mark}] {i:2d} {rk.requirements.texts[i - 1]}{until}")
        lines.append("badges:")
        lines += [f"  [{'x' if has else ' '}] {n} {rk.badges[n - 1]}"
                  for n, has in enumerate(badges, 1)]
        lines.append("trophies:")
        lines += self._trophy_lines(org) or ["  (none)"]
        return lines

    def trophies(self, org: str) -> dict[str, int]:
        """Trophy rank of ``org`` in every category it contributed to."""
        prefix = keys.contrib_trophy("")
        out = {}
        for raw in self.client.scan_iter(match=keys.contrib_trophy("*"), count=1000):
            key = text(raw)
            pos = self.client.zrevrank(key, org)
            if isinstance(pos, int):
                out[key[len(prefix):]] = self.ranking.trophy_rank(pos, self.client.zcard(key))
        return dict(sorted(out.items()))

    def _trophy_lines(self, org: str) -> list[str]:
        titles = self.ranking.trophies.titles
        return [f"  {categ}: {rank} ({titles[rank]})" for categ, rank in self.trophies(org).items()]


def _duration(seconds: int) -> str:
    return f"{seconds // 86400} d" if seconds >= 86400 else f"{seconds // 3600} h"


def run_admin(cfg: Config, args: argparse.Namespace) -> int:
    """Run one ``admin`` action; returns the exit code."""
    admin = Admin(make_client(cfg.redis), load_ranking(cfg.resolve(cfg.ranking)), cfg)
    action, org = args.admin_command, args.org
    try:
        if action == "show":
            print("\n".join(admin.show(org)))
            return 0
        n, now = args.number, time.time()
        done = {"give-badge": lambda: admin.give_badge(org, n, now),
                "take-badge": lambda: admin.take_badge(org, n),
                "give-requirement": lambda: admin.give_requirement(org, n, now),
                "take-requirement": lambda: admin.take_requirement(org, n)}[action]()
    except ValueError as exc:
        print(f"admin: {exc}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(f"admin: Redis error: {describe_redis_error(exc)}", file=sys.stderr)
        return 1
    what = "badge" if "badge" in action else "requirement"
    verb = "given" if action.startswith("give") else "taken"
    print(f"{org}: {what} {n} {verb}" if done else f"{org}: nothing to do ({what} {n} was "
          f"{'already held' if verb == 'given' else 'not held'})")
    return 0
