"""``--status`` shows the backlog, the journal and the Redis outage the daemon reported."""

from __future__ import annotations

import redis

from helpers.config import Config, InstanceConfig, RedisConfig
from helpers.redis_server import RedisServer
from helpers.status_cli import COLUMNS, status_rows


def test_status_rows_show_backlog_journal_and_outage(r: redis.Redis,
                                                     redis_server: RedisServer) -> None:
    url = redis_server.url
    r.hset("INGEST:status:misp1", mapping={
        "connected": 1, "received": 10, "processed": 9, "skipped": 1, "errors": 0,
        "last_message": 0, "started": 0, "backlog": 12, "journal_batches": 340,
        "redis_outage": 1, "redis_outage_seconds": 75})
    r.hset("INGEST:status:misp2", mapping={"connected": 0, "backlog": 0,
                                            "journal_batches": 0, "redis_outage": 0})
    cfg = Config(redis=RedisConfig(url=url),
                 instances=(InstanceConfig("misp1"), InstanceConfig("misp2")))
    rows = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in status_rows(cfg)}
    assert (rows["misp1"]["backlog"], rows["misp1"]["journal"], rows["misp1"]["redis"]) == \
        ("12", "340", "DOWN 75s")
    assert (rows["misp2"]["connected"], rows["misp2"]["journal"], rows["misp2"]["redis"]) == \
        ("NO", "0", "ok")
