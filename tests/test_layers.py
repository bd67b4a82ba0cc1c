"""The layering rule of DESIGN.md: imports point down (cli -> pipeline -> core -> settings)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mmrec"
CORE = ("data", "features", "models", "training", "evaluation", "recommenders", "inference", "checkpoints")
UI_MODULES = ("typer", "rich", "click")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("layer", CORE)
def test_core_never_imports_ui_cli_or_pipeline(layer):
    for path in _modules(layer):
        for name in _imports(path):
            root = name.split(".")[0]
            assert root not in UI_MODULES, f"{path.relative_to(PACKAGE)} imports {name}"
            assert not name.startswith(("mmrec.cli", "mmrec.pipeline")), f"{path.relative_to(PACKAGE)} imports {name}"


def test_pipeline_never_imports_ui_or_cli():
    for path in _modules("pipeline"):
        for name in _imports(path):
            assert name.split(".")[0] not in UI_MODULES, f"{path.relative_to(PACKAGE)} imports {name}"
            assert not name.startswith("mmrec.cli"), f"{path.relative_to(PACKAGE)} imports {name}"


def test_bottom_layer_modules_import_no_upper_layer():
    for name in ("settings.py", "errors.py", "fileio.py", "registry.py", "progress.py", "device.py", "combo.py"):
        for imported in _imports(PACKAGE / name):
            assert not imported.startswith(tuple(f"mmrec.{layer}" for layer in (*CORE, "cli", "pipeline")))


@pytest.mark.parametrize(("layer", "forbidden"), [("recommenders", "training"), ("models", "evaluation")])
def test_model_input_code_lives_below_its_users(layer, forbidden):
    # Catalogue inputs and histories are model-input code (models/), interaction matrices are data/:
    # serving a model never needs the training loop, and the model never needs the evaluation code.
    for path in _modules(layer):
        for name in _imports(path):
            assert not name.startswith(f"mmrec.{forbidden}"), f"{path.relative_to(PACKAGE)} imports {name}"

def test_bottom_layer_loads_no_upper_layer_when_imported_or_validated():
    """settings checks backbone names against registries whose classes live above it; the registering
    modules may be imported only when a name is checked, never when settings are merely imported or
    built from defaults (a command that needs no torch must not pay for importing it)."""
    code = (
        "import sys\n"
        "import mmrec.settings, mmrec.registry, mmrec.fileio, mmrec.errors, mmrec.progress\n"
        "mmrec.settings.Settings()\n"
        f"upper = sorted(m for m in sys.modules if m.startswith({tuple(f'mmrec.{x}' for x in (*CORE, 'cli', 'pipeline'))}))\n"
        "print(upper, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    assert out.strip() == "[] False"


def test_the_cli_loads_no_pandas_or_torch_until_a_command_needs_them():
    """`mmrec --help`, `config show` and every error before a command's work stay fast: the command modules
    import their heavy layers inside the command."""
    code = ("import sys\nfrom mmrec.cli.app import app\n"
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'torch') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    assert out.strip() == "[]"


def test_registries_are_filled_only_by_core_modules():
    from mmrec.registry import RECOMMENDERS, TEXT_BACKBONES, VISION_BACKBONES

    for registry in (VISION_BACKBONES, TEXT_BACKBONES, RECOMMENDERS):
        for module in registry.providers:
            assert module.split(".")[1] in CORE, f"{registry.kind} filled by {module}"


def test_settings_validation_and_the_serving_pipelines_import_no_backbone_or_plotting_library():
    """A configured backbone name is checked against the registry, which imports the backbone modules: they
    import torchvision / transformers / open_clip only when a backbone loads (torchvision's import alone took
    1.6 s of every command). Train, evaluate and recommend import matplotlib only to draw their plots."""
    code = ("import sys\nfrom mmrec.settings import Settings\n"
            "Settings.model_validate({'features': {'vision_backbone': 'resnet', 'text_backbone': 'bert'}})\n"
            "import mmrec.pipeline.recommend, mmrec.pipeline.evaluate, mmrec.pipeline.train\n"
            "print(sorted(m for m in ('torchvision', 'transformers', 'open_clip', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    assert out.strip() == "[]"
