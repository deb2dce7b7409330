"""The edge: raw ZeroMQ frames to (topic, dict), and tolerant accessors.

MISP sends one frame per message, ``<topic> <json>``.  Field types vary across
MISP and PHP versions (ids as strings or numbers, booleans as ``true``/``1``/
``"1"``, collections absent, ``[]``, lists or dicts), so features never index raw
dicts: they go through the accessors below, which never raise.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_TOPIC_BYTES = 64


class FrameError(ValueError):
    """A frame that cannot be used at all; ``reason`` is a short counter name."""

    def __init__(self, reason: str, detail: str = "", topic: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.topic = topic  # when the frame had a usable one: for the dead letter


def frame_topic(frame: bytes | memoryview) -> str | None:
    """The topic of a frame without decoding its body; None if it has no usable one."""
    head = bytes(frame[:MAX_TOPIC_BYTES + 1])
    cut = head.find(b" ")
    if cut <= 0:
        return None
    try:
        return head[:cut].decode("ascii")
    except UnicodeDecodeError:
        return None


def split_frame(frame: bytes | memoryview) -> tuple[str, dict[str, Any] | list[Any]]:
    """Split ``b"topic {json}"`` at the first space and decode the body once.

    Raises :class:`FrameError` for a frame without a separator, a topic that is
    not ASCII, a body that is not UTF-8 JSON, or JSON that is not an object or
    an array (``misp_json_workflow`` may legitimately send an array).
    """
    head = bytes(frame[:MAX_TOPIC_BYTES + 1])
    cut = head.find(b" ")
    if cut <= 0:
        raise FrameError("no_topic", "frame has no 'topic ' prefix")
    try:
        topic = head[:cut].decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("bad_topic", "topic is not ASCII") from None
    try:
        # A view of the body: a big event's frame is not copied once more to be decoded.
        body = orjson.loads(memoryview(frame)[cut + 1:])
    except orjson.JSONDecodeError as exc:
        # orjson validates UTF-8 while parsing; tell corruption from bad JSON.
        reason = "not_utf8" if "UTF-8" in str(exc) else "bad_json"
        raise FrameError(reason, str(exc)[:120], topic) from None
    if not isinstance(body, (dict, list)):
        raise FrameError("not_an_object", f"body is a JSON {type(body).__name__}", topic)
    return topic, body


# --- Tolerant accessors --------------------------------------------------------


def as_int(value: Any, default: int | None = None) -> int | None:
    """``"12"``, ``12``, ``12.0`` -> 12; anything else -> ``default``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def as_float(value: Any, default: float | None = None) -> float | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return default
    return default


def truthy(value: Any) -> bool:
    """MISP booleans: ``true``, ``1`` or ``"1"`` (and ``"true"``)."""
    return value is True or value == 1 or value in ("1", "true", "True")


def as_dict(value: Any) -> dict[str, Any]:
    """A dict, or ``{}`` for anything else (PHP sends ``[]`` for an empty map)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """A collection as a list of its items.

    Absent -> ``[]``; a list as is; a dict of index -> item (non-sequential PHP
    array) -> its values; any other dict (a single item) -> ``[item]``.
    """
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if value and all(isinstance(k, str) and k.isdigit() for k in value):
            return list(value.values())
        return [value] if value else []
    return []


def as_dicts(value: Any) -> list[dict[str, Any]]:
    """:func:`as_list`, keeping only the dict items."""
    return [item for item in as_list(value) if isinstance(item, dict)]


def nonempty_str(value: Any) -> str | None:
    """The value if it is a non-empty (after stripping) string, else None."""
    if isinstance(value, str) and value.strip():
        return value
    return None


def id_str(value: Any) -> str | None:
    """An id as a string (``12`` and ``"12"`` -> ``"12"``); None if unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def path(obj: Any, *keys: str) -> Any:
    """``path(d, "Event", "Orgc", "name")``: None as soon as a level is not a dict."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj
