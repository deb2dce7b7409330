"""The commented example configuration documents every setting, with its default."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from helpers.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "config.example.yaml"


def _missing(cls: type, data: dict[str, Any], prefix: str = "") -> list[str]:
    missing = []
    for f in dataclasses.fields(cls):
        where = f"{prefix}{f.name}"
        if f.name not in data:
            missing.append(where)
        elif dataclasses.is_dataclass(f.default_factory if callable(f.default_factory) else None):
            missing += _missing(f.default_factory, data[f.name], where + ".")  # type: ignore[arg-type]
    return missing


def test_example_config_is_valid_and_equals_the_defaults() -> None:
    assert load_config(EXAMPLE) == Config()


def test_example_config_mentions_every_setting() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert _missing(Config, data) == []
    for key in ("name", "url", "username", "password"):
        assert key in data["instances"][0]
