"""`mmrec config show`: the resolved settings and where each value came from."""

from __future__ import annotations

import json

import typer
from rich.table import Table
from rich.text import Text

from mmrec.cli.common import ConfigOption, console, print_json_data, state
from mmrec.settings import settings_as_dict

app = typer.Typer(help="Inspect the resolved settings.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print every setting with its value and source (default, yaml:FILE, env:VAR, cli)."""
    app_state = state(ctx)
    settings = app_state.settings(config)
    values = settings_as_dict(settings)
    if as_json:
        sources = {f"{section}.{key}": app_state.loaded.source_of(f"{section}.{key}")  # every setting, as the table
                   for section, fields in values.items() for key in fields}
        print_json_data({"settings": values, "sources": sources})
        return
    table = Table(title="Resolved settings")
    table.add_column("key", no_wrap=True)  # keys are copied into YAML or MMREC_* variables: never cut
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")  # a long config path wraps, never cut
    for section, fields in values.items():
        for key, value in fields.items():
            dotted = f"{section}.{key}"
            shown = (_search_space(value) if dotted == "tune.search_space" else
                     json.dumps(value, ensure_ascii=False))  # 'Gefällt mir' as written
            table.add_row(dotted, Text(shown), Text(app_state.loaded.source_of(dotted)))  # '[a, b]' is no markup
    console.print(table)


def _search_space(space: dict) -> str:
    """One line per dimension ("model.lr: float 0.0001-0.01, log"; "model.embedding_dim: [32, 64, 128]"), not
    the JSON of every unset field (`--json` has that)."""
    lines = []
    for name, dimension in space.items():
        if dimension is None:  # `name: null` in YAML: not searched
            lines.append(f"{name}: not searched")
            continue
        if dimension.get("choices") is not None:
            lines.append(f"{name}: {json.dumps(dimension['choices'])}")
            continue
        text = f"{name}: {dimension.get('type')} {_number(dimension.get('low'))}-{_number(dimension.get('high'))}"
        if dimension.get("step") is not None:
            text += f", step {_number(dimension['step'])}"
        lines.append(text + (", log" if dimension.get("log") else ""))
    return "\n".join(lines) or "{}"


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="config")
