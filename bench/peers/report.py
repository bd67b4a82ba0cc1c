"""Write a protocol's results: JSON (everything), a markdown table, one PNG plot."""

from __future__ import annotations

import io
import json
import os
import platform
from pathlib import Path
from typing import Any

from bench.peers.evaluation import REPORTED
from bench.peers.tuning import SystemResult
from mmrec.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text

HEADERS = {"ndcg@10": "NDCG@10", "ndcg@20": "NDCG@20", "recall@10": "Recall@10", "recall@20": "Recall@20",
           "precision@10": "P@10", "hit_rate@10": "HR@10", "mrr": "MRR"}


def machine_info() -> dict[str, Any]:
    """CPU model and core counts of the machine the numbers came from."""
    import psutil

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "logical_cores": psutil.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def _fmt_config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "-"


def markdown_table(protocol: str, results: list[SystemResult], header: dict[str, Any]) -> str:
    lines = [f"# Peer benchmark — `{protocol}` protocol (test split, tuned on validation)", ""]
    for key, value in header.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"- {key}: {value}")
    lines.append("")
    cols = [HEADERS[m] for m in REPORTED] + ["fit s", "score s", "peak MiB", "best config (val NDCG@10)"]
    lines.append("| System | Library | " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * (len(cols) + 2))
    best = {m: max(r.test[m] for r in results) for m in REPORTED}
    for r in results:
        cells = [f"**{r.test[m]:.4f}**" if r.test[m] == best[m] else f"{r.test[m]:.4f}" for m in REPORTED]
        cells += [f"{r.fit_s:.1f}", f"{r.score_s:.2f}", f"{r.peak_rss_mib:.0f}",
                  f"{_fmt_config(r.best_config)} ({r.val['ndcg@10']:.4f})"]
        lines.append(f"| {r.name} | {r.library} | " + " | ".join(cells) + " |")
    lines += ["", "fit s = wall seconds of the selected config's fit; score s = scoring + ranking all test users once;",
              "peak MiB = peak process RSS above the pre-fit RSS during that fit and the test scoring (psutil, 5 ms).",
              "Best value per metric in bold. Metrics: mmrec.evaluation.full_ranking (checked against Cornac)."]
    return "\n".join(lines) + "\n"


def plot(protocol: str, results: list[SystemResult]) -> bytes:
    """PNG: NDCG@10 and Recall@20 per system, and fit seconds (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in results]
    x = range(len(names))
    fig, (quality, speed) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.4
    quality.bar([i - width / 2 for i in x], [r.test["ndcg@10"] for r in results], width, label="NDCG@10")
    quality.bar([i + width / 2 for i in x], [r.test["recall@20"] for r in results], width, label="Recall@20")
    quality.set_xticks(list(x), names, rotation=30, ha="right")
    quality.set_title(f"{protocol}: test quality (tuned on validation)")
    quality.legend()
    speed.bar(list(x), [max(r.fit_s, 1e-3) for r in results], color="gray")
    speed.set_yscale("log")
    speed.set_xticks(list(x), names, rotation=30, ha="right")
    speed.set_title("fit seconds (log)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_protocol_report(out_dir: Path, protocol: str, results: list[SystemResult],
                          header: dict[str, Any], extra: dict[str, Any]) -> list[Path]:
    """bench/results/peers_<protocol>.{json,md,png}; returns the paths written."""
    stem = out_dir / f"peers_{protocol}"
    payload = {"protocol": protocol, **header, **extra, "systems": [r.to_json() for r in results]}
    atomic_write_json(stem.with_suffix(".json"), payload)
    atomic_write_text(stem.with_suffix(".md"), markdown_table(protocol, results, header))
    atomic_write_bytes(stem.with_suffix(".png"), plot(protocol, results))
    return [stem.with_suffix(s) for s in (".json", ".md", ".png")]


def merge_previous(out_dir: Path, protocol: str, results: list[SystemResult]) -> list[SystemResult]:
    """Previous peers_<protocol>.json systems not rerun now, then this run's, in the previous order."""
    path = out_dir / f"peers_{protocol}.json"
    if not path.is_file():
        return results
    fresh = {r.name: r for r in results}
    previous = [SystemResult(**entry) for entry in json.loads(path.read_text())["systems"]]
    merged = [fresh.pop(r.name, r) for r in previous]
    return merged + list(fresh.values())
