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
_DROP_FROM_ATTRIBUTE = ("data",)


class Live:
    def __init__(self, channels: ChannelsConfig, live: LiveConfig) -> None:
        self.channel = channels.live
        self.max_history = live.max_cache_history
        self.handlers: dict[type, Handler] = {
            AttributeObs: self.on_attribute,
            KeepaliveObs: self.on_keepalive,
        }
        self.procs: dict[str, str] = {}

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
        attr = obs.attribute
        if any(k in attr for k in _DROP_FROM_ATTRIBUTE):
            attr = {k: v for k, v in attr.items() if k not in _DROP_FROM_ATTRIBUTE}
        log: dict[str, object] = {"Attribute": attr}
        if obs.event is not None:
            log["Event"] = obs.event
        name = "ObjectAttribute" if obs.is_object else "Attribute"
        self.publish(name, orjson.dumps(log).decode(), ctx)

    def on_keepalive(self, obs: KeepaliveObs, ctx: Context) -> None:
        # The reference dashboard's web page reads "log" as the text "[<uptime>]".
        self.publish("Keepalive", f"[{as_int(obs.uptime, 0)}]", ctx, cache=False)
