"""The ranking file: defaults, validation with dotted paths, trophy buckets."""

from __future__ import annotations

from pathlib import Path

import pytest

import zmq_subscriber
from helpers.config import PROJECT_DIR, ConfigError
from helpers.contributor_helper import build_proc
from helpers.ranking import Ranking, load_ranking


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ranking.yaml"
    path.write_text(text)
    return path


def test_shipped_file_holds_exactly_the_defaults() -> None:
    assert load_ranking(PROJECT_DIR / "config" / "ranking.yaml") == Ranking()


def test_empty_file_means_the_defaults(tmp_path: Path) -> None:
    assert load_ranking(write(tmp_path, "")) == Ranking()


def test_partial_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    rk = load_ranking(write(tmp_path, "points:\n  categories:\n    other: 3\n  event: 5\n"))
    assert rk.points.categories == {"other": 3}
    assert rk.points.event == 5 and rk.points.sighting_multiplier == 2
    assert rk.category_points("other") == 3 and rk.category_points("person") == 1


@pytest.mark.parametrize(("text", "message"), [
    ("points:\n  evnet: 2\n", "points.evnet: unknown setting"),
    ("points:\n  categories:\n    Network activity: 2\n",
     "points.categories.Network activity: write the category normalised"),
    ("points:\n  categories:\n    other: two\n", "points.categories.other: expected int"),
    ("points:\n  discussion: -1\n", "points.discussion: must not be negative"),
    ("requirements:\n  points: [1, 2]\n", "requirements.points: expected 16 entries"),
    ("requirements:\n  recent_days: 0\n", "requirements.recent_days: must be positive"),
    ("trophies:\n  mapping: [50, 40]\n", "trophies.mapping: expected positive percentages"),
    ("trophies:\n  mapping: [50, 50]\n", "trophies.titles: expected 4 titles"),
    ("rank_titles: [a]\n", "rank_titles: expected 16 entries"),
])
def test_bad_values_are_refused_with_their_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_ranking(write(tmp_path, text))


def test_check_config_reports_a_bad_ranking_file(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ranking = write(tmp_path, "badges: []\n")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"ranking: {ranking}\n")
    with pytest.raises(SystemExit) as exit_info:
        zmq_subscriber.main(["--config", str(cfg), "--check-config"])
    assert exit_info.value.code == 2
    assert "badges: expected a non-empty list" in capsys.readouterr().err


def test_trophy_buckets_follow_the_mapping() -> None:
    rk = Ranking()  # mapping 2, 9, 9, 10 ... cumulated 2, 11, 20, 30 ... 100
    assert rk.trophy_rank(None, 10) == 0
    assert rk.trophy_rank(0, 1) == 12  # alone: the top
    # 100 organisations: position 1-2 -> <=2 % (11), 3-11 -> <=11 % (10), 12-20 (9) ...
    assert [rk.trophy_rank(p, 100) for p in (1, 2, 3, 11, 12, 20, 21, 99)] == \
        [11, 11, 10, 10, 9, 9, 8, 1]
    # Exact boundaries do not depend on float rounding: 1/50 is exactly 2 %.
    assert rk.trophy_rank(1, 50) == 11


def test_procedure_carries_the_ranking_constants() -> None:
    proc = build_proc(Ranking())
    assert "{2, 11, 20, 30, 40, 50, 60, 70, 80, 90, 100}" in proc
    assert "week > 10" in proc and "@" not in proc
