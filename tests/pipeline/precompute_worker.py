"""One torchrun-like rank of `mmrec cache precompute` (run as a script by tests/pipeline/test_cache.py).

  precompute_worker.py CONFIG LOG_DIR : env RANK/WORLD_SIZE/MASTER_* set by the test; writes the item
  texts this rank computed to LOG_DIR/rank<R>.txt and rank 0's merged report to LOG_DIR/report.json.
"""

import json
import os
import sys
from pathlib import Path


def main(config: str, log_dir: str) -> None:
    from mmrec.features import extract
    from mmrec.pipeline.cache import run_cache_precompute
    from mmrec.settings import load_settings

    rank = os.environ["RANK"]
    real = extract.iter_text_features

    def logged(backbone, texts, batch_size):
        with open(Path(log_dir) / f"rank{rank}.txt", "a", encoding="utf-8") as handle:
            handle.writelines(f"{text}\n" for text in texts)
        yield from real(backbone, texts, batch_size)

    extract.iter_text_features = logged
    result = run_cache_precompute(load_settings(config).settings)
    if rank == "0":
        report = result.report
        Path(log_dir, "report.json").write_text(json.dumps({
            "world_size": result.world_size, "n_items": report.n_items, "computed": report.computed,
            "with_content": report.with_content}))


if __name__ == "__main__":
    main(*sys.argv[1:])
