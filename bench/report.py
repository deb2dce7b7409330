"""The benchmark's summary lines and its section of doc/performance.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

import orjson
import zmq

DOC = Path(__file__).resolve().parent.parent / "doc" / "performance.md"
START = "<!-- bench:results:start (written by python -m bench.run; edit outside) -->"
END = "<!-- bench:results:end -->"
MB = 1024 * 1024

# Targets of issue #5, on the 2-core development machine.
TARGET_RATE = 30_000
TARGET_FLOOR_RATIO = 0.10
TARGET_P99_MS = 100
TARGET_RSS = 150 * MB
TARGET_BIG_SECONDS = 3.0
TARGET_BIG_MEMORY_FACTOR = 10


def machine() -> dict[str, Any]:
    model = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "zmq": f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}",
            "orjson": orjson.__version__, "load": os.getloadavg(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m['nproc']} cores ({m['cpu']}), Python {m['python']}, {m['zmq']}, "
            f"orjson {m['orjson']}, load average {m['load'][0]:.2f} at start, {m['date']}")


def _ok(good: bool) -> str:
    return "ok" if good else "MISSED"


def _spread(values: list[float], fmt: str) -> str:
    """", median of 3 runs (a-b)" -- nothing for a single run."""
    if len(values) < 2:
        return ""
    return f", median of {len(values)} runs ({min(values):{fmt}}-{max(values):{fmt}})"


def throughput_line(r: dict[str, Any]) -> str:
    t = r["throughput"]
    per = 1e6 / t["messages"]
    return (f"throughput: {t['rate']:,.0f} msg/s{_spread(t.get('rates', []), ',.0f')} "
            f"({t['messages']:,} messages in {t['seconds']:.2f} s; CPU per message: daemon "
            f"{t['cpu'] * per:.0f} us, Redis {t['redis_cpu'] * per:.0f} us) "
            f"target >= {TARGET_RATE:,}: {_ok(t['rate'] >= TARGET_RATE)}")


def summary(r: dict[str, Any]) -> list[str]:
    """One line per figure, with its target."""
    t, lat, big, floor = r["throughput"], r["latency"], r["big"], r["floor"]
    ratio = r.get("ratio", t["rate"] / floor["rate"])
    top = ", ".join(f"{c} {n / t['messages']:.3f}" for c, n in t["commands"].most_common(6))
    rss = " ".join(f"{n // 1000}k:{v / MB:.0f}({f / MB:.0f})" for n, v, f in t["rss_points"])
    limit = big["frame_bytes"] * TARGET_BIG_MEMORY_FACTOR
    highest = f", the highest of {t['runs']} runs" if t.get("runs", 1) > 1 else ""
    return [
        throughput_line(r),
        f"attribute observations: {t['obs_rate']:,.0f} obs/s ({t['observations']:,} in total,"
        f" {t['observations'] / t['messages']:.2f} per message)",
        f"decode-only floor: {floor['rate']:,.0f} msg/s (measured before each run); "
        f"daemon/floor = {ratio:.3f}{_spread(r.get('ratios', []), '.3f')} "
        f"target >= {TARGET_FLOOR_RATIO}: {_ok(ratio >= TARGET_FLOOR_RATIO)}",
        f"redis commands per message: {t['commands_per_msg']:.3f} (top: {top})",
        f"peak RSS: {t['peak_rss'] / MB:.0f} MB over {t['messages']:,} messages"
        f"{highest} (idle after start"
        f" {t['idle_rss'] / MB:.0f} MB; RSS MB (of which mapped files) at "
        f"each tenth: {rss}) target <= {TARGET_RSS // MB} MB: {_ok(t['peak_rss'] <= TARGET_RSS)}",
        f"live delay at {lat['rate']:,.0f} msg/s: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f}"
        f" ms, max {lat['max']:.1f} ms ({lat['samples']:,} stamped of {lat['live_messages']:,} "
        f"live messages; daemon CPU {lat['cpu_share']:.0%}) target p99 <= {TARGET_P99_MS} ms: "
        f"{_ok(lat['p99'] <= TARGET_P99_MS)}",
        f"big event: {big['attributes']:,} attributes ({big['frame_bytes'] / MB:.1f} MB frame) "
        f"in {big['seconds']:.2f} s target <= {TARGET_BIG_SECONDS} s: "
        f"{_ok(big['seconds'] <= TARGET_BIG_SECONDS)}",
        f"big event memory: +{big['memory'] / MB:.0f} MB peak over idle = "
        f"{big['memory'] / big['frame_bytes']:.1f}x the frame, target <= "
        f"{TARGET_BIG_MEMORY_FACTOR}x: {_ok(big['memory'] <= limit)}",
        "redis totals: checked against the workload in every run: ok",
    ]


def section(r: dict[str, Any], lines: list[str]) -> str:
    m = r["machine"]
    return "\n".join([
        START,
        f"Last run: `{r['command']}`, {m['date']} ({r['mode']} mode).",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, "
        f"Redis {r['redis_version']}, {m['zmq']}, orjson {m['orjson']}; load average "
        f"{m['load'][0]:.2f} / {m['load'][1]:.2f} / {m['load'][2]:.2f} when it started "
        "(the machine is shared: figures are noisy).",
        "",
        "```",
        *lines,
        "```",
        END,
    ])


def write_doc(r: dict[str, Any], lines: list[str]) -> None:
    """Replace the results section of doc/performance.md (the rest is prose)."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n\n"
    block = section(r, lines)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Latest figures\n\n" + block + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
