"""Shared by the contribution tests: frames of each kind, and a harness that pushes them
through the real dispatcher and applies each batch with the real batch script."""

from __future__ import annotations

import json
from typing import Any

import redis

from helpers.batch import Batch, build_script, split_payload
from helpers.clock import DayClock
from helpers.config import Config
from helpers.contributor_helper import PROC, Contributions
from helpers.observations import InstanceState
from helpers.ranking import Ranking
from helpers.router import Dispatcher
from helpers.stats import InstanceStats
from helpers.writer import Publisher

NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
DAY = "20260101"
DAYS = 86400


class Harness:
    """Dispatcher -> batch -> batch script, synchronously, with the clock in our hands."""

    def __init__(self, client: redis.Redis, ranking: Ranking | None = None,
                 instance: str = "misp1") -> None:
        self.client = client
        self.instance = instance
        self.feature = Contributions(Config(timezone="UTC"), ranking)
        self.stats = InstanceStats(instance)
        self.sealed: list[Any] = []
        self.dispatcher = Dispatcher([self.feature], DayClock("UTC"),
                                     {instance: (InstanceState(instance), self.stats)},
                                     self.sealed.append)
        self.script = client.register_script(build_script(self.feature.procs))
        self.publisher = Publisher(client)
        self.seq = 0
        self.inline_shared = False  # True: calls as earlier versions encoded them

    def send(self, topic: str, body: dict[str, Any], now: float = NOW, flush: bool = True) -> None:
        frame = f"{topic} {json.dumps(body)}".encode()
        self.dispatcher.handle(self.instance, frame, now)
        if flush:
            self.flush()

    def flush(self) -> None:
        for batch in [*self.sealed, self.dispatcher.take_batch()]:
            self.seq += 1
            if self.inline_shared:
                inline_shared(batch)
            ops, pubs = split_payload(batch.encode())  # as the writer applies a batch
            _applied, failed = self.script(keys=["INGEST:applied:test"], args=[self.seq, ops, 0])
            assert failed == 0, "an operation of the batch failed"
            if pubs is not None:
                self.publisher.publish(pubs)
        self.sealed.clear()


def inline_shared(batch: Batch) -> None:
    """Each call with its shared arguments written in (as earlier versions sent them)."""
    for call in batch.calls:
        if call[1] == PROC and type(call[8]) is int:
            call[8:] = batch.shared[call[8] - 1]
    batch.shared.clear()
    batch.shared_ids.clear()


def attribute(org: str, category: str = "Network activity", action: str = "add",
              object_id: str = "0") -> dict[str, Any]:
    """A misp_json_attribute body."""
    return {"action": action,
            "Attribute": {"id": "1", "type": "domain", "value": "example.org",
                          "category": category, "object_id": object_id},
            "Event": {"id": "7", "info": "an event", "date": "2025-12-30",
                      "Orgc": {"id": "1", "name": org}}}


def published_event(org: str, attrs: list[str], object_attrs: list[str] = (),  # type: ignore
                    tags: bool = False) -> dict[str, Any]:
    """A misp_json body: attributes (by category) and one object's attributes."""
    def attr(i: int, categ: str, obj: str) -> dict[str, Any]:
        return {"id": str(i), "type": "text", "value": f"v{i}", "category": categ,
                "object_id": obj}
    event: dict[str, Any] = {
        "id": "7", "info": "published", "date": "2025-12-30", "Orgc": {"id": "1", "name": org},
        "Attribute": [attr(i, c, "0") for i, c in enumerate(attrs)],
        "Object": [{"id": "3", "Attribute": [attr(1000 + i, c, "3")
                                             for i, c in enumerate(object_attrs)]}],
    }
    if tags:
        event["Tag"] = [{"id": "1", "name": "tlp:green", "colour": "#00ff00"}]
    return {"Event": event}


def event(org: str, tags: bool = False, action: str = "add") -> dict[str, Any]:
    """A misp_json_event body (header, Orgc and EventTag at the top level)."""
    body: dict[str, Any] = {"action": action,
                            "Event": {"id": "7", "info": "an event", "date": "2025-12-30"},
                            "Orgc": {"id": "1", "name": org}}
    if tags:
        body["EventTag"] = [{"Tag": {"id": "1", "name": "tlp:green", "colour": "#00ff00"}}]
    return body


def sighting(reporter_id: str, creator: str, category: str | None = "Payload delivery",
             date_sighting: float = NOW, kind: str = "0") -> dict[str, Any]:
    """A misp_json_sighting body reported by organisation ``reporter_id``."""
    attr: dict[str, Any] = {"id": "1", "type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"}
    if category is not None:
        attr["category"] = category
    return {"action": "add",
            "Sighting": {"id": "9", "type": kind, "org_id": reporter_id,
                         "date_sighting": str(int(date_sighting)), "Attribute": attr,
                         "Event": {"id": "7", "Orgc": {"name": creator}}}}


def organisation(org_id: str, name: str) -> dict[str, Any]:
    """A misp_json_organisation body: teaches the directory id -> name."""
    return {"Organisation": {"id": org_id, "name": name}}


def post(org: str, thread_id: str = "3") -> dict[str, Any]:
    """A misp_json_conversation body with a Post."""
    return {"Post": {"id": "1", "thread_id": thread_id, "org_name": org, "contents": "hi"}}


def awards(client: redis.Redis, day: str = DAY) -> list[dict[str, Any]]:
    """The awards of ``day``, in score order."""
    return [json.loads(m) for m in client.zrange(f"CONTRIB_LAST_AWARDS:{day}", 0, -1)]
