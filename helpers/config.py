"""Configuration: YAML in, frozen dataclasses out, validated eagerly.

Every setting the daemon knows is a field below; an unknown key anywhere is an
error that names its dotted path (``instances[0].pasword``), so a typo never
silently falls back to a default.  Nothing is read at import time.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """The configuration is unusable; the message names the offending key."""


def _secret() -> Any:
    return field(default=None, repr=False)


@dataclass(frozen=True)
class RedisConfig:
    url: str = "redis://127.0.0.1:6379/0"
    username: str | None = None
    password: str | None = _secret()
    ssl_ca_file: str | None = None
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None
    socket_timeout: float = 5.0

    def __repr__(self) -> str:  # the URL may carry a password
        return f"RedisConfig(url={redact_url(self.url)!r}, username={self.username!r})"


@dataclass(frozen=True)
class InstanceConfig:
    name: str
    url: str = "tcp://127.0.0.1:50000"
    username: str | None = None
    password: str | None = _secret()


@dataclass(frozen=True)
class GeoConfig:
    database: str | None = None  # None: the GeoLite2 City database installed with the requirements
    cache_size: int = 65536


@dataclass(frozen=True)
class ChannelsConfig:
    live: str = "1"
    map: str = "PicToDisplay"
    last_contributor: str = "lastContributor"
    last_awards: str = "lastAwards"


@dataclass(frozen=True)
class LiveConfig:
    max_cache_history: int = 100


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    format: str = "text"  # text or json
    file: str | None = None  # None: stderr (journald adds timestamps)


@dataclass(frozen=True)
class UsersConfig:
    login_source: str = "audit"  # audit (misp_json_audit) or user (misp_json_user)


@dataclass(frozen=True)
class WriterConfig:
    flush_interval_ms: int = 20
    max_batch_messages: int = 2000
    # Batches Redis has not taken yet wait in memory up to these bounds, then in the
    # journal (doc/reliability.md).  The default directory suits systemd's StateDirectory.
    backlog_max_batches: int = 2000
    backlog_max_bytes: int = 64 * 1024 * 1024
    journal_dir: str = "/var/lib/misp-ingest/journal"
    journal_file_max_bytes: int = 16 * 1024 * 1024
    retry_max_seconds: float = 10.0


@dataclass(frozen=True)
class MetricsConfig:
    listen: str | None = None  # "127.0.0.1:9108" to serve Prometheus metrics; None: off


@dataclass(frozen=True)
class Config:
    redis: RedisConfig = field(default_factory=RedisConfig)
    instances: tuple[InstanceConfig, ...] = (InstanceConfig(name="misp1"),)
    timezone: str | None = None
    geo: GeoConfig = field(default_factory=GeoConfig)
    ranking: str = "config/ranking.yaml"
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    users: UsersConfig = field(default_factory=UsersConfig)
    writer: WriterConfig = field(default_factory=WriterConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    retention_days: int = 0  # 0: per-day keys never expire
    max_message_bytes: int = 64 * 1024 * 1024
    silence_warning_seconds: int = 300
    dead_letter_max: int = 1000
    status_interval_seconds: float = 1.0
    summary_interval_seconds: float = 60.0

    def resolve(self, path: str) -> Path:
        """A path from the configuration; relative ones are relative to the project."""
        p = Path(path)
        return p if p.is_absolute() else PROJECT_DIR / p


def redact_url(url: str) -> str:
    """``redis://user:secret@host`` -> ``redis://user:***@host``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9108"`` or ``"[::1]:9108"`` -> (host, port); ValueError if malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


# --- Generic builder: dict -> dataclass with dotted-path errors --------------


def _build(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = path or "configuration"
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{_join(path, str(key))}: unknown setting")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], _join(path, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, f.name)}: required setting is missing")
    return cls(**kwargs)


def build_dataclass(cls: type, data: Any, path: str = "") -> Any:
    """``data`` (a mapping from YAML) as the frozen dataclass ``cls``, validated like the
    main configuration: unknown keys and wrong types raise :class:`ConfigError` naming
    their dotted path under ``path``."""
    return _build(cls, data, path)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path)
    if origin is tuple:
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{path}: expected a non-empty list")
        return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:  # a mapping with str keys: {name: value}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return {str(k): _convert(args[1], v, _join(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)  # type: ignore[arg-type]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # channel "1" written as 1
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        shown = "" if path.endswith("password") else f" {value!r}"  # never echo a secret
        raise ConfigError(f"{path}: expected {hint.__name__}, got {type(value).__name__}{shown}")
    return value


# --- Semantic checks ---------------------------------------------------------


def _check(cfg: Config) -> None:
    _check_instances(cfg)
    _check_values(cfg)
    _check_durability(cfg)
    _check_files(cfg)


def _check_instances(cfg: Config) -> None:
    names = [i.name for i in cfg.instances]
    for i, inst in enumerate(cfg.instances):
        where = f"instances[{i}]"
        if not inst.name or any(c in inst.name for c in " :\t\n"):
            raise ConfigError(f"{where}.name: must be a non-empty word without spaces or ':'")
        if names.count(inst.name) > 1:
            raise ConfigError(f"{where}.name: duplicate instance name {inst.name!r}")
        if not inst.url.startswith(("tcp://", "ipc://", "inproc://")):
            raise ConfigError(f"{where}.url: expected tcp://host:port or ipc://path")
        if (inst.username is None) != (inst.password is None):
            raise ConfigError(f"{where}.password: username and password go together (ZeroMQ PLAIN)")


def _check_values(cfg: Config) -> None:
    if not cfg.redis.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("redis.url: expected redis://, rediss:// or unix://")
    if cfg.timezone is not None:
        try:
            zoneinfo.ZoneInfo(cfg.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"timezone: unknown IANA time zone {cfg.timezone!r}") from None
    if cfg.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("logging.level: expected debug, info, warning or error")
    if cfg.logging.format not in ("text", "json"):
        raise ConfigError("logging.format: expected text or json")
    if cfg.users.login_source not in ("audit", "user"):
        raise ConfigError("users.login_source: expected audit or user")
    for path, value in (
        ("live.max_cache_history", cfg.live.max_cache_history),
        ("writer.flush_interval_ms", cfg.writer.flush_interval_ms),
        ("writer.max_batch_messages", cfg.writer.max_batch_messages),
        ("writer.backlog_max_batches", cfg.writer.backlog_max_batches),
        ("geo.cache_size", cfg.geo.cache_size),
        ("max_message_bytes", cfg.max_message_bytes),
    ):
        if value <= 0:
            raise ConfigError(f"{path}: must be positive")
    if cfg.metrics.listen is not None:
        try:
            parse_listen(cfg.metrics.listen)
        except ValueError as exc:
            raise ConfigError(f"metrics.listen: {exc} (e.g. 127.0.0.1:9108)") from None
    if cfg.retention_days < 0:
        raise ConfigError("retention_days: must be 0 (keep forever) or a number of days")


def _check_durability(cfg: Config) -> None:
    """The outage settings (doc/reliability.md)."""
    for path, value in (
        ("writer.backlog_max_bytes", cfg.writer.backlog_max_bytes),
        ("writer.journal_file_max_bytes", cfg.writer.journal_file_max_bytes),
        ("writer.retry_max_seconds", cfg.writer.retry_max_seconds),
        ("redis.socket_timeout", cfg.redis.socket_timeout),
        ("silence_warning_seconds", cfg.silence_warning_seconds),
    ):
        if value <= 0:
            raise ConfigError(f"{path}: must be positive")
    if not cfg.writer.journal_dir.strip():
        raise ConfigError("writer.journal_dir: must name a directory")


def _check_files(cfg: Config) -> None:
    if cfg.geo.database is not None:
        _check_geo_database(cfg.resolve(cfg.geo.database))
    ranking = cfg.resolve(cfg.ranking)
    if not ranking.is_file():
        raise ConfigError(f"ranking: cannot read {ranking}")
    from helpers.ranking import load_ranking  # imports this module: load it late

    load_ranking(ranking)  # validated now, so --check-config reports its errors


def _check_geo_database(db: Path) -> None:
    hint = "(leave geo.database unset to use the bundled GeoLite2 City database)"
    if not db.exists():
        raise ConfigError(f"geo.database: {db} does not exist {hint}")
    if not db.is_file():
        raise ConfigError(f"geo.database: {db} is not a file {hint}")
    if not os.access(db, os.R_OK):
        raise ConfigError(f"geo.database: {db} is not readable by this user {hint}")


def _has_secrets(cfg: Config) -> bool:
    if cfg.redis.password or redact_url(cfg.redis.url) != cfg.redis.url:
        return True
    return any(i.password for i in cfg.instances)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, without the snippet of the offending line (it may hold a password)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}"


def load_config(path: str | Path | None, *, check_permissions: bool = True) -> Config:
    """Read, validate and return the configuration at ``path`` (None: all defaults)."""
    if path is None:
        cfg = Config()
        _check(cfg)
        return cfg
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: {_yaml_problem(exc)}") from None
    cfg = _build(Config, data, "")
    _check(cfg)
    if check_permissions and _has_secrets(cfg) and p.stat().st_mode & stat.S_IROTH:
        raise ConfigError(
            f"{p} holds passwords but is world-readable; run: chmod o-rwx {p}"
        )
    return cfg
