"""The shipped unit file: its hardening, systemd's own verdict, and MemoryDenyWriteExecute."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from helpers.redis_server import RedisServer, free_port
from tests.daemon_proc import ROOT, DaemonProcess, Publisher, base_config, sighting, wait_for

UNIT = ROOT / "config" / "misp-ingest.service"
DROP_IN = ROOT / "config" / "misp-ingest.service.d" / "secrets.conf.example"
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
ATTRIBUTE = (b'{"action": "add", "Attribute": {"type": "ip-dst", "value": "81.2.69.160", '
             b'"category": "Network activity"}, "Event": {"Orgc": {"name": "CIRCL"}}}')


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value in order (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_runs_unprivileged_as_a_notify_service_with_watchdog_and_restart() -> None:
    service = parse_unit(UNIT.read_text())["Service"]
    expected = {
        "Type": ["notify"], "User": ["misp-ingest"], "Group": ["misp-ingest"],
        "StateDirectory": ["misp-ingest"], "Restart": ["on-failure"],
        "WatchdogSec": ["30s"], "TimeoutStopSec": ["10s"], "RestartPreventExitStatus": ["2"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
    }
    assert {k: service.get(k) for k in expected} == expected
    (exec_start,) = service["ExecStart"]
    assert exec_start.endswith("zmq_subscriber.py --config /etc/misp-ingest/config.yaml")


def test_unit_hardening_directives() -> None:
    service = parse_unit(UNIT.read_text())["Service"]
    expected = {
        "NoNewPrivileges": ["yes"], "CapabilityBoundingSet": [""], "AmbientCapabilities": [""],
        "ProtectSystem": ["strict"], "ProtectHome": ["yes"], "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"], "ProtectKernelTunables": ["yes"],
        "ProtectKernelModules": ["yes"], "ProtectKernelLogs": ["yes"],
        "ProtectControlGroups": ["yes"], "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
        "RestrictNamespaces": ["yes"], "LockPersonality": ["yes"],
        "MemoryDenyWriteExecute": ["yes"], "RestrictSUIDSGID": ["yes"],
        "RestrictRealtime": ["yes"], "SystemCallArchitectures": ["native"],
        "SystemCallFilter": ["@system-service", "~@privileged @resources"],
    }
    assert {k: service.get(k) for k in expected} == expected
    # The journal directory of the default configuration is the one systemd creates.
    assert "/var/lib/misp-ingest/journal".startswith("/var/lib/" + service["StateDirectory"][0])


def test_secrets_drop_in_passes_the_config_as_a_credential() -> None:
    service = parse_unit(DROP_IN.read_text())["Service"]
    assert service["LoadCredential"] == ["config.yaml:/etc/misp-ingest/config.yaml"]
    assert service["ExecStart"][0] == ""  # clears the unit's command first
    assert service["ExecStart"][1].endswith("zmq_subscriber.py --config %d/config.yaml")


def _installed_copy(tmp: Path) -> Path:
    """The unit and its drop-in with ExecStart pointing at this checkout (verify checks it)."""
    def localise(text: str) -> str:
        text = text.replace("/opt/misp-ingest/.venv/bin/python", sys.executable)
        return text.replace("/opt/misp-ingest/", f"{ROOT}/")
    unit = tmp / "misp-ingest.service"
    unit.write_text(localise(UNIT.read_text()))
    (tmp / "misp-ingest.service.d").mkdir()
    (tmp / "misp-ingest.service.d" / "secrets.conf").write_text(localise(DROP_IN.read_text()))
    return unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_accepts_unit_and_drop_in(tmp_path: Path) -> None:
    unit = _installed_copy(tmp_path)
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    # Unknown or misspelt directives are only warnings: any output is a failure.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_security_rates_the_unit_ok(tmp_path: Path) -> None:
    unit = _installed_copy(tmp_path)
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                           str(unit)], capture_output=True, text=True, timeout=60)
    if "--offline" in done.stderr:
        pytest.skip("systemd-analyze too old for --offline")
    m = re.search(r"Overall exposure level for misp-ingest.service: ([\d.]+)", done.stdout)
    assert m is not None, done.stdout + done.stderr
    assert float(m.group(1)) <= 1.5  # 10 is an unconfined service; 1.2 when this was written


def _mdwe() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_MDWE")


def _mdwe_supported() -> bool:
    probe = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_mdwe_or_exit,
                           capture_output=True)
    return probe.returncode == 0


def _mdwe_or_exit() -> None:
    try:
        _mdwe()
    except OSError:
        os._exit(3)


def _run_under(preexec: Callable[[], None], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], preexec_fn=preexec,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_MDWE is Linux (>= 6.3)")
def test_daemon_works_with_memory_deny_write_execute(
        tmp_path: Path, r: redis.Redis, redis_server: RedisServer) -> None:
    if not _mdwe_supported():
        pytest.skip("kernel without PR_SET_MDWE (Linux < 6.3)")
    # The control: under MDWE a writable+executable mapping is refused.
    control = _run_under(_mdwe, "import mmap; mmap.mmap(-1, 4096, prot=7)")
    assert control.returncode == 1 and "PermissionError" in control.stderr
    pub = Publisher()
    port = free_port()
    d = DaemonProcess(tmp_path, base_config(redis_server.url, pub.url, metrics={
        "listen": f"127.0.0.1:{port}"}))
    try:
        d.start(preexec=_mdwe)
        d.wait_log("started:")
        pub.wait_subscriber()
        for i in range(50):
            pub.send("misp_json_sighting", sighting(i))
        pub.send("misp_json_sighting", b"{broken")
        pub.send("misp_json_attribute", ATTRIBUTE)  # GeoIP (maxminddb) and the Lua procedures
        wait_for(lambda: r.hget("INGEST:status:misp1", "processed") == b"51", what="51 processed")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert b'misp_ingest_processed_total{instance="misp1"' in resp.read()
        d.signal(signal.SIGHUP)
        d.wait_log("SIGHUP: log files reopened")
        d.signal(signal.SIGTERM)
        assert d.wait(5) == 0
    finally:
        d.stop()
        pub.close()
    assert "Traceback" not in d.stderr
    assert r.llen("INGEST:dead_letter") == 1
    (country_key,) = r.keys("GEO_COUNTRY:*")
    assert r.zrange(country_key, 0, -1) == [b"GB"]  # the GeoIP lookup worked under MDWE
