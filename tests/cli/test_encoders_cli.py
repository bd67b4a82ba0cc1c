from typer.testing import CliRunner

from mmrec.cli.app import app
from mmrec.data.synth import generate_synthetic

runner = CliRunner()


def test_extract_then_show(tmp_path):
    generate_synthetic(tmp_path / "raw", users=10, items=12, seed=0)
    config = tmp_path / "c.yaml"
    config.write_text(
        f"paths:\n  data_dir: {tmp_path / 'raw'}\n  processed_dir: {tmp_path / 'p'}\n"
        f"  splits_dir: {tmp_path / 's'}\n  checkpoint_dir: {tmp_path / 'ckpt'}\n"
    )
    missing = runner.invoke(app, ["encoders", "show", "-c", str(config)])
    assert missing.exit_code == 2 and "mmrec encoders extract" in missing.output
    no_split = runner.invoke(app, ["encoders", "extract", "-c", str(config)])
    assert no_split.exit_code == 2 and "mmrec split" in no_split.output
    assert (
        runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching", "--workers", "1"]).exit_code
        == 0
    )
    assert runner.invoke(app, ["split", "-c", str(config), "--strategy", "item"]).exit_code == 0
    extracted = runner.invoke(app, ["encoders", "extract", "-c", str(config)])
    assert extracted.exit_code == 0, extracted.output
    assert "unknown to the encoders" in extracted.output  # item split: test items are cold
    assert (tmp_path / "ckpt" / "encoders" / "user_encoder.json").is_file()
    shown = runner.invoke(app, ["encoders", "show", "-c", str(config), "-n", "2"])
    assert shown.exit_code == 0 and "u0000->1" in shown.output
