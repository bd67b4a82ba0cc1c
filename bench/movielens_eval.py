"""MovieLens end to end through the `mmrec` CLI: the comparison tables of issue 5.

import -> preprocess (+ feature cache) -> split (temporal_user, item) -> train -> evaluate --compare.
The tables under bench/results/movielens_<strategy>.{md,json} are exactly what `mmrec evaluate`
writes, so rerunning the same commands by hand prints the same numbers.

    .venv/bin/python bench/movielens_eval.py [--work DIR] [--strategies temporal_user item]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "movielens-small-posters"
MMREC = [sys.executable, "-m", "mmrec"]


def run(*args: str, cwd: Path, env: dict[str, str]) -> None:
    print("$ mmrec", " ".join(args), flush=True)
    subprocess.run([*MMREC, *args], cwd=cwd, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temp dir)")
    parser.add_argument("--strategies", nargs="+", default=["temporal_user", "item"])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--evaluate-only", action="store_true", help="reuse the work folder's splits and checkpoints")
    args = parser.parse_args()
    work = (args.work or Path(tempfile.mkdtemp(prefix="mmrec-ml-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, COLUMNS="120", PYTHONPATH=str(ROOT))
    config = work / "ml" / "mmrec.yaml"
    if not config.is_file():
        run("data", "import", "movielens", str(args.data), "--posters", str(args.data / "posters"),
            "--out", str(work / "ml"), cwd=work, env=env)
    run("preprocess", "-c", str(config), cwd=work, env=env)  # no-op when done; caches features
    out = ROOT / "bench" / "results"
    for strategy in args.strategies:
        overrides = [f"MMREC_PATHS__SPLITS_DIR={work}/splits_{strategy}",
                     f"MMREC_PATHS__CHECKPOINT_DIR={work}/checkpoints_{strategy}",
                     f"MMREC_PATHS__RESULTS_DIR={work}/results_{strategy}"]
        env_s = dict(env, **dict(item.split("=", 1) for item in overrides))
        if not args.evaluate_only:
            run("split", "-c", str(config), "--strategy", strategy, cwd=work, env=env_s)
            run("train", "-c", str(config), "--device", "cpu", cwd=work, env=env_s)
        run("evaluate", "-c", str(config), "--compare", "--device", "cpu", cwd=work, env=env_s)
        results = work / f"results_{strategy}"
        for suffix in ("md", "json"):
            shutil.copyfile(results / f"evaluation.{suffix}", out / f"movielens_{strategy}.{suffix}")
        with open(out / f"movielens_{strategy}.md", "a", encoding="utf-8") as handle:
            handle.write(
                f"\nReproduce: `{' '.join(overrides)} mmrec split|train|evaluate -c ml/mmrec.yaml"
                f" --strategy {strategy}` (see bench/movielens_eval.py). Machine: {platform.processor() or platform.machine()},"
                f" {os.cpu_count()} cores, CPU only.\n"
            )


if __name__ == "__main__":
    main()
