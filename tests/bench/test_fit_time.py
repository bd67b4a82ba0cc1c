"""bench/fit_time.py: keys stored one by one are merged into one table, whatever process wrote them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from bench.fit_time import main, write_tables


def _key(stored: Path, protocol: str, variant: str, seed: int, vbpr: float, tuned: float, grid: float,
         load: float) -> None:
    machine = {"cpu": "test cpu", "logical_cores": 2, "threads": 1, "load_average_before": [load, 0.0, 0.0]}
    row = {"protocol": protocol, "variant": variant, "seed": seed, "configs": {},
           "fit_s": {"VBPR": [vbpr], "mmrec-tuned": [tuned, tuned + 2.0], "mmrec-multimodal": [grid]},
           "machine": machine, "load_average_after": [0.0, 0.0, 0.0]}
    stored.mkdir(parents=True, exist_ok=True)
    (stored / f"{protocol}-{variant}-seed{seed}.json").write_text(json.dumps(row))


def test_stored_keys_merge_into_one_table_in_protocol_variant_seed_order(tmp_path):
    stored = tmp_path / "fit_time_runs"
    _key(stored, "temporal", "tags", 0, 50.0, 49.0, 25.0, 1.5)  # as a second process would write it
    _key(stored, "random", "no-tags", 1, 40.0, 59.0, 20.0, 0.2)
    _key(stored, "random", "tags", 1, 60.0, 29.0, 30.0, 0.4)
    assert write_tables(stored, tmp_path / "fit_time") == 0
    lines = (tmp_path / "fit_time.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| random") or line.startswith("| temporal")]
    assert [r.split(" | ")[:3] for r in rows] == [["| random", "tags", "1"], ["| random", "no-tags", "1"],
                                                  ["| temporal", "tags", "0"]]
    assert rows[0].endswith("| 60.0 | 30.0 | 0.50 | 30.0 | 0.50 |")  # repeats are averaged: (29 + 31) / 2
    assert "`random`, mean over 2 keys: VBPR 50.0 s; mmrec-tuned 45.0 s (0.90x); mmrec-multimodal 25.0 s (0.50x)." \
        in lines
    assert "`temporal`, mean over 1 keys: VBPR 50.0 s" in "\n".join(lines)
    assert "load average when a key (or its process) started 0.2-1.5" in lines[2]
    assert len(json.loads((tmp_path / "fit_time.json").read_text())["runs"]) == 3


def test_only_merge_with_nothing_stored_fails(tmp_path):
    assert main(["--only-merge", "--results-dir", str(tmp_path), "--workdir", str(tmp_path / "work")]) == 1
