"""The one Redis writer: applies sealed batches, in order, exactly once.

The loop hands each sealed batch (an encoded op list) to
:meth:`RedisWriter.submit`, which never waits for Redis.  A background thread
applies the batches in sequence order with the batch script.  The script
compares the batch's sequence number with its writer's marker in Redis and
sets the marker in the same atomic step, so a batch retried after a connection
that dropped *after* Redis executed it is recognised and not applied twice.

While Redis is unreachable, paused or restarting, the thread retries with
capped exponential backoff and the batches wait: in memory up to
``writer.backlog_max_batches`` / ``backlog_max_bytes``, beyond that in the
journal (:mod:`helpers.journal`), and at shutdown every batch Redis has not
taken goes to the journal.  The order of application is always: the segment
being replayed, the other segments oldest first, then memory -- every journaled
batch is older than every batch still in memory.  See doc/reliability.md.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from helpers.batch import build_script, split_payload
from helpers.config import RedisConfig, WriterConfig, redact_url
from helpers.journal import Journal, JournalError, SealedBatch, Segment
from helpers.keys import ingest_applied

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.05
OUTAGE_REMINDER_SECONDS = 60.0  # a long outage is recalled this often, not at every retry
SPILL_PAUSE_SECONDS = 10.0  # after a failed journal write, before trying the disk again
REJECTED_DIR = "rejected"  # under the journal directory: batches the script failed on


class ChunkedPacker:
    """RESP packing that hands large arguments to the socket as they are.

    redis-py's default packer (hiredis) copies every argument into one buffer
    while holding the GIL: for the writer's multi-megabyte batch payloads that
    copy stalled the receive loop in the other thread.  Here a large argument is
    its own chunk; ``sendall`` writes it with the GIL released.
    """

    LARGE = 16384

    def pack(self, *args: Any) -> list[bytes]:
        # As redis-py's packers: a command name may hold its subcommand ("SCRIPT LOAD").
        name = args[0].encode() if isinstance(args[0], str) else bytes(args[0])
        args = (*name.split(), *args[1:])
        chunks: list[bytes] = []
        head = [b"*%d\r\n" % len(args)]
        for arg in args:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, int):
                arg = b"%d" % arg
            elif isinstance(arg, float):
                arg = repr(arg).encode()
            elif isinstance(arg, bytearray) or (isinstance(arg, memoryview)
                                                and len(arg) < self.LARGE):
                arg = bytes(arg)
            if len(arg) >= self.LARGE:
                head.append(b"$%d\r\n" % len(arg))
                chunks += (b"".join(head), arg)
                head = [b"\r\n"]
            else:
                head += (b"$%d\r\n" % len(arg), arg, b"\r\n")
        chunks.append(b"".join(head))
        return chunks


# Publishes the PUBLISH commands of a payload (ARGV[1]) where the daemon's Redis user may
# not turn replies off; see Publisher.
PUBLISH_SCRIPT = r"""
local s, p = ARGV[1], 1
while p <= #s do
  -- *3 $7 PUBLISH $<n> <channel> $<m> <message>, each line ending in CRLF
  local a = string.find(s, '\r\n', p + 18, true)
  local n = tonumber(string.sub(s, p + 18, a - 1))
  local channel = string.sub(s, a + 2, a + 1 + n)
  p = a + n + 5
  local b = string.find(s, '\r\n', p, true)
  local m = tonumber(string.sub(s, p, b - 1))
  redis.pcall('PUBLISH', channel, string.sub(s, b + 2, b + 1 + m))
  p = b + m + 4
end
return 0
"""
_REPLY_OFF = b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n"
_REPLY_ON = b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n"
_IOV_MAX = 1024  # buffers per sendmsg (Linux's limit)


class Publisher:
    """Sends a batch's publications once the batch script has applied the batch.

    From a client, ``PUBLISH`` costs Redis a fraction of what it costs from Lua,
    and its replies (how many subscribers heard) are of no use: the commands go
    between ``CLIENT REPLY OFF`` and ``ON`` in one write, and only ``ON``'s OK is
    read.  A Redis user refused ``CLIENT REPLY`` (an ACL without ``@connection``)
    gets them through :data:`PUBLISH_SCRIPT` instead, after one warning.

    A batch's first attempt sends the script and its publications in one write
    (:meth:`apply_and_publish`): Redis runs them in that order, so they still
    follow the data, and the writer thread makes about half the system calls
    (8 instead of 16 per batch).  Each of them gives the GIL away, to be won
    back from the busy receive loop (doc/performance.md, "The writer and the
    GIL").
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.script = client.register_script(PUBLISH_SCRIPT)
        self.raw = True

    def publish(self, commands: memoryview) -> None:
        if not self.raw:
            self.script(args=[commands])
            return
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([_REPLY_OFF, commands, _REPLY_ON])
            conn.read_response()
        except redis.ResponseError as exc:
            # The replies of whatever ran are unread on this connection: it is spent.
            conn.disconnect()
            if not refused_for_good(exc):
                raise  # BUSY, LOADING...: the batch is retried, and publishes nothing then
            # CLIENT REPLY refused (an ACL, a server without it): the PUBLISH commands ran.
            self.raw = False
            log.warning("Redis refused CLIENT REPLY (%s); publications now go through a Lua "
                        "script, which costs Redis more", describe_redis_error(exc))
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def apply_and_publish(self, script_sha: str, keys: list[Any], args: list[Any],
                          commands: memoryview, sending: Callable[[], None]) -> Any:
        """``EVALSHA`` of the batch script, then the publications, in one write; returns
        the script's reply.  ``sending()`` is called just before the write: from then on
        the publications may have gone out, whatever the script replies (at most once:
        a retry must not publish again).  Raises what the script's reply raises."""
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            chunks = conn.pack_command("EVALSHA", script_sha, len(keys), *keys, *args)
            sending()
            write_all(conn, [*chunks, _REPLY_OFF, commands, _REPLY_ON])
            try:
                result = conn.read_response()
            except redis.ResponseError:  # read in full: the ON reply follows it
                self._read_reply_on(conn)
                raise
            self._read_reply_on(conn)
            return result
        except redis.ResponseError:
            raise  # the script's error; the connection has read every reply
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def _read_reply_on(self, conn: Any) -> None:
        """Read the reply to ``CLIENT REPLY ON``, the only one the publications leave."""
        try:
            conn.read_response()
        except redis.ResponseError as exc:
            # The replies of whatever ran are unread on this connection: it is spent.
            conn.disconnect()
            if refused_for_good(exc):  # the PUBLISH commands ran, with replies
                self.raw = False
                log.warning("Redis refused CLIENT REPLY (%s); publications now go through a "
                            "Lua script, which costs Redis more", describe_redis_error(exc))


def write_all(conn: Any, chunks: list[bytes | memoryview]) -> None:
    """Write ``chunks`` on a redis-py connection, with as few system calls as the socket
    allows (``sendmsg`` of all of them; TLS sockets have none: one ``sendall`` each)."""
    conn.check_health()
    sock = conn._sock
    try:
        if isinstance(sock, ssl.SSLSocket):
            for chunk in chunks:
                sock.sendall(chunk)
            return
        views = [memoryview(c) for c in chunks if len(c)]
        while views:
            sent = sock.sendmsg(views[:_IOV_MAX])
            while sent:  # drop what went out, cut the chunk it stopped in
                if sent >= len(views[0]):
                    sent -= len(views.pop(0))
                else:
                    views[0], sent = views[0][sent:], 0
    except TimeoutError:
        conn.disconnect()
        raise redis.TimeoutError("Timeout writing to socket") from None
    except OSError as exc:
        conn.disconnect()
        raise redis.ConnectionError(f"Error while writing to socket: {exc}") from None


def refused_for_good(exc: redis.ResponseError) -> bool:
    """An error that the same command will meet again: no permission, or no such command."""
    text = str(exc)
    return isinstance(exc, redis.exceptions.NoPermissionError) or text.startswith("NOPERM") \
        or "unknown command" in text or "unknown subcommand" in text.lower()


def make_client(cfg: RedisConfig, *, retries: bool = True,
                large_arguments: bool = False) -> redis.Redis:
    """A Redis client for the configured URL, credentials and TLS files.

    ``retries=False``: a command that fails is not silently re-sent by the
    client library (the writer has its own backoff and outage accounting).
    ``large_arguments``: commands carry megabytes (the writer's batches); see
    :class:`ChunkedPacker`.
    """
    kwargs: dict[str, Any] = {
        "socket_timeout": cfg.socket_timeout,
        "socket_connect_timeout": cfg.socket_timeout,
        "health_check_interval": 10,
    }
    if not retries:
        kwargs["retry"] = Retry(NoBackoff(), 0)
    if large_arguments:
        kwargs["command_packer"] = ChunkedPacker()
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


def is_script_error(exc: redis.ResponseError) -> bool:
    """A Lua error raised by the batch script itself (Redis 7: ``user_script:N: ...``;
    older: ``Error running script``), as opposed to Redis refusing for now (BUSY, OOM...)."""
    text = str(exc)
    return text.startswith("user_script:") or "Error running script" in text \
        or "Error compiling script" in text


def describe_redis_error(exc: Exception) -> str:
    """An error message safe to log: no URL with credentials in it."""
    if isinstance(exc, redis.AuthenticationError):  # redis-py's text does not say what to fix
        return (f"{type(exc).__name__}: Redis refused our credentials; check redis.username "
                f"and redis.password ({str(exc)[:120]})")
    return f"{type(exc).__name__}: {str(exc)[:200]}"



class RedisWriter:
    """Applies sealed batches from a background thread; see the module doc."""

    def __init__(self, redis_cfg: RedisConfig, writer_cfg: WriterConfig,
                 procs: dict[str, str], retention_days: int = 0, *,
                 journal_dir: Path | None = None) -> None:
        self.client = make_client(redis_cfg, retries=False, large_arguments=True)
        self.script = self.client.register_script(build_script(procs))
        self.publisher = Publisher(self.client)
        self.writer_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.marker = ingest_applied(self.writer_id)
        self.retention = retention_days * 86400
        self.cfg = writer_cfg
        self._redis_url = redact_url(redis_cfg.url)
        self.journal = Journal(journal_dir or Path(writer_cfg.journal_dir), self._redis_url,
                               writer_cfg.journal_file_max_bytes)
        self._journal_ok = False
        self._cond = threading.Condition()
        # The queue, oldest first: _current, _replay (rest of the segment _replay_seg),
        # _segments (on disk), _memory.  All guarded by _cond.
        self._current: SealedBatch | None = None
        self._current_in_memory = False  # False: it is also in a segment file
        self._replay: deque[SealedBatch] = deque()
        self._replay_seg: Segment | None = None
        self._segments: list[Segment] = []
        self._memory: deque[SealedBatch] = deque()
        self._memory_bytes = 0
        self._journal_count = 0  # batches in segment files, not yet applied
        self._spill_paused_until = 0.0
        self._seq = 0
        # The batch being applied: tried before? its publications (maybe) sent?
        self._tried = self._published = False
        # Redis has the script, as far as we know (not after a connection failure: a
        # restarted Redis has lost it, and a batch that met NOSCRIPT in one write would
        # have published before its data).
        self._script_loaded = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="redis-writer", daemon=True)
        # Figures for the status and the metrics (read without the lock: ints/floats).
        self.applied_batches = 0
        self.applied_messages = 0
        self.failed_ops = 0
        self.duplicates_skipped = 0
        self.rejected_batches = 0  # batches the script failed on (see _set_aside)
        self.journaled_batches = 0  # written to the journal since start
        self.outage_since: float | None = None
        self.outage_seconds_total = 0.0
        self.last_latency = 0.0
        self._next_reminder = 0.0
        self._catching_up: tuple[float, int] | None = None  # (since, applied_batches then)

    # --- the loop's side --------------------------------------------------------

    def start(self) -> None:
        """Open the journal (a previous run's batches go first), start the thread."""
        self._open_journal()
        self._thread.start()

    def _open_journal(self) -> None:
        try:
            segments = self.journal.open()
        except JournalError as exc:
            log.error("%s. Without a journal, batches beyond the in-memory backlog stay in "
                      "memory while Redis is down, and are lost if the daemon stops before "
                      "Redis is back; set writer.journal_dir to a writable directory", exc)
            return
        self._journal_ok = True
        self._segments = segments
        self._journal_count = sum(s.count for s in segments)
        if segments:
            log.warning("journal %s holds %d batch(es) left by a previous run; applying them "
                        "before new ones", self.journal.dir, self._journal_count)

    def submit(self, payload: bytes, messages: int) -> int:
        """Queue an encoded batch; returns its sequence number.  Never waits for Redis
        (past the memory bound it writes the oldest batches to the journal)."""
        with self._cond:
            self._seq += 1
            self._memory.append(SealedBatch(self.writer_id, self._seq, payload, messages,
                                            time.time()))
            self._memory_bytes += len(payload)
            if (len(self._memory) > self.cfg.backlog_max_batches
                    or self._memory_bytes > self.cfg.backlog_max_bytes):
                self._spill_oldest()
            self._cond.notify_all()  # the thread, not only a drain() waiting
            return self._seq

    @property
    def backlog(self) -> int:
        """Batches waiting in memory (including the one being applied, if from memory)."""
        return len(self._memory) + int(self._current is not None and self._current_in_memory)

    @property
    def journal_batches(self) -> int:
        """Batches waiting in the journal (including one being applied from it)."""
        return self._journal_count

    def _pending(self) -> bool:
        return bool(self._current or self._replay or self._replay_seg or self._segments
                    or self._memory)

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted batch is applied; False if time ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending(), timeout)

    def spill_all(self) -> int:
        """Stop applying and journal every batch that is only in memory (at shutdown).

        Returns how many were journaled; any that could not be are logged as lost.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            pending = list(self._memory)
            if self._current is not None and self._current_in_memory:
                # Maybe applied already: then the marker makes its replay a no-op.
                pending.insert(0, self._current)
            self._memory.clear()
            self._memory_bytes = 0
            lost = self._write_segments(pending) if self._journal_ok else pending
            if lost:
                log.error("%d batch(es) (%d messages) Redis did not take are lost: %s", len(lost),
                          sum(b.messages for b in lost),
                          "the journal is not usable" if not self._journal_ok else
                          "writing the journal failed")
            return len(pending) - len(lost)

    def stop(self) -> None:
        """Stop the thread (a call stuck on Redis is abandoned) and release the journal."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=0.5)
        self.journal.close()

    # --- the journal (called with _cond held) ---------------------------------------

    def _spill_oldest(self) -> None:
        """Move the oldest memory batches to the journal, down to half the bounds."""
        if not self._journal_ok or time.monotonic() < self._spill_paused_until:
            return
        taken: list[SealedBatch] = []
        while self._memory and (len(self._memory) > self.cfg.backlog_max_batches // 2
                                or self._memory_bytes > self.cfg.backlog_max_bytes // 2):
            batch = self._memory.popleft()
            self._memory_bytes -= len(batch.payload)
            taken.append(batch)
        unwritten = self._write_segments(taken)
        if unwritten:  # back where they were, still oldest first
            self._memory.extendleft(reversed(unwritten))
            self._memory_bytes += sum(len(b.payload) for b in unwritten)
            self._spill_paused_until = time.monotonic() + SPILL_PAUSE_SECONDS

    def _write_segments(self, batches: list[SealedBatch]) -> list[SealedBatch]:
        """Write batches as segments, oldest first; returns those that could not be."""
        done = 0
        for run in self.journal.split(batches):
            try:
                seg = self.journal.write(run)
            except OSError as exc:
                log.error("cannot write to the journal %s (%s); %d batch(es) stay in memory",
                          self.journal.dir, exc, len(batches) - done)
                return batches[done:]
            self._segments.append(seg)
            self._segments.sort(key=lambda s: s.path.name)
            self._journal_count += seg.count
            self.journaled_batches += seg.count
            done += len(run)
        return []

    # --- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next()
            if batch is None or not self._apply_with_retry(batch):
                return
            self._done()

    def _next(self) -> SealedBatch | None:
        """The oldest batch not yet applied (loading a segment if needed); None: stop."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._pending())
                if self._stopping:
                    return None
                if self._replay:
                    return self._take(self._replay.popleft(), in_memory=False)
                if not self._segments:
                    batch = self._memory.popleft()
                    self._memory_bytes -= len(batch.payload)
                    return self._take(batch, in_memory=True)
                seg = self._replay_seg = self._segments.pop(0)
            try:  # outside the lock: the loop may spill meanwhile
                batches = self.journal.read(seg)
            except JournalError as exc:
                log.error("%s; moved aside as .corrupt, its %d batch(es) are not applied",
                          exc, seg.count)
                self.journal.quarantine(seg)
                batches = []
            with self._cond:
                self._replay.extend(batches)
                self._journal_count -= seg.count - len(batches)
                if not batches:
                    self._replay_seg = None

    def _take(self, batch: SealedBatch, *, in_memory: bool) -> SealedBatch:
        self._current, self._current_in_memory = batch, in_memory
        return batch

    def _done(self) -> None:
        """The current batch is applied: forget it, and its segment once fully applied."""
        with self._cond:
            if not self._current_in_memory:
                self._journal_count -= 1
                if not self._replay and self._replay_seg is not None:
                    try:
                        self.journal.remove(self._replay_seg)
                    except OSError as exc:  # replaying it again later is harmless
                        log.warning("cannot remove journal segment %s: %s",
                                    self._replay_seg.path, exc)
                    self._replay_seg = None
            self._current = None
            if self._catching_up is not None and not self._pending():
                since, before = self._catching_up
                self._catching_up = None
                log.info("caught up after the Redis outage: %d batch(es) applied in %.1f s",
                         self.applied_batches - before, time.monotonic() - since)
            self._cond.notify_all()

    def _apply_with_retry(self, batch: SealedBatch) -> bool:
        """Apply, retrying with capped exponential backoff; False if stopped first."""
        delay = FIRST_RETRY_SECONDS
        self._tried = self._published = False
        while True:
            try:
                self._apply(batch)
                return True
            except redis.ResponseError as exc:
                if not is_script_error(exc):
                    self._on_failure(exc, delay)
                else:  # the same batch would fail again, forever: set it aside
                    self._set_aside(batch, exc)
                    return True
            except (redis.RedisError, OSError) as exc:
                # A connectivity problem, or Redis refusing for now (BUSY, OOM, LOADING,
                # ACL): retry either way, since dropping the batch would lose data.
                self._on_failure(exc, delay)
            except Exception as exc:  # the client library failing oddly: the thread must live
                if self.outage_since is None:  # the traceback once, not at every retry
                    log.warning("unexpected error applying batch %d", batch.seq, exc_info=True)
                self._on_failure(exc, delay)
            if self._sleep(delay):
                return False
            delay = min(delay * 2, self.cfg.retry_max_seconds)

    def _apply(self, batch: SealedBatch) -> None:
        started = time.monotonic()
        marker = self.marker if batch.writer == self.writer_id else ingest_applied(batch.writer)
        ops, pubs = split_payload(batch.payload)
        keys: list[Any] = [marker]
        args: list[Any] = [batch.seq, ops, self.retention]
        first, self._tried = not self._tried, True
        if self._published:
            pubs = None  # an earlier attempt sent them, or may have: at most once
        if (pubs is not None and first and self._current_in_memory and self.publisher.raw
                and self._script_loaded):
            # Never sent before, so not a duplicate: the publications can ride behind it.
            result = self._apply_and_publish(keys, args, pubs)
            pubs = None
        else:
            result = self.script(keys=keys, args=args)  # loads the script if Redis lacks it
        self._script_loaded = True
        applied, failed = int(result[0]), int(result[1])
        if applied < 0:
            self.duplicates_skipped += 1
            log.info("batch %d of writer %s was applied before the connection dropped; "
                     "not applied again", batch.seq, batch.writer)
        elif pubs is not None:
            # At most once: a connection lost from here on leaves the batch applied, and
            # its retry (a duplicate to the script) publishes nothing.
            self._published = True
            self.publisher.publish(pubs)
        self.last_latency = time.monotonic() - started
        self.applied_batches += 1
        self.applied_messages += batch.messages
        if failed:
            self.failed_ops += failed
            log.warning("%d Redis operations of batch %d failed (wrong key type?)",
                        failed, batch.seq)
        if self.outage_since is not None:
            self._on_recovery()

    def _apply_and_publish(self, keys: list[Any], args: list[Any], pubs: memoryview) -> Any:
        def sending() -> None:
            self._published = True
        try:
            return self.publisher.apply_and_publish(self.script.sha, keys, args, pubs, sending)
        except redis.exceptions.NoScriptError:
            # SCRIPT FLUSH: the publications went out already, a moment before the data;
            # the script object loads the script and runs it.
            return self.script(keys=keys, args=args)

    def _set_aside(self, batch: SealedBatch, exc: Exception) -> None:
        """A batch the script itself failed on (a bug, not an outage): keep it for the
        operator, never replay it, go on with the next ones.  A Lua error is not rolled
        back, so retrying would repeat whatever the script did before failing."""
        self.rejected_batches += 1
        where = "not saved: no journal"
        if self._journal_ok:
            try:
                where = f"saved in {self.journal.write([batch], into=REJECTED_DIR).path}"
            except OSError as exc2:
                where = f"not saved: {exc2}"
        log.error("the batch script failed on batch %d of writer %s (%d messages): %s; the "
                  "batch is set aside (%s) and the next ones go on", batch.seq, batch.writer,
                  batch.messages, describe_redis_error(exc), where)

    def _on_recovery(self) -> None:
        assert self.outage_since is not None
        down = time.time() - self.outage_since
        self.outage_seconds_total += down
        self.outage_since = None
        self._catching_up = (time.monotonic(), self.applied_batches - 1)
        # The counts still include the batch just applied: it was held too.
        log.warning("Redis at %s is back after %.1f s; replaying %d batch(es) held meanwhile "
                    "(%d from the journal)", self._redis_url, down,
                    self.backlog + self.journal_batches, self.journal_batches)

    def _on_failure(self, exc: Exception, delay: float) -> None:
        self._script_loaded = False
        now = time.monotonic()
        if self.outage_since is None:
            self.outage_since = time.time()
            self._next_reminder = now + OUTAGE_REMINDER_SECONDS
            log.warning("Redis at %s unreachable (%s); holding batches (in memory up to %d, "
                        "then in the journal) and retrying", self._redis_url,
                        describe_redis_error(exc), self.cfg.backlog_max_batches)
        elif now >= self._next_reminder:
            self._next_reminder = now + OUTAGE_REMINDER_SECONDS
            log.warning("Redis at %s still unreachable after %.0f s (%s); %d batch(es) in "
                        "memory, %d in the journal", self._redis_url,
                        time.time() - self.outage_since, describe_redis_error(exc),
                        self.backlog, self.journal_batches)
        else:
            log.debug("Redis still unreachable (%s); retry in %.2f s",
                      describe_redis_error(exc), delay)

    def _sleep(self, seconds: float) -> bool:
        """Sleep, unless stopping; True if the writer should give up now."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=seconds)
            return self._stopping

    @property
    def outage_seconds(self) -> float:
        """How long the current outage has lasted (0 when Redis is reachable)."""
        since = self.outage_since
        return time.time() - since if since is not None else 0.0
