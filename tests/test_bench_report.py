"""The benchmark's arithmetic: which run its figures come from, and how they print."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.report import summary
from bench.run import combine

MB = 1024 * 1024


def fake_run(rate: float, floor: float, peak_mb: int) -> dict[str, Any]:
    return {"messages": 1000, "seconds": 1000 / rate, "rate": rate, "observations": 2350,
            "obs_rate": 2.35 * rate, "commands": Counter({"publish": 5000}),
            "commands_per_msg": 5.0, "peak_rss": peak_mb * MB, "idle_rss": 40 * MB,
            "rss_points": [(1000, peak_mb * MB, 47 * MB)], "cpu": 0.05, "redis_cpu": 0.02,
            "floor": {"rate": floor, "seconds": 1.0}}


def test_the_figures_are_the_median_run_s_and_the_rss_the_highest_run_s() -> None:
    runs = [fake_run(18000, 170000, 120), fake_run(16000, 175000, 141),
            fake_run(19000, 160000, 118)]
    out = combine(runs)
    assert out["throughput"]["rate"] == 18000  # the median of 16k, 18k, 19k
    assert out["floor"]["rate"] == 170000  # the median run's own floor
    # The ratio is the median of each run's own ratio, not median rate / median floor.
    assert out["ratios"] == sorted([18000 / 170000, 16000 / 175000, 19000 / 160000])
    assert out["ratio"] == 18000 / 170000
    assert out["throughput"]["peak_rss"] == 141 * MB  # the highest, not the median run's
    assert out["throughput"]["rates"] == [16000, 18000, 19000]


def test_the_summary_prints_the_range_and_judges_the_median() -> None:
    runs = [fake_run(18000, 170000, 120), fake_run(16000, 175000, 141),
            fake_run(19000, 160000, 118)]
    results = {**combine(runs),
               "latency": {"rate": 5000, "p50": 15.0, "p99": 30.0, "max": 40.0,
                           "samples": 10, "live_messages": 50, "cpu_share": 0.4},
               "big": {"attributes": 50000, "frame_bytes": 25 * MB, "seconds": 1.0,
                       "memory": 200 * MB}}
    lines = summary(results)
    assert lines[0].startswith("throughput: 18,000 msg/s, median of 3 runs (16,000-19,000)")
    assert lines[0].endswith("target >= 30,000: MISSED")
    assert "daemon/floor = 0.106, median of 3 runs (0.091-0.119) target >= 0.1: ok" in lines[2]
    assert "141 MB over 1,000 messages, the highest of 3 runs" in lines[4]
