"""``zmq_subscriber.py --status``: every feed's status hash as a table."""

from __future__ import annotations

import sys
import time

from helpers import keys
from helpers.config import Config
from helpers.writer import describe_redis_error, make_client, text

COLUMNS = ("instance", "connected", "received", "processed", "skipped", "errors",
           "last message", "up since", "backlog", "journal", "redis")


def _ago(epoch: str | None, now: float) -> str:
    if not epoch or epoch == "0":
        return "never"
    seconds = max(0, int(now - float(epoch)))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _redis_state(h: dict[str, str]) -> str:
    """``ok``, or how long the daemon had been failing to reach Redis when it wrote this."""
    if h.get("redis_outage") != "1":
        return "ok"
    return f"DOWN {h.get('redis_outage_seconds', '?')}s"


def status_rows(cfg: Config) -> list[tuple[str, ...]]:
    client = make_client(cfg.redis)
    names = [i.name for i in cfg.instances]
    for raw in client.scan_iter(match=keys.ingest_status("*"), count=1000):
        name = text(raw)[len(keys.ingest_status("")):]
        if name not in names:
            names.append(name)
    now = time.time()
    rows: list[tuple[str, ...]] = []
    for name in names:
        h = {text(k): text(v) for k, v in client.hgetall(keys.ingest_status(name)).items()}
        if not h:
            rows.append((name, "no status", *[""] * (len(COLUMNS) - 2)))
            continue
        rows.append((name, "yes" if h.get("connected") == "1" else "NO",
                     h.get("received", "0"), h.get("processed", "0"), h.get("skipped", "0"),
                     h.get("errors", "0"), _ago(h.get("last_message"), now),
                     _ago(h.get("started"), now), h.get("backlog", "0"),
                     h.get("journal_batches", "0"), _redis_state(h)))
    return rows


def print_status(cfg: Config) -> int:
    try:
        rows = status_rows(cfg)
    except Exception as exc:
        print(f"cannot read the status from Redis {cfg.redis!r}: {describe_redis_error(exc)}",
              file=sys.stderr)
        return 1
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    for row in (COLUMNS, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
