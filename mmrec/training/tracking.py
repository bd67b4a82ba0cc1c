"""Experiment tracking. wandb is imported only when tracking.use_wandb is on."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from mmrec.settings import TrackingSettings

log = logging.getLogger(__name__)


class Tracker(Protocol):
    """Receives config once, then metrics per step/epoch."""

    note: str

    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def summary(self, values: dict[str, Any]) -> None: ...

    def finish(self) -> None: ...


class NullTracker:
    """Tracking off: does nothing, imports nothing."""

    note = ""

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass


def wandb_credentials() -> bool:
    """Whether wandb has an API key: WANDB_API_KEY, or the netrc entry `wandb login` writes for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        entries = netrc.netrc(path)
    except (OSError, netrc.NetrcParseError):
        return False
    return any(entries.authenticators(host) is not None for host in _wandb_hosts())


def _wandb_hosts() -> list[str]:
    """The hosts a `wandb login` may have written its key for: WANDB_BASE_URL's, else api.wandb.ai and the default
    of the installed wandb (0.31 logs in to api.forge.coreweave.com)."""
    if base := os.environ.get("WANDB_BASE_URL"):
        return [urlsplit(base).hostname or ""]
    hosts = ["api.wandb.ai"]
    try:
        from wandb.sdk.lib.urls import DEFAULT_BASE_URL
    except Exception:  # noqa: BLE001 - an older or stubbed wandb: api.wandb.ai is its host
        return hosts
    return hosts + [urlsplit(DEFAULT_BASE_URL).hostname or ""]


WANDB_MODES = ("online", "offline", "disabled", "shared", "dryrun", "run")  # what wandb.init accepts as mode


class WandbTracker:
    """Logs to Weights & Biases; without WANDB_MODE, an API key or a `wandb login` it runs offline (files under
    `directory`).

    The mode goes to `wandb.init(mode=...)`: the process environment (WANDB_MODE) is never changed,
    so other code in the same process sees the user's own settings.
    """

    def __init__(self, tracking: TrackingSettings, config: dict[str, Any], directory: Path) -> None:
        mode_set = os.environ.get("WANDB_MODE")
        if mode_set and mode_set not in WANDB_MODES:  # wandb's own error read as an unreachable server, then offline
            from mmrec.errors import ConfigError

            raise ConfigError(f"WANDB_MODE is {mode_set!r}, which wandb does not know.",
                              hint=f"Set it to one of {', '.join(WANDB_MODES)}, or unset it.")
        import wandb  # only here: a run without --use-wandb never imports it

        self.note = ""
        mode = None  # wandb's own choice: the user's WANDB_MODE, or online with a key or a `wandb login`
        if not os.environ.get("WANDB_MODE") and not wandb_credentials():
            mode = "offline"
            self.note = (
                f"wandb: no WANDB_API_KEY and no `wandb login`, logging offline to {directory}/wandb "
                "(upload later with `wandb sync`)."
            )
        directory.mkdir(parents=True, exist_ok=True)
        run_args = dict(project=tracking.wandb_project, name=tracking.wandb_run_name, config=config,
                        dir=str(directory))
        try:
            self.run = wandb.init(**run_args, mode=mode)
        except Exception as exc:  # noqa: BLE001 - wandb raises its own error types for network/auth problems
            log.warning("wandb online init failed (%s); retrying offline", exc)
            self.note = f"wandb: could not reach the server ({exc}); logging offline to {directory}/wandb."
            self.run = wandb.init(**run_args, mode="offline")

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        """The run's final figures (the model as served), over the last logged ones."""
        self.run.summary.update(values)

    def finish(self) -> None:
        self.run.finish()


def make_tracker(tracking: TrackingSettings, config: dict[str, Any], directory: Path) -> Tracker:
    """WandbTracker when tracking.use_wandb, else NullTracker."""
    if not tracking.use_wandb:
        return NullTracker()
    return WandbTracker(tracking, config, directory)
