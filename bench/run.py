"""The benchmark: the real daemon, end to end, on a mixed MISP workload.

    python -m bench.run            quick: 3 x 200,000 messages (about a minute and a half)
    python -m bench.run --full     3 x one million messages (RSS over run length)

Runs, each against a fresh daemon (``zmq_subscriber.py`` in a subprocess) and a
private Redis (``RedisServer``), with frames published on a ZeroMQ PUB socket by
a forked sender:

1. *floor*: the same frames split and decoded with orjson in a bare loop;
2. *throughput*: the sender floods, never more than a window ahead of what the
   daemon reports done, so the rate is sustained (not a queue filling up);
   messages/s, attribute observations/s, Redis commands per message (INFO
   commandstats, which counts the commands the Lua script runs), RSS over the
   run, the Redis totals checked against the workload.  Steps 1 and 2 run
   ``--repeat`` times (3), the floor just before each daemon run, and the
   figures are the median run's with the range (the machine is shared: one run
   alone may land on a busy moment); the RSS is the highest run's;
3. *latency*: 5,000 messages/s, attribute frames stamped with their send time,
   a listener on the live channel: publish -> live message delay, p50 / p99;
4. *big event*: one ``misp_json`` of 50,000 attributes: time and memory.

Every run checks the Redis totals against what the workload implies and the
benchmark fails (exit 1) if they differ.  Results are printed one line per
figure and written into doc/performance.md between the ``bench:results``
markers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import redis

from bench import report
from bench.checks import check_totals
from bench.procs import (
    STATUS_KEY,
    DaemonProcess,
    cpu_seconds,
    listener_main,
    proc_status,
    reset_peak_rss,
    sender_main,
    write_config,
)
from bench.workload import Workload, big_event, build_workload
from helpers.redis_server import RedisServer, free_port

FORK = mp.get_context("fork")
MB = 1024 * 1024
# Commands the benchmark itself sends while a run is measured (flow control, polling).
BENCH_COMMANDS = {"hget", "info"}
FLOOR_MIN_MESSAGES = 200_000  # a shorter floor loop is over too soon to be steady


class Failed(Exception):
    """The daemon's Redis totals differ from the workload's: the figures are void."""


def measure_floor(pool: Workload, n: int) -> dict[str, float]:
    """Split and decode ``n`` frames in a bare loop: no design in Python does less."""
    frames, k, loads = pool.frames, len(pool.frames), orjson.loads
    started = time.perf_counter()
    for i in range(n):
        _topic, _, body = frames[i % k].partition(b" ")
        try:
            loads(body)
        except orjson.JSONDecodeError:  # the few unusable frames of the mix
            continue
    elapsed = time.perf_counter() - started
    return {"rate": n / elapsed, "seconds": elapsed}


class Run:
    """One daemon, one sender (and maybe a listener), one fresh Redis keyspace."""

    def __init__(self, srv: RedisServer, tmp: Path, pool: Workload, n: int,
                 profile: Path | None = None) -> None:
        self.client = srv.client()
        self.client.flushall()
        self.url = srv.url
        self.pool = pool
        self.n = n
        zmq_url = f"tcp://127.0.0.1:{free_port()}"
        self.zmq_url = zmq_url
        self.daemon = DaemonProcess(write_config(tmp, srv.url, zmq_url), self.client, profile)
        self.redis_pid = srv.proc.pid if srv.proc else 0
        self.conn, child = FORK.Pipe()
        self.child = child
        self.sender: Any = None

    def start(self, mode: str, rate: float = 0.0, window: int = 5000) -> None:
        self.sender = FORK.Process(target=sender_main, daemon=True, args=(
            self.child, self.zmq_url, self.pool, self.n, mode, rate, self.url, window))
        self.sender.start()
        receive(self.conn, 30)  # bound
        self.daemon.start()

    def go(self) -> None:
        self.conn.send("go")

    def watch(self, timeout: float = 120.0) -> list[tuple[float, int, int, int]]:
        """Poll until the daemon reports all frames received:
        (time, received, RSS, file-backed part of the RSS)."""
        samples: list[tuple[float, int, int, int]] = []
        last_progress, last = time.monotonic(), -1
        while True:
            received = int(self.client.hget(STATUS_KEY, "received") or 0)
            now = time.time()
            st = proc_status(self.daemon.pid)
            samples.append((now, received, st["VmRSS"], st["RssFile"]))
            if received >= self.n:
                return samples
            if received != last:
                last, last_progress = received, time.monotonic()
            elif time.monotonic() - last_progress > timeout:
                raise Failed(f"the daemon stalled at {received} of {self.n} messages")
            time.sleep(0.005)

    def finish(self) -> dict[str, Any]:
        sent = receive(self.conn, 60)
        self.conn.send("bye")
        self.sender.join(10)
        return dict(sent)

    def check(self, expected: Counter[tuple[str, str]]) -> None:
        errors = check_totals(self.client, expected, self.n)
        if errors:
            raise Failed("Redis totals differ from the workload:\n  " + "\n  ".join(errors))

    def stop(self) -> None:
        rc = self.daemon.stop()
        if rc != 0:
            raise Failed(f"the daemon exited with status {rc}")


def receive(conn: Any, timeout: float) -> Any:
    """The next message from a helper process, or Failed if it has gone quiet."""
    if not conn.poll(timeout):
        raise Failed(f"a benchmark process sent nothing for {timeout:.0f} s")
    return conn.recv()


def commandstats(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def run_throughput(srv: RedisServer, tmp: Path, pool: Workload, n: int,
                   profile: Path | None = None) -> dict[str, Any]:
    run = Run(srv, tmp, pool, n, profile)
    run.start("flood")
    idle = proc_status(run.daemon.pid)["VmRSS"]
    before = commandstats(run.client)
    cpu0, rcpu0 = cpu_seconds(run.daemon.pid), cpu_seconds(run.redis_pid)
    run.go()
    samples = run.watch()
    commands = commandstats(run.client) - before
    cpu = cpu_seconds(run.daemon.pid) - cpu0
    redis_cpu = cpu_seconds(run.redis_pid) - rcpu0
    peak = proc_status(run.daemon.pid)["VmHWM"]
    sent = run.finish()
    expected = pool.expected(n)
    run.check(expected)
    run.stop()
    for name in BENCH_COMMANDS:
        commands.pop(name, None)
    seconds = samples[-1][0] - sent["t0"]
    return {"messages": n, "seconds": seconds, "rate": n / seconds,
            "observations": expected[("OBS", "")], "obs_rate": expected[("OBS", "")] / seconds,
            "commands": commands, "commands_per_msg": sum(commands.values()) / n,
            "peak_rss": peak, "idle_rss": idle, "rss_points": rss_points(samples, n), "cpu": cpu,
            "redis_cpu": redis_cpu}


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The throughput runs as one: the median run's figures, the range of the rates and
    ratios, and the RSS of the run that peaked highest."""
    by_rate = sorted(runs, key=lambda r: r["rate"])
    median = dict(by_rate[len(by_rate) // 2])
    ratios = sorted(r["rate"] / r["floor"]["rate"] for r in runs)
    highest = max(runs, key=lambda r: r["peak_rss"])
    for key in ("peak_rss", "idle_rss", "rss_points"):
        median[key] = highest[key]
    median["runs"] = len(runs)
    median["rates"] = [r["rate"] for r in by_rate]
    return {"throughput": median, "floor": median["floor"],
            "ratio": ratios[len(ratios) // 2], "ratios": ratios}


def rss_points(samples: list[tuple[float, int, int, int]], n: int) -> list[tuple[int, int, int]]:
    """(messages received, RSS, its file-backed part) at each tenth of the run."""
    points = []
    for tenth in range(1, 11):
        mark = n * tenth // 10
        for _, received, rss, file_rss in samples:
            if received >= mark:
                points.append((received, rss, file_rss))
                break
    return points


def run_latency(srv: RedisServer, tmp: Path, pool: Workload, rate: float,
                seconds: float) -> dict[str, Any]:
    n = int(rate * seconds)
    run = Run(srv, tmp, pool, n)
    lconn, lchild = FORK.Pipe()
    listener = FORK.Process(target=listener_main, args=(lchild, "127.0.0.1", srv.port),
                            daemon=True)
    listener.start()
    if receive(lconn, 10) != "ready":
        raise Failed("the live-channel listener did not start")
    run.start("paced", rate=rate)
    cpu0 = cpu_seconds(run.daemon.pid)
    run.go()
    samples = run.watch()
    cpu = cpu_seconds(run.daemon.pid) - cpu0
    sent = run.finish()
    lconn.send("stop")
    heard = receive(lconn, 30)
    listener.join(10)
    if "error" in heard:
        raise Failed(f"the live-channel listener failed: {heard['error']}")
    run.check(pool.expected(n))
    run.stop()
    delays = sorted(heard["delays"])
    if not delays:
        raise Failed("no stamped message came back on the live channel")
    return {"messages": n, "rate": rate, "samples": len(delays), "live_messages": heard["seen"],
            "p50": delays[len(delays) // 2], "p99": delays[int(len(delays) * 0.99)],
            "max": delays[-1], "mean": statistics.fmean(delays),
            "cpu_share": cpu / (samples[-1][0] - sent["t0"])}


def run_big_event(srv: RedisServer, tmp: Path, n_attrs: int) -> dict[str, Any]:
    frame, effects = big_event(n_attrs)
    pool = Workload([frame], [effects], ["misp_json"])
    run = Run(srv, tmp, pool, 1)
    run.start("flood", window=1)
    reset_peak_rss(run.daemon.pid)
    baseline = proc_status(run.daemon.pid)["VmRSS"]
    run.go()
    samples = run.watch()
    peak = proc_status(run.daemon.pid)["VmHWM"]
    sent = run.finish()
    run.check(effects)
    run.stop()
    return {"attributes": n_attrs, "frame_bytes": len(frame),
            "seconds": samples[-1][0] - sent["t0"], "memory": peak - baseline,
            "baseline": baseline}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="one million messages, 30 s latency run")
    p.add_argument("--messages", type=int, help="messages in the throughput run")
    p.add_argument("--pool", type=int, default=20000, help="distinct frames in the workload")
    p.add_argument("--latency-seconds", type=float, help="length of the 5,000 msg/s run")
    p.add_argument("--no-write", action="store_true", help="do not update doc/performance.md")
    p.add_argument("--profile", metavar="FILE", type=Path,
                   help="sample the daemon with py-spy during the throughput run (raw stacks)")
    p.add_argument("--only-throughput", action="store_true", help="skip the other runs")
    p.add_argument("--repeat", type=int, default=3, metavar="R",
                   help="throughput runs, each after its own floor measurement; the figures "
                        "are the median run's, with the range (default 3)")
    args = p.parse_args(argv)
    command = " ".join(["python -m bench.run", *(sys.argv[1:] if argv is None else argv)])
    n = args.messages or (1_000_000 if args.full else 200_000)
    lat_seconds = args.latency_seconds or (30.0 if args.full else 10.0)
    machine = report.machine()
    print(f"machine: {report.machine_line(machine)}", flush=True)
    started = time.perf_counter()
    pool = build_workload(args.pool)
    print(f"workload: {len(pool.frames)} distinct frames, {sum(map(len, pool.frames)) / MB:.1f} MB,"
          f" generated in {time.perf_counter() - started:.1f} s", flush=True)
    results: dict[str, Any] = {"machine": machine, "mode": "full" if args.full else "quick",
                               "command": command}
    try:
        # A slow pub/sub reader is not disconnected: the listener's lag shows in the delays.
        with RedisServer(extra=["--client-output-buffer-limit", "pubsub 0 0 0"]) as srv, \
                tempfile.TemporaryDirectory(prefix="misp-bench-") as tmp:
            results["redis_version"] = srv.client().info("server")["redis_version"]
            runs = []
            for i in range(max(1, args.repeat)):
                # The floor just before its daemon run: both see the machine in one state.
                floor = measure_floor(pool, max(n, FLOOR_MIN_MESSAGES))
                run = run_throughput(srv, Path(tmp), pool, n, args.profile if i == 0 else None)
                run["floor"] = floor
                runs.append(run)
                print(f"  run {i + 1}: {run['rate']:,.0f} msg/s, floor {floor['rate']:,.0f} msg/s,"
                      f" ratio {run['rate'] / floor['rate']:.3f}", flush=True)
            results.update(combine(runs))
            if args.only_throughput:
                print(report.throughput_line(results))
                return 0
            results["latency"] = run_latency(srv, Path(tmp), pool, 5000.0, lat_seconds)
            results["big"] = run_big_event(srv, Path(tmp), 50_000)
    except Failed as exc:
        print(f"BENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        DaemonProcess.kill_all()  # after a failure, no daemon is left behind
    lines = report.summary(results)
    print("\n".join(lines))
    if not args.no_write:
        report.write_doc(results, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
