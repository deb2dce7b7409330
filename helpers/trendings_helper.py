"""Trendings (semantics §3): events, categories, tags, discussions, sightings per day."""

from __future__ import annotations

import json
from typing import Any

from helpers import keys
from helpers.context import Context, Handler
from helpers.message import id_str, nonempty_str
from helpers.observations import (
    AttributeObs,
    AttributesObs,
    EventObs,
    PostObs,
    SightingObs,
    TagObs,
)

_SIGHT_KIND = {0: "sightings", 1: "false_positive"}
_encode_str = json.encoder.encode_basestring


_MEMBERS: dict[tuple[Any, Any, Any], str | None] = {}  # tags recur: their members too


def tag_member(tag: dict[str, Any]) -> str | None:
    """``{"id": "<id>", "name": …, "colour": …}``, serialised deterministically
    (Python's default separators, non-ASCII kept); None without a usable name."""
    key = (tag.get("id"), tag.get("name"), tag.get("colour"))
    try:
        return _MEMBERS[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable field: never a usable tag anyway, but say so below
        return _tag_member(tag)
    if len(_MEMBERS) >= 65536:
        _MEMBERS.clear()
    member = _MEMBERS[key] = _tag_member(tag)
    return member


def _tag_member(tag: dict[str, Any]) -> str | None:
    name = nonempty_str(tag.get("name"))
    if name is None:
        return None
    colour = tag.get("colour")
    return (f'{{"id": {_encode_str(id_str(tag.get("id")) or "")}, "name": {_encode_str(name)}, '
            f'"colour": {_encode_str(colour if isinstance(colour, str) else "")}}}')


class Trendings:
    def __init__(self) -> None:
        self.handlers: dict[type, Handler] = {
            EventObs: self.on_event,
            AttributeObs: self.on_attribute,
            AttributesObs: self.on_attributes,
            TagObs: self.on_tag,
            PostObs: self.on_post,
            SightingObs: self.on_sighting,
        }
        self.procs: dict[str, str] = {}
        self._day = self._categs = self._tags_day = self._tags_key = ""

    def _tags(self, tags: list[dict[str, Any]], ctx: Context) -> None:
        if ctx.day != self._tags_day:  # the key, built once a day
            self._tags_day, self._tags_key = ctx.day, keys.trendings("TAGS", ctx.day)
        key = self._tags_key
        for tag in tags:
            member = tag_member(tag)
            if member is None:
                ctx.skip("tag_without_name")
            else:
                ctx.batch.zincrby(key, member)

    def on_event(self, obs: EventObs, ctx: Context) -> None:
        if obs.info is not None:
            ctx.batch.zincrby(keys.trendings("EVENTS", ctx.day), obs.info)
        else:
            ctx.skip("event_without_info")
        self._tags(obs.tags, ctx)

    def on_attribute(self, obs: AttributeObs, ctx: Context) -> None:
        if ctx.day != self._day:  # the key, built once a day
            self._day, self._categs = ctx.day, keys.trendings("CATEGS", ctx.day)
        ctx.batch.zincrby(self._categs, obs.category)
        if obs.tags:
            self._tags(obs.tags, ctx)

    def on_attributes(self, group: AttributesObs, ctx: Context) -> None:
        """The attributes of an event: one increment per category."""
        if ctx.day != self._day:
            self._day, self._categs = ctx.day, keys.trendings("CATEGS", ctx.day)
        counts: dict[str, int] = {}
        for obs in group.items:
            counts[obs.category] = counts.get(obs.category, 0) + 1
            if obs.tags:
                self._tags(obs.tags, ctx)
        for category, n in counts.items():
            ctx.batch.zincrby(self._categs, category, n)

    def on_tag(self, obs: TagObs, ctx: Context) -> None:
        self._tags([obs.tag], ctx)

    def on_post(self, obs: PostObs, ctx: Context) -> None:
        title = obs.title if obs.title is not None else f"Thread {obs.thread_id}"
        ctx.batch.zincrby(keys.trendings("DISC", ctx.day), title)
        if obs.paired and obs.title is not None:  # remembered across restarts
            ctx.batch.hset(keys.ingest_threads(ctx.instance), obs.thread_id, obs.title)

    def on_sighting(self, obs: SightingObs, ctx: Context) -> None:
        ctx.batch.incrby(keys.trendings_sight(_SIGHT_KIND[obs.kind], ctx.day))
