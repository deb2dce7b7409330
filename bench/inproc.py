"""The daemon's loop work without the daemon: the benchmark's frames through the real
dispatcher (every feature on) and the batch encoder, in this process.

    python -m bench.inproc topics          µs per message, per topic (warm caches)
    python -m bench.inproc total           µs per message over the mix (best of 3)
    python -m bench.inproc fixed N         N messages once, for an instruction counter:
        valgrind --tool=callgrind python -m bench.inproc fixed 8000   (and fixed 0:
        the difference of the two totals is the work of 8,000 messages, repeatable
        to the instruction whatever else the machine does)
    python -m bench.inproc redis           Redis CPU per message of the batch script on
        the payloads of the mix: the whole script, and its op-list decoding alone

No ZeroMQ, no writer thread, no Redis (but for ``redis``, on a private server): the
figures isolate what the loop thread does per message; ``python -m bench.run`` measures
the daemon end to end.  ``POOL=4000`` in the environment makes a smaller workload
(faster under valgrind).  See doc/performance.md, "Where the time goes".
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from collections import Counter, defaultdict

from bench.workload import build_workload
from helpers.batch import Batch, build_script, split_payload
from helpers.clock import DayClock
from helpers.config import load_config
from helpers.daemon import build_features
from helpers.observations import InstanceState
from helpers.redis_server import RedisServer
from helpers.router import Dispatcher
from helpers.stats import InstanceStats

SEAL_OPS = 3000  # about what the daemon seals per flush window at 20,000 messages/s

# The script's first lines, up to the decoded op list: what decoding alone costs.
DECODE_ONLY = """local payload = ARGV[2]
local nl = string.find(payload, '\\n', 1, true)
local ops = cjson.decode(nl and string.sub(payload, 1, nl - 1) or payload)
return #ops"""


class Loop:
    def __init__(self, pool_size: int) -> None:
        cfg = load_config(None, check_permissions=False)
        self.features = build_features(cfg)
        self.instance = cfg.instances[0].name
        state = InstanceState(self.instance, login_source=cfg.users.login_source)
        self.dispatcher = Dispatcher(self.features, DayClock(cfg.timezone),
                                     {self.instance: (state, InstanceStats(self.instance))},
                                     self.sealed)
        self.payloads: list[tuple[int, bytes]] = []
        pool = build_workload(pool_size)
        self.frames, self.topics = pool.frames, pool.topics
        self.now = time.time()

    def sealed(self, batch: Batch) -> None:
        self.payloads.append((batch.messages, batch.encode()))

    def run(self, n: int, cost: dict[str, float] | None = None,
            count: Counter[str] | None = None,
            keep: bool = False) -> float:
        """Handle ``n`` frames of the endless cycle of the pool; seconds taken."""
        frames, topics, k = self.frames, self.topics, len(self.frames)
        handle, instance, now = self.dispatcher.handle, self.instance, self.now
        clock = time.perf_counter
        started = clock()
        for i in range(n):
            if cost is not None and count is not None:
                t = clock()
                handle(instance, frames[i % k], now)
                cost[topics[i % k]] += clock() - t
                count[topics[i % k]] += 1
            else:
                handle(instance, frames[i % k], now)
            if self.dispatcher.batch.size >= SEAL_OPS:
                self.sealed(self.dispatcher.take_batch())
                if not keep:
                    self.payloads.clear()
        return clock() - started


def redis_cost(loop: Loop) -> None:
    loop.run(60_000, keep=True)
    messages = sum(m for m, _ in loop.payloads)
    procs: dict[str, str] = {}
    for feature in loop.features:
        procs.update(feature.procs)
    for name, script in (("whole script", build_script(procs)), ("op-list decoding", DECODE_ONLY)):
        best = min(_apply(script, loop.payloads) for _ in range(3))
        print(f"{name}: {best / messages * 1e6:.1f} us of Redis CPU per message, best of 3 "
              f"({len(loop.payloads)} batches, {messages} messages)")


def _apply(script: str, payloads: list[tuple[int, bytes]]) -> float:
    """Seconds of CPU a fresh Redis spends applying ``payloads`` with ``script``."""
    with RedisServer() as srv:
        client = srv.client()
        run = client.register_script(script)
        run(keys=["M"], args=[-1, b"[]", 0])  # loaded before the clock starts
        before = client.info("cpu")
        for seq, (_, payload) in enumerate(payloads):
            body, _pubs = split_payload(payload)
            run(keys=["M"], args=[seq, bytes(body), 0])
        after = client.info("cpu")
        return float(sum(after[k] - before[k] for k in ("used_cpu_user", "used_cpu_sys")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("topics", "total", "fixed", "redis"))
    p.add_argument("messages", type=int, nargs="?", default=100_000)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # the mix's unusable frames are logged otherwise
    loop = Loop(int(os.environ.get("POOL", "20000")))
    gc.freeze()
    if args.mode == "fixed":
        loop.run(args.messages)
        return 0
    if args.mode == "redis":
        redis_cost(loop)
        return 0
    loop.run(40_000)  # warm: geolocation cache, memos, organisation directory
    if args.mode == "total":
        best = min(loop.run(args.messages) for _ in range(3))
        print(f"{best / args.messages * 1e6:.2f} us per message (best of 3 x {args.messages})")
        return 0
    cost: dict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    elapsed = loop.run(args.messages, cost, count)
    total = sum(cost.values())
    for topic, seconds in sorted(cost.items(), key=lambda kv: -kv[1]):
        print(f"{topic:28s} {count[topic]:7d} messages {seconds / count[topic] * 1e6:8.1f} us each"
              f"  {seconds / total * 100:5.1f} % of the time")
    print(f"all: {elapsed / args.messages * 1e6:.2f} us per message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
