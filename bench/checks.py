"""The daemon's Redis totals against what the workload implies.

Speed must never come from skipping work: after every run the benchmark reads
back the keys of the founding document and compares them, member by member,
with the effects the workload generator recorded.  Per-day keys are summed over
all their days, so a run that crosses midnight still compares.
"""

from __future__ import annotations

from collections import Counter

import redis

from bench.procs import STATUS_KEY

# effect kind -> key pattern (a sorted set per day)
ZSETS = {
    "CATEGS": "TRENDINGS_CATEGS:*",
    "EVENTS": "TRENDINGS_EVENTS:*",
    "TAGS": "TRENDINGS_TAGS:*",
    "DISC": "TRENDINGS_DISC:*",
    "LOGIN": "LOGIN_ORG:*",
}
SIGHT_KINDS = ("sightings", "false_positive")


def zset_totals(client: redis.Redis, pattern: str) -> Counter[str]:
    """Member -> score, summed over every key matching ``pattern``."""
    out: Counter[str] = Counter()
    for key in client.scan_iter(match=pattern, count=1000):
        for member, score in client.zrange(key, 0, -1, withscores=True):
            out[member.decode()] += int(score)
    return out


def of_kind(expected: Counter[tuple[str, str]], kind: str) -> Counter[str]:
    return Counter({member: n for (k, member), n in expected.items() if k == kind})


def diff(name: str, want: Counter[str], got: Counter[str]) -> list[str]:
    """Empty when equal; else the total and up to five differing members."""
    if want == got:
        return []
    bad = [m for m in set(want) | set(got) if want[m] != got[m]]
    lines = [f"{name}: expected total {sum(want.values())}, Redis has {sum(got.values())}"
             f" ({len(bad)} members differ)"]
    lines += [f"  {m!r}: expected {want[m]}, got {got[m]}" for m in sorted(bad)[:5]]
    return lines


def check_totals(client: redis.Redis, expected: Counter[tuple[str, str]], sent: int) -> list[str]:
    """Every mismatch between Redis and the workload, as lines of text."""
    errors: list[str] = []
    for kind, pattern in ZSETS.items():
        errors += diff(pattern, of_kind(expected, kind), zset_totals(client, pattern))
    categs = sum(zset_totals(client, ZSETS["CATEGS"]).values())
    if categs != expected[("OBS", "")]:
        errors.append(f"sum of TRENDINGS_CATEGS = {categs}, attribute observations = "
                      f"{expected[('OBS', '')]}")
    for kind in SIGHT_KINDS:
        got = sum(int(client.get(k) or 0)
                  for k in client.scan_iter(match=f"TRENDINGS_SIGHT_{kind}:*"))
        if got != expected[("SIGHT", kind)]:
            errors.append(f"TRENDINGS_SIGHT_{kind}: expected {expected[('SIGHT', kind)]}, "
                          f"got {got}")
    errors += check_status(client, expected, sent)
    return errors


def check_status(client: redis.Redis, expected: Counter[tuple[str, str]], sent: int) -> list[str]:
    status = {k.decode(): int(float(v)) for k, v in client.hgetall(STATUS_KEY).items()
              if k.decode() in ("received", "processed", "skipped", "errors")}
    skipped = sum(of_kind(expected, "SKIPPED").values())
    want = {"received": sent, "processed": sent - skipped, "skipped": skipped, "errors": 0}
    return [f"{STATUS_KEY} {name}: expected {value}, got {status.get(name)}"
            for name, value in want.items() if status.get(name) != value]
