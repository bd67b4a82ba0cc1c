"""A run SIGKILLed mid-epoch and resumed from last_model.pth ends exactly like an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from tiny_project import write_tiny_project

from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings

SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from mmrec.pipeline.train import run_train
    from mmrec.settings import load_settings
    config, resume, out, pause = sys.argv[1:5]

    def progress(event):  # slow steps down so the parent can kill mid-epoch
        if event.task == "train" and not event.done:
            time.sleep(float(pause))

    result = run_train(load_settings(config).settings, resume=None if resume == "-" else Path(resume),
                       progress=progress)
    Path(out).write_text(json.dumps({"history": [[r.loss, r.monitored] for r in result.history],
                                     "best": result.best_metric, "wandb_imported": "wandb" in sys.modules}))
""")


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    killed_root, reference_root = tmp_path / "killed", tmp_path / "reference"
    killed_config = write_tiny_project(killed_root, epochs=3)
    reference_config = write_tiny_project(reference_root, epochs=3)
    last = killed_root / "checkpoints" / "efficientnet-lite_sentence-bert" / "last_model.pth"

    run = subprocess.Popen([sys.executable, str(script), str(killed_config), "-", str(tmp_path / "x.json"), "0.15"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not last.exists() and run.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into epoch 2 (each step sleeps 0.15 s)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL, run.stderr.read()[-2000:]
    assert torch.load(last, weights_only=True)["epoch"] == 1  # the kill landed mid-epoch 2

    out = tmp_path / "resumed.json"
    done = subprocess.run([sys.executable, str(script), str(killed_config), str(last), str(out), "0"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads(out.read_text())

    torch.set_num_threads(1)  # the same thread count as the subprocesses: bitwise-equal float sums
    reference = run_train(load_settings(reference_config).settings)
    assert resumed["history"] == [[r.loss, r.monitored] for r in reference.history]
    assert resumed["best"] == reference.best_metric
    assert not resumed["wandb_imported"]  # no --use-wandb: wandb never imported
