"""The daemon as a real process, and a real ZeroMQ publisher, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
import zmq

from helpers.config import Config, RedisConfig, WriterConfig
from helpers.daemon import Daemon

ROOT = Path(__file__).resolve().parent.parent


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def run_until(daemon: Daemon, cond: Callable[[], Any], timeout: float = 10.0,
              what: str = "condition") -> None:
    """Step an in-process daemon until ``cond()`` holds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        daemon.step(timeout_ms=20)


def base_config(redis_url: str, pub_url: str, **extra: Any) -> dict[str, Any]:
    """A configuration for one instance named ``misp1`` reading ``pub_url``."""
    cfg: dict[str, Any] = {
        "redis": {"url": redis_url},
        "instances": [{"name": "misp1", "url": pub_url}],
        "timezone": "UTC",
        "logging": {"level": "info"},
    }
    cfg.update(extra)
    # A private journal, never /var/lib/misp-ingest (another run's batches would replay).
    cfg["writer"] = {"journal_dir": tempfile.mkdtemp(prefix="mi-journal-"),
                     **cfg.get("writer", {})}
    return cfg


def make_config(redis_url: str, **kw: Any) -> Config:
    """An in-process daemon's configuration: UTC days and a private journal."""
    kw.setdefault("timezone", "UTC")
    kw.setdefault("writer", WriterConfig(journal_dir=tempfile.mkdtemp(prefix="mi-journal-")))
    kw.setdefault("redis", RedisConfig(url=redis_url))
    return Config(**kw)


class DaemonProcess:
    """``zmq_subscriber.py --config <tmp>/config.yaml`` with its stderr in a file."""

    def __init__(self, tmp: Path, config: dict[str, Any], env: dict[str, str] | None = None,
                 mode: int = 0o600) -> None:
        self.config_path = tmp / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.config_path.chmod(mode)
        self.stderr_path = tmp / "stderr.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str, preexec: Callable[[], None] | None = None) -> DaemonProcess:
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "zmq_subscriber.py"), "--config",
                 str(self.config_path), *args],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=err,
                preexec_fn=preexec)
        return self

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, pattern: str, timeout: float = 15.0, path: Path | None = None) -> str:
        """Wait for a line matching ``pattern`` in stderr (or ``path``); returns the line."""
        def found() -> str | None:
            assert self.proc is not None
            source = path or self.stderr_path
            body = source.read_text(encoding="utf-8", errors="replace") if source.exists() else ""
            m = re.search(f"^.*{pattern}.*$", body, re.MULTILINE)
            if m is None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) before logging "
                                     f"{pattern!r}:\n{self.stderr}")
            return m.group(0) if m else None
        return str(wait_for(found, timeout, f"log line {pattern!r}"))

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """The exit status; fails with the end of stderr if the process outlives ``timeout``."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            tail = "\n".join(self.stderr.splitlines()[-20:])
            raise AssertionError(f"daemon still running after {timeout} s:\n{tail}") from None

    def stop(self) -> None:
        """Make sure the process is gone (a test that failed half-way)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)


class Publisher:
    """An XPUB socket standing for MISP: it can tell when the daemon has subscribed."""

    def __init__(self, ctx: zmq.Context[Any] | None = None, *, plain_server: bool = False) -> None:
        self.ctx = ctx or zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.LINGER, 1000)
        if plain_server:
            self.sock.plain_server = True
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.url = f"tcp://127.0.0.1:{port}"

    def wait_subscriber(self, timeout: float = 15.0) -> None:
        """Block until a SUB socket has joined (its subscription message arrives)."""
        if not self.sock.poll(int(timeout * 1000)):
            raise AssertionError(f"no subscriber joined {self.url} within {timeout} s")
        self.sock.recv()

    def send(self, topic: str, body: bytes) -> None:
        self.sock.send(topic.encode() + b" " + body)

    def send_frame(self, frame: bytes) -> None:
        self.sock.send(frame, copy=False)

    def close(self) -> None:
        self.sock.close(linger=0)


def sighting(n: int = 0) -> bytes:
    """A ``misp_json_sighting`` body that adds 1 to TRENDINGS_SIGHT_sightings:<day>."""
    return b'{"action": "add", "Sighting": {"type": 0, "id": "%d"}}' % n
