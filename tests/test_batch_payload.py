"""The batch payload: an op list, then the raw publications and list values it cuts
out by byte length (helpers/batch.py), applied by the real script on a real Redis."""

from __future__ import annotations

import json
import socket
import tempfile
from typing import Any

import hiredis
import orjson
import pytest
import redis
from redis.connection import PythonRespSerializer

from helpers import writer as writer_module
from helpers.batch import Batch, split_payload
from helpers.config import RedisConfig, WriterConfig
from helpers.live_helper import escape_json
from helpers.redis_server import RedisServer
from helpers.writer import ChunkedPacker, Publisher, RedisWriter

# Multi-byte UTF-8 everywhere, a JSON string with escapes, a raw newline, an empty value.
VALUES = ['{"v": "Ünïcödé 情報 😀"}', b'{"log":"{\\"a\\":\\"\\\\\\\\\\"}"}', "line\nbreak", "",
          "ascii only"]


def apply(server: RedisServer, batch: Batch) -> None:
    writer = RedisWriter(RedisConfig(url=server.url),
                         WriterConfig(journal_dir=tempfile.mkdtemp(prefix="mi-journal-")), {})
    writer.start()
    writer.submit(batch.encode(), batch.messages)
    assert writer.drain(10)
    writer.stop()


def listen(server: RedisServer, channels: list[str]) -> tuple[socket.socket, hiredis.Reader]:
    sock = socket.create_connection(("127.0.0.1", server.port))
    command = [b"SUBSCRIBE", *(c.encode() for c in channels)]
    sock.sendall(b"*%d\r\n" % len(command)
                 + b"".join(b"$%d\r\n%s\r\n" % (len(c), c) for c in command))
    reader = hiredis.Reader()
    confirmed = 0
    while confirmed < len(channels):
        reader.feed(sock.recv(65536))
        while reader.gets() is not False:
            confirmed += 1
    return sock, reader


def heard(sock: socket.socket, reader: hiredis.Reader, count: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    sock.settimeout(5)
    while len(out) < count:
        reader.feed(sock.recv(65536))
        while (reply := reader.gets()) is not False:
            out.append((reply[1].decode(), reply[2]))
    return out


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def test_list_values_of_any_text_arrive_intact_newest_first_and_capped(
        redis_server: RedisServer, r: redis.Redis) -> None:
    batch = Batch()
    for value in VALUES:
        batch.lpush_capped("L", value, 4)
    apply(redis_server, batch)
    assert r.lrange("L", 0, -1) == [as_bytes(v) for v in reversed(VALUES[1:])]


def test_publications_arrive_intact_and_in_order(
        redis_server: RedisServer, r: redis.Redis) -> None:
    sock, reader = listen(redis_server, ["A", "B"])
    batch = Batch()
    sent = []
    for i, value in enumerate(VALUES * 2):
        channel = "AB"[i % 3 == 0]
        batch.publish(channel, value)
        sent.append((channel, as_bytes(value)))
    batch.zincrby("Z", "m", 2)
    apply(redis_server, batch)
    got = heard(sock, reader, len(sent))
    sock.close()
    assert got == sent  # one connection: the order published, across channels too
    assert r.zscore("Z", "m") == 2


def test_payload_carries_messages_verbatim_not_escaped_again() -> None:
    batch = Batch()
    message = b'{"name":"Attribute","log":"{\\"value\\":\\"\xc3\x9c\\"}"}'
    batch.publish("1", message)
    ops, pubs = split_payload(batch.encode())
    assert bytes(ops) == b"[]\n"
    assert pubs == b"*3\r\n$7\r\nPUBLISH\r\n$1\r\n1\r\n$%d\r\n%b\r\n" % (len(message), message)


def test_a_payload_without_publications_is_all_for_the_script() -> None:
    batch = Batch()
    batch.lpush_capped("L", b"P0000000001\n", 5)
    payload = batch.encode()
    ops, pubs = split_payload(payload)
    assert pubs is None and ops == payload


def test_publications_the_script_may_not_send_go_through_lua(
        redis_server: RedisServer, r: redis.Redis) -> None:
    sock, reader = listen(redis_server, ["A", "B"])
    batch = Batch()
    sent = [("AB"[i % 2], as_bytes(v)) for i, v in enumerate(VALUES)]
    for channel, message in sent:
        batch.publish(channel, message)
    publisher = Publisher(r)
    publisher.raw = False  # as after CLIENT REPLY was refused
    _, pubs = split_payload(batch.encode())
    assert pubs is not None
    publisher.publish(pubs)
    assert heard(sock, reader, len(sent)) == [(c, m) for c, m in sent]
    sock.close()


def test_a_batch_without_blobs_is_the_op_list_alone() -> None:
    batch = Batch()
    batch.incrby("K", 3)
    assert orjson.loads(batch.encode()) == [["ib", "K", 3]]


def test_escape_json_matches_a_json_encoder_on_compact_json() -> None:
    for text in ('q"uote \\ back\nslash\t\u2028 é 😀 / \x7f', 'q"uote \\ back\nslash\t /',
                 "no quote to escape"):  # not ASCII, ASCII: two ways of escaping
        doc = orjson.dumps({"a": text, "b": [None, True, 1.5]})
        escaped = escape_json(doc)
        # The standard library's encoder, as the reference dashboard's readers decode it.
        assert escaped == json.dumps(doc.decode(), ensure_ascii=False).encode()[1:-1]
        assert json.loads(b'"' + escaped + b'"') == doc.decode()
    assert escape_json(b'{"k":"v"}') == b'{\\"k\\":\\"v\\"}'


def test_a_redis_user_refused_client_reply_still_gets_publications_out(
        redis_server: RedisServer, r: redis.Redis) -> None:
    r.execute_command("ACL", "SETUSER", "noreply", "on", ">pw-noreply", "~*", "&*", "+@all",
                      "-client|reply")
    try:
        sock, reader = listen(redis_server, ["A"])
        url = f"redis://noreply:pw-noreply@127.0.0.1:{redis_server.port}/0"
        writer = RedisWriter(RedisConfig(url=url),
                             WriterConfig(journal_dir=tempfile.mkdtemp(prefix="mi-journal-")), {})
        writer.start()
        sent = []
        for i in range(3):  # the first batch finds out, the next ones go through Lua
            batch = Batch()
            batch.publish("A", f"message {i}")
            batch.incrby("K", 1)
            sent.append(("A", f"message {i}".encode()))
            writer.submit(batch.encode(), 1)
            assert writer.drain(10)
        writer.stop()
        assert heard(sock, reader, 3) == sent
        assert not writer.publisher.raw and r.get("K") == b"3"
        sock.close()
    finally:
        r.execute_command("ACL", "DELUSER", "noreply")


def test_the_writer_packs_commands_as_redis_py_does_without_copying_a_payload() -> None:
    python_packer = PythonRespSerializer(6000, lambda a: a if isinstance(a, bytes) else (
        str(a).encode() if isinstance(a, int) else repr(a).encode() if isinstance(a, float)
        else a.encode()))
    payload = b"p" * 100000
    for args in (("SET", "a", 1), ("SCRIPT LOAD", "x" * 20000), ("HSET", "k", "é", 1.5),
                 ("EVALSHA", "abc", 1, "k", 5, payload, 0),
                 ("EVALSHA", "abc", 1, "k", 5, memoryview(payload)[10:], 0)):
        chunks = ChunkedPacker().pack(*args)
        assert b"".join(chunks) == b"".join(python_packer.pack(*(
            bytes(a) if isinstance(a, memoryview) else a for a in args)))
        big = [c for c in chunks if len(c) >= ChunkedPacker.LARGE]
        assert all(isinstance(c, memoryview) or c is payload for c in big
                   if args[0] == "EVALSHA")


def test_a_payload_journaled_by_an_earlier_version_still_publishes(
        redis_server: RedisServer, r: redis.Redis) -> None:
    # Before publications left the script, they were 'pb' ops cutting the blob region.
    messages = [b'{"name":"Attribute","log":"{}","zmqName":"m"}', "Ünï 😀".encode()]
    payload = orjson.dumps([["ib", "K", 2], ["pb", "A", *map(len, messages)]]) + b"\n" \
        + b"".join(messages)
    sock, reader = listen(redis_server, ["A"])
    writer = RedisWriter(RedisConfig(url=redis_server.url),
                         WriterConfig(journal_dir=tempfile.mkdtemp(prefix="mi-journal-")), {})
    writer.start()
    writer.submit(payload, 1)
    assert writer.drain(10)
    writer.stop()
    assert heard(sock, reader, 2) == [("A", m) for m in messages]
    assert r.get("K") == b"2"
    sock.close()


def test_only_a_lasting_refusal_of_client_reply_switches_publications_to_lua() -> None:
    from redis.exceptions import NoPermissionError, ResponseError

    from helpers.writer import refused_for_good
    assert refused_for_good(NoPermissionError("this user has no permissions to run the "
                                              "'client|reply' command"))
    assert refused_for_good(ResponseError("ERR unknown subcommand 'REPLY'. Try CLIENT HELP."))
    assert not refused_for_good(ResponseError("BUSY Redis is busy running a script."))
    assert not refused_for_good(ResponseError("LOADING Redis is loading the dataset in memory"))


def published_batch(i: int) -> tuple[bytes, tuple[str, bytes]]:
    batch = Batch()
    batch.incrby("K", 1)
    batch.publish("A", f"message {i}")
    return batch.encode(), ("A", f"message {i}".encode())


def run_writer(server: RedisServer, payloads: list[bytes]) -> RedisWriter:
    writer = RedisWriter(RedisConfig(url=server.url),
                         WriterConfig(journal_dir=tempfile.mkdtemp(prefix="mi-journal-")), {})
    writer.start()
    for payload in payloads:
        writer.submit(payload, 1)
    assert writer.drain(10)
    writer.stop()
    return writer


def test_a_first_attempt_sends_the_script_and_its_publications_in_one_write(
        redis_server: RedisServer, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    real_write_all = writer_module.write_all

    def spy(conn: Any, chunks: list[bytes | memoryview]) -> None:
        writes.append(b"".join(bytes(c) for c in chunks))
        real_write_all(conn, chunks)
    monkeypatch.setattr(writer_module, "write_all", spy)
    sock, reader = listen(redis_server, ["A"])
    payloads, sent = zip(*(published_batch(i) for i in range(4)), strict=True)
    # The first batch loads the script, apart (see the next test); the others are one write.
    real_publish = Publisher.publish

    def publish_apart(self: Publisher, commands: memoryview) -> None:
        writes.append(b"apart")
        real_publish(self, commands)
    monkeypatch.setattr(Publisher, "publish", publish_apart)
    run_writer(redis_server, list(payloads))
    assert heard(sock, reader, 4) == list(sent)
    sock.close()
    assert r.get("K") == b"4"
    assert writes[0] == b"apart" and len(writes) == 4
    for write, (_, message) in zip(writes[1:], sent[1:], strict=True):
        assert write.index(b"EVALSHA") < write.index(b"CLIENT") < write.index(message)


def test_after_redis_flushed_its_scripts_a_batch_applies_and_publishes_once(
        redis_server: RedisServer, r: redis.Redis) -> None:
    sock, reader = listen(redis_server, ["A"])
    writer = RedisWriter(RedisConfig(url=redis_server.url),
                         WriterConfig(journal_dir=tempfile.mkdtemp(prefix="mi-journal-")), {})
    writer.start()
    sent = []
    for i in range(3):
        if i == 1:
            r.script_flush()  # the next batch's one write meets NOSCRIPT
        payload, message = published_batch(i)
        sent.append(message)
        writer.submit(payload, 1)
        assert writer.drain(10)
    writer.stop()
    assert heard(sock, reader, 3) == sent
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(65536)  # nothing more: no publication twice
    sock.close()
    assert r.get("K") == b"3" and writer.outage_since is None


def test_a_connection_lost_after_the_one_write_applies_once_and_publishes_once(
        redis_server: RedisServer, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write_all = writer_module.write_all
    drops = []

    def write_then_drop(conn: Any, chunks: list[bytes | memoryview]) -> None:
        real_write_all(conn, chunks)
        drops.append(1)
        if len(drops) == 1:  # everything reached Redis; the reply is lost
            conn.disconnect()
            raise redis.ConnectionError("dropped after the write")
    monkeypatch.setattr(writer_module, "write_all", write_then_drop)
    sock, reader = listen(redis_server, ["A"])
    payloads, sent = zip(*(published_batch(i) for i in range(3)), strict=True)
    writer = run_writer(redis_server, list(payloads))
    assert heard(sock, reader, 3) == list(sent)  # the second batch's went out, once
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(65536)
    sock.close()
    assert drops and r.get("K") == b"3" and writer.duplicates_skipped == 1


def test_a_connection_refused_before_the_write_still_publishes_when_redis_takes_it(
        redis_server: RedisServer, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Publisher.apply_and_publish
    calls = []

    def refuse_once(self: Publisher, *args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # as pool.get_connection() does when Redis is not there
            raise redis.ConnectionError("connection refused")
        return real(self, *args)
    monkeypatch.setattr(Publisher, "apply_and_publish", refuse_once)
    sock, reader = listen(redis_server, ["A"])
    payloads, sent = zip(*(published_batch(i) for i in range(3)), strict=True)
    writer = run_writer(redis_server, list(payloads))
    assert heard(sock, reader, 3) == list(sent)
    sock.close()
    assert calls and r.get("K") == b"3" and writer.outage_seconds_total > 0


def test_a_batch_the_script_fails_on_in_one_write_is_set_aside_and_the_next_ones_go_on(
        redis_server: RedisServer, r: redis.Redis) -> None:
    sock, reader = listen(redis_server, ["A"])
    first, sent_first = published_batch(0)
    good, sent_good = published_batch(2)
    _, pubs = split_payload(published_batch(1)[0])
    assert pubs is not None
    broken = b"P%010d\n" % len(pubs) + b"not an op list" + bytes(pubs)
    writer = run_writer(redis_server, [first, broken, good])
    # Sent in the same write as the script that failed: documented (doc/reliability.md).
    assert heard(sock, reader, 3) == [sent_first, ("A", b"message 1"), sent_good]
    sock.close()
    assert r.get("K") == b"2" and writer.rejected_batches == 1 and writer.outage_since is None
