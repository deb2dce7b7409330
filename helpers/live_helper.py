"""Live feed (semantics §7): attributes and keepalives on the live channel,
with a capped history per stream in ``TEMP_CACHE_LIVE:<name>``."""

from __future__ import annotations

import orjson

from helpers import keys
from helpers.config import ChannelsConfig, LiveConfig
from helpers.context import Context, Handler
from helpers.message import as_int
from helpers.observations import AttributeObs, KeepaliveObs

# Attribute members too large for a live line: attachments travel as base64.
_DROP_FROM_ATTRIBUTE = "data"
_NAMES = {False: "Attribute", True: "ObjectAttribute"}


def escape_json(doc: bytes) -> bytes:
    """A compact JSON document as the body of a JSON string (without the quotes).

    Byte-identical to ``orjson.dumps(doc.decode())[1:-1]`` for orjson's output,
    which holds no raw control character: only ``\\`` and ``"`` need escaping.
    """
    return doc.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


class Live:
    def __init__(self, channels: ChannelsConfig, live: LiveConfig) -> None:
        self.channel = channels.live
        self.max_history = live.max_cache_history
        self.handlers: dict[type, Handler] = {
            AttributeObs: self.on_attribute,
            KeepaliveObs: self.on_keepalive,
        }
        self.procs: dict[str, str] = {}
        # The attributes of one event share its header: serialised once, not once each.
        self._header: dict[str, object] | None = None
        self._header_json = b""
        self._zmq_names: dict[str, bytes] = {}

    def publish(self, name: str, log_json: str, ctx: Context, cache: bool = True) -> None:
        """Publish ``{"name", "log": <JSON string>, "zmqName"}`` and keep it in the
        stream's history with ``log`` as an object (as the dashboard reads it)."""
        zmq_name = orjson.dumps(ctx.instance).decode()
        name_json = orjson.dumps(name).decode()
        ctx.batch.publish(self.channel, f'{{"name":{name_json},"log":'
                          f'{orjson.dumps(log_json).decode()},"zmqName":{zmq_name}}}')
        if cache:
            ctx.batch.lpush_capped(keys.live_cache(name),
                                   f'{{"name":{name_json},"log":{log_json},"zmqName":{zmq_name}}}',
                                   self.max_history)

    def on_attribute(self, obs: AttributeObs, ctx: Context) -> None:
        """The hot path (once per attribute observation): bytes all along, no str."""
        attr = obs.attribute
        if _DROP_FROM_ATTRIBUTE in attr:
            attr = {k: v for k, v in attr.items() if k != _DROP_FROM_ATTRIBUTE}
        event = obs.event
        if event is None:
            log = b'{"Attribute":' + orjson.dumps(attr) + b"}"
        else:
            if event is not self._header:
                self._header = event
                self._header_json = b',"Event":' + orjson.dumps(event) + b"}"
            log = b'{"Attribute":' + orjson.dumps(attr) + self._header_json
        zmq_name = self._zmq_names.get(ctx.instance)
        if zmq_name is None:
            zmq_name = self._zmq_names[ctx.instance] = orjson.dumps(ctx.instance)
        head = b'{"name":"' + _NAMES[obs.is_object].encode() + b'","log":'
        tail = b',"zmqName":' + zmq_name + b"}"
        ctx.batch.publish(self.channel, head + b'"' + escape_json(log) + b'"' + tail)
        ctx.batch.lpush_capped(keys.live_cache(_NAMES[obs.is_object]), head + log + tail,
                               self.max_history)

    def on_keepalive(self, obs: KeepaliveObs, ctx: Context) -> None:
        # The reference dashboard's web page reads "log" as the text "[<uptime>]".
        self.publish("Keepalive", f"[{as_int(obs.uptime, 0)}]", ctx, cache=False)
