"""Credentials and limits: ZeroMQ PLAIN, Redis ACL and TLS, secrets kept out of every output,
world-readable configurations refused, oversize frames dropped without a copy."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import zmq
from redis.backoff import NoBackoff
from redis.retry import Retry
from zmq.auth.thread import ThreadAuthenticator

from helpers import daemon as daemon_module
from helpers.config import ConfigError, InstanceConfig, RedisConfig, load_config
from helpers.daemon import Daemon
from helpers.redis_server import RedisServer, free_port
from tests.daemon_proc import (
    ROOT,
    DaemonProcess,
    Publisher,
    base_config,
    make_config,
    run_until,
    sighting,
    wait_for,
)

ATTRIBUTE = (b'{"action": "add", "Attribute": {"type": "ip-dst", "value": "81.2.69.160", '
             b'"category": "Network activity"}, "Event": {"Orgc": {"name": "CIRCL"}}}')
ZMQ_SECRET = "zmq-Secret-4711"
REDIS_SECRET = "redis-Secret-0815"


@pytest.fixture
def plain_pub() -> Iterator[Publisher]:
    """A PUB socket that demands PLAIN credentials misp / ZMQ_SECRET, like MISP can."""
    ctx: zmq.Context[Any] = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_plain(domain="*", passwords={"misp": ZMQ_SECRET})
    pub = Publisher(ctx, plain_server=True)
    yield pub
    pub.close()
    auth.stop()
    ctx.term()


# --- ZeroMQ PLAIN -----------------------------------------------------------------------


def test_plain_right_credentials_deliver_and_wrong_ones_say_so(
        plain_pub: Publisher, r: redis.Redis, redis_server: RedisServer,
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(redis_server.url, instances=(
        InstanceConfig("good", plain_pub.url, "misp", ZMQ_SECRET),
        InstanceConfig("bad", plain_pub.url, "misp", "not-" + ZMQ_SECRET)))
    daemon = Daemon(cfg)
    caplog.set_level(logging.INFO)
    daemon.start()
    try:
        good, bad = daemon.instances["good"][1], daemon.instances["bad"][1]
        run_until(daemon, lambda: good.connected, what="the good feed to connect")
        run_until(daemon, lambda: "bad: MISP refused our ZeroMQ PLAIN credentials" in caplog.text,
                  what="the refusal to be logged")
        plain_pub.wait_subscriber()  # the good one's subscription (the bad one never gets in)
        for i in range(20):
            plain_pub.send("misp_json_sighting", sighting(i))
        run_until(daemon, lambda: good.processed == 20, what="20 messages")
        daemon.step(timeout_ms=200)
        assert (good.received, bad.received) == (20, 0)
    finally:
        daemon.shutdown()
    assert r.hget("INGEST:status:good", "processed") == b"20"
    assert r.hget("INGEST:status:bad", "received") == b"0"
    assert r.hget("INGEST:status:bad", "connected") == b"0"
    refusal = [rec for rec in caplog.records if "refused our ZeroMQ PLAIN" in rec.getMessage()]
    assert refusal and {rec.levelname for rec in refusal} == {"WARNING"}
    assert ZMQ_SECRET not in caplog.text


def test_refused_credentials_are_tried_again_until_misp_accepts_them(
        r: redis.Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon_module, "AUTH_RETRY_SECONDS", 0.3)
    ctx: zmq.Context[Any] = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_plain(domain="*", passwords={"misp": "old-password"})
    pub = Publisher(ctx, plain_server=True)
    daemon = Daemon(make_config(redis_server.url,
                                instances=(InstanceConfig("misp1", pub.url, "misp", "new"),)))
    stats = daemon.instances["misp1"][1]
    caplog.set_level(logging.DEBUG, logger="helpers.daemon")
    daemon.start()
    try:
        run_until(daemon, lambda: caplog.text.count("refused our ZeroMQ PLAIN") >= 3,
                  what="three refusals")  # it keeps trying
        assert not stats.connected
        auth.configure_plain(domain="*", passwords={"misp": "new"})  # MISP's admin fixes it
        run_until(daemon, lambda: stats.connected, what="the connection with the new password")
        pub.wait_subscriber()
        pub.send("misp_json_sighting", sighting())
        run_until(daemon, lambda: stats.processed == 1, what="a message")
    finally:
        daemon.shutdown()
        pub.close()
        auth.stop()
        ctx.term()
    refusals = [rec.levelname for rec in caplog.records if "refused our" in rec.getMessage()]
    assert refusals[0] == "WARNING" and set(refusals[1:]) == {"DEBUG"}  # one warning, not a flood


# --- Redis ACL and TLS ------------------------------------------------------------------


@pytest.fixture
def acl_redis() -> Iterator[RedisServer]:
    """A server whose default user is off: only ``ingest`` / REDIS_SECRET gets in."""
    with RedisServer() as srv:
        admin = srv.client()
        # The rule doc/operations.md recommends.
        admin.execute_command("ACL", "SETUSER", "ingest", "on", ">" + REDIS_SECRET,
                              "~*", "&*", "+@all", "-@admin", "-@dangerous")
        admin.execute_command("ACL", "SETUSER", "default", "off")
        yield srv


def as_ingest(srv: RedisServer) -> redis.Redis:
    return redis.Redis(port=srv.port, username="ingest", password=REDIS_SECRET)


def test_redis_acl_user_and_password(acl_redis: RedisServer) -> None:
    with pytest.raises(redis.AuthenticationError):
        # The control: anonymous access is refused (no retries: redis-py would back off 4 s).
        redis.Redis(port=acl_redis.port, retry=Retry(NoBackoff(), 0)).ping()
    cfg = make_config(acl_redis.url, redis=RedisConfig(url=acl_redis.url, username="ingest",
                                                      password=REDIS_SECRET))
    daemon = Daemon(cfg)
    daemon.writer.start()
    daemon.dispatcher.handle("misp1", b"misp_json_sighting " + sighting(), 1764115200.0)
    daemon.dispatcher.handle("misp1", b"misp_json_attribute " + ATTRIBUTE, 1764115200.0)
    daemon.write_status()
    assert daemon.writer.drain(10)
    daemon.write_status()  # after the publications of the first batch went out
    assert daemon.writer.drain(10)
    daemon.writer.stop()
    client = as_ingest(acl_redis)
    assert client.get("TRENDINGS_SIGHT_sightings:20251126") == b"1"
    assert client.hget("INGEST:status:misp1", "processed") == b"2"
    assert client.hget("INGEST:status:misp1", "publish_via") == b"client"


def test_a_redis_user_without_client_reply_gets_its_publications_out_through_lua() -> None:
    with RedisServer() as srv:
        admin = srv.client()
        admin.execute_command("ACL", "SETUSER", "ingest", "on", ">" + REDIS_SECRET, "~*", "&*",
                              "+@all", "-@admin", "-@dangerous", "-client|reply")
        listener = admin.pubsub()
        listener.subscribe("1")
        assert listener.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
        cfg = make_config(srv.url, redis=RedisConfig(url=srv.url, username="ingest",
                                                    password=REDIS_SECRET))
        daemon = Daemon(cfg)
        daemon.writer.start()
        for i in range(2):  # the first batch finds out, the second goes through Lua at once
            daemon.dispatcher.handle("misp1", b"misp_json_attribute " + ATTRIBUTE,
                                     1764115200.0 + i)
            daemon.write_status()
            assert daemon.writer.drain(10)
        daemon.write_status()
        assert daemon.writer.drain(10)
        daemon.writer.stop()
        heard = [listener.get_message(timeout=5) for _ in range(2)]
        assert [orjson.loads(m["data"])["name"] for m in heard if m] == ["Attribute"] * 2
        assert admin.hget("INGEST:status:misp1", "publish_via") == b"lua"


def _certificates(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, by openssl."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")  # fast to generate
    run("req", "-x509", *ec, "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=test-ca")
    for name in ("server", "client"):
        run("req", *ec, "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", f"/CN={name}")
        (tmp / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    return {n: tmp / n for n in ("ca.crt", "server.crt", "server.key", "client.crt",
                                 "client.key")}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl to make certificates")
def test_redis_over_tls_with_ca_and_client_certificate(tmp_path: Path) -> None:
    files = _certificates(tmp_path)
    tls_port = free_port()
    server = RedisServer(extra=["--tls-port", str(tls_port), "--tls-cert-file",
                                str(files["server.crt"]), "--tls-key-file",
                                str(files["server.key"]), "--tls-ca-cert-file",
                                str(files["ca.crt"]), "--tls-auth-clients", "yes"])
    try:
        server.start()
    except RuntimeError:
        pytest.skip("this redis-server was built without TLS")
    try:
        with pytest.raises(redis.ConnectionError):  # the control: the port speaks only TLS
            redis.Redis(port=tls_port, socket_timeout=1, retry=Retry(NoBackoff(), 0)).ping()
        cfg = make_config("", redis=RedisConfig(
            url=f"rediss://127.0.0.1:{tls_port}/0", ssl_ca_file=str(files["ca.crt"]),
            ssl_cert_file=str(files["client.crt"]), ssl_key_file=str(files["client.key"])))
        daemon = Daemon(cfg)
        daemon.writer.start()
        daemon.dispatcher.handle("misp1", b"misp_json_sighting " + sighting(), 1764115200.0)
        daemon.write_status()
        assert daemon.writer.drain(10)
        daemon.writer.stop()
        assert server.client().get("TRENDINGS_SIGHT_sightings:20251126") == b"1"
    finally:
        server.cleanup()


# --- Secrets stay secret ------------------------------------------------------------------


def _secret_config(redis_url: str, pub_url: str, zmq_password: str,
                   redis_password: str) -> dict[str, Any]:
    return base_config(redis_url, pub_url, logging={"level": "debug"},
                       redis={"url": redis_url, "username": "ingest", "password": redis_password},
                       instances=[{"name": "misp1", "url": pub_url, "username": "misp",
                                   "password": zmq_password}])


def test_secrets_never_appear_in_logs_status_or_dead_letter(
        tmp_path: Path, acl_redis: RedisServer, plain_pub: Publisher) -> None:
    cfg = _secret_config(acl_redis.url, plain_pub.url, ZMQ_SECRET, REDIS_SECRET)
    d = DaemonProcess(tmp_path, cfg).start()
    try:
        d.wait_log("started:")
        plain_pub.wait_subscriber()
        for i in range(5):
            plain_pub.send("misp_json_sighting", sighting(i))
        plain_pub.send("misp_json_event", b"{not json")
        plain_pub.send("misp_json_attribute", ATTRIBUTE)  # the Lua procedures, under the ACL
        client = as_ingest(acl_redis)
        wait_for(lambda: client.hget("INGEST:status:misp1", "received") == b"7", what="status")
        d.signal(signal.SIGTERM)
        assert d.wait(5) == 0
    finally:
        d.stop()
    check = subprocess.run([sys.executable, str(ROOT / "zmq_subscriber.py"), "--config",
                            str(d.config_path), "--check-config"], capture_output=True, text=True)
    assert check.returncode == 0 and "redis://" in check.stdout
    stored = orjson.dumps({
        "status": {k.decode(): v.decode() for k, v in
                   client.hgetall("INGEST:status:misp1").items()},
        "dead_letter": [e.decode() for e in client.lrange("INGEST:dead_letter", 0, -1)],
    }).decode()
    assert client.hget("INGEST:status:misp1", "processed") == b"6"
    assert client.hget("INGEST:status:misp1", "errors") == b"0"
    (contrib_day,) = client.scan_iter("CONTRIB_DAY:*")
    assert client.zscore(contrib_day, "CIRCL") == 1
    assert "Redis operations of batch" not in d.stderr  # nothing refused by the ACL
    for secret in (ZMQ_SECRET, REDIS_SECRET):
        assert secret not in d.stderr
        assert secret not in check.stdout + check.stderr
        assert secret not in stored


def test_wrong_passwords_give_clear_log_lines_without_the_secrets(
        tmp_path: Path, acl_redis: RedisServer, plain_pub: Publisher) -> None:
    wrong_zmq, wrong_redis = "bad-" + ZMQ_SECRET, "bad-" + REDIS_SECRET
    d = DaemonProcess(tmp_path, _secret_config(acl_redis.url, plain_pub.url, wrong_zmq,
                                               wrong_redis)).start()
    try:
        d.wait_log("misp1: MISP refused our ZeroMQ PLAIN credentials")
        d.wait_log("Redis refused our credentials; check redis.username and redis.password")
        d.signal(signal.SIGTERM)
        assert d.wait(8) == 0
    finally:
        d.stop()
    for secret in (ZMQ_SECRET, REDIS_SECRET, wrong_zmq, wrong_redis):
        assert secret not in d.stderr


def test_a_yaml_error_does_not_echo_the_line_with_the_password(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f'redis:\n  password: "{REDIS_SECRET}\n  url: x\n:\n')
    path.chmod(0o600)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "not valid YAML at line" in str(err.value)
    assert REDIS_SECRET not in str(err.value)


def test_a_mistyped_password_is_named_but_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"redis:\n  password: [{REDIS_SECRET}]\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == "redis.password: expected str, got list"


# --- World-readable configuration files ---------------------------------------------------


@pytest.mark.parametrize(("content", "mode", "refused"), [
    (f"redis:\n  password: {REDIS_SECRET}\n", 0o644, True),
    (f"redis:\n  url: redis://ingest:{REDIS_SECRET}@127.0.0.1:6390/0\n", 0o604, True),
    ("instances:\n  - name: m\n    username: u\n    password: p\n", 0o644, True),
    (f"redis:\n  password: {REDIS_SECRET}\n", 0o640, False),
    ("redis:\n  url: redis://127.0.0.1:6390/0\n", 0o644, False),  # no secret: may be public
])
def test_world_readable_configuration_with_secrets_is_refused(
        tmp_path: Path, content: str, mode: int, refused: bool) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(content)
    path.chmod(mode)
    if not refused:
        load_config(path)
        return
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path} holds passwords but is world-readable; "
                              f"run: chmod o-rwx {path}")


def test_cli_refuses_a_world_readable_secret_config_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"redis:\n  password: {REDIS_SECRET}\n")
    path.chmod(0o644)
    done = subprocess.run([sys.executable, str(ROOT / "zmq_subscriber.py"), "--config",
                           str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr == (f"configuration error: {path} holds passwords but is "
                           f"world-readable; run: chmod o-rwx {path}\n")


# --- Oversize frames ----------------------------------------------------------------------


def test_oversize_frame_is_dropped_counted_and_never_copied(
        r: redis.Redis, redis_server: RedisServer) -> None:
    pub = Publisher()
    cfg = make_config(redis_server.url, max_message_bytes=1 << 20,
                      instances=(InstanceConfig("misp1", pub.url),))
    daemon = Daemon(cfg)
    daemon.start()
    big = b'misp_json_event {"Event": {"info": "' + b"x" * (8 << 20) + b'"}}'  # 8 MiB and a bit
    try:
        pub.wait_subscriber()
        stats = daemon.instances["misp1"][1]
        run_until(daemon, lambda: stats.connected, what="connection")
        tracemalloc.start()
        pub.send_frame(big)
        pub.send("misp_json_sighting", sighting())
        run_until(daemon, lambda: stats.received == 2, what="both frames")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        pub.close()
        daemon.shutdown()
    assert peak < 1 << 20  # the 8 MiB frame was never copied into a Python object
    assert (stats.received, stats.processed, stats.skipped) == (2, 1, 1)
    assert stats.reasons["oversize"] == 1 and stats.topic_skipped["misp_json_event"] == 1
    entry = orjson.loads(r.lindex("INGEST:dead_letter", 0) or b"")
    assert (entry["reason"], entry["topic"], entry["instance"]) == \
        ("oversize", "misp_json_event", "misp1")
    assert entry["detail"] == f"{len(big)} bytes > max_message_bytes"
    assert len(entry["frame"]) == 4096
    assert r.hget("INGEST:status:misp1", "skipped") == b"1"
