"""The `mmrec` Typer application: one group per command module, errors rendered in one red block."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from mmrec import __version__
from mmrec.cli.common import AppState, configure_logging, console, err_console, render_error
from mmrec.errors import Interrupted, MmrecError, SystemResourceError, os_error


class Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, systemd, Kubernetes, torchrun stopping its ranks) in the main process: handled as Ctrl-C
    is (each command says what it kept and how to go on; locks are released), exit 143 as a shell reports it."""

    exit_code = 128 + signal.SIGTERM


def terminate_as_interrupt() -> None:
    """Install the SIGTERM handler that raises `Terminated` in this process; a second SIGTERM ends it without
    cleaning up. A process forked from it (a data loader or image worker) lets the signal pass: `timeout` and
    systemd signal the whole group, and a worker dying first filled the log with "DataLoader worker killed by
    signal" tracebacks; its parent stops it (and its parent's death does, if all else fails)."""
    main_pid = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != main_pid:
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    signal.signal(signal.SIGTERM, handler)


class MmrecGroup(TyperGroup):
    """Renders MmrecError (and an OSError, Ctrl-C) in one block and exits with its code (tracebacks only with
    --verbose)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `mmrec ... | head` closed the pipe: the reader has what it wanted
            raise typer.Exit(code=141) from None
        except MemoryError:
            render_error(SystemResourceError(
                "This command ran out of memory.",
                hint="Run it where more memory is free (or lift a memory limit such as `ulimit -v`); for training, "
                     "a smaller training.batch_size or evaluation.batch_size lowers the peak."),
                verbose=isinstance(ctx.obj, AppState) and ctx.obj.verbose)
            raise typer.Exit(code=SystemResourceError.exit_code) from None
        except (MmrecError, KeyboardInterrupt, OSError) as caught:
            # Ctrl-C where no command says more: one line instead of click's bare "Aborted!". An operating-system
            # error (a full disk, a folder without write permission, a file size limit) is the machine's answer
            # to this command, not a bug: said in one block, exit 2 (--verbose shows where).
            terminated = isinstance(caught, Terminated) or isinstance(caught.__context__, Terminated)
            error = (caught if isinstance(caught, MmrecError) else os_error(caught) if isinstance(caught, OSError)
                     else Interrupted(f"Interrupted ({'SIGTERM' if terminated else 'Ctrl-C'})."))
            if terminated and isinstance(error, Interrupted):  # a command's own message on what it kept, exit 143
                error.exit_code = Terminated.exit_code
            verbose = isinstance(ctx.obj, AppState) and ctx.obj.verbose
            render_error(error, verbose=verbose)
            raise typer.Exit(code=error.exit_code) from None


app = typer.Typer(
    name="mmrec",
    cls=MmrecGroup,
    help="Multimodal recommender: preprocess, split, cache features, train, evaluate, recommend.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mmrec {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file used by every command.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs and full tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Multimodal recommender system."""
    ctx.obj = AppState(config=config, verbose=verbose)
    configure_logging(verbose)


# Each module exposes `register(app)`, adding its command or group. Order = order in --help.
_COMMAND_MODULES = (
    "data",
    "preprocess",
    "split",
    "encoders",
    "cache",
    "train",
    "tune",
    "evaluate",
    "recommend",
    "checkpoints",
    "demo",
    "config_cmd",
)


def _register() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(f"mmrec.cli.{name}").register(app)


_register()


def verbose_first(args: list[str]) -> list[str]:
    """`args` with --verbose / -v given after the command moved before it, where the root option reads it
    (`mmrec split --verbose` = `mmrec --verbose split`); train and tune, which also take it, read it either way."""
    command = next((i for i, arg in enumerate(args) if not arg.startswith("-")
                    and not (i and args[i - 1] in ("--config", "-c"))), None)
    if command is None or "--" in args[command:]:
        return args
    late = [i for i in range(command + 1, len(args)) if args[i] in ("--verbose", "-v")]
    if not late:
        return args
    return ["--verbose", *(arg for i, arg in enumerate(args) if i not in late)]


REDIRECTED_WIDTH = 200  # columns of stdout written to a file or pipe: a log keeps a path on one line


def prepare_output() -> None:
    """Make the consoles safe wherever the process runs: a COLUMNS of 0 (some containers' 0x0 terminal) made rich
    print nothing at all, errors included (and a handful of columns an error block's borders alone); stdout
    redirected to a file wrapped paths at 80 columns; a stream that cannot encode a character
    (PYTHONIOENCODING=ascii) crashed mid-table; an error block wrapped the path of its hint at 80 columns in a CI
    log. Not for tests' runners: only `main`."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    for shown in (console, err_console):
        if shown.width < 20:  # 0 printed nothing; 1-19 one character a line, an error block as empty borders
            shown.width = 80
    for shown in (console, err_console):  # errors too: a CI log keeps the path of a `--resume` hint whole
        if not shown.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            shown.width = REDIRECTED_WIDTH


def main() -> None:
    """Console-script entry point (`mmrec`, `python -m mmrec`)."""
    prepare_output()
    terminate_as_interrupt()
    # Typer's root --verbose is parsed after commands import; accept it anywhere on the line.
    try:
        app(args=verbose_first(sys.argv[1:]))
    except MmrecError as error:  # raised outside a command (e.g. during completion)
        render_error(error, verbose="--verbose" in sys.argv or "-v" in sys.argv)
        sys.exit(error.exit_code)
