"""Routing: topic -> extractor, observation -> feature handlers, in two tables.

:class:`Dispatcher` takes one raw frame at a time, decodes it once, runs the
topic's extractor and hands every observation to the handlers registered for
its type, isolating failures per handler so one bad field spoils one effect,
never the message, and never the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import orjson

from helpers import keys
from helpers.batch import Batch
from helpers.clock import DayClock
from helpers.context import Context, Handler
from helpers.message import FrameError, frame_topic, split_frame
from helpers.observations import (
    AttributeObs,
    AttributesObs,
    InstanceState,
    extract_attribute,
    extract_audit,
    extract_conversation,
    extract_event,
    extract_keepalive,
    extract_nothing,
    extract_published_event,
    extract_sighting,
    extract_tag,
    extract_user,
    learn_orgs,
)
from helpers.stats import InstanceStats, RateLimitedLog

log = logging.getLogger(__name__)

Extractor = Callable[[dict[str, Any], InstanceState], Iterator[Any]]

# Every topic MISP publishes (reference §1.4).  Unknown topics are counted and ignored.
TOPICS: dict[str, Extractor] = {
    "misp_json": extract_published_event,
    "misp_json_event": extract_event,
    "misp_json_attribute": extract_attribute,
    "misp_json_sighting": extract_sighting,
    "misp_json_tag": extract_tag,
    "misp_json_audit": extract_audit,
    "misp_json_user": extract_user,
    "misp_json_conversation": extract_conversation,
    "misp_json_self": extract_keepalive,
    "misp_json_object": extract_nothing,  # carries no attributes and no organisation
    "misp_json_object_reference": extract_nothing,
    "misp_json_organisation": extract_nothing,  # feeds the organisation directory only
    "misp_json_warninglist": extract_nothing,
    "misp_json_workflow": extract_nothing,  # free-form, may be a JSON array
}
ARRAY_BODY_TOPICS = frozenset({"misp_json_workflow"})
DEAD_LETTER_FRAME_BYTES = 4096
OPS_PER_ATTRIBUTE = 8  # about what the features emit per attribute observation


class Feature(Protocol):
    """What the dispatcher needs of a feature."""

    handlers: dict[type, Handler]  # observation type -> handler
    procs: dict[str, str]  # Lua procedures the handlers invoke (see batch.build_script)


def route_table(features: Iterable[Feature]) -> dict[type, list[Handler]]:
    """Observation type -> the handlers of every feature, in feature order.

    A feature that handles :class:`AttributeObs` but not :class:`AttributesObs`
    gets the attributes of a group one by one."""
    table: dict[type, list[Handler]] = {}
    for feature in features:
        handlers = dict(feature.handlers)
        if AttributeObs in handlers and AttributesObs not in handlers:
            handlers[AttributesObs] = each(handlers[AttributeObs])
        for obs_type, handler in handlers.items():
            table.setdefault(obs_type, []).append(handler)
    return table


def each(handler: Handler) -> Handler:
    """A handler of :class:`AttributesObs` that hands every attribute to ``handler``; one
    that fails does not stop the others (the first failure is raised at the end)."""
    def handle_each(group: AttributesObs, ctx: Context) -> None:
        failure: Exception | None = None
        for obs in group.items:
            try:
                handler(obs, ctx)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
    handle_each.__qualname__ = getattr(handler, "__qualname__", "handler")
    return handle_each


class Dispatcher:
    """Frames in, operations into the current batch; ``seal`` takes a full batch away."""

    def __init__(self, features: list[Feature], clock: DayClock,
                 instances: dict[str, tuple[InstanceState, InstanceStats]],
                 seal: Callable[[Batch], None], *, max_batch_ops: int = 20000,
                 max_message_bytes: int = 64 * 1024 * 1024, dead_letter_max: int = 1000) -> None:
        self.routes = route_table(features)
        self.clock = clock
        self.instances = instances
        self.seal = seal
        self.max_batch_ops = max_batch_ops
        self.max_message_bytes = max_message_bytes
        self.dead_letter_max = dead_letter_max
        self.batch = Batch()
        self.warn = RateLimitedLog(log)
        self._contexts: dict[str, Context] = {}

    def take_batch(self) -> Batch:
        batch, self.batch = self.batch, Batch()
        return batch

    def handle(self, instance: str, frame: bytes | memoryview, now: float) -> None:
        """Process one raw frame received from ``instance`` at ``now``.  Never raises."""
        state, stats = self.instances[instance]
        stats.received += 1
        stats.last_message = now
        if len(frame) > self.max_message_bytes:
            # Only the head is looked at: the body is never decoded nor copied whole.
            topic = frame_topic(frame) or "?"
            stats.topics[topic] += 1
            self._reject(stats, "oversize", topic, frame, now,
                         f"{len(frame)} bytes > max_message_bytes")
            return
        try:
            topic, body = split_frame(frame)
        except FrameError as exc:
            topic = exc.topic or "?"
            stats.topics[topic] += 1
            self._reject(stats, exc.reason, topic, frame, now, str(exc))
            return
        stats.topics[topic] += 1
        extractor = TOPICS.get(topic)
        if extractor is None:
            stats.skipped += 1
            stats.topic_skipped[topic] += 1
            stats.reasons["unknown_topic"] += 1
            log.debug("%s: ignoring unknown topic %r", instance, topic)
            return
        if not isinstance(body, dict):
            if topic in ARRAY_BODY_TOPICS:
                stats.processed += 1
            else:
                self._reject(stats, "not_an_object", topic, frame, now, "body is a JSON array")
            return
        self._dispatch(instance, topic, body, state, stats, now)

    def _dispatch(self, instance: str, topic: str, body: dict[str, Any], state: InstanceState,
                  stats: InstanceStats, now: float) -> None:
        # One context per feed, updated in place: handlers use it during the call only.
        ctx = self._contexts.get(instance)
        if ctx is None:
            ctx = self._contexts[instance] = Context(now, "", "", instance, self.batch, stats)
        ctx.day, ctx.hour = self.clock.keys(now)
        ctx.now, ctx.batch, ctx.stats = now, self.batch, stats
        routes = self.routes
        failed = False
        try:
            # The directory is updated before the message's own effects (semantics §2).
            for org_id, name in learn_orgs(body, state):
                ctx.batch.hset(keys.ingest_orgs(instance), org_id, name)
            observations = TOPICS[topic](body, state)
            if topic == "misp_json":  # the one topic that yields groups of attributes
                observations = self._pieces(observations)
            for obs in observations:
                handlers = routes.get(type(obs))
                if handlers is None:
                    continue
                for handler in handlers:
                    try:
                        handler(obs, ctx)
                    except Exception:
                        failed = True
                        self._error(stats, topic, instance, handler)
                if ctx.batch.size >= self.max_batch_ops:  # a huge event: seal part-way
                    self.seal(self.take_batch())
                    ctx.batch = self.batch
        except Exception:
            failed = True
            self._error(stats, topic, instance, None)
        ctx.batch.messages += 1
        if failed:
            stats.errors += 1
            stats.topic_errors[topic] += 1
        else:
            stats.processed += 1

    def _pieces(self, observations: Iterable[Any]) -> Iterator[Any]:
        """The observations, with groups of attributes cut small enough for a batch to be
        sealed between two of them (a group emits several operations per attribute)."""
        most = max(1, self.max_batch_ops // OPS_PER_ATTRIBUTE)
        for obs in observations:
            if type(obs) is AttributesObs and len(obs.items) > most:
                for i in range(0, len(obs.items), most):
                    yield AttributesObs(obs.items[i:i + most])
            else:
                yield obs

    def _error(self, stats: InstanceStats, topic: str, instance: str,
               handler: Handler | None) -> None:
        where = getattr(handler, "__qualname__", "extractor")
        stats.reasons[f"error:{where}"] += 1
        self.warn.log(logging.WARNING, f"error:{topic}:{where}",
                      "%s: %s failed on a %s message; other effects still apply",
                      instance, where, topic, exc_info=True)

    def _reject(self, stats: InstanceStats, reason: str, topic: str,
                frame: bytes | memoryview, now: float, detail: str) -> None:
        stats.skipped += 1
        stats.topic_skipped[topic] += 1
        stats.reasons[reason] += 1
        self.warn.warning(f"skip:{reason}", "%s: skipped a message (%s) on topic %s: %s",
                          stats.name, reason, topic, detail)
        excerpt = bytes(frame[:DEAD_LETTER_FRAME_BYTES]).decode("utf-8", "replace")
        entry = orjson.dumps({"reason": reason, "topic": topic, "instance": stats.name,
                              "received": now, "detail": detail, "frame": excerpt})
        self.batch.lpush_capped(keys.DEAD_LETTER, entry.decode(), self.dead_letter_max)
        self.batch.messages += 1
