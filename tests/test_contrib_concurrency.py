"""Two daemons (two processes, two writers) on one Redis write what one daemon writes.

The input is designed so that the final state does not depend on how the two feeds
interleave, while both feeds credit the *same* organisations in the *same* keys at the
same time: totals, week counters, requirements crossed by whichever contribution comes
first, trophies and awards that must be given exactly once.  (Where two organisations
compete for a trophy rank, the awards legitimately depend on the order of arrival, even
with one daemon; the input keeps one organisation per category.)  Receive times are
excluded from the comparison: which contribution of the two feeds came last, or crossed
a threshold, is a race, and only the timestamps tell.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from helpers.capture import encode_line
from helpers.redis_server import RedisServer
from tests.contrib_support import (
    NOW,
    attribute,
    event,
    organisation,
    post,
    published_event,
    sighting,
)

ROOT = Path(__file__).resolve().parent.parent
SEED = {"CONTRIB_ORG:Gamma:points": 120, "CONTRIB_ORG:Delta:points": 5}


def _feed(n_alpha: int, n_beta: int, n_gamma: int, n_delta: int,
          epsilon: list[str]) -> list[tuple[str, dict[str, Any]]]:
    frames: list[tuple[str, dict[str, Any]]] = [("misp_json_organisation",
                                                 organisation("5", "Beta"))]
    for i in range(max(n_alpha, n_beta, n_gamma, n_delta)):
        if i < n_alpha:
            frames.append(("misp_json_attribute", attribute("Alpha", "Network activity")))
        if i < n_beta:
            frames.append(("misp_json_sighting", sighting("5", "Creator", "Payload delivery")))
        if i < n_gamma:
            frames.append(("misp_json_event", event("Gamma", tags=True)))
        if i < n_delta:
            frames.append(("misp_json_conversation", post("Delta")))
        if i == 2:
            frames.append(("misp_json", published_event("Epsilon", epsilon, ["Person"] * 3)))
    return frames


def _write_capture(path: Path, instance: str, frames: list[tuple[str, dict[str, Any]]],
                   offset: float) -> list[bytes]:
    lines = [encode_line(instance, NOW + offset + i * 0.01, f"{t} {json.dumps(b)}".encode())
             for i, (t, b) in enumerate(frames)]
    path.write_bytes(b"".join(lines))
    return lines


def _replay(cfg: Path, capture: Path, start: float) -> subprocess.Popen[bytes]:
    """A daemon process replaying ``capture`` one message per batch, from ``start`` on
    (a common start time, so that two of them really write at the same time)."""
    code = ("import sys, time; from helpers.config import load_config; "
            "from helpers.daemon import replay_capture; cfg = load_config(sys.argv[1]); "
            "time.sleep(max(0, float(sys.argv[3]) - time.time())); "
            "replay_capture(cfg, sys.argv[2], progress=False, batch_messages=1)")
    return subprocess.Popen([sys.executable, "-c", code, str(cfg), str(capture), str(start)],
                            cwd=ROOT)


def _dump(client: redis.Redis) -> dict[str, Any]:
    """Every key but the daemon's own and the live history (arrival order by design),
    with receive times left out."""
    out: dict[str, Any] = {}
    for raw in sorted(client.keys("*")):
        key = raw.decode()
        if key.startswith(("INGEST:", "TEMP_CACHE_LIVE:")):
            continue
        kind = client.type(key).decode()
        value: Any
        if key.startswith("CONTRIB_LAST_AWARDS:"):
            value = sorted(_without_epoch(m) for m in client.zrange(key, 0, -1))
        elif key.startswith("CONTRIB_LAST:"):
            value = sorted(client.zrange(key, 0, -1))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "hash":
            value = sorted(client.hgetall(key).items())
        else:
            value = client.get(key) if kind == "string" else kind
        out[key] = (value, client.ttl(key) > 0)
    return out


def _without_epoch(member: bytes | str) -> str:
    award = json.loads(member)
    del award["epoch"]
    return json.dumps(award)


def test_two_daemons_write_what_one_daemon_writes(tmp_path: Path,
                                                  redis_server: RedisServer) -> None:
    client = redis_server.client()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"redis:\n  url: {redis_server.url}\ntimezone: UTC\n")
    a = _write_capture(tmp_path / "a.jsonl", "mispA", _feed(200, 60, 5, 3, ["Other"] * 40), 0)
    b = _write_capture(tmp_path / "b.jsonl", "mispB", _feed(150, 50, 6, 4, ["Other"] * 30), 0.005)
    both = tmp_path / "both.jsonl"
    both.write_bytes(b"".join(sorted(a + b, key=lambda line: json.loads(line)["received"])))

    dumps, published = [], []
    for captures in ([both], [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]):
        client.flushall()
        client.mset(SEED)
        sub = client.pubsub()
        sub.subscribe("lastAwards")
        sub.get_message(timeout=1)
        start = time.time() + 2.0
        procs = [_replay(cfg, c, start) for c in captures]
        assert [p.wait(timeout=60) for p in procs] == [0] * len(procs)
        published.append(sorted(_without_epoch(json.loads(m)["log"]) for m in _drain(sub)))
        sub.close()
        dumps.append(_dump(client))

    one, two = dumps
    assert one == two
    awarded = one["CONTRIB_LAST_AWARDS:20260101"][0]
    assert published == [awarded, awarded]  # each award published exactly once
    # What the input implies, so that the comparison is not between two empty dumps:
    assert one["CONTRIB_ORG:Alpha:points"][0] == b"350"
    assert one["CONTRIB_ORG:Beta:points"][0] == b"220"  # 110 sightings x 1 x 2
    assert one["CONTRIB_ORG:Gamma:points"][0] == b"131"
    assert one["CONTRIB_ORG:Epsilon:points"][0] == b"78"  # 2 events + 70 + 6 attributes
    assert awarded == sorted(json.dumps(a) for a in [
        {"org": "Alpha", "award": ["contribution_status", 2]},
        {"org": "Alpha", "award": ["trophy", ["network_activity", 12]]},
        {"org": "Beta", "award": ["contribution_status", 1]},
        {"org": "Beta", "award": ["contribution_status", 4]},
        {"org": "Beta", "award": ["trophy", ["payload_delivery", 12]]},
        {"org": "Delta", "award": ["contribution_status", 3]},
        {"org": "Epsilon", "award": ["contribution_status", 2]},
        {"org": "Epsilon", "award": ["trophy", ["other", 12]]},
        {"org": "Epsilon", "award": ["trophy", ["person", 12]]},
        {"org": "Gamma", "award": ["contribution_status", 6]},
        {"org": "Gamma", "award": ["contribution_status", 7]},
    ])
    client.close()


def _drain(sub: Any) -> list[bytes]:
    got, quiet_until = [], time.monotonic() + 1.0
    while time.monotonic() < quiet_until:
        msg = sub.get_message(timeout=0.1)
        if msg and msg["type"] == "message":
            got.append(msg["data"])
            quiet_until = time.monotonic() + 0.5
    return got
