"""bench/blend_search_speed.py: both arms score the same grids to the same metrics, and the tables are written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from bench import blend_search_speed


def test_before_and_now_agree_on_a_tiny_catalogue(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["blend_search_speed.py", "--users", "120", "--items", "200",
                                      "--interactions", "2400", "--repeats", "1", "--out", str(tmp_path)])
    blend_search_speed.main()
    report = json.loads((tmp_path / "blend_search_speed.json").read_text())
    assert [row["stage"] for row in report["rows"]] == ["transitions", "recent popularity"]
    assert [row["scorers"] for row in report["rows"]] == [21, 16]
    assert all(row["max_ndcg_gap"] <= 1e-4 and row["now_s"] > 0 for row in report["rows"])
    assert "| transitions | 21 |" in (tmp_path / "blend_search_speed.md").read_text()
