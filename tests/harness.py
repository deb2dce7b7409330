"""Two ways to push frames through the real code: into a Batch (pure), or all the
way into the test Redis through the daemon's writer (integration)."""

from __future__ import annotations

import tempfile
from typing import Any

import orjson

from helpers.batch import Batch
from helpers.clock import DayClock
from helpers.config import (
    ChannelsConfig,
    Config,
    InstanceConfig,
    LiveConfig,
    RedisConfig,
    UsersConfig,
    WriterConfig,
)
from helpers.daemon import Daemon
from helpers.live_helper import Live
from helpers.observations import InstanceState
from helpers.router import Dispatcher
from helpers.stats import InstanceStats
from helpers.trendings_helper import Trendings
from helpers.users_helper import Users
from tests.factories import NOW, frame


class Pure:
    """A Dispatcher with the trendings, users and live features only, so that the
    batch it fills holds exactly their operations (geo and contributions have
    tests of their own)."""

    def __init__(self, tz: str = "UTC", login_source: str = "audit",
                 max_cache_history: int = 100, instance: str = "misp1") -> None:
        self.instance = instance
        self.state = InstanceState(instance, login_source=login_source)
        self.stats = InstanceStats(instance)
        self.sealed: list[Batch] = []
        features: list[Any] = [Trendings(), Users(),
                               Live(ChannelsConfig(), LiveConfig(max_cache_history))]
        self.dispatcher = Dispatcher(features, DayClock(tz),
                                     {instance: (self.state, self.stats)}, self.sealed.append)

    def send(self, topic: str, body: Any, style: str = "strings", now: float = NOW) -> Batch:
        """Handle one message; returns the batch holding its operations alone."""
        return self.send_raw(frame(topic, body, style), now)

    def send_raw(self, raw: bytes, now: float = NOW) -> Batch:
        self.dispatcher.take_batch()
        self.dispatcher.handle(self.instance, raw, now)
        return self.dispatcher.take_batch()


def body_of(raw: bytes) -> Any:
    """The body as the daemon decodes it."""
    return orjson.loads(raw.split(b" ", 1)[1])


class Ingest:
    """The daemon's dispatcher, features and Redis writer, without its sockets:
    frames in, keys in the test Redis out."""

    def __init__(self, redis_url: str, *, tz: str = "Europe/Luxembourg",
                 login_source: str = "audit", max_cache_history: int = 100,
                 instances: tuple[str, ...] = ("misp1",)) -> None:
        self.cfg = Config(redis=RedisConfig(url=redis_url),
                          instances=tuple(InstanceConfig(n) for n in instances), timezone=tz,
                          users=UsersConfig(login_source=login_source),
                          live=LiveConfig(max_cache_history=max_cache_history),
                          writer=WriterConfig(journal_dir=tempfile.mkdtemp(prefix="mi-journal-")))
        self.daemon = Daemon(self.cfg)
        self.daemon._load_state()
        self.daemon.writer.start()

    def send(self, topic: str, body: Any, now: float = NOW, style: str = "strings",
             instance: str = "misp1") -> None:
        self.daemon.dispatcher.handle(instance, frame(topic, body, style), now)

    def flush(self) -> None:
        """Seal what is pending and wait until Redis has it."""
        self.daemon._seal(self.daemon.dispatcher.take_batch())
        assert self.daemon.writer.drain(10), "Redis did not take the batch"

    def state(self, instance: str = "misp1") -> InstanceState:
        return self.daemon.instances[instance][0]

    def close(self) -> None:
        self.flush()
        self.daemon.writer.stop()
        self.daemon.zmq.destroy(linger=0)
