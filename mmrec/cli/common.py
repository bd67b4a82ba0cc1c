"""Shared CLI plumbing: the per-invocation state, settings construction, error rendering, progress."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from mmrec.errors import ConfigError, Interrupted, MmrecError
from mmrec.fileio import check_output_file
from mmrec.progress import ProgressEvent
from mmrec.registry import RECOMMENDERS
from mmrec.settings import LoadedSettings, Settings, load_settings

# emoji off: a name such as `root:x:0:0` in a file's header is printed as written, not with an emoji for `:x:`.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML settings file (defaults < YAML < MMREC_* env < CLI options)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts, e.g. jq) instead of the table.")]


def absent_folder_note(folder: Path) -> str:
    """'' when `folder` exists, else why a listing of it is empty: no such folder (relative to the current one,
    for a relative path: a command run from another folder than the project's finds nothing)."""
    folder = Path(folder)
    if folder.is_dir():
        return ""
    if folder.exists():
        return f" ({folder} is a file, not a folder)"
    return (f" ({folder} does not exist" + ("" if folder.is_absolute() else
                                            f"; relative paths resolve against the current folder, {Path.cwd()}")
            + ")")


def print_json_data(data: Any) -> None:
    """`data` as JSON on stdout: dataclasses as objects, paths as strings, NaN as null (JSON has no NaN). Plain
    text, never styled (FORCE_COLOR or a pseudo-terminal made rich's print_json emit escape codes jq rejects);
    non-ASCII as \\u escapes when stdout cannot encode it."""
    stream = sys.stdout
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
    text = json.dumps(_plain(data), allow_nan=False, indent=2, ensure_ascii=not encoding.startswith("utf"))
    stream.write(text + "\n")
    stream.flush()


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def complete_recommender(incomplete: str) -> list[str]:
    """Shell completion of --recommender-type: the registered names (read when asked, not at startup)."""
    return [name for name in RECOMMENDERS.names() if name.startswith(incomplete)]


# The names are not in the help text: listing them there would import every recommender (torch) each
# time the CLI starts. Completion lists them, and an unknown name is an error that lists them.
RECOMMENDER_HELP = "A registered recommender: multimodal or a baseline (Tab completes the names)"


@dataclass
class AppState:
    """What the root callback knows; commands build Settings once through it."""

    config: Path | None = None
    verbose: bool = False
    loaded: LoadedSettings | None = field(default=None, repr=False)
    used_config: Path | None = None  # the settings file the last settings() read

    def settings(self, config: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
        """Validated settings for this invocation: the command's --config or the root one (`mmrec -c F <command>`);
        two different files are refused, since only one is read."""
        if config is not None and self.config is not None and Path(config).resolve() != Path(self.config).resolve():
            raise ConfigError(f"Two settings files: `mmrec -c {self.config}` before the command and `-c {config}` "
                              "after it; only one is read.",
                              hint="Pass --config once (before or after the command), or merge the two files.")
        self.used_config = config or self.config
        self.loaded = load_settings(self.used_config, overrides)
        return self.loaded.settings

    def output_file(self, path: Path, option: str, *inputs: tuple[Path | None, str]) -> Path:
        """check_output_file for an output option of a command that loaded settings: refused (ConfigError) where
        it would overwrite the config, the data it reads or what mmrec manages (processed data, the split,
        checkpoints, the feature cache), or one of the command's own `inputs` ((path, what it is))."""
        assert self.loaded is not None, "settings() first"
        settings = self.loaded.settings
        paths, data = settings.paths, settings.data
        raw = Path(paths.data_dir)
        return check_output_file(path, option, [
            (self.used_config, "the config file"), (raw / data.item_info_file, "the item table it reads"),
            (raw / data.interactions_file, "the interactions it reads"),
            (raw / data.images_subdir, "the images folder"),
            (paths.processed_dir, "paths.processed_dir"), (paths.splits_dir, "paths.splits_dir"),
            (paths.checkpoint_dir, "paths.checkpoint_dir"), (paths.cache_dir, "paths.cache_dir"), *inputs])


def output_folder(value: Path | None) -> Path | None:
    """Typer callback of an --out folder option: an existing file there (or a file above it) is refused, naming the
    option (it failed later as a system error whose hint spoke of disk space)."""
    if value is not None:
        path = value.expanduser()
        blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise typer.BadParameter(f"{blocking} is a file, not a folder.")
    return value


def no_effect(option: str, why: str, fix: str) -> ConfigError:
    """The refusal of an option that would change nothing in this run (an option ignored unsaid misleads): `option`
    as given, `why` it does nothing, and `fix` what makes it count."""
    return ConfigError(f"{option} has no effect: {why}.", hint=f"{fix}, or leave the option out.")


def state(ctx: typer.Context) -> AppState:
    """The AppState of this invocation (created by the root callback, or fresh for sub-apps in tests)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


# Control characters (an escape sequence in a column name or a file name: it would retitle the window or recolour the
# terminal) and the bidirectional overrides that reorder what follows them are shown as escapes.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """`text` ready for rich: markup escaped, control characters written as \\x1b (newlines and tabs kept)."""
    return escape(_UNPRINTABLE.sub(lambda found: ascii(found.group())[1:-1], text))


def render_error(error: MmrecError, verbose: bool = False) -> None:
    """One red block: what is wrong and, when known, what to do."""
    # Messages are plain text: escape them, or rich would eat bracketed text such as `mmrec[ann]` or ids.
    body = shown(error.message) + (f"\n\n[bold]Hint:[/bold] {shown(error.hint)}" if error.hint else "")
    colour = "yellow" if isinstance(error, Interrupted) else "red"  # the user's own Ctrl-C, not a fault
    err_console.print(Panel(body, title=f"[bold {colour}]{type(error).__name__}", border_style=colour, expand=False))
    if verbose:
        err_console.print_exception()


def print_notes(notes: Iterable[str], progress: RichProgress | None = None, to: Console | None = None) -> None:
    """A command's closing notes, in yellow (on `to`, default stdout); those its progress already printed while
    running are not repeated."""
    for note in notes:
        if progress is None or note not in progress.shown:
            (to or console).print(f"[yellow]{shown(note)}")


def confirm(question: str) -> bool:
    """typer.confirm; with no input to read an answer from (stdin closed or at its end: a cron job, `</dev/null`),
    a ConfigError naming --yes (exit 2) instead of click's bare "Aborted!" and exit 1."""
    try:
        return typer.confirm(question)
    except typer.Abort:
        if sys.stdin is not None and sys.stdin.isatty():
            raise  # Ctrl-C at the prompt
        raise ConfigError(f"{question} -- there is no answer to read: standard input is not a terminal and gave "
                          "none (a script or cron job?).", hint="Pass --yes to go ahead without asking.") from None


def print_model(checkpoint: dict[str, Any] | None, to: Console, name: str = "model") -> None:
    """Which checkpoint a command's results come from and what it serves (checkpoint_provenance), dimmed."""
    if checkpoint:
        from mmrec.checkpoints.store import describe_provenance  # torch: loaded by then

        to.print(f"[dim]{shown(name)}:[/dim] {shown(describe_provenance(checkpoint))}")


def _number(value: float) -> str:
    """A metric as read at a glance: 12,346 for large values (not 1.235e+04), 4 significant digits else."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _rate(done: float, elapsed: float) -> str:
    """Units per second, or seconds per unit below one a second (trials, epochs): '' before any unit is done."""
    if done <= 0 or elapsed <= 0:
        return ""
    per_s = done / elapsed
    return f"{per_s:,.1f}/s" if per_s >= 1 else f"{elapsed / done:,.0f} s each"


def cache_interrupted(settings: Settings, config: Path | None = None) -> tuple[str, str]:
    """(message, hint) of an interrupted feature caching: what the store keeps, and the command that goes on
    (with the settings file `config` the stopped command read)."""
    folder = Path(settings.paths.cache_dir) / settings.features.combo
    command = "mmrec cache precompute" + (f" -c {config}" if config else "")
    return (f"Feature caching was interrupted: the vectors computed so far are kept in {folder}.",
            f"Run `{command}` (with any other settings the stopped command was given) to continue from them.")


@contextlib.contextmanager
def kept_on_interrupt(message: str, hint: str) -> Iterator[None]:
    """Ctrl-C or a SIGTERM inside the block becomes Interrupted(message, hint): what the stopped command kept and
    how to go on (exit 130, or 143 for SIGTERM: mmrec.cli.app)."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(message, hint=hint) from None


class RichProgress:
    """A ProgressCallback that draws one rich bar per task (items/s, ETA)."""

    def __init__(self, console_: Console | None = None, transient: bool = False) -> None:
        target = console_ or console
        # The description takes what the other columns leave (cut with an ellipsis, never the counts); below
        # 100 columns the percentage and elapsed time give way (M/N and the ETA say as much).
        wide = target.width >= 100
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=24 if wide else 10),
            MofNCompleteColumn(),
            *((TaskProgressColumn(),) if wide else ()),
            TextColumn("{task.fields[rate]}", table_column=Column(no_wrap=True)),
            *((TimeElapsedColumn(),) if wide else ()),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}", table_column=Column(no_wrap=True)),
            console=target,
            transient=transient,
            expand=True,
        )
        self._tasks: dict[str, Any] = {}
        self.shown: set[str] = set()  # the messages already printed (print_notes skips them)
        # Without a terminal (a log file, cron) no bar is drawn: a task that runs long says how far it is in a plain
        # line now and then instead (a 17-minute text encoding had printed nothing until its end).
        self._logged: dict[str, float] = {}  # task -> its elapsed seconds at its last line

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:  # stopped (Ctrl-C, SIGTERM, an error): its message follows, not a last bar frame
            self._progress.live.transient = True
        self._progress.__exit__(exc_type, *exc)

    def __call__(self, event: ProgressEvent) -> None:
        if event.message:
            self._progress.console.print(f"[dim]{shown(event.message)}")
            self.shown.add(event.message)
        task_id = self._tasks.get(event.task)
        if task_id is None:
            # A finished task never drawn, or a bare message: no bar (a bar of unknown length would stay a spinner).
            if (event.done or event.message) and not event.total and not event.completed:
                return
            # Started at what is already done (a resumed study, cached features): the rate and ETA count
            # only this run's progress, not a jump from 0.
            task_id = self._progress.add_task(
                event.description or event.task, total=event.total, completed=event.completed or 0, rate="",
                metrics="", start_completed=event.completed or 0,
            )
            self._tasks[event.task] = task_id
        task = next(t for t in self._progress.tasks if t.id == task_id)  # `tasks` is a list: ids are not indices
        if event.completed < task.completed or (task.total is None and event.total):
            # A new round of the task (the next epoch), or its counted part after an uncounted one (loading, then
            # scoring): its clock restarts, or elapsed, ETA and rate would go on from the first round.
            self._progress.reset(task_id, total=event.total, completed=event.completed or 0)
            task.fields["start_completed"] = event.completed or 0
            self._logged.pop(event.task, None)
        rate = _rate(event.completed - task.fields["start_completed"], task.elapsed or 0.0)
        metrics = " ".join(f"{k}={_number(v)}" for k, v in event.metrics.items())
        self._progress.update(
            task_id,
            completed=event.completed,
            total=event.total,
            description=event.description or event.task,
            rate=rate,
            metrics=metrics,
        )
        if not self._progress.console.is_terminal:
            self._log_line(event, task)
        if event.done:
            if task.total is None:  # no length to show as complete: drop its spinner
                self._progress.remove_task(task_id)
                del self._tasks[event.task]
            else:
                self._progress.stop_task(task_id)


    def _log_line(self, event: ProgressEvent, task: Any) -> None:
        """A plain progress line for a task past LOG_AFTER seconds, every LOG_EVERY seconds and at its end."""
        elapsed, last = task.elapsed or 0.0, self._logged.get(event.task)
        due = elapsed >= LOG_AFTER if last is None else elapsed - last >= LOG_EVERY
        if not (due or (event.done and last is not None)):
            return
        self._logged[event.task] = elapsed
        done = event.completed - task.fields["start_completed"]
        left = (f", about {_duration((task.total - event.completed) * elapsed / done)} left"
                if task.total and done > 0 and not event.done else "")
        share = f" ({event.completed / task.total:.0%})" if task.total else ""
        count = f"{_number(event.completed)}/{_number(task.total)}" if task.total else _number(event.completed)
        rate = _rate(done, elapsed)
        self._progress.console.print(f"{event.description or event.task}: {count}{share} after {_duration(elapsed)}"
                                     + (f", {rate}" if rate else "") + left + (" (done)" if event.done else ""),
                                     highlight=False, soft_wrap=True, markup=False)


LOG_AFTER, LOG_EVERY = 30.0, 60.0  # seconds: when a task without a terminal first says how far it is, then how often


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def configure_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )
    # --verbose is for mmrec's own steps: libraries' debug chatter (matplotlib's font search alone was 219 lines
    # of an evaluate) stays at warnings.
    for name in ("matplotlib", "PIL", "urllib3", "filelock", "fsspec", "h5py", "numba", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)
