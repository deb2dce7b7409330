"""Redis operations, emitted by the features and applied in batches.

Features never talk to Redis.  They call the methods of a :class:`Batch`, which
coalesces what can be coalesced (a thousand ``ZINCRBY`` of the same member in
one flush window become one) and keeps the rest in order.  The loop seals a
batch every few milliseconds; :meth:`Batch.encode` turns it into one payload
(a compact JSON op list and the raw messages it refers to) that one Lua script
(:data:`BATCH_SCRIPT`) applies atomically, together with an exactly-once
marker, in a single round trip.

Read-then-write logic (a login counted once per organisation per hour, the
contribution rules) runs server-side as a *procedure*: a Lua function the
feature registers by name and invokes with :meth:`Batch.call`.
"""

from __future__ import annotations

from typing import Any

import orjson

from helpers.keys import PER_DAY_PREFIXES

_CHUNK = 500  # items per variadic command (Lua's unpack() has a stack limit)
BULK_HEADS: dict[int, bytes] = {}  # RESP bulk-string heads, "$<length>\r\n", by length
# A payload with publications starts with their length (an op list starts with "[").
_PUBS_HEAD = b"P%010d\n"
_PUBS_HEAD_LEN = len(_PUBS_HEAD % 0)


def split_payload(payload: bytes) -> tuple[memoryview, memoryview | None]:
    """A payload as (what the batch script reads, the ``PUBLISH`` commands or None)."""
    view = memoryview(payload)
    if payload[:1] != b"P":  # no publications (or a payload of an earlier version)
        return view, None
    end = len(payload) - int(view[1:_PUBS_HEAD_LEN - 1])
    return view[_PUBS_HEAD_LEN:end], view[end:]


Blob = str | bytes | tuple[bytes, ...]  # a tuple: parts of one value, joined when encoded

_PUBLISH_PREFIXES: dict[str, bytes] = {}  # channel -> the RESP of PUBLISH up to the message


def publish_prefix(channel: str) -> bytes:
    """``*3 $7 PUBLISH $<n> <channel>``, each line ending in CRLF: a publication's RESP
    up to its message's length."""
    prefix = _PUBLISH_PREFIXES.get(channel)
    if prefix is None:
        name = channel.encode()
        prefix = _PUBLISH_PREFIXES[channel] = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n" % (
            len(name), name)
    return prefix


def bulk_head(n: int) -> bytes:
    """``$<n>`` and CRLF: the head of a RESP bulk string of ``n`` bytes (remembered)."""
    head = BULK_HEADS.get(n)
    if head is None:
        if len(BULK_HEADS) >= 65536:
            BULK_HEADS.clear()
        head = BULK_HEADS[n] = b"$%d\r\n" % n
    return head


def publish_command(channel: str, message: str | bytes) -> bytes:
    """``PUBLISH channel message`` as RESP, ready for the writer to send as it is.

    The writer sends the batch's commands after the batch script has applied it
    (:func:`split_payload`); through the script each cost a Lua ``redis.call``,
    several times what Redis spends on the same command from a client.  A feature
    that publishes the same message again (a last-contributor line for every
    attribute of a run) or builds many (the live lines) makes the command once, or
    as it builds the message, and hands it to :meth:`Batch.publish_resp_many`."""
    if isinstance(message, str):
        message = message.encode()
    return b"".join((publish_prefix(channel), bulk_head(len(message)), message, b"\r\n"))


def parse_publications(commands: bytes | memoryview) -> list[tuple[str, str]]:
    """(channel, message) of every ``PUBLISH`` in ``commands`` (tests and tools)."""
    out: list[tuple[str, str]] = []
    data, pos = bytes(commands), 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        count, pos = int(data[pos + 1:end]), end + 2  # "*3"
        parts: list[bytes] = []
        for _ in range(count):
            end = data.index(b"\r\n", pos)  # "$<n>"
            n = int(data[pos + 1:end])
            parts.append(data[end + 2:end + 2 + n])
            pos = end + 4 + n
        name, channel, message = parts
        assert name == b"PUBLISH", name
        out.append((channel.decode(), message.decode()))
    return out


def blob_bytes(blob: Blob) -> bytes:
    if isinstance(blob, bytes):
        return blob
    return blob.encode() if isinstance(blob, str) else b"".join(blob)


class Batch:
    """One flush window's worth of Redis operations."""

    __slots__ = (
        "calls",
        "expires",
        "expires_nx",
        "geo",
        "hashes",
        "incr",
        "lists",
        "messages",
        "pubs",
        "sets",
        "shared",
        "shared_ids",
        "size",
        "zadds",
        "zincr",
    )

    def __init__(self) -> None:
        self.zincr: dict[tuple[str, str], float] = {}
        self.incr: dict[str, int] = {}
        self.sets: dict[str, dict[str, None]] = {}
        self.zadds: dict[tuple[str, str], float] = {}
        self.geo: dict[str, dict[str, tuple[float, float]]] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.expires: dict[str, int] = {}
        self.expires_nx: dict[str, int] = {}
        self.lists: dict[str, tuple[int, list[Blob]]] = {}
        self.calls: list[list[Any]] = []
        # Argument tuples many calls have in common, sent once (see :meth:`share`).
        self.shared: list[tuple[Any, ...]] = []
        self.shared_ids: dict[int, int] = {}  # id() of a tuple in ``shared`` -> its number
        self.pubs: list[bytes] = []  # PUBLISH commands as RESP (publish_command)
        self.messages = 0  # messages whose effects are in this batch
        self.size = 0  # operations emitted, before coalescing: the sealing criterion

    def __bool__(self) -> bool:
        return self.size > 0

    # --- emitters -------------------------------------------------------------

    def zincrby(self, key: str, member: str, amount: float = 1) -> None:
        k = (key, member)
        self.zincr[k] = self.zincr.get(k, 0) + amount
        self.size += 1

    def incrby(self, key: str, amount: int = 1) -> None:
        self.incr[key] = self.incr.get(key, 0) + amount
        self.size += 1

    def sadd(self, key: str, member: str) -> None:
        self.sets.setdefault(key, {})[member] = None
        self.size += 1

    def zadd(self, key: str, member: str, score: float) -> None:
        """ZADD: the last score given in the batch wins."""
        self.zadds[(key, member)] = score
        self.size += 1

    def geoadd(self, key: str, lon: float, lat: float, member: str) -> None:
        self.geo.setdefault(key, {})[member] = (lon, lat)
        self.size += 1

    def hset(self, key: str, field: str, value: str | int | float) -> None:
        self.hashes.setdefault(key, {})[field] = str(value)
        self.size += 1

    def expire(self, key: str, seconds: int) -> None:
        """EXPIRE after this batch's writes (the TTL restarts)."""
        self.expires[key] = seconds
        self.size += 1

    def expire_if_unset(self, key: str, seconds: int) -> None:
        """EXPIRE only if the key has no TTL yet: a window opened by its first write."""
        self.expires_nx[key] = seconds
        self.size += 1

    def lpush_capped(self, key: str, value: Blob, maxlen: int) -> None:
        """LPUSH then LTRIM to the newest ``maxlen`` entries."""
        entry = self.lists.get(key)
        if entry is None:
            self.lists[key] = (maxlen, [value])
        else:
            entry[1].append(value)
            if len(entry[1]) > 2 * maxlen:  # older ones would be trimmed anyway
                del entry[1][:-maxlen]
        self.size += 1

    def lpush_capped_many(self, key: str, values: list[Blob], maxlen: int) -> None:
        """:meth:`lpush_capped` for each value, in order."""
        entry = self.lists.get(key)
        if entry is None:
            entry = self.lists[key] = (maxlen, [])
        entry[1].extend(values[-maxlen:])
        if len(entry[1]) > 2 * maxlen:
            del entry[1][:-maxlen]
        self.size += len(values)

    def publish(self, channel: str, message: str | bytes) -> None:
        self.pubs.append(publish_command(channel, message))
        self.size += 1

    def publish_resp(self, command: bytes) -> None:
        """A publication made with :func:`publish_command` (or as it does)."""
        self.pubs.append(command)
        self.size += 1

    def publish_resp_many(self, commands: list[bytes]) -> None:
        """:meth:`publish_resp` for each command, in order."""
        self.pubs += commands
        self.size += len(commands)

    def publications(self) -> list[tuple[str, str]]:
        """(channel, message) of every publication, in order (tests and tools)."""
        return parse_publications(b"".join(self.pubs))

    def call(self, proc: str, *args: str | int | float) -> None:
        """Invoke the server-side procedure ``proc`` (see :func:`build_script`)."""
        self.calls.append(["pc", proc, *args])
        self.size += 1

    def share(self, args: tuple[Any, ...]) -> int:
        """Send ``args`` once in this batch; a procedure reads them as ``SHARED[n]``
        (``SHARED[n][2]`` is the first) where a call passes the number ``n`` returned.

        For the arguments that recur in most calls of a batch (key names, constants
        per organisation): the script decodes them once instead of once per call
        (6 % of Redis's instructions on the benchmark's mix).  ``args`` is found by
        identity: the caller passes the same tuple object for the same arguments (a
        memo of its own), and the batch holds it, so its id is not reused meanwhile.
        """
        n = self.shared_ids.get(id(args))
        if n is None:
            self.shared.append(args)
            n = self.shared_ids[id(args)] = len(self.shared)
        return n

    # --- encoding -------------------------------------------------------------

    def encode(self, retention_days: int = 0) -> bytes:
        """The batch as one payload: a JSON op list, then (after a newline) the *blob
        region*, the list values concatenated as they are, which the batch script
        reads; then the publications as ``PUBLISH`` commands, which the writer sends
        after the script, with their length in front (:func:`split_payload`).

        The blobs are the bulk of a batch (a live message is an attribute and its
        event header, JSON inside JSON); the ops give their byte lengths and the
        script cuts them out with ``string.sub``.  Nesting them in the op list
        would escape every quote once more, in Python, and make Redis' cjson
        decode them byte by byte: it was most of the script's time.

        Order matters: shared call arguments first (:meth:`share`), state and
        counters next, then procedures (they read counters), capped lists and
        expiries after the writes they apply to, publications after the script, so a
        dashboard that hears one finds the data.
        """
        ops: list[list[Any]] = [["sh", *args] for args in self.shared]
        for key, fields in self.hashes.items():
            flat = [x for kv in fields.items() for x in kv]
            ops.extend(["hs", key, *flat[i:i + _CHUNK]] for i in range(0, len(flat), _CHUNK))
        ops.extend(["zi", key, member, amount] for (key, member), amount in self.zincr.items())
        ops.extend(["ib", key, amount] for key, amount in self.incr.items())
        for key, members in self.sets.items():
            ms = list(members)
            ops.extend(["sa", key, *ms[i:i + _CHUNK]] for i in range(0, len(ms), _CHUNK))
        ops.extend(["za", key, score, member] for (key, member), score in self.zadds.items())
        for key, points in self.geo.items():
            flat_geo: list[Any] = [x for m, (lon, lat) in points.items() for x in (lon, lat, m)]
            ops.extend(["ga", key, *flat_geo[i:i + 3 * _CHUNK]]
                       for i in range(0, len(flat_geo), 3 * _CHUNK))
        ops.extend(self.calls)
        blobs: list[bytes] = []
        for key, (maxlen, values) in self.lists.items():
            encoded = [blob_bytes(v) for v in values[-maxlen:]]
            for i in range(0, len(encoded), _CHUNK):
                chunk = encoded[i:i + _CHUNK]
                ops.append(["lb", key, maxlen, *map(len, chunk)])
                blobs += chunk
        ops.extend(["en", key, ttl] for key, ttl in self.expires_nx.items())
        ops.extend(["ex", key, ttl] for key, ttl in self.expires.items())
        if retention_days > 0:
            ops.extend(["ex", key, retention_days * 86400] for key in self._per_day_keys())
        head = orjson.dumps(ops)
        pubs = self.pubs
        if not blobs and not pubs:
            return head
        # orjson never writes a raw newline (it escapes control characters in strings).
        if not pubs:
            return b"".join((head, b"\n", *blobs))
        return b"".join((_PUBS_HEAD % sum(map(len, pubs)), head, b"\n", *blobs, *pubs))

    def _per_day_keys(self) -> set[str]:
        """Per-day keys written by this batch, except those a feature gives their own TTL."""
        keys = {k for k, _ in self.zincr} | set(self.incr) | set(self.sets)
        keys |= {k for k, _ in self.zadds} | set(self.geo) | set(self.hashes) | set(self.lists)
        own_ttl = self.expires.keys() | self.expires_nx.keys()
        return {k for k in keys if k.startswith(PER_DAY_PREFIXES) and k not in own_ttl}


# The batch script.  KEYS[1] is the writer's exactly-once marker; ARGV is the
# batch's sequence number, its op list and the retention in seconds (0: none).
# Every command goes through pcall: a script that stops half-way is not rolled
# back, so an op that fails (say, WRONGTYPE on a key an operator created) is
# counted and the rest of the batch, and the marker, still apply.
_SCRIPT_HEAD = r"""
local marker = KEYS[1]
local seq = tonumber(ARGV[1])
local applied = tonumber(redis.call('GET', marker) or '-1')
if applied >= seq then return {-1, 0} end
local payload = ARGV[2]
-- The op list, then after a newline the blob region that 'lb' and 'pb' ops consume in order.
local nl = string.find(payload, '\n', 1, true)
local ops = cjson.decode(nl and string.sub(payload, 1, nl - 1) or payload)
local pos = (nl or 0) + 1
local function blob(len)
  local s = string.sub(payload, pos, pos + len - 1)
  pos = pos + len
  return s
end
local retention = tonumber(ARGV[3])
local failed = 0
local function call(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then failed = failed + 1; return nil end
  return r
end
local function keep(key)
  if retention > 0 then call('EXPIRE', key, retention) end
end
-- Procedures read and increment some counters many times in one batch (an
-- organisation's total).  incr() makes the first increment of a key real (its
-- reply is the total) and adds the next ones up in Lua; they are written with one
-- INCRBY per key after the last op.  Nothing else in the script writes those keys,
-- and the script is atomic, so every reply is what the plain INCRBY would give.
local counted, pending = {}, {}
local function incr(key, by)
  local v = counted[key]
  if v == nil then
    v = call('INCRBY', key, by)
    if v then counted[key] = v end
    return v
  end
  v = v + by
  counted[key] = v
  pending[key] = (pending[key] or 0) + by
  return v
end
-- What else a procedure learnt in this batch and may reuse (see the procedures).
local memo = {}
-- Arguments shared by calls ('sh' ops, first in the list): SHARED[n][2] is the first.
local SHARED = {}
local PROCS = {}
"""

_SCRIPT_TAIL = r"""
for i = 1, #ops do
  local op = ops[i]
  local c = op[1]
  if c == 'zi' then call('ZINCRBY', op[2], op[4], op[3])
  elseif c == 'sh' then SHARED[#SHARED + 1] = op
  elseif c == 'ib' then call('INCRBY', op[2], op[3])
  elseif c == 'sa' then call('SADD', op[2], unpack(op, 3))
  elseif c == 'za' then call('ZADD', op[2], op[3], op[4])
  elseif c == 'ga' then call('GEOADD', op[2], unpack(op, 3))
  elseif c == 'hs' then call('HSET', op[2], unpack(op, 3))
  elseif c == 'pc' then
    local proc = PROCS[op[2]]
    if proc then proc(op) else failed = failed + 1 end
  elseif c == 'lp' then
    call('LPUSH', op[2], unpack(op, 4))
    call('LTRIM', op[2], 0, op[3] - 1)
  elseif c == 'en' then
    if call('TTL', op[2]) == -1 then call('EXPIRE', op[2], op[3]) end
  elseif c == 'ex' then call('EXPIRE', op[2], op[3])
  elseif c == 'pu' then call('PUBLISH', op[2], op[3])
  elseif c == 'pb' then  -- publications, in payloads journaled by earlier versions
    for j = 3, #op do call('PUBLISH', op[2], blob(op[j])) end
  elseif c == 'lb' then
    local values = {}
    for j = 4, #op do values[j - 3] = blob(op[j]) end
    call('LPUSH', op[2], unpack(values))
    call('LTRIM', op[2], 0, op[3] - 1)
  else failed = failed + 1 end
end
for key, by in pairs(pending) do call('INCRBY', key, by) end
redis.call('SET', marker, seq, 'EX', 604800)
return {#ops, failed}
"""


def build_script(procs: dict[str, str]) -> str:
    """The batch script with the features' procedures.

    ``procs`` maps a name to the Lua body of ``function(op)``, where ``op[3]``,
    ``op[4]``… are the arguments given to :meth:`Batch.call`; the body may use
    ``call(...)`` (a failure-counting ``redis.pcall``), ``keep(key)`` (apply
    the retention TTL to a per-day key), ``incr(key, by)`` (INCRBY for a key only
    procedures write, applied once per key and batch), ``memo`` (a table that
    lives as long as the batch) and ``SHARED`` (the arguments :meth:`Batch.share`
    sent once, by number).
    """
    parts = [_SCRIPT_HEAD]
    for name, body in sorted(procs.items()):
        parts.append(f"PROCS[{name!r}] = function(op)\n{body}\nend\n")
    parts.append(_SCRIPT_TAIL)
    return "".join(parts)
