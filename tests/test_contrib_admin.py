"""The ``admin`` command: badges and manual requirements, given, shown, taken."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

import zmq_subscriber
from helpers.redis_server import RedisServer
from tests.contrib_support import Harness, attribute, awards


@pytest.fixture
def cfg_path(tmp_path: Path, redis_server: RedisServer) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"redis:\n  url: {redis_server.url}\ntimezone: UTC\n")
    return str(path)


def admin(cfg_path: str, *args: str) -> int:
    return zmq_subscriber.main(["--config", cfg_path, "admin", *args])


def today() -> str:
    return time.strftime("%Y%m%d", time.gmtime())


def test_badge_round_trip(r: redis.Redis, cfg_path: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    sub = r.pubsub()
    sub.subscribe("lastAwards")
    sub.get_message(timeout=1)
    before = int(time.time())
    assert admin(cfg_path, "give-badge", "Org Ü", "2") == 0
    assert r.get("CONTRIB_ORG:Org Ü:BADGE_2") == b"1"
    assert r.ttl("CONTRIB_ORG:Org Ü:BADGE_2") == -1  # badges do not expire
    (award,) = awards(r, today())
    assert award["org"] == "Org Ü" and award["award"] == ["badge", 2]
    assert before <= award["epoch"] <= time.time()
    msg = sub.get_message(timeout=2)
    assert msg is not None and msg["type"] == "message"
    published = json.loads(msg["data"])
    assert published["name"] == "CONTRIBUTION" and json.loads(published["log"]) == award

    assert admin(cfg_path, "give-badge", "Org Ü", "2") == 0  # already held: no second award
    assert len(awards(r, today())) == 1
    assert sub.get_message(timeout=0.3) is None

    capsys.readouterr()
    assert admin(cfg_path, "show", "Org Ü") == 0
    shown = capsys.readouterr().out
    assert "  [x] 2 Is a donator for the MISP project" in shown
    assert "  [ ] 1 Has made at least one pull request on the MISP project" in shown

    assert admin(cfg_path, "take-badge", "Org Ü", "2") == 0
    assert r.exists("CONTRIB_ORG:Org Ü:BADGE_2") == 0
    assert admin(cfg_path, "show", "Org Ü") == 0
    assert "  [ ] 2 Is a donator for the MISP project" in capsys.readouterr().out
    sub.close()


def test_badge_number_out_of_range_is_refused(r: redis.Redis, cfg_path: str) -> None:
    assert admin(cfg_path, "give-badge", "Org A", "6") == 2
    assert r.keys("*") == []


def test_manual_requirement_round_trip(r: redis.Redis, cfg_path: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert admin(cfg_path, "give-requirement", "Org A", "2") == 2  # earned, not given
    assert admin(cfg_path, "give-requirement", "Org A", "16") == 0
    assert r.get("CONTRIB_ORG:Org A:CONTRIB_REQ_16") == b"1"
    assert [a["award"] for a in awards(r, today())] == [["contribution_status", 16]]
    capsys.readouterr()
    admin(cfg_path, "show", "Org A")
    out = capsys.readouterr().out
    assert "rank: 1 (Ensign)" in out
    assert "  [x] 16 Honorable contributor (delivered by instance administrators)" in out
    assert admin(cfg_path, "take-requirement", "Org A", "16") == 0
    assert r.exists("CONTRIB_ORG:Org A:CONTRIB_REQ_16") == 0


def test_show_lists_points_requirements_and_trophies(r: redis.Redis, cfg_path: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    r.zadd("CONTRIB_TROPHY:other", {"Big": 100, "Small": 0})
    h = Harness(r)
    for _ in range(4):
        h.send("misp_json_attribute", attribute("Org A", "Network activity"))
    h.send("misp_json_attribute", attribute("Org A", "Other"))
    capsys.readouterr()
    assert admin(cfg_path, "show", "Org A") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["organisation: Org A", "points: 5", "rank: 1 (Ensign)"]
    assert any(line.startswith("  [x]  2 Contributing via attributes") and "expires in 36" in line
               for line in out)
    # network_activity: alone, so first; other: 2nd of 3 -> 1/3 = 33 % -> bucket <= 40 -> 12-5
    assert out[-2:] == ["  network_activity: 12 (Grand Master)", "  other: 7 (Skilled)"]
