"""Geolocation (semantics §4): IPs and phone numbers to GEO_* keys and the map channel.

Not implemented yet (issue #3): the feature is wired into the loop but writes nothing.
"""

from __future__ import annotations

from helpers.config import Config
from helpers.context import Context, Handler
from helpers.observations import AttributeObs


class Geo:
    def __init__(self, cfg: Config) -> None:
        self.handlers: dict[type, Handler] = {AttributeObs: self.on_attribute}
        self.procs: dict[str, str] = {}

    def on_attribute(self, obs: AttributeObs, ctx: Context) -> None:
        return None

    def reload(self) -> None:
        """Reopen the GeoIP database (SIGHUP)."""
        return None
