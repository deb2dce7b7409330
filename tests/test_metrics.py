"""The optional Prometheus endpoint, scraped over HTTP from a running daemon."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from helpers.config import (
    Config,
    ConfigError,
    InstanceConfig,
    MetricsConfig,
    load_config,
)
from helpers.daemon import Daemon
from helpers.metrics import MetricsServer, render_metrics
from helpers.redis_server import RedisServer, free_port
from helpers.stats import InstanceStats
from tests.daemon_proc import Publisher, make_config, run_until, sighting

SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def parse(text: str) -> dict[tuple[str, str], float]:
    """Exposition text -> {(metric name, 'label="v",...'): value}; checks every line's shape."""
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m is not None, f"malformed line {line!r}"
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def scrape(port: int, path: str = "/metrics") -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.read().decode(), resp.headers["Content-Type"]


def test_metrics_are_off_by_default() -> None:
    assert Config().metrics.listen is None
    assert Daemon(Config()).metrics is None


def test_scrape_counts_per_instance_and_topic(r: redis.Redis,
                                              redis_server: RedisServer) -> None:
    pub = Publisher()
    port = free_port()
    cfg = make_config(redis_server.url,
                      metrics=MetricsConfig(listen=f"127.0.0.1:{port}"),
                 instances=(InstanceConfig("misp1", pub.url),))
    daemon = Daemon(cfg)
    daemon.start()
    try:
        pub.wait_subscriber()
        for i in range(7):
            pub.send("misp_json_sighting", sighting(i))
        pub.send("misp_json_sighting", b"{broken")
        pub.send("misp_json_unheard_of", b"{}")
        pub.send_frame(b"no-topic-at-all")
        stats = daemon.instances["misp1"][1]
        run_until(daemon, lambda: stats.received == 10, what="10 frames")
        daemon.write_status()
        assert daemon.writer.drain(10)
        text, content_type = scrape(port)
    finally:
        pub.close()
        daemon.shutdown()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    m = parse(text)
    sight = 'instance="misp1",topic="misp_json_sighting"'
    unheard = 'instance="misp1",topic="misp_json_unheard_of"'
    none = 'instance="misp1",topic="?"'
    outcomes = {f"misp_ingest_{o}_total" for o in ("received", "processed", "skipped", "errors")}
    assert {k: v for k, v in m.items() if k[0] in outcomes} == {
        ("misp_ingest_received_total", sight): 8, ("misp_ingest_processed_total", sight): 7,
        ("misp_ingest_skipped_total", sight): 1, ("misp_ingest_errors_total", sight): 0,
        ("misp_ingest_received_total", unheard): 1, ("misp_ingest_processed_total", unheard): 0,
        ("misp_ingest_skipped_total", unheard): 1, ("misp_ingest_errors_total", unheard): 0,
        ("misp_ingest_received_total", none): 1, ("misp_ingest_processed_total", none): 0,
        ("misp_ingest_skipped_total", none): 1, ("misp_ingest_errors_total", none): 0,
    }
    assert m[("misp_ingest_reasons_total", 'instance="misp1",reason="bad_json"')] == 1
    assert m[("misp_ingest_reasons_total", 'instance="misp1",reason="unknown_topic"')] == 1
    assert m[("misp_ingest_reasons_total", 'instance="misp1",reason="no_topic"')] == 1
    assert m[("misp_ingest_connected", 'instance="misp1"')] == 1
    assert m[("misp_ingest_backlog_batches", "")] == 0
    assert m[("misp_ingest_journal_batches", "")] == 0
    assert m[("misp_ingest_redis_outage", "")] == 0
    assert m[("misp_ingest_redis_outage_seconds_total", "")] == 0
    assert m[("misp_ingest_redis_messages_total", "")] == 9  # 7 sightings + 2 dead letters
    assert 0 < m[("misp_ingest_redis_latency_seconds", "")] < 5


def test_metrics_endpoint_answers_404_elsewhere_and_stops() -> None:
    server = MetricsServer("127.0.0.1:0", lambda: "x 1\n")
    server.start()
    port = server.port
    try:
        assert scrape(port) == ("x 1\n", "text/plain; version=0.0.4; charset=utf-8")
        with pytest.raises(urllib.error.HTTPError) as err:
            scrape(port, "/other")
        assert err.value.code == 404
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        scrape(port)


@dataclass
class Figures:
    """The writer's figures at one instant (what the exposition reads)."""

    backlog: int = 0
    journal_batches: int = 0
    journaled_batches: int = 0
    last_latency: float = 0.0
    outage_since: float | None = None
    outage_seconds_total: float = 0.0
    applied_batches: int = 0
    applied_messages: int = 0
    failed_ops: int = 0


def test_outage_time_includes_the_current_outage() -> None:
    stats = InstanceStats("a\"b")
    writer = Figures(backlog=12, outage_since=1000.0, outage_seconds_total=30.5,
                     last_latency=0.002, journal_batches=40, journaled_batches=41)
    m = parse(render_metrics([stats], writer, now=1010.0))
    assert m[("misp_ingest_redis_outage_seconds_total", "")] == 40.5
    assert m[("misp_ingest_redis_outage", "")] == 1
    assert m[("misp_ingest_backlog_batches", "")] == 12
    assert m[("misp_ingest_journal_batches", "")] == 40
    assert m[("misp_ingest_journaled_batches_total", "")] == 41
    assert m[("misp_ingest_redis_latency_seconds", "")] == 0.002
    assert m[("misp_ingest_connected", 'instance="a\\"b"')] == 0  # label value escaped


@pytest.mark.parametrize("listen", ["9108", "localhost:", "host:99999", ":9108"])
def test_a_malformed_listen_address_is_a_config_error(tmp_path: Path, listen: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f'metrics:\n  listen: "{listen}"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith("metrics.listen: expected host:port")


def test_a_port_in_use_stops_the_start_with_a_clear_message(redis_server: RedisServer) -> None:
    taken = MetricsServer("127.0.0.1:0", lambda: "")
    taken.start()
    cfg = make_config(redis_server.url,
                      metrics=MetricsConfig(listen=f"127.0.0.1:{taken.port}"))
    daemon = Daemon(cfg)
    try:
        with pytest.raises(SystemExit) as err:
            daemon.start()
        assert str(err.value) == (f"metrics.listen 127.0.0.1:{taken.port}: cannot listen "
                                  "(Address already in use)")
        assert not daemon.writer._thread.is_alive()  # nothing else was started
    finally:
        taken.stop()
        daemon.zmq.destroy(linger=0)
