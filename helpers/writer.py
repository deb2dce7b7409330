"""The one Redis writer: applies sealed batches, in order, exactly once.

The loop hands each sealed batch (an encoded op list and a sequence number) to
:meth:`RedisWriter.submit`, which never blocks.  A background thread applies
the batches in order with the batch script.  The script first compares the
batch's sequence number with this writer's marker in Redis and sets the marker
in the same atomic step, so a batch retried after a connection that dropped
*after* Redis executed it is recognised and not applied twice.

While Redis is unreachable the batches wait in memory (the backlog) and the
thread retries with capped exponential backoff; the loop keeps draining
ZeroMQ meanwhile, so MISP's publisher does not drop messages.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis

from helpers.batch import build_script
from helpers.config import RedisConfig, WriterConfig, redact_url
from helpers.keys import ingest_applied

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SealedBatch:
    seq: int
    payload: bytes
    messages: int
    sealed_at: float


def make_client(cfg: RedisConfig) -> redis.Redis:
    """A Redis client for the configured URL, credentials and TLS files."""
    kwargs: dict[str, Any] = {
        "socket_timeout": cfg.socket_timeout,
        "socket_connect_timeout": cfg.socket_timeout,
        "health_check_interval": 10,
    }
    if cfg.username:
        kwargs["username"] = cfg.username
    if cfg.password:
        kwargs["password"] = cfg.password
    if cfg.url.startswith("rediss://"):
        kwargs.update(ssl_ca_certs=cfg.ssl_ca_file, ssl_certfile=cfg.ssl_cert_file,
                      ssl_keyfile=cfg.ssl_key_file)
    return redis.Redis.from_url(cfg.url, **kwargs)


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def describe_redis_error(exc: Exception) -> str:
    """An error message safe to log: no URL with credentials in it."""
    if isinstance(exc, redis.AuthenticationError):  # redis-py's text does not say what to fix
        return (f"{type(exc).__name__}: Redis refused our credentials; check redis.username "
                f"and redis.password ({str(exc)[:120]})")
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class RedisWriter:
    """Applies sealed batches from a background thread; see the module doc."""

    def __init__(self, redis_cfg: RedisConfig, writer_cfg: WriterConfig,
                 procs: dict[str, str], retention_days: int = 0) -> None:
        self.client = make_client(redis_cfg)
        self.script = self.client.register_script(build_script(procs))
        self.writer_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.marker = ingest_applied(self.writer_id)
        self.retention = retention_days * 86400
        self.cfg = writer_cfg
        self._redis_url = redact_url(redis_cfg.url)
        self._pending: deque[SealedBatch] = deque()
        self._cond = threading.Condition()
        self._seq = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="redis-writer", daemon=True)
        # Figures for the status and the metrics (read without the lock: ints/floats).
        self.applied_batches = 0
        self.applied_messages = 0
        self.failed_ops = 0
        self.duplicates_skipped = 0
        self.outage_since: float | None = None
        self.outage_seconds_total = 0.0
        self.last_latency = 0.0

    # --- the loop's side --------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, payload: bytes, messages: int) -> int:
        """Queue an encoded batch; returns its sequence number.  Never blocks."""
        with self._cond:
            self._seq += 1
            self._pending.append(SealedBatch(self._seq, payload, messages, time.time()))
            self._cond.notify()
            return self._seq

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted batch is applied; False if time ran out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=2)

    # --- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.05
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
                batch = self._pending[0]
            try:
                self._apply(batch)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self._on_failure(exc, delay)
                if self._sleep(delay):
                    return
                delay = min(delay * 2, self.cfg.retry_max_seconds)
                continue
            except redis.RedisError as exc:
                # Not a connectivity problem (a BUSY script, OOM, ACL refusal): retry too,
                # since dropping the batch would lose data; the log says why.
                self._on_failure(exc, delay)
                if self._sleep(delay):
                    return
                delay = min(delay * 2, self.cfg.retry_max_seconds)
                continue
            delay = 0.05
            with self._cond:
                self._pending.popleft()
                self._cond.notify_all()

    def _apply(self, batch: SealedBatch) -> None:
        started = time.monotonic()
        result = self.script(keys=[self.marker], args=[batch.seq, batch.payload, self.retention])
        self.last_latency = time.monotonic() - started
        applied, failed = int(result[0]), int(result[1])
        if applied < 0:
            self.duplicates_skipped += 1
            log.info("batch %d was already applied before the connection dropped; not re-applied",
                     batch.seq)
        self.applied_batches += 1
        self.applied_messages += batch.messages
        if failed:
            self.failed_ops += failed
            log.warning("%d Redis operations of batch %d failed (wrong key type?)",
                        failed, batch.seq)
        if self.outage_since is not None:
            down = time.time() - self.outage_since
            self.outage_seconds_total += down
            log.warning("Redis at %s is back after %.1f s; replaying %d pending batches",
                        self._redis_url, down, len(self._pending))
            self.outage_since = None

    def _on_failure(self, exc: Exception, delay: float) -> None:
        if self.outage_since is None:
            self.outage_since = time.time()
            log.warning("Redis at %s unreachable (%s); holding batches in memory and retrying",
                        self._redis_url, describe_redis_error(exc))
        else:
            log.debug("Redis still unreachable (%s); retry in %.2f s", describe_redis_error(exc),
                      delay)

    def _sleep(self, seconds: float) -> bool:
        """Sleep, unless stopping; True if the writer should give up now."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=seconds)
            return self._stopping
