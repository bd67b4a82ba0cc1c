#!/usr/bin/env bash
# GPU proof run (bench/gpu_check.py): bf16 training, feature store -> cuda, full ranking and the
# item-item fits on CUDA, each timed with its peak CUDA memory and checked against CPU.
# Writes gpu.json and gpu.md to $OUT when set (the device machine sends that folder back), else to
# bench/results. Extra arguments go to gpu_check.py (e.g. --sections ranking item_item, --dry-run --device cpu).
# How to run it on the device machine, with the wheels it needs: bench/README.md, "GPU proof run".
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" bench/gpu_check.py --out "${OUT:-bench/results}" "$@"
