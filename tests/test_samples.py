"""The bundled sample capture and the demo that publishes it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
import redis

from helpers.capture import read_capture
from helpers.config import Config, InstanceConfig, RedisConfig, WriterConfig
from helpers.daemon import replay_capture
from helpers.demo import run_demo
from helpers.message import FrameError, as_int, split_frame
from helpers.redis_server import RedisServer
from helpers.router import TOPICS
from helpers.samples import DEFAULT_PATH, PROFILES, render

FRAMES = list(read_capture(DEFAULT_PATH))


def test_generator_rewrites_the_bundled_capture_byte_for_byte() -> None:
    assert render() == DEFAULT_PATH.read_bytes()


def test_sample_has_every_topic_on_both_instances() -> None:
    seen = Counter((f.instance, f.frame.split(b" ", 1)[0].decode("latin-1")) for f in FRAMES)
    for profile in PROFILES:
        for topic in TOPICS:
            assert seen[(profile.name, topic)] >= 1, (profile.name, topic)
    assert 400 <= len(FRAMES) <= 1000
    assert [f.received for f in FRAMES] == sorted(f.received for f in FRAMES)


def test_sample_has_the_variants_of_a_real_fleet() -> None:
    raw = [f.frame for f in FRAMES]
    assert any(b'"id":"' in f for f in raw) and any(b'"id":4' in f for f in raw)
    legacy = [f for f in raw if b"\n    " in f]
    assert legacy and any(b"\\/" in f for f in legacy) and any(b"\\u" in f for f in legacy)
    assert any(b'"to_ids": "1"' in f for f in legacy) and any(b'"to_ids": 1' in f for f in legacy)
    assert any("🔒".encode() in f for f in raw) and any("السيبراني".encode() in f for f in raw)
    assert any(b'"EventTag":[]' in f for f in raw)
    for ip in (b"8.8.8.8", b"1.1.1.1", b"81.2.69.160", b"2001:4860:4860::8888", b"10.0.0.1",
               b"+7 495", b"+82 2", b"+98 21"):
        assert any(ip in f for f in raw), ip


def _decoded() -> list[tuple[str, str, object]]:
    out = []
    for f in FRAMES:
        try:
            topic, body = split_frame(f.frame)
        except FrameError:
            continue
        out.append((f.instance, topic, body))
    return out


def test_replaying_the_sample_lands_what_it_holds(tmp_path: Path, r: redis.Redis,
                                                  redis_server: RedisServer) -> None:
    decoded = _decoded()
    cfg = Config(redis=RedisConfig(url=redis_server.url),
                 instances=tuple(InstanceConfig(p.name) for p in PROFILES), timezone="UTC",
                 writer=WriterConfig(journal_dir=str(tmp_path / "journal")))
    stats = replay_capture(cfg, str(DEFAULT_PATH), progress=False)
    bad = len(FRAMES) - len(decoded)
    unknown = sum(1 for _, t, _ in decoded if t not in TOPICS)
    not_objects = sum(1 for _, t, b in decoded if not isinstance(b, dict)
                      and t != "misp_json_workflow")
    assert sum(s.received for s in stats.values()) == len(FRAMES)
    assert sum(s.skipped for s in stats.values()) == bad + unknown + not_objects
    assert sum(s.errors for s in stats.values()) == 0
    sightings = Counter(as_int(b["Sighting"]["type"]) for _, t, b in decoded
                        if t == "misp_json_sighting"
                        and b.get("action") == "add")  # type: ignore[union-attr]
    assert r.get("TRENDINGS_SIGHT_sightings:20241014") == str(sightings[0]).encode()
    assert r.get("TRENDINGS_SIGHT_false_positive:20241014") == str(sightings[1]).encode()
    logins = Counter(b["Log"]["org"] for _, t, b in decoded  # type: ignore[index]
                     if t == "misp_json_audit" and isinstance(b, dict)
                     and b.get("Log", {}).get("action") == "login")
    got = {m.decode(): int(s) for m, s in r.zrange("LOGIN_ORG:20241014", 0, -1,
                                                   withscores=True)}
    assert got == dict(logins) and len(got) >= 5
    assert r.zcard("GEO_COUNTRY:20241014") >= 5


def test_demo_publishes_the_sample_and_summarises(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(None) == 0
    out = capsys.readouterr().out
    lines = {line.split("  ")[0]: line for line in out.splitlines() if "  " in line}
    assert lines["Top categories"].split("  ", 1)[1].strip().startswith("Network activity (")
    for label in ("Top organisations", "Countries", "Logins by organisation", "Events", "Tags",
                  "Sightings", "Discussions"):
        assert label in lines, out
    expected = Counter(f.instance for f in FRAMES)
    statuses = [line.split() for line in out.splitlines() if line.split()[:1] and
                line.split()[0] in expected]
    assert {s[0]: s[2] for s in statuses} == {k: str(v) for k, v in expected.items()}
    assert all(s[5] == "0" for s in statuses)  # no errors


def test_demo_fails_clearly_on_a_missing_capture(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(str(tmp_path / "none.jsonl")) == 1
    assert "cannot read the capture" in capsys.readouterr().err


def test_demo_fails_clearly_on_an_empty_capture(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(orjson.dumps({"not": "a capture line"}) + b"\n")
    assert run_demo(str(path)) == 1
    assert "holds no frames" in capsys.readouterr().err


def test_demo_publishes_any_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from helpers.capture import encode_line
    from tests.factories import attribute_msg, audit_login_msg, frame

    path = tmp_path / "mine.jsonl"
    path.write_bytes(encode_line("lab", 1.0, frame("misp_json_attribute", attribute_msg()))
                     + encode_line("lab", 2.0, frame("misp_json_audit",
                                                     audit_login_msg("Lab CERT"))))
    assert run_demo(str(path)) == 0
    out = capsys.readouterr().out
    assert "2 frames of 1 MISP instance(s) (lab)" in out
    assert "Top categories          Network activity (1)" in out
    assert "Logins by organisation  Lab CERT (1)" in out
    assert "Countries               US (1)" in out
    lab = [line.split() for line in out.splitlines() if line.startswith("lab ")]
    assert lab and lab[0][:6] == ["lab", "NO", "2", "2", "0", "0"]
