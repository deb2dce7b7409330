"""Shared fixtures: a real Redis server the suite starts itself, on a free port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helpers.redis_server import RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private server for the session; never the user's, never port 6379."""
    with RedisServer() as server:
        assert server.port != 6379
        yield server


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on the private server, emptied before each test (it is ours to empty)."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()
