"""The attributes of a published event, handled as groups (AttributesObs), have exactly
the effects of the same attributes handled one by one (router.each)."""

from __future__ import annotations

from typing import Any

from redis.connection import PythonRespSerializer

from bench.workload import build_workload
from helpers.batch import Batch, blob_bytes
from helpers.clock import DayClock
from helpers.config import Config
from helpers.daemon import build_features
from helpers.observations import AttributesObs, InstanceState
from helpers.router import Dispatcher
from helpers.stats import InstanceStats

NOW = 1767139200.0  # 2025-12-31 00:00 UTC


def run(frames: list[bytes], groups: bool) -> tuple[list[Batch], InstanceStats]:
    features = build_features(Config(timezone="UTC"))
    if not groups:
        for feature in features:
            feature.handlers.pop(AttributesObs, None)
    stats = InstanceStats("misp1")
    sealed: list[Batch] = []
    disp = Dispatcher(features, DayClock("UTC"), {"misp1": (InstanceState("misp1"), stats)},
                      sealed.append)
    for i, frame in enumerate(frames):
        disp.handle("misp1", frame, NOW + i // 7)  # runs of equal receive times
        if i % 50 == 49:
            sealed.append(disp.take_batch())
    sealed.append(disp.take_batch())
    return sealed, stats


def effects(batch: Batch) -> dict[str, Any]:
    pubs: dict[str, list[bytes]] = {}
    for channel, message in batch.publications():
        pubs.setdefault(channel, []).append(blob_bytes(message))
    return {
        "zincr": batch.zincr, "incr": batch.incr, "sets": batch.sets, "zadds": batch.zadds,
        "geo": batch.geo, "hashes": batch.hashes, "expires": batch.expires,
        "expires_nx": batch.expires_nx, "calls": batch.calls, "shared": batch.shared,
        "messages": batch.messages,
        "lists": {k: (n, [blob_bytes(v) for v in values[-n:]])
                  for k, (n, values) in batch.lists.items()},
        "pubs": pubs,  # in order per channel (the order across channels is not kept)
    }


def test_groups_have_the_effects_of_attributes_one_by_one() -> None:
    pool = build_workload(3000)
    frames = [f for f in pool.frames if f.startswith((b"misp_json ", b"misp_json_attribute "))]
    assert sum(f.startswith(b"misp_json ") for f in frames) > 200
    grouped, stats_g = run(frames, groups=True)
    single, stats_s = run(frames, groups=False)
    assert [effects(b) for b in grouped] == [effects(b) for b in single]
    assert stats_g.reasons == stats_s.reasons and stats_g.errors == stats_s.errors == 0
    assert sum(len(b.pubs) for b in grouped) > 5000  # it did compare something


def test_every_publication_the_features_make_is_the_resp_a_client_would_send() -> None:
    # The live lines, last-contributor and map messages are made as RESP by the features
    # themselves (batch.publish_command); a wrong length head would shift every command
    # after it, so the whole stream must read back and pack again to the same bytes.
    packer = PythonRespSerializer(6000, lambda a: a if isinstance(a, bytes) else a.encode())
    frames = build_workload(1500).frames
    commands = published = 0
    for batch in run(frames, groups=True)[0]:
        pubs = batch.publications()
        assert b"".join(batch.pubs) == b"".join(
            b"".join(packer.pack("PUBLISH", channel, message)) for channel, message in pubs)
        commands += len(batch.pubs)
        published += len(pubs)
    assert commands == published > 3000
