"""Contributions, ranks, badges, trophies and awards (semantics §5).

Not implemented yet (issue #4): the feature is wired into the loop but writes nothing.
"""

from __future__ import annotations

from helpers.config import Config
from helpers.context import Context, Handler
from helpers.observations import AttributeObs, EventObs, PostObs, SightingObs


class Contributions:
    def __init__(self, cfg: Config) -> None:
        self.handlers: dict[type, Handler] = {
            AttributeObs: self.on_attribute,
            EventObs: self.on_event,
            SightingObs: self.on_sighting,
            PostObs: self.on_post,
        }
        self.procs: dict[str, str] = {}

    def on_attribute(self, obs: AttributeObs, ctx: Context) -> None:
        return None

    def on_event(self, obs: EventObs, ctx: Context) -> None:
        return None

    def on_sighting(self, obs: SightingObs, ctx: Context) -> None:
        return None

    def on_post(self, obs: PostObs, ctx: Context) -> None:
        return None
