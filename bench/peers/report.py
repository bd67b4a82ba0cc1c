"""Merge the stored results into per-protocol tables: JSON, markdown (mean ± std over seeds), PNG.

Rows: one per (text variant, system), metrics averaged over the split seeds it ran on. Comparison:
per variant, each mmrec model system (mmrec-multimodal with its fixed grid, mmrec-tuned with `mmrec
tune`) against the best peer (every non-mmrec system, highest mean test NDCG@10 over the seeds that
system ran on), with a paired Wilcoxon signed-rank test over per-user NDCG@10 for each seed.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
import platform
from pathlib import Path
from typing import Any

from bench.peers.evaluation import REPORTED
from bench.peers.runs import StoredRun
from bench.peers.significance import paired_wilcoxon, pooled_over_seeds
from mmrec.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text

MMREC_SYSTEM = "mmrec-multimodal"
MMREC_SYSTEMS = (MMREC_SYSTEM, "mmrec-tuned")  # the model systems compared with the best peer

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


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """(mean, sample std); the std is None for one value (no spread to measure, not a spread of 0)."""
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else None
    return mean, std


def summarize(runs: list[StoredRun]) -> dict[str, Any]:
    """One protocol's runs -> {"rows": per (variant, system) mean/std, "comparisons": per variant}."""
    groups: dict[tuple[str, str], list[StoredRun]] = defaultdict(list)
    for run in runs:
        groups[(run.key.variant, run.key.system)].append(run)
    rows = []
    for (variant, system), members in groups.items():
        members.sort(key=lambda r: r.key.seed)
        row = {"variant": variant, "system": system, "library": members[0].result.library,
               "seeds": [r.key.seed for r in members], "mean": {}, "std": {},
               "best_config_per_seed": {str(r.key.seed): r.result.best_config for r in members}}
        for metric in REPORTED:
            row["mean"][metric], row["std"][metric] = _mean_std([r.result.test[metric] for r in members])
        for cost in ("fit_s", "score_s", "tune_s", "peak_rss_mib"):
            row[cost] = _mean_std([getattr(r.result, cost) for r in members])[0]
        # The configs tried and each one's validation NDCG@10 (mean over the seeds; the best is the one tested).
        grids = [r.result.grid for r in members]
        row["grid"] = grids[0] if all(g == grids[0] for g in grids) else None
        scores = [r.result.val_per_config for r in members]
        row["val_per_config"] = ([sum(v) / len(v) for v in zip(*scores)]
                                 if row["grid"] and all(len(v) == len(row["grid"]) for v in scores) else None)
        rows.append(row)
    rows.sort(key=lambda r: (r["variant"], -r["mean"]["ndcg@10"], r["system"]))
    variants = sorted({r["variant"] for r in rows})
    comparisons = [_compare(variant, rows, groups, system) for variant in variants for system in MMREC_SYSTEMS
                   if system == MMREC_SYSTEM or (variant, system) in groups]
    return {"rows": rows, "comparisons": comparisons}


def _compare(variant: str, rows: list[dict], groups: dict[tuple[str, str], list[StoredRun]],
             system: str = MMREC_SYSTEM) -> dict[str, Any]:
    """mmrec `system` vs the best peer of `variant` (highest mean test NDCG@10 over the seeds `system` ran on).

    Paired per seed: Wilcoxon signed-rank over the per-user test NDCG@10 of the two systems.
    """
    mine = next((r for r in rows if r["variant"] == variant and r["system"] == system), None)
    peers = [r for r in rows if r["variant"] == variant and r["library"] != "mmrec"]
    if mine is None or not peers:
        return {"variant": variant, "system": system, "mmrec": mine is not None, "best_peer": None}
    seeds = set(mine["seeds"])

    def on_mmrec_seeds(row: dict, metric: str) -> float:  # the peer's mean over the seeds mmrec ran on
        values = [r.result.test[metric] for r in groups[(variant, row["system"])] if r.key.seed in seeds]
        return sum(values) / len(values) if values else float("-inf")

    best = max(peers, key=lambda r: on_mmrec_seeds(r, "ndcg@10"))
    best_recall = max(peers, key=lambda r: on_mmrec_seeds(r, "recall@20"))
    peer_ndcg, peer_recall = on_mmrec_seeds(best, "ndcg@10"), on_mmrec_seeds(best_recall, "recall@20")
    peer_runs = {r.key.seed: r.result for r in groups[(variant, best["system"])]}
    tests, pairs = {}, []
    for run in groups[(variant, system)]:
        other = peer_runs.get(run.key.seed)
        if other is not None and run.result.test_users and other.test_users:
            pairs.append((run.result.test_users, run.result.test_ndcg10_per_user,
                          other.test_users, other.test_ndcg10_per_user))
            tests[str(run.key.seed)] = paired_wilcoxon(*pairs[-1])
    pooled = pooled_over_seeds(pairs) if len(pairs) > 1 else None
    return {"variant": variant, "system": system, "mmrec": True, "seeds": sorted(seeds), "best_peer": best["system"],
            "mmrec_ndcg@10": mine["mean"]["ndcg@10"], "peer_ndcg@10": peer_ndcg,
            "ratio_ndcg@10": mine["mean"]["ndcg@10"] / peer_ndcg if peer_ndcg > 0 else None,
            "best_peer_recall@20": best_recall["system"], "mmrec_recall@20": mine["mean"]["recall@20"],
            "peer_recall@20": peer_recall, "wilcoxon_per_seed": tests, "wilcoxon_pooled": pooled}


def _fmt_config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "-"


def markdown_table(protocol: str, summary: dict[str, Any], header: dict[str, Any]) -> str:
    lines = [f"# Peer benchmark — `{protocol}` protocol (test split, tuned on validation)", ""]
    for key, value in header.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        if isinstance(value, list):
            lines.append(f"- {key}:")
            lines.extend(f"  - {item}" for item in value)
        else:
            lines.append(f"- {key}: {value}")
    lines += ["", "## mmrec vs the best peer (every non-mmrec system)", "",
              "mmrec-multimodal: the fixed 6-config grid; mmrec-tuned: `mmrec tune`, 6 trials. Peer means here are "
              "over the seeds that mmrec system ran on (`seeds`).", "",
              "| variant | system | seeds | mmrec NDCG@10 | best peer | peer NDCG@10 | ratio | mmrec Recall@20 | "
              "best peer (Recall@20) | peer Recall@20 | paired Wilcoxon p per seed (NDCG@10 per user; wins/losses) | "
              "pooled over the seeds (per-user mean NDCG@10) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in summary["comparisons"]:
        if not c["best_peer"]:
            lines.append(f"| {c['variant']} | {c['system']} | {'no run' if not c['mmrec'] else 'no peer run'} "
                         "| | | | | | | | | |")
            continue
        tests = "; ".join(f"seed {seed}: p={t['p_value']:.2g} ({t['wins']}/{t['losses']})"
                          for seed, t in c["wilcoxon_per_seed"].items()) or "-"
        pooled = c.get("wilcoxon_pooled")
        pooled = "-" if not pooled else f"p={pooled['p_value']:.2g} ({pooled['wins']}/{pooled['losses']})"
        ratio = "-" if c["ratio_ndcg@10"] is None else f"{c['ratio_ndcg@10']:.3f}x"
        lines.append(f"| {c['variant']} | {c['system']} | {','.join(map(str, c['seeds']))} | {c['mmrec_ndcg@10']:.4f} | "
                     f"{c['best_peer']} | {c['peer_ndcg@10']:.4f} | "
                     f"{ratio} | {c['mmrec_recall@20']:.4f} | {c['best_peer_recall@20']} | "
                     f"{c['peer_recall@20']:.4f} | {tests} | {pooled} |")
    cols = [HEADERS[m] for m in REPORTED] + ["fit s", "tune s", "score s", "RSS growth MiB", "best config per seed"]
    lines += ["", "## All systems (mean ± std over the seeds each ran on)", "",
              "| variant | system | library | seeds | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 4)]
    rows = summary["rows"]
    best = {(r["variant"], m): max(x["mean"][m] for x in rows if x["variant"] == r["variant"])
            for r in rows for m in REPORTED}
    for r in rows:
        cells = []
        for m in REPORTED:
            text = f"{r['mean'][m]:.4f} ± {r['std'][m]:.4f}" if len(r["seeds"]) > 1 else f"{r['mean'][m]:.4f}"
            cells.append(f"**{text}**" if r["mean"][m] == best[(r["variant"], m)] else text)
        configs = "; ".join(f"{seed}: {_fmt_config(c)}" for seed, c in r["best_config_per_seed"].items())
        cells += [f"{r['fit_s']:.1f}", f"{r['tune_s']:.0f}", f"{r['score_s']:.2f}", f"{r['peak_rss_mib']:.0f}", configs]
        lines.append(f"| {r['variant']} | {r['system']} | {r['library']} | {','.join(map(str, r['seeds']))} | "
                     + " | ".join(cells) + " |")
    lines += ["", "## Configs tried (validation only: each seed tests the config with the best validation NDCG@10)", "",
              "| variant | system | configs | validation NDCG@10 per config (mean over the seeds) |",
              "|---|---|---|---|"]
    for r in rows:
        if r.get("grid") is None:
            tried = "differs between seeds (see the JSON)"
        else:
            values = r.get("val_per_config") or [None] * len(r["grid"])
            tried = "; ".join(f"{_fmt_config(c)}: {'-' if v is None else f'{v:.4f}'}"
                              for c, v in zip(r["grid"], values))
        lines.append(f"| {r['variant']} | {r['system']} | {len(r['grid'] or [])} | {tried} |")
    lines += ["", "fit s = wall seconds of the selected config's fit; tune s = the whole search on validation (every config's",
              "fit + validation; `mmrec tune`'s whole study for mmrec-tuned); score s = scoring + ranking all test users once;",
              "RSS growth MiB = peak process RSS above the pre-fit RSS during that fit and the test scoring",
              "(psutil, 5 ms): a lower bound, since memory the process holds from the systems before it is reused",
              "uncounted (one process runs them all);",
              "all are means over seeds. Best mean per metric and variant in bold. Metrics:",
              "mmrec.evaluation.full_ranking (checked against Cornac). Wilcoxon: two-sided, scipy.stats.wilcoxon;",
              "pooled: one test over each user's NDCG@10 averaged over the seeds, alike for both systems",
              "(the seed-to-seed noise averaged out)."]
    return "\n".join(lines) + "\n"


def plot(protocol: str, summary: dict[str, Any]) -> bytes:
    """PNG: mean test NDCG@10 (± std over seeds) per system, one panel per text variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = sorted({r["variant"] for r in summary["rows"]})
    fig, axes = plt.subplots(1, len(variants), figsize=(7 * len(variants), 4.5), squeeze=False)
    for axis, variant in zip(axes[0], variants):
        rows = [r for r in summary["rows"] if r["variant"] == variant]
        x = range(len(rows))
        axis.bar(list(x), [r["mean"]["ndcg@10"] for r in rows], yerr=[r["std"]["ndcg@10"] or 0.0 for r in rows],
                 color=["tab:red" if r["system"] in MMREC_SYSTEMS else "tab:blue" for r in rows])
        axis.set_xticks(list(x), [r["system"] for r in rows], rotation=40, ha="right")
        axis.set_title(f"{protocol}, text {variant}: test NDCG@10 (mean ± std over seeds)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _poster_note(context: dict[str, Any]) -> str:
    """'; N items without a poster ...' when the run's image features had zeros for some items (a dataset without
    posters has them for every item), else ''."""
    missing = context.get("image_items_without_poster") or 0
    return f"; {missing} items without a poster (their image features are zeros)" if missing else ""


def _header(runs: list[StoredRun]) -> dict[str, Any]:
    contexts = {(r.key.variant, r.key.seed): r.context for r in runs}
    first = next(iter(contexts.values()))
    return {
        "data": sorted({c["data"] + _poster_note(c) for c in contexts.values()}),
        "split": [f"{variant}, seed {seed}: {c['split']}" for (variant, seed), c in sorted(contexts.items())],
        "machine": first.get("machine", {}),
        "metric_check_vs_cornac_max_abs_diff": max(c.get("metric_check_vs_cornac_max_abs_diff", 0.0)
                                                   for c in contexts.values()),
    }


LEFT_OUT = "left out (stored on other split files than those in the work dir: another dataset of this name, or "\
           "another split; rerun them)"


def write_reports(out_dir: Path, runs: list[StoredRun], left_out: list[StoredRun] = ()) -> list[Path]:
    """out_dir/peers_<protocol>.{json,md,png} for every protocol with stored runs; returns the paths. The
    `left_out` results (of other split files) are named in their protocol's table, so a table never drops a
    system unsaid; a protocol with nothing else gets a table saying only that."""
    written = []
    for protocol in sorted({r.key.protocol for r in [*runs, *left_out]}):
        mine = [r for r in runs if r.key.protocol == protocol]
        gone = [f"{r.key.system} ({r.key.variant}, seed {r.key.seed})" for r in left_out if r.key.protocol == protocol]
        stem = Path(out_dir) / f"peers_{protocol}"
        if not mine:  # the tables there describe results no longer counted: replaced, not left beside the others
            atomic_write_json(stem.with_suffix(".json"), {"protocol": protocol, LEFT_OUT: gone, "runs": []})
            atomic_write_text(stem.with_suffix(".md"), f"# Peer benchmark — `{protocol}` protocol\n\nNo stored "
                              f"result of this protocol counts: {len(gone)} {LEFT_OUT}:\n\n"
                              + "".join(f"- {name}\n" for name in gone))
            stem.with_suffix(".png").unlink(missing_ok=True)
            written += [stem.with_suffix(s) for s in (".json", ".md")]
            continue
        summary = summarize(mine)
        header = _header(mine)
        if gone:
            header[LEFT_OUT] = gone
        per_seed = [{"variant": r.key.variant, "seed": r.key.seed,
                     **{k: v for k, v in r.result.to_json().items() if k not in ("test_users", "test_ndcg10_per_user")}}
                    for r in mine]
        atomic_write_json(stem.with_suffix(".json"), {"protocol": protocol, **header, **summary, "runs": per_seed})
        atomic_write_text(stem.with_suffix(".md"), markdown_table(protocol, summary, header))
        atomic_write_bytes(stem.with_suffix(".png"), plot(protocol, summary))
        written += [stem.with_suffix(s) for s in (".json", ".md", ".png")]
    return written
