"""An optional Prometheus endpoint (``metrics.listen``), off by default.

A small stdlib HTTP server in a daemon thread serves ``GET /metrics`` in the
Prometheus text exposition format (version 0.0.4).  Nothing is counted for it:
at each scrape it reads the counters the loop keeps anyway (``InstanceStats``
and the writer's figures), so the hot path pays nothing.  Reading them from
another thread is safe because the loop only ever increments ints and Counter
entries, and a ``dict(counter)`` copy is atomic under the GIL.

Why not ``prometheus-client``: it would duplicate every counter the loop
already keeps (or need a custom collector, i.e. this module anyway) and add a
runtime dependency for thirty lines of text formatting.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from helpers.config import parse_listen
from helpers.stats import InstanceStats

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WriterFigures(Protocol):
    """What the exposition reads from the Redis writer."""

    @property
    def backlog(self) -> int: ...

    @property
    def journal_batches(self) -> int: ...

    last_latency: float
    outage_since: float | None
    outage_seconds_total: float
    applied_batches: int
    applied_messages: int
    failed_ops: int
    journaled_batches: int


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Exposition:
    """Builds the text: one HELP/TYPE header per metric, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{inner}}} {value:g}")
            else:
                self.lines.append(f"{name} {value:g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _per_topic(stats: list[InstanceStats]) -> dict[str, list[tuple[dict[str, str], float]]]:
    """received/processed/skipped/errors per (instance, topic).

    The loop counts every frame per topic but only the rare outcomes (skipped,
    errors) per topic; processed is what remains.
    """
    out: dict[str, list[tuple[dict[str, str], float]]] = {
        "received": [], "processed": [], "skipped": [], "errors": []}
    for s in stats:
        topics, skipped, errors = dict(s.topics), dict(s.topic_skipped), dict(s.topic_errors)
        for topic in sorted(topics):
            labels = {"instance": s.name, "topic": topic}
            n, k, e = topics[topic], skipped.get(topic, 0), errors.get(topic, 0)
            out["received"].append((labels, n))
            out["skipped"].append((labels, k))
            out["errors"].append((labels, e))
            out["processed"].append((labels, max(0, n - k - e)))
    return out


def render_metrics(stats: list[InstanceStats], writer: WriterFigures,
                   now: float | None = None) -> str:
    """The exposition text for these instances and this writer."""
    now = time.time() if now is None else now
    x = _Exposition()
    for outcome, samples in _per_topic(stats).items():
        x.metric(f"misp_ingest_{outcome}_total", "counter",
                 f"Messages {outcome} since start, per MISP instance and topic.", samples)
    x.metric("misp_ingest_reasons_total", "counter",
             "Skipped messages and effects that could not happen, by reason.",
             [({"instance": s.name, "reason": r}, n)
              for s in stats for r, n in sorted(dict(s.reasons).items())])
    x.metric("misp_ingest_connected", "gauge", "1 while the ZeroMQ feed is connected.",
             [({"instance": s.name}, int(s.connected)) for s in stats])
    x.metric("misp_ingest_last_message_timestamp_seconds", "gauge",
             "When the feed last sent a message (0: never).",
             [({"instance": s.name}, s.last_message) for s in stats])
    _writer_metrics(x, writer, now)
    return x.text()


def _writer_metrics(x: _Exposition, w: WriterFigures, now: float) -> None:
    since = w.outage_since
    current = now - since if since is not None else 0.0
    x.metric("misp_ingest_backlog_batches", "gauge",
             "Sealed batches waiting for Redis in memory.", [({}, w.backlog)])
    x.metric("misp_ingest_journal_batches", "gauge",
             "Sealed batches waiting for Redis in the journal on disk.",
             [({}, w.journal_batches)])
    x.metric("misp_ingest_journaled_batches_total", "counter",
             "Batches written to the journal since start (Redis down or slow).",
             [({}, w.journaled_batches)])
    x.metric("misp_ingest_redis_latency_seconds", "gauge",
             "Round trip of the last batch applied to Redis.", [({}, w.last_latency)])
    x.metric("misp_ingest_redis_outage", "gauge", "1 while Redis is unreachable.",
             [({}, int(since is not None))])
    x.metric("misp_ingest_redis_outage_seconds_total", "counter",
             "Time Redis was unreachable since start, the current outage included.",
             [({}, w.outage_seconds_total + current)])
    x.metric("misp_ingest_redis_batches_total", "counter",
             "Batches applied to Redis.", [({}, w.applied_batches)])
    x.metric("misp_ingest_redis_messages_total", "counter",
             "Messages whose effects were applied to Redis.", [({}, w.applied_messages)])
    x.metric("misp_ingest_redis_failed_ops_total", "counter",
             "Redis operations that failed inside a batch (wrong key type...).",
             [({}, w.failed_ops)])


class MetricsServer:
    """Serves ``render()`` at ``/metrics`` on ``listen`` ("host:port") from a thread."""

    def __init__(self, listen: str, render: Callable[[], str]) -> None:
        self.host, self.port = parse_listen(listen)
        self.render = render
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> None:
        """Bind (raises OSError if the port is taken) and serve in a daemon thread."""
        handler = _handler_class(self.render)
        server_cls = _IPv6Server if ":" in self.host else ThreadingHTTPServer
        self._server = server_cls((self.host, self.port), handler)
        self.port = self._server.server_address[1]  # the real one when 0 was asked for
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="metrics",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_class(render: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            try:
                body = render().encode()
            except Exception:  # a scrape must never take the daemon down
                log.exception("rendering the metrics failed")
                self.send_error(500)
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None  # one line per scrape would drown the daemon's log

    return Handler
