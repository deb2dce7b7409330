#!/usr/bin/env python3
"""What contributions cost Redis: round trips, commands and server time per contribution.

    python tools/bench_contrib.py [--attributes 50000]

Runs on a private throw-away Redis.  Pushes (1) one published event of N attributes in
10 categories and (2) N/10 single-attribute messages of 20 organisations through the
dispatcher with the contributions feature only, applies the batches with the batch
script, and reads Redis's own command statistics: EVALSHA calls are the round trips;
the other commands are the ones the batch script and the procedure run inside Redis.
Each workload runs with merging on and off.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.batch import build_script, split_payload
from helpers.clock import DayClock
from helpers.config import Config
from helpers.contributor_helper import Contributions
from helpers.observations import InstanceState
from helpers.redis_server import RedisServer
from helpers.router import Dispatcher
from helpers.stats import InstanceStats
from helpers.writer import Publisher

CATEGORIES = ["Network activity", "Payload delivery", "Artifacts dropped", "External analysis",
              "Other", "Person", "Attribution", "Targeting data", "Payload type",
              "Financial fraud"]
NOW = 1_767_225_600.0


def published_event(n: int) -> bytes:
    attrs = [{"id": str(i), "type": "text", "value": f"v{i}", "object_id": "0",
              "category": CATEGORIES[i % len(CATEGORIES)]} for i in range(n)]
    event = {"Event": {"id": "1", "info": "big", "date": "2025-12-31",
                       "Orgc": {"id": "1", "name": "Big Org"}, "Attribute": attrs}}
    return b"misp_json " + json.dumps(event).encode()


def single_attributes(n: int) -> list[bytes]:
    return [b"misp_json_attribute " + json.dumps({
        "action": "add",
        "Attribute": {"id": str(i), "type": "text", "value": f"v{i}", "object_id": "0",
                      "category": CATEGORIES[i % len(CATEGORIES)]},
        "Event": {"id": "1", "Orgc": {"id": "1", "name": f"org{i % 20}"}}}).encode()
        for i in range(n)]


def run(server: RedisServer, frames: list[bytes], merge: bool) -> dict[str, Any]:
    client = server.client()
    client.flushall()
    feature = Contributions(Config(timezone="UTC"))
    feature.merge = merge
    sealed: list[Any] = []
    disp = Dispatcher([feature], DayClock("UTC"),
                      {"misp1": (InstanceState("misp1"), InstanceStats("misp1"))}, sealed.append)
    script = client.register_script(build_script(feature.procs))
    script(keys=["bench:warm"], args=[1, b"[]", 0])
    contributions = 0
    for i, frame in enumerate(frames):
        disp.handle("misp1", frame, NOW + i * 0.001)
    contributions = sum(1 for b in [*sealed, disp.batch] for _ in b.pubs)
    client.config_resetstat()
    started = time.perf_counter()
    publisher = Publisher(client)
    for seq, batch in enumerate([*sealed, disp.take_batch()], 1):
        ops, pubs = split_payload(batch.encode())  # as the writer does
        script(keys=["bench:marker"], args=[seq, ops, 0])
        if pubs is not None:
            publisher.publish(pubs)
    wall = time.perf_counter() - started
    stats = client.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {}).get("calls", 0)
    inner = sum(v["calls"] for k, v in stats.items()
                if k not in ("cmdstat_evalsha", "cmdstat_config", "cmdstat_info",
                             "cmdstat_client|reply"))
    client.close()
    return {"contributions": contributions, "round_trips": evalsha,
            "commands_per_contribution": inner / contributions,
            "redis_ms": stats.get("cmdstat_evalsha", {}).get("usec", 0) / 1000,
            "wall_ms": wall * 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attributes", type=int, default=50000)
    args = ap.parse_args()
    with RedisServer() as server:
        for name, frames in ((f"one event of {args.attributes} attributes",
                              [published_event(args.attributes)]),
                             (f"{args.attributes // 10} single-attribute messages",
                              single_attributes(args.attributes // 10))):
            for merge in (True, False):
                res = run(server, frames, merge)
                print(f"{name}, merge={'on' if merge else 'off'}: "
                      f"{res['contributions']} contributions, {res['round_trips']} round trips, "
                      f"{res['commands_per_contribution']:.2f} Redis commands/contribution, "
                      f"Redis {res['redis_ms']:.0f} ms, wall {res['wall_ms']:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
