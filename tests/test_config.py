"""The daemon refuses a broken configuration before connecting anywhere, with exit
code 2 and a message naming the offending key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

VALID = """\
redis:
  url: redis://127.0.0.1:6390/0
instances:
  - name: misp1
    url: tcp://127.0.0.1:50000
timezone: Europe/Luxembourg
"""


def run(tmp_path: Path, text: str, *args: str,
        mode: int = 0o600) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return subprocess.run([sys.executable, str(ROOT / "zmq_subscriber.py"), *args, "--config",
                           str(path)], cwd=ROOT, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("text", "message"), [
    (VALID + "timezon: UTC\n", "timezon: unknown setting"),
    (VALID.replace("    url: tcp", "    pasword: x\n    url: tcp"),
     "instances[0].pasword: unknown setting"),
    (VALID + "live:\n  max_cache_histroy: 5\n", "live.max_cache_histroy: unknown setting"),
    (VALID + "live:\n  max_cache_history: many\n",
     "live.max_cache_history: expected int, got str 'many'"),
    (VALID + "channels: [1, 2]\n", "channels: expected a mapping, got list"),
    (VALID.replace("Europe/Luxembourg", "Mars/Olympus_Mons"),
     "timezone: unknown IANA time zone 'Mars/Olympus_Mons'"),
    (VALID.replace("  - name: misp1\n", "  - "), "instances[0].name: required setting is missing"),
    (VALID.replace("redis://", "http://"), "redis.url: expected redis://, rediss:// or unix://"),
    (VALID + "instances: []\n", "instances: expected a non-empty list"),
    ("redis: {url: [unclosed\n", "not valid YAML"),
])
def test_check_config_names_the_broken_key(tmp_path: Path, text: str, message: str) -> None:
    out = run(tmp_path, text, "--check-config")
    assert out.returncode == 2, out
    assert message in out.stderr, out.stderr
    assert out.stderr.startswith("configuration error: ")


def test_world_readable_config_with_a_password_is_refused(tmp_path: Path) -> None:
    text = VALID.replace("    url: tcp://127.0.0.1:50000",
                         "    url: tcp://127.0.0.1:50000\n    username: u\n"
                         "    password: hunter2-secret")
    out = run(tmp_path, text, "--check-config", mode=0o644)
    assert out.returncode == 2
    assert "holds passwords but is world-readable" in out.stderr and "chmod" in out.stderr
    assert "hunter2" not in out.stderr  # the password itself is never printed
    assert run(tmp_path, text, "--check-config", mode=0o600).returncode == 0


def test_valid_config_passes_the_check(tmp_path: Path) -> None:
    out = run(tmp_path, VALID, "--check-config")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("configuration OK: 1 instance(s)")


def test_daemon_refuses_to_start_on_a_broken_config(tmp_path: Path) -> None:
    out = run(tmp_path, VALID + "writer:\n  flush_interval_ms: fast\n")
    assert out.returncode == 2
    assert "writer.flush_interval_ms: expected int" in out.stderr
