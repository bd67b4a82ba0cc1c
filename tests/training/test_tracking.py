import os
import sys
import types

from mmrec.settings import TrackingSettings
from mmrec.training.tracking import NullTracker, WandbTracker, make_tracker


class FakeRun:
    made = []  # every run, in order

    def __init__(self, **kwargs):
        self.kwargs, self.logged, self.finished, self.summary = kwargs, [], False, {}
        FakeRun.made.append(self)

    def log(self, metrics, step):
        self.logged.append((step, metrics))

    def finish(self):
        self.finished = True


def _fake_wandb(monkeypatch, fail_first: bool = False):
    fake = types.ModuleType("wandb")
    calls = []

    def init(**kwargs):
        calls.append(kwargs)
        if fail_first and len(calls) == 1:
            raise RuntimeError("server unreachable")
        return FakeRun(**kwargs)

    fake.init = init
    monkeypatch.setitem(sys.modules, "wandb", fake)
    return calls


def test_without_flag_nothing_is_imported(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # importing wandb would now raise ImportError
    tracker = make_tracker(TrackingSettings(), {}, tmp_path)
    assert isinstance(tracker, NullTracker) and tracker.note == ""


def test_wandb_without_api_key_goes_offline_and_logs(tmp_path, monkeypatch):
    _fake_wandb(monkeypatch)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    tracker = make_tracker(TrackingSettings(use_wandb=True, wandb_project="p", wandb_run_name="r"),
                           {"model": {"embedding_dim": 8}}, tmp_path)
    assert isinstance(tracker, WandbTracker)
    assert tracker.run.kwargs["mode"] == "offline" and "offline" in tracker.note
    assert "WANDB_MODE" not in os.environ  # the mode goes to wandb.init, not into the environment
    assert tracker.run.kwargs["project"] == "p" and tracker.run.kwargs["name"] == "r"
    assert tracker.run.kwargs["config"] == {"model": {"embedding_dim": 8}}
    tracker.log({"train/loss": 1.0}, step=3)
    tracker.finish()
    assert tracker.run.logged == [(3, {"train/loss": 1.0})] and tracker.run.finished


def test_wandb_with_api_key_leaves_the_mode_to_wandb(tmp_path, monkeypatch):
    calls = _fake_wandb(monkeypatch)
    monkeypatch.setenv("WANDB_API_KEY", "k")
    monkeypatch.setenv("WANDB_MODE", "online")
    tracker = make_tracker(TrackingSettings(use_wandb=True), {}, tmp_path)
    assert calls[0]["mode"] is None and tracker.note == "" and os.environ["WANDB_MODE"] == "online"


def test_unreachable_server_retries_offline_without_touching_the_environment(tmp_path, monkeypatch):
    calls = _fake_wandb(monkeypatch, fail_first=True)
    monkeypatch.setenv("WANDB_API_KEY", "k")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    tracker = make_tracker(TrackingSettings(use_wandb=True), {}, tmp_path)
    assert [c["mode"] for c in calls] == [None, "offline"] and "could not reach" in tracker.note
    assert "WANDB_MODE" not in os.environ


def test_a_wandb_login_or_an_explicit_mode_leaves_the_mode_to_wandb(tmp_path, monkeypatch):
    calls = _fake_wandb(monkeypatch)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "0" * 40 + "\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))  # what `wandb login` writes
    assert make_tracker(TrackingSettings(use_wandb=True), {}, tmp_path).note == "" and calls[-1]["mode"] is None
    from mmrec.training.tracking import wandb_credentials

    # wandb 0.31's `wandb login` writes the key for its own default host: a logged-in user was sent offline.
    for name in ("wandb.sdk", "wandb.sdk.lib", "wandb.sdk.lib.urls"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["wandb.sdk.lib.urls"].DEFAULT_BASE_URL = "https://api.forge.coreweave.com"
    netrc.write_text("machine api.forge.coreweave.com\n  login user\n  password " + "0" * 40 + "\n")
    assert wandb_credentials()
    monkeypatch.delitem(sys.modules, "wandb.sdk.lib.urls")  # a wandb without it (older): api.wandb.ai only
    monkeypatch.setitem(sys.modules, "wandb.sdk.lib.urls", None)
    assert not wandb_credentials()
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_MODE", "online")  # the user's explicit choice is wandb's to act on
    assert make_tracker(TrackingSettings(use_wandb=True), {}, tmp_path).note == "" and calls[-1]["mode"] is None


def test_a_tracked_run_ends_with_the_served_model_figures_and_its_process_count(tmp_path, monkeypatch):
    """A walkthrough's wandb summary showed the two-tower model's last epoch (0.2282) where the model as served
    validated 0.2376 (its blend), and a 2-process run looked like a single-process one."""
    from pathlib import Path

    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_project_tracking", Path(__file__).parent / "tiny_project.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    from mmrec.pipeline.train import run_train
    from mmrec.settings import load_settings

    _fake_wandb(monkeypatch)
    monkeypatch.setenv("WANDB_MODE", "offline")
    settings = load_settings(tiny.write_tiny_project(tmp_path, epochs=2), {"tracking.use_wandb": True}).settings
    result = run_train(settings)
    run = FakeRun.made[-1]
    assert run.kwargs["config"]["world_size"] == 1 and run.finished
    monitor = settings.training.monitor
    assert run.summary["selected/epoch"] == result.best_epoch
    assert run.summary[f"selected/two_tower/{monitor}"] == result.best_metric
    assert run.summary[f"selected/val/{monitor}"] == result.item_item["val"][monitor]
    assert run.summary["selected/blend/blend"] == result.item_item["blend"]


def test_an_unknown_wandb_mode_is_a_config_error_not_an_unreachable_server(tmp_path, monkeypatch):
    import pytest

    from mmrec.errors import ConfigError

    calls = _fake_wandb(monkeypatch)
    monkeypatch.setenv("WANDB_MODE", "bogus")
    with pytest.raises(ConfigError, match="WANDB_MODE is 'bogus', which wandb does not know"):
        make_tracker(TrackingSettings(use_wandb=True), {}, tmp_path)
    assert calls == []

