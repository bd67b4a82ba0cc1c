"""GPU proof run: bf16 training, feature store -> device, full ranking and item-item fits on CUDA.

    python bench/gpu_check.py [--device cuda] [--out bench/results]
        [--sections train features ranking item_item]
    python bench/gpu_check.py --device cpu --dry-run --out DIR     # tiny sizes: the check `make test` runs

One run (under 8 minutes on one H200) times each CUDA path, takes its peak CUDA memory
(torch.cuda.max_memory_allocated) and checks it against a CPU reference (bench/gpu_sections.py).
Writes gpu.json and gpu.md to --out after every section (atomically, so a run cut short still leaves
what it measured). A failing section prints its error and the run goes on; the exit code is 1 when any
section failed. bench/gpu_check.sh is the wrapper to run on the device machine (bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.gpu_measure import DRY, FULL, host_peak_mib  # noqa: E402
from bench.gpu_sections import SECTIONS  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402


def machine(device: torch.device) -> dict[str, Any]:
    """GPU name, driver, CUDA and torch versions (nvidia-smi where present), CPU model and cores."""
    cpu = "unknown"
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
                            "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                            "device": str(device)}
    try:
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        smi = subprocess.run(query, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        info["nvidia_smi"] = smi.splitlines()
    except (OSError, subprocess.SubprocessError) as error:
        info["nvidia_smi"] = f"not available: {error}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f"{props.major}.{props.minor}",
                    multiprocessors=props.multi_processor_count, cudnn=torch.backends.cudnn.version())
    return info


def run_section(name: str, device: torch.device, sizes: Any, work: Path) -> dict[str, Any]:
    """One section, its failure caught: {ok, seconds, figures, checks, notes} or {ok: False, error, ...}."""
    print(f"== {name} ...", flush=True)
    started = time.perf_counter()
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = SECTIONS[name](device, sizes, folder)
        failed = [check for check, value in result["checks"].items() if not value["passed"]]
        result.update(ok=not failed, failed_checks=failed)
    except Exception as error:  # noqa: BLE001 -- every section guards its own failure, the run goes on
        result = {"ok": False, "error": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc(limit=8)}
        print(result["traceback"], file=sys.stderr, flush=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    result.update(seconds=round(time.perf_counter() - started, 2), host_peak_rss_mib=host_peak_mib())
    status = "ok" if result["ok"] else f"FAILED ({result.get('error') or ', '.join(result['failed_checks'])})"
    print(f"== {name}: {status} in {result['seconds']:.1f} s", flush=True)
    for key, value in result.get("figures", {}).items():
        print(f"   {key}: {value}", flush=True)
    return result


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    info = report["machine"]
    lines = ["# GPU proof run (bench/gpu_check.py)", "",
             f"Device {info['device']}: {info.get('gpu', 'no GPU')}; nvidia-smi: {info['nvidia_smi']}; "
             f"torch {info['torch']} (CUDA {info['torch_cuda']}, cuDNN {info.get('cudnn')}); "
             f"Python {info['python']}; CPU {info['cpu']}, {info['cores']} cores. Mode: {report['mode']}; "
             f"total {report['seconds']:.1f} s.",
             "", "| section | ok | seconds | failed checks / error |", "|---|---|---|---|"]
    for name, result in report["sections"].items():
        problem = result.get("error") or ", ".join(result.get("failed_checks", [])) or "-"
        lines.append(f"| {name} | {'yes' if result['ok'] else 'NO'} | {result['seconds']:.1f} | {problem} |")
    for name, result in report["sections"].items():
        lines += ["", f"## {name}", "", "| figure | value |", "|---|---|"]
        for key, value in result.get("figures", {}).items():
            rows = value.items() if isinstance(value, dict) else [(None, value)]
            lines += [f"| {key}{'.' + sub if sub else ''} | {_cell(v)} |" for sub, v in rows]
        if result.get("checks"):
            lines += ["", "| check | passed | value | limit |", "|---|---|---|---|"]
            lines += [f"| {key} | {'yes' if c['passed'] else 'NO'} | {_cell(c['value'])} | "
                      f"{_cell(c['limit'])} |" for key, c in result["checks"].items()]
        lines += [f"- {note}" for note in result.get("notes", [])]
        if result.get("error"):
            lines += ["", "```", result["traceback"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out: Path) -> None:
    atomic_write_json(out / "gpu.json", report)
    atomic_write_text(out / "gpu.md", markdown(report))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny sizes: proves the script runs (CPU is fine)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results",
                        help="where gpu.json/gpu.md go")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device} asked for CUDA, but torch {torch.__version__} sees no GPU "
              "here. Run it on the device machine, or use --device cpu --dry-run.", file=sys.stderr)
        return 2
    if device.type not in ("cuda", "cpu"):
        parser.error(f"--device {args.device}: use cuda, cuda:N or cpu")
    sizes = DRY if args.dry_run else FULL
    report: dict[str, Any] = {"mode": "dry run (tiny sizes)" if args.dry_run else "full",
                              "machine": machine(device), "sizes": vars(sizes), "sections": {},
                              "seconds": 0.0}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mmrec-gpu-check-", dir=args.work) as work:
        for name in args.sections:
            report["sections"][name] = run_section(name, device, sizes, Path(work))
            report["seconds"] = round(time.perf_counter() - started, 1)
            report["ok"] = all(result["ok"] for result in report["sections"].values())
            write(report, args.out)
    failed = [name for name, result in report["sections"].items() if not result["ok"]]
    print(f"gpu_check: {len(args.sections) - len(failed)}/{len(args.sections)} sections ok in "
          f"{report['seconds']:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else "")
          + f"; results in {args.out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
