"""The GPU proof script's CPU dry run: every section runs at tiny sizes; failures stay contained."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

import bench.gpu_check as gpu_check  # noqa: E402
from bench.gpu_measure import check  # noqa: E402
from bench.gpu_sections import SECTIONS  # noqa: E402


def _report(out: Path) -> dict:
    return json.loads((out / "gpu.json").read_text())


def test_dry_run_on_cpu_writes_every_section_ok(tmp_path, one_torch_thread):
    args = ["--device", "cpu", "--dry-run", "--out", str(tmp_path), "--work", str(tmp_path)]
    assert gpu_check.main(args) == 0
    report = _report(tmp_path)
    assert report["ok"] and report["mode"].startswith("dry run")
    assert list(report["sections"]) == list(SECTIONS)
    for name, section in report["sections"].items():
        assert section["ok"], (name, section)
        assert section["checks"] and all(c["passed"] for c in section["checks"].values())
    train = report["sections"]["train"]
    assert train["figures"]["bf16_autocast"] is False  # the Trainer's bf16 is CUDA-only: recorded, not faked
    assert any("bf16" in note for note in train["notes"])
    assert train["figures"]["interactions_per_s"] > 0
    assert report["machine"]["torch"] == torch.__version__
    markdown = (tmp_path / "gpu.md").read_text()
    for name in SECTIONS:
        assert f"## {name}" in markdown
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("mmrec-gpu-check-")]  # scratch removed


def test_a_failing_section_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    def broken(device, sizes, work):
        raise RuntimeError("CUDA out of memory (simulated)")

    def wrong(device, sizes, work):
        return {"figures": {"x": 1.0}, "checks": {"agrees": check(False, 0.5, 1e-3)}, "notes": []}

    monkeypatch.setitem(SECTIONS, "train", broken)
    monkeypatch.setitem(SECTIONS, "features", wrong)
    code = gpu_check.main(["--device", "cpu", "--dry-run", "--out", str(tmp_path),
                           "--sections", "train", "features", "ranking"])
    assert code == 1
    sections = _report(tmp_path)["sections"]
    assert sections["train"]["ok"] is False and "simulated" in sections["train"]["error"]
    assert sections["features"]["ok"] is False and sections["features"]["failed_checks"] == ["agrees"]
    assert sections["ranking"]["ok"] is True
    markdown = (tmp_path / "gpu.md").read_text()
    assert "RuntimeError: CUDA out of memory (simulated)" in markdown and "| agrees | NO |" in markdown


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where no GPU is present")
def test_cuda_without_a_gpu_is_refused_with_a_message(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "sees no GPU" in capsys.readouterr().err
    assert not (tmp_path / "gpu.json").exists()
