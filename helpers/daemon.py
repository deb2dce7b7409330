"""The loop: ZeroMQ feeds in, batches of Redis operations out.

``Daemon.step()`` does one iteration (poll every feed with a bounded timeout,
handle what arrived, seal the batch when its window is over); ``Daemon.run()``
owns the loop, the signals and the shutdown.  Signal handlers only set flags.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from helpers import keys
from helpers.batch import Batch
from helpers.clock import DayClock
from helpers.config import Config, InstanceConfig
from helpers.contributor_helper import Contributions
from helpers.geo_helper import Geo
from helpers.live_helper import Live
from helpers.metrics import MetricsServer, render_metrics
from helpers.observations import InstanceState
from helpers.router import Dispatcher, Feature
from helpers.sdnotify import Notifier
from helpers.stats import InstanceStats
from helpers.trendings_helper import Trendings
from helpers.users_helper import Users
from helpers.writer import RedisWriter, describe_redis_error, text

log = logging.getLogger(__name__)

DRAIN_PER_POLL = 2000  # frames taken from one socket before looking at the others
AUTH_RETRY_SECONDS = 30.0  # between two attempts with credentials MISP refused
SWITCH_INTERVAL_SECONDS = 0.00002  # see Daemon.run
GC_THRESHOLDS = (20000, 20, 20)
SHUTDOWN_DRAIN_SECONDS = 3.0  # of the 5 s the issue allows; the writer may take 2 s more to stop
_MONITOR_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
                   | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                   | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_CLOSED)


def build_features(cfg: Config) -> list[Feature]:
    """Every feature, in the order their handlers run for one observation."""
    return [Trendings(), Geo(cfg), Contributions(cfg), Users(), Live(cfg.channels, cfg.live)]


class Daemon:
    def __init__(self, cfg: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.now = clock
        self.features = build_features(cfg)
        self.instances = {
            i.name: (InstanceState(i.name, login_source=cfg.users.login_source),
                     InstanceStats(i.name))
            for i in cfg.instances
        }
        procs: dict[str, str] = {}
        for feature in self.features:
            procs.update(feature.procs)
        self.writer = RedisWriter(cfg.redis, cfg.writer, procs, cfg.retention_days,
                                  journal_dir=cfg.resolve(cfg.writer.journal_dir))
        self.dispatcher = Dispatcher(self.features, DayClock(cfg.timezone), self.instances,
                                     self._seal, max_message_bytes=cfg.max_message_bytes,
                                     dead_letter_max=cfg.dead_letter_max)
        self.zmq = zmq.Context()
        self.sockets: dict[zmq.Socket[Any], str] = {}
        self.monitors: dict[zmq.Socket[Any], str] = {}
        self.poller = zmq.Poller()
        self.notifier = Notifier()
        self.stop_requested = False
        self.reload_requested = False
        self._batch_opened: float | None = None
        self._next_status = 0.0
        self._next_summary = 0.0
        self._next_watchdog = 0.0
        self._silence_warned: set[str] = set()
        self.metrics: MetricsServer | None = None
        self._auth_failed: set[str] = set()  # instances whose last handshake was refused
        self._redial_at: dict[str, float] = {}  # instance -> when to dial again
        # Real (monotonic) time of the last frame per feed: the silence check must not
        # depend on the clock handed to the features, which a test or a replay may fix.
        self._last_seen: dict[str, float] = {}
        self._started = time.monotonic()

    # --- set-up ---------------------------------------------------------------------

    def start(self) -> None:
        """Open the metrics endpoint, load remembered state, start the writer, connect feeds."""
        if self.cfg.metrics.listen is not None:
            # First, so that a port already in use stops us before anything else started.
            self.metrics = MetricsServer(self.cfg.metrics.listen, self.render_metrics)
            try:
                self.metrics.start()
            except OSError as exc:
                raise SystemExit(f"metrics.listen {self.cfg.metrics.listen}: cannot listen "
                                 f"({exc.strerror})") from None
            log.info("Prometheus metrics on http://%s/metrics", self.metrics.address)
        self._load_state()
        self.writer.start()
        for inst in self.cfg.instances:
            self._connect(inst)
        now = self._started = time.monotonic()
        self._next_summary = now + self.cfg.summary_interval_seconds
        log.info("started: %d MISP feed(s), Redis writer %s", len(self.sockets),
                 self.writer.writer_id)

    def _connect(self, inst: InstanceConfig) -> None:
        sock = self.zmq.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, 0)  # never drop on our side; we drain fast
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        if inst.username is not None and inst.password is not None:
            # PLAIN credentials must be set before connect(), or nothing ever arrives.
            sock.plain_username = inst.username.encode()
            sock.plain_password = inst.password.encode()
        monitor = sock.get_monitor_socket(_MONITOR_EVENTS)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(inst.url)
        self.sockets[sock] = inst.name
        self.monitors[monitor] = inst.name
        self.poller.register(sock, zmq.POLLIN)
        self.poller.register(monitor, zmq.POLLIN)
        log.info("%s: subscribing to %s%s", inst.name, inst.url,
                 " with PLAIN credentials" if inst.username else "")

    def _load_state(self, names: list[str] | None = None) -> None:
        """The organisation directory and thread titles survive restarts in Redis
        (``names``: only these instances; default: all)."""
        try:
            for name in names if names is not None else list(self.instances):
                state = self.instances[name][0]
                client = self.writer.client
                for org_id, org in client.hgetall(keys.ingest_orgs(name)).items():
                    state.orgs[text(org_id)] = text(org)
                for thread_id, title in client.hgetall(keys.ingest_threads(name)).items():
                    state.remember_thread(text(thread_id), text(title))
        except Exception as exc:  # Redis down at start: learn again from the feed
            log.warning("could not load the organisation directory from Redis (%s); "
                        "starting with an empty one", describe_redis_error(exc))

    # --- the loop -------------------------------------------------------------------

    def step(self, timeout_ms: int = 100) -> None:
        """One iteration: poll, handle what arrived, seal and report when due."""
        if self._batch_opened is not None:
            due = self._batch_opened + self.cfg.writer.flush_interval_ms / 1000
            timeout_ms = max(0, min(timeout_ms, int((due - time.monotonic()) * 1000) + 1))
        for sock, _ in self.poller.poll(timeout_ms):
            if sock in self.sockets:
                self._drain(sock, self.sockets[sock])
            else:
                self._on_monitor_event(sock, self.monitors[sock])
        self._maybe_seal()
        self._periodic()

    def _drain(self, sock: zmq.Socket[Any], instance: str) -> None:
        handle = self.dispatcher.handle
        monotonic = time.monotonic
        # The flush window opens with the first frame, not after the drain: a long drain
        # (a burst, a big event) stops when the window is over so the batch is sealed on
        # time -- the live delay stays bounded and batches stay small.
        opened = self._batch_opened if self._batch_opened is not None else monotonic()
        window = self.cfg.writer.flush_interval_ms / 1000
        now = self.now
        received = 0
        for n in range(DRAIN_PER_POLL):
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            received += 1
            # One buffer, read in place: the frame is never copied into a second one
            # (recv(copy=True) is a little faster, but holds a big event twice a moment).
            handle(instance, frame.buffer, now())
            if n & 31 == 31 and monotonic() - opened >= window:
                break
        if received:
            self._last_seen[instance] = monotonic()
        if self._batch_opened is None and self.dispatcher.batch:
            self._batch_opened = opened
        if self.dispatcher.batch.messages >= self.cfg.writer.max_batch_messages:
            self._seal(self.dispatcher.take_batch())

    def _maybe_seal(self) -> None:
        if self._batch_opened is None:
            return
        if time.monotonic() - self._batch_opened >= self.cfg.writer.flush_interval_ms / 1000:
            self._seal(self.dispatcher.take_batch())

    def _seal(self, batch: Batch) -> None:
        self._batch_opened = None
        if batch:
            self.writer.submit(batch.encode(self.cfg.retention_days), batch.messages)

    def _periodic(self) -> None:
        now = time.monotonic()
        if now >= self._next_status:
            self._next_status = now + self.cfg.status_interval_seconds
            self.write_status()
            self._check_silence()
        if now >= self._next_summary:
            self._next_summary = now + self.cfg.summary_interval_seconds
            self.log_summary()
        if self.notifier.watchdog_interval and now >= self._next_watchdog:
            self._next_watchdog = now + self.notifier.watchdog_interval
            self.notifier.watchdog()
        if self.reload_requested:
            self.reload_requested = False
            self._reload()
        for instance, due in list(self._redial_at.items()):
            if now >= due:
                del self._redial_at[instance]
                self._redial(instance)

    def _redial(self, instance: str) -> None:
        """Connect a feed's socket to its endpoint again (after a refused handshake)."""
        (inst,) = [i for i in self.cfg.instances if i.name == instance]
        for sock, name in self.sockets.items():
            if name == instance:
                with contextlib.suppress(zmq.ZMQError):  # libzmq may have dropped it already
                    sock.disconnect(inst.url)
                sock.connect(inst.url)

    def write_status(self) -> None:
        """Add every instance's status hash to the current batch and seal it."""
        w = self.writer
        extra: dict[str, str | int | float] = {
            "backlog": w.backlog, "journal_batches": w.journal_batches,
            "redis_outage": int(w.outage_since is not None),
            "redis_outage_seconds": int(w.outage_seconds),
            "redis_outage_seconds_total": int(w.outage_seconds_total + w.outage_seconds),
            "writer": w.writer_id, "pid": os.getpid(),
            "publish_via": "client" if w.publisher.raw else "lua"}
        batch = self.dispatcher.batch
        for _, stats in self.instances.values():
            stats.write_status(batch, extra)
        self._seal(self.dispatcher.take_batch())

    def log_summary(self) -> None:
        lines = [stats.summary() for _, stats in self.instances.values()]
        for line in lines:
            log.info("%s backlog=%d journal=%d", line, self.writer.backlog,
                     self.writer.journal_batches)
        self.notifier.status("; ".join(lines))  # shown by systemctl status

    def _check_silence(self) -> None:
        """WARNING once when a feed has sent nothing for ``silence_warning_seconds``
        (disconnected, or connected but silent), INFO when it speaks again."""
        limit = self.cfg.silence_warning_seconds
        now = time.monotonic()
        for name, (_, stats) in self.instances.items():
            silent = now - self._last_seen.get(name, self._started)
            if silent > limit and name not in self._silence_warned:
                self._silence_warned.add(name)
                log.warning("%s: no message for %.0f s (connected=%d); MISP's keepalive only "
                            "comes when it is idle, so silence means the feed is down",
                            name, silent, stats.connected)
            elif silent <= limit and name in self._silence_warned:
                self._silence_warned.discard(name)
                log.info("%s: messages again", name)

    def _on_monitor_event(self, monitor: zmq.Socket[Any], instance: str) -> None:
        """Follow the connection state of a feed from its socket monitor's events."""
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_connection_event(instance, event)

    def _on_connection_event(self, instance: str, event: Mapping[str, Any]) -> None:
        stats = self.instances[instance][1]
        kind = event["event"]
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            if not stats.connected:
                log.info("%s: connected to %s", instance, event["endpoint"].decode())
            stats.connected = True
            self._auth_failed.discard(instance)
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            stats.connected = False
            # libzmq gives up on an endpoint that refused our credentials: dial again later,
            # so that a password fixed on the MISP side is picked up without a restart.
            level = logging.DEBUG if instance in self._auth_failed else logging.WARNING
            self._auth_failed.add(instance)
            self._redial_at[instance] = time.monotonic() + AUTH_RETRY_SECONDS
            log.log(level, "%s: MISP refused our ZeroMQ PLAIN credentials (check username and "
                    "password); trying again every %.0f s", instance, AUTH_RETRY_SECONDS)
        elif kind in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
            stats.connected = False
            log.warning("%s: ZeroMQ handshake failed (does MISP require PLAIN credentials?)",
                        instance)
        elif kind == zmq.EVENT_DISCONNECTED:
            if stats.connected:
                log.warning("%s: disconnected from MISP; reconnecting", instance)
            stats.connected = False

    def render_metrics(self) -> str:
        """The Prometheus exposition of the counters (runs in the metrics thread)."""
        return render_metrics([stats for _, stats in self.instances.values()], self.writer)

    def _reload(self) -> None:
        # Logs first, so that the lines below already land in the new file.
        for handler in logging.getLogger().handlers:
            reopen = getattr(handler, "reopen", None)
            if reopen is not None:
                reopen()
        log.info("SIGHUP: log files reopened; reloading the GeoIP database")
        for feature in self.features:
            reload = getattr(feature, "reload", None)
            if reload is None:
                continue
            try:
                reload()
            except Exception:  # keep the old database rather than stop the daemon
                log.exception("SIGHUP: %s.reload() failed; keeping what was loaded",
                              type(feature).__name__)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code."""
        self._install_signals()
        # The Redis writer thread needs the GIL briefly after each of its system calls,
        # and the busy loop gives it away at every frame it receives (pyzmq releases it
        # around zmq_msg_recv) but takes it straight back, before the woken writer can:
        # the writer keeps waiting, and each of those hand-overs costs the loop a futex
        # wake-up.  A waiting thread only asks for the GIL once a whole switch interval
        # passes without a hand-over, and every wake-up restarts that wait; an interval
        # shorter than the time between two frames (~30 us) ends the contest at once.
        # 20 us against 500: the writer thread's CPU halves, the loop's falls about 3 %
        # (doc/performance.md, "The writer and the GIL").
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        self.start()
        # Everything loaded so far (modules, the GeoIP reader, the ranking) lives as long as
        # the process: keep it out of the collector's scans.  Messages make no reference
        # cycles, so the youngest generation is collected less often than the default 700.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.notifier.ready()
        try:
            while not self.stop_requested:
                self.step()
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """Stop receiving, flush what is pending, close everything."""
        self.notifier.stopping()
        log.info("stopping: no longer receiving; flushing %d pending message(s) and %d batch(es)",
                 self.dispatcher.batch.messages, self.writer.backlog)
        # Closing the SUB sockets first means nothing more arrives while we flush.
        for sock in list(self.sockets) + list(self.monitors):
            self.poller.unregister(sock)
        for sock in self.sockets:
            sock.disable_monitor()
        for sock in list(self.sockets) + list(self.monitors):
            sock.close(linger=0)
        for _, stats in self.instances.values():
            stats.connected = False
        self.write_status()  # seals the current batch together with the final status
        # In an outage, waiting for Redis is pointless: journal at once (the 5 s budget).
        wait = SHUTDOWN_DRAIN_SECONDS if self.writer.outage_since is None else 0.2
        if not self.writer.drain(wait):
            saved = self.writer.spill_all()
            log.warning("Redis did not take the last batches before the stop; %d batch(es) "
                        "saved to the journal %s for the next start (%d there in all)", saved,
                        self.writer.journal.dir, self.writer.journal_batches)
        self.writer.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.log_summary()
        self.zmq.destroy(linger=0)

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            if self.stop_requested:
                # The second one: leave at once.  No logging here: the main thread may be
                # inside a logging handler's lock; a raw write to stderr is safe.
                os.write(2, b"second stop signal: exiting at once, pending batches are lost\n")
                os._exit(128 + signum)
            self.stop_requested = True

        def hup(signum: int, frame: FrameType | None) -> None:
            self.reload_requested = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)


def replay_capture(cfg: Config, path: str, *, progress: bool = True,
                   batch_messages: int = 1000) -> dict[str, InstanceStats]:
    """Push a capture through the handlers with its recorded receive times.

    Frames of instances the configuration does not name are replayed under the
    name recorded in the capture.  Returns the per-instance counters.
    """
    from helpers.capture import Progress, count_lines, read_capture

    daemon = Daemon(cfg)
    daemon._load_state()
    daemon.writer.start()
    total = count_lines(path)
    bar = Progress(total, "replay") if progress else None
    n = 0
    for n, item in enumerate(read_capture(path), 1):
        if item.instance not in daemon.instances:
            daemon.instances[item.instance] = (
                InstanceState(item.instance, login_source=cfg.users.login_source),
                InstanceStats(item.instance))
            daemon._load_state([item.instance])  # what an earlier replay learnt of it
        daemon.dispatcher.handle(item.instance, item.frame, item.received)
        if daemon.dispatcher.batch.messages >= batch_messages:
            daemon._seal(daemon.dispatcher.take_batch())
        if bar:
            bar.update(n)
    daemon.write_status()
    if bar:
        bar.update(n, force=True)
    if not daemon.writer.drain(300):
        log.error("Redis did not take the replayed batches in time")
    daemon.writer.stop()
    daemon.zmq.destroy(linger=0)  # no sockets, but the context has an I/O thread
    return {name: stats for name, (_, stats) in daemon.instances.items()}
