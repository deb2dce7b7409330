"""The benchmark's helper processes: the ZeroMQ sender, the live-channel listener,
and the daemon under test.

The sender and the listener are forked processes, so they do not share the
daemon's GIL nor the benchmark's; the daemon is ``zmq_subscriber.py`` itself,
run as a subprocess with a configuration written for the run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar

import hiredis
import orjson
import redis
import zmq

from bench.workload import TS_PLACEHOLDER, TS_TOKEN, Workload

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = "bench"
STATUS_KEY = f"INGEST:status:{INSTANCE}"
LIVE_CHANNEL = "1"


# --- the sender ----------------------------------------------------------------------


def sender_main(conn: Connection, bind: str, pool: Workload, n: int, mode: str,
                rate: float, redis_url: str, window: int) -> None:
    """Bind a PUB socket, wait for "go", publish ``n`` frames of the pool, report.

    ``mode`` "flood": as fast as the daemon takes them, never more than ``window``
    frames ahead of what the daemon reports in Redis (its status hash), so the
    figure is a sustained rate and the daemon's memory is not a queue's.
    ``mode`` "paced": ``rate`` frames/s, attribute frames stamped with the send time.
    """
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 0)  # never drop: the window (or the pace) bounds the queue
    sock.bind(bind)
    conn.send("ready")
    conn.recv()  # "go"
    t0 = time.time()
    if mode == "flood":
        _flood(sock, pool, n, redis.Redis.from_url(redis_url), window)
    else:
        _paced(sock, pool, n, rate)
    conn.send({"t0": t0, "t1": time.time(), "sent": n})
    conn.recv()  # "bye": keep the socket open until the daemon has everything
    sock.close(linger=0)
    ctx.term()


def _flood(sock: zmq.Socket[Any], pool: Workload, n: int, client: redis.Redis,
           window: int) -> None:
    frames, k = pool.frames, len(pool.frames)
    acked = 0
    i = 0
    while i < n:
        if i - acked >= window:
            acked = int(client.hget(STATUS_KEY, "received") or 0)
            if i - acked >= window:
                time.sleep(0.001)
                continue
        end = min(n, acked + window)
        while i < end:
            sock.send(frames[i % k], copy=False)
            i += 1


def _paced(sock: zmq.Socket[Any], pool: Workload, n: int, rate: float) -> None:
    frames, k = pool.frames, len(pool.frames)
    offsets = [f.find(TS_PLACEHOLDER) for f in frames]
    width = len(TS_PLACEHOLDER)
    start = time.monotonic()
    i = 0
    while i < n:
        due = min(n, int((time.monotonic() - start) * rate) + 1)
        while i < due:
            frame, off = frames[i % k], offsets[i % k]
            if off >= 0:
                stamp = TS_TOKEN + b"%019d" % time.time_ns()
                frame = frame[:off] + stamp + frame[off + width:]
            sock.send(frame, copy=False)
            i += 1
        time.sleep(0.0005)


# --- the live-channel listener -------------------------------------------------------


def listener_main(conn: Connection, host: str, port: int) -> None:
    """Subscribe to the live channel; for each stamped message, the delay in ms.

    A raw socket and hiredis' reader rather than redis-py's pub/sub object: a
    few microseconds per message, so the listener keeps up with the daemon and
    its own lag does not inflate the delays it measures.
    """
    try:
        conn.send(_listen(conn, host, port))
    except Exception as exc:  # the parent must hear back, whatever happened
        conn.send({"error": f"{type(exc).__name__}: {exc}"})


def _listen(conn: Connection, host: str, port: int) -> dict[str, Any]:
    sock = socket.create_connection((host, port))
    sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n"
                 % (len(LIVE_CHANNEL), LIVE_CHANNEL.encode()))
    reader = hiredis.Reader()
    sock.settimeout(1.0)
    while (reply := reader.gets()) is False:
        reader.feed(sock.recv(65536))  # the confirmation: the server now sends us everything
    conn.send("ready")
    sock.settimeout(0.05)
    delays: list[float] = []
    seen = 0
    stop_at: float | None = None
    width = len(TS_TOKEN)
    while stop_at is None or time.monotonic() < stop_at:
        if stop_at is None and conn.poll():
            conn.recv()
            stop_at = time.monotonic() + 1.0  # what is still in flight
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        now = time.time_ns()
        reader.feed(chunk)
        while (reply := reader.gets()) is not False:
            seen += 1
            data = reply[2]
            at = data.find(TS_TOKEN)
            if at >= 0 and (stamp := int(data[at + width:at + width + 19])):
                delays.append((now - stamp) / 1e6)
    sock.close()
    return {"delays": delays, "seen": seen}


# --- the daemon -------------------------------------------------------------------------


def write_config(directory: Path, redis_url: str, zmq_url: str) -> Path:
    """The daemon's configuration for a run: defaults, except what a bench needs."""
    cfg = {
        "redis": {"url": redis_url},
        "instances": [{"name": INSTANCE, "url": zmq_url}],
        "logging": {"level": "warning"},
        # The sender's flow control and the end-of-run detection read the status hash.
        "status_interval_seconds": 0.05,
        "writer": {"journal_dir": str(directory / "journal")},
    }
    path = directory / "bench.yaml"
    path.write_bytes(orjson.dumps(cfg))  # JSON is YAML
    return path


class DaemonProcess:
    """``zmq_subscriber.py --config <path>`` as a subprocess."""

    running: ClassVar[list[subprocess.Popen[bytes]]] = []  # to kill after a failure

    @classmethod
    def kill_all(cls) -> None:
        for proc in cls.running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        cls.running.clear()

    def __init__(self, config: Path, client: redis.Redis, profile: Path | None = None) -> None:
        self.config = config
        self.client = client
        self.profile = profile
        self.log = config.parent / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.target_pid = 0

    def start(self, timeout: float = 20.0) -> None:
        cmd = [sys.executable, str(ROOT / "zmq_subscriber.py"), "--config", str(self.config)]
        if self.profile:  # py-spy samples the daemon, which runs as its child
            cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
                   "--rate", "250", "--threads", "--output", str(self.profile), "--", *cmd]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stderr=log)
        self.running.append(self.proc)
        deadline = time.monotonic() + timeout
        while self.client.hget(STATUS_KEY, "connected") != b"1":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start or connect; see its log:\n"
                                   + self.log.read_text(errors="replace")[-2000:])
            time.sleep(0.02)
        time.sleep(0.3)  # the subscription travels to the PUB socket after the handshake

    @property
    def pid(self) -> int:
        """The daemon's pid (under py-spy, py-spy's only child)."""
        assert self.proc is not None
        if not self.profile:
            return self.proc.pid
        if not self.target_pid:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as fh:
                self.target_pid = int(fh.read().split()[0])
        return self.target_pid

    def stop(self) -> int:
        assert self.proc is not None
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("the daemon did not stop within 30 s of SIGTERM") from None


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS), RssAnon and RssFile (mapped files: the GeoIP
    database is read through mmap) of ``pid``, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0]) * 1024
    return out


def reset_peak_rss(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0, our own child)."""
    with open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid``."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
