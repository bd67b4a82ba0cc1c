import sys
import types

from mmrec.settings import TrackingSettings
from mmrec.training.tracking import NullTracker, WandbTracker, make_tracker


class FakeRun:
    def __init__(self, **kwargs):
        self.kwargs, self.logged, self.finished = kwargs, [], False

    def log(self, metrics, step):
        self.logged.append((step, metrics))

    def finish(self):
        self.finished = True


def test_without_flag_nothing_is_imported(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # importing wandb would now raise ImportError
    tracker = make_tracker(TrackingSettings(), {}, tmp_path)
    assert isinstance(tracker, NullTracker) and tracker.note == ""


def test_wandb_without_api_key_goes_offline_and_logs(tmp_path, monkeypatch):
    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: FakeRun(**kwargs)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    tracker = make_tracker(TrackingSettings(use_wandb=True, wandb_project="p", wandb_run_name="r"),
                           {"model": {"embedding_dim": 8}}, tmp_path)
    assert isinstance(tracker, WandbTracker)
    import os

    assert os.environ["WANDB_MODE"] == "offline" and "offline" in tracker.note
    assert tracker.run.kwargs["project"] == "p" and tracker.run.kwargs["name"] == "r"
    assert tracker.run.kwargs["config"] == {"model": {"embedding_dim": 8}}
    tracker.log({"train/loss": 1.0}, step=3)
    tracker.finish()
    assert tracker.run.logged == [(3, {"train/loss": 1.0})] and tracker.run.finished
