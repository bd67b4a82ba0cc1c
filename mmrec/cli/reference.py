"""docs/cli.md: every command and option of `mmrec`, written from the CLI itself.

    python -m mmrec.cli.reference > docs/cli.md

A test checks the committed file against this output, so the reference never lags behind the options.
"""

from __future__ import annotations

from typing import Any

import typer.main

from mmrec.cli.app import app

HEADER = """# Command reference

Every `mmrec` command and option, generated from the CLI (`python -m mmrec.cli.reference > docs/cli.md`;
a test keeps it current). Settings a command does not expose as an option are set in the YAML config
(`-c`), with `MMREC_<SECTION>__<KEY>` environment variables, or listed by `mmrec config show`; what
each setting does is in `configs/advanced_config.yaml`.
"""


def _command(path: str, command: Any) -> list[str]:
    """The section of `command` (and, for a group, of its subcommands): each option as `--help` shows it."""
    ctx = type(command).context_class(command, info_name=path.rsplit(" ", 1)[-1])
    lines = [f"## `{path}`", ""]
    doc = " ".join((command.help or "").split("\n\n")[0].split())
    if doc:
        lines += [doc, ""]
    records = [p.get_help_record(ctx) for p in command.params if not getattr(p, "hidden", False)]
    lines += [f"- `{names}`" + (f": {' '.join(text.split())}" if text else "")
              for names, text in filter(None, records)] or ["(no options)"]
    lines.append("")
    if hasattr(command, "list_commands"):  # a group
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines += _command(f"{path} {name}", sub)
    return lines


def reference() -> str:
    """The markdown of docs/cli.md."""
    root = typer.main.get_command(app)
    lines = [HEADER, *_command("mmrec", root)]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
