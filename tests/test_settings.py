"""Settings precedence and validation, exercised through `mmrec config show`."""

import json
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from mmrec.cli.app import app
from mmrec.settings import Settings, load_settings

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _show(*args, env=None):
    result = runner.invoke(app, ["config", "show", "--json", *args], env=env)
    return result, (json.loads(result.output) if result.exit_code == 0 else None)


def _shown_flat(*args, env=None):
    """(`config show`'s exit code, its output on one line without the error box's borders)."""
    result, _ = _show(*args, env=env)
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


def test_precedence_defaults_yaml_env_cli(tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  epochs: 7\n  batch_size: 16\nsplit:\n  seed: 5\n")
    monkeypatch.setenv("MMREC_TRAINING__BATCH_SIZE", "32")
    monkeypatch.setenv("MMREC_SPLIT__SEED", "6")
    loaded = load_settings(config, {"split.seed": 9, "training.epochs": None})
    s = loaded.settings
    assert (s.training.epochs, s.training.batch_size, s.split.seed, s.model.embedding_dim) == (7, 32, 9, 64)
    assert loaded.source_of("training.epochs") == f"yaml:{config}"
    assert loaded.source_of("training.batch_size") == "env:MMREC_TRAINING__BATCH_SIZE"
    assert loaded.source_of("split.seed") == "cli" and loaded.source_of("model.embedding_dim") == "default"
    result, shown = _show("--config", str(config))
    assert result.exit_code == 0 and shown["settings"]["training"]["batch_size"] == 32
    # Every setting has its source in the JSON, as in the table (defaults were left out).
    assert shown["sources"]["model.embedding_dim"] == "default"
    assert shown["sources"]["training.epochs"] == f"yaml:{config}"
    assert len(shown["sources"]) == sum(len(fields) for fields in shown["settings"].values())


def test_a_mapping_setting_from_a_later_layer_replaces_the_earlier_one_whole(tmp_path, monkeypatch):
    """An environment's rating_values had been merged into the YAML's: the YAML's other words stayed in."""
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  rating_values: {view: 1, cart: 2}\n  positive_rating_threshold: 2\n")
    monkeypatch.setenv("MMREC_DATA__RATING_VALUES", '{"buy": 4}')
    data = load_settings(config).settings.data
    assert data.rating_values == {"buy": 4.0} and data.positive_rating_threshold == 2  # the section still merges


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("training:\n  epochz: 3\n", "training.epochz: unknown key (did you mean epochs?); allowed here: epochs"),
        ("trainng:\n  epochs: 3\n", "trainng: unknown key (did you mean training?); allowed here: paths"),
        # A key of another section: the section's own closest name (cache_dir) was no help.
        ("paths:\n  images_dir: pictures\n", "paths.images_dir: unknown key (did you mean data.images_subdir?)"),
        ("data:\n  user_id_colum: x\n", "data.user_id_colum: unknown key (did you mean user_id_column?)"),
        # Another tool's name for a setting, which spelling alone matched to results_dir (walkthrough I).
        ("paths:\n  models_dir: m\n", "paths.models_dir: unknown key (did you mean checkpoint_dir?)"),
        ("training:\n  lr: 0.1\n", "training.lr: unknown key (did you mean learning_rate?)"),
        # ... in another section than its setting's, and evaluate's cut-offs (rev4).
        ("training:\n  models_dir: m\n", "training.models_dir: unknown key (did you mean paths.checkpoint_dir?)"),
        ("model:\n  lr: 0.1\n", "model.lr: unknown key (did you mean training.learning_rate?)"),
        ("evaluation:\n  top_k: 10\n", "evaluation.top_k: unknown key (did you mean k_values?)"),
        ("evaluation:\n  k: 10\n", "evaluation.k: unknown key (did you mean k_values?)"),
        ("split:\n  val_ratio: 0.2\n", "split: train_ratio + val_ratio + test_ratio must be 1.0, got 1.1 (from yaml:"),
        ("training:\n  epochs: many\n", "training.epochs"),
        ("training:\n  learning_rate: -0.1\n", "training.learning_rate"),
        ("evaluation:\n  k_values: [0, 5]\n", "every k must be >= 1"),
        ("features:\n  vision_backbone: vgg\n", "vision backbone 'vgg'; registered: efficientnet-lite, resnet"),
        ("features:\n  text_backbone: gpt\n", "text backbone 'gpt'; registered: sentence-bert, bert"),
        ("nosuchsection:\n  a: 1\n", "nosuchsection"),
        ("paths:\n  processed_dir: out\n  splits_dir: out/splits\n",
         "paths.splits_dir (out/splits) lies inside paths.processed_dir (out), which preprocess replaces"),
        ("paths:\n  results_dir: data/processed\n", "paths.results_dir (data/processed) is paths.processed_dir"),
    ],
)
def test_invalid_settings_exit_2_naming_the_key(tmp_path, yaml_text, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    result, _ = _show("--config", str(config))
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "ConfigError" in result.output
    assert expected in flat and "Value error" not in flat
    assert "(from yaml:" in flat  # every problem says where its value came from, whole sections too


def test_config_that_is_not_utf8_is_a_clear_error(tmp_path):
    config = tmp_path / "latin1.yaml"
    config.write_bytes("training:\n  epochs: 3  # r\xe9sum\xe9\n".encode("latin-1"))
    result, _ = _show("--config", str(config))
    assert result.exit_code == 2 and "ConfigError" in result.output and "not UTF-8" in result.output


def test_unknown_env_section_is_an_error():
    code, flat = _shown_flat(env={"MMREC_TRAINNG__EPOCHS": "3"})
    assert code == 2 and "MMREC_TRAINNG__EPOCHS (did you mean MMREC_TRAINING__...?)" in flat


def test_a_list_setting_in_the_environment_that_is_not_json_names_its_variable():
    result, _ = _show(env={"MMREC_EVALUATION__K_VALUES": "5,10", "MMREC_EVALUATION__MONITOR": "ndcg@10"})
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "Could not read MMREC_EVALUATION__K_VALUES='5,10'" in flat
    assert "MONITOR" not in flat  # a plain string setting is not JSON and is not a suspect
    _, shown = _show(env={"MMREC_EVALUATION__K_VALUES": "[5, 10]"})
    assert shown["settings"]["evaluation"]["k_values"] == [5, 10]


SHIPPED = {"simple_config": CONFIGS / "simple_config.yaml", "advanced_config": CONFIGS / "advanced_config.yaml",
           "demo": Path(__file__).resolve().parents[1] / "mmrec" / "configs" / "demo.yaml"}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_configs_load(name):
    settings = load_settings(SHIPPED[name]).settings
    if name == "simple_config":
        assert (
            settings.features.vision_backbone,
            settings.model.embedding_dim,
            settings.training.epochs,
        ) == ("efficientnet-lite", 64, 30)  # the short example runs offline as copied
        assert settings.model.use_contrastive and settings.training.batch_size == 64
    if name == "demo":
        assert str(settings.paths.data_dir) == "demo/raw"
        assert settings.features.vision_backbone == "efficientnet-lite"


def test_advanced_config_names_every_setting_with_a_comment():
    text = (CONFIGS / "advanced_config.yaml").read_text()
    values = yaml.safe_load(text)
    for section, field in Settings.model_fields.items():
        assert section in values, f"advanced_config.yaml lacks section {section}"
        for key in typing.cast(type, field.annotation).model_fields:
            assert key in values[section], f"advanced_config.yaml lacks {section}.{key}"
            line = next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))
            assert "#" in line, f"{section}.{key} has no comment"
    defaults = Settings().model_dump(mode="json")
    assert load_settings(CONFIGS / "advanced_config.yaml").settings.model_dump(mode="json") == defaults


def test_config_show_never_cuts_a_key_at_80_columns(tmp_path):
    result = runner.invoke(app, ["config", "show"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "model.item_item_exact_search_max_items" in result.output and "…" not in result.output
    # The tune search space reads one dimension a line, not the JSON of every unset field (--json has that).
    from mmrec.cli.config_cmd import _search_space

    assert '"low": null' not in result.output
    shown = _search_space(Settings().tune.model_dump(mode="json")["search_space"]).splitlines()
    assert "model.embedding_dim: [32, 64, 128]" in shown and "model.item_item_l2: float 10-2000, log" in shown
    config = tmp_path / "a_rather_long_folder_name" / "for" / "configs" / "my_experiment.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("training:\n  epochs: 3\n")
    result = runner.invoke(app, ["config", "show", "-c", str(config)], terminal_width=80)
    assert result.exit_code == 0 and "…" not in result.output  # a long source path wraps


def test_split_strategies_take_the_dashed_spelling_of_the_docs():
    from mmrec.settings import SplitSettings

    assert SplitSettings(strategy="leave-one-out").strategy == "leave_one_out"
    assert SplitSettings(strategy="temporal-user").strategy == "temporal_user"


def test_a_description_column_named_by_a_number_stays_its_name(monkeypatch):
    # An environment value reads as JSON since the setting takes a list too: 2020 was refused as no string.
    monkeypatch.setenv("MMREC_DATA__DESCRIPTION_COLUMN", "2020")
    assert load_settings(None).settings.data.description_column == "2020"
    monkeypatch.setenv("MMREC_DATA__DESCRIPTION_COLUMN", '["notes", 2020]')
    assert load_settings(None).settings.data.description_columns == ["notes", "2020"]


def test_null_in_an_environment_variable_is_yaml_null(monkeypatch):
    monkeypatch.setenv("MMREC_DATA__DESCRIPTION_COLUMN", "null")
    monkeypatch.setenv("MMREC_DATA__POSITIVE_RATING_THRESHOLD", "NULL")
    monkeypatch.setenv("MMREC_INFERENCE__ANN", "none")  # a value spelled none stays that value
    loaded = load_settings(None)
    assert loaded.settings.data.description_column is None and loaded.settings.data.positive_rating_threshold is None
    assert loaded.settings.inference.ann == "none"
    assert loaded.sources["data.description_column"] == "env:MMREC_DATA__DESCRIPTION_COLUMN"


def test_timestamp_format_is_excel_or_a_strftime_format():
    assert Settings.model_validate({"data": {"timestamp_format": "%d/%m/%Y"}}).data.timestamp_format == "%d/%m/%Y"
    assert Settings.model_validate({"data": {"timestamp_format": "excel"}}).data.timestamp_format == "excel"
    with pytest.raises(ValidationError, match="neither 'excel' nor a strftime format"):
        Settings.model_validate({"data": {"timestamp_format": "dd/mm/yyyy"}})
    for bad in ("%Q-%m", "%Y-%"):  # a directive strptime does not know; a lone % at the end
        with pytest.raises(ValidationError, match="is not a strftime format"):
            Settings.model_validate({"data": {"timestamp_format": bad}})


def test_a_section_level_problem_names_where_the_keys_its_message_names_came_from():
    from pydantic import ValidationError

    from mmrec.settings import Settings, format_validation_error

    with pytest.raises(ValidationError) as info:
        Settings(inference={"exclude_seen": True, "top_k": 5, "new_items": 8})
    sources = {"inference.exclude_seen": "yaml:c.yaml", "inference.top_k": "cli", "inference.new_items": "cli"}
    text = format_validation_error(info.value, sources)
    assert "new_items (8) cannot exceed top_k (5)" in text and text.endswith("(from cli)")  # not the YAML's key
    only_yaml = format_validation_error(info.value, {"inference.exclude_seen": "yaml:c.yaml"})
    assert only_yaml.endswith("(from yaml:c.yaml)")  # nothing named was set anywhere: the section's own source


def test_a_number_setting_refuses_true_and_false(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: true\n  bf16: true\nmodel:\n  dropout: false\n")
    code, flat = _shown_flat("-c", str(path))
    assert code == 2 and "training.epochs: expected a number, got true" in flat
    assert "model.dropout: expected a number, got false" in flat and "bf16" not in flat  # a bool setting takes one


def test_an_empty_config_file_says_the_defaults_apply(tmp_path, caplog):
    path = tmp_path / "c.yaml"
    path.write_text("# nothing set yet\n")
    with caplog.at_level("WARNING"):
        assert load_settings(path).settings == Settings()
    assert "holds no settings (empty or comments only): the defaults apply" in caplog.text
    path.write_text("training:\n  # epochs: 5\nmodel:\n  dropout: 0.2\n")  # a section whose keys are all comments
    with caplog.at_level("WARNING"):
        assert load_settings(path).settings.training == Settings().training
    assert "section(s) training hold no settings: their defaults apply" in caplog.text


def test_a_section_set_to_one_value_says_how_sections_are_set():
    code, flat = _shown_flat(env={"MMREC_TRAINING": "5"})
    assert code == 2 and "training: a section holds settings, not one value" in flat
    assert "MMREC_TRAINING__<KEY>=value" in flat and "(from env:MMREC_TRAINING)" in flat


@pytest.mark.parametrize("section", ["split", "training", "evaluation"])
def test_a_negative_seed_is_refused(section):
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Settings.model_validate({section: {"seed": -1}})


def test_folder_settings_expand_a_leading_tilde_and_refuse_an_empty_value(monkeypatch, tmp_path):
    from mmrec.errors import ConfigError

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MMREC_PATHS__RESULTS_DIR", "~/res")
    assert load_settings(None).settings.paths.results_dir == tmp_path / "res"
    monkeypatch.setenv("MMREC_PATHS__RESULTS_DIR", "")
    with pytest.raises(ConfigError, match="cannot be empty"):
        load_settings(None)


def test_data_encoding_must_be_a_text_encoding():
    import pytest
    from pydantic import ValidationError

    from mmrec.settings import DataSettings

    assert DataSettings(encoding="cp1252").encoding == "cp1252"
    for codec in ("klingon", "rot13", "base64"):  # rot13 and base64 are codecs, but not of bytes to text
        with pytest.raises(ValidationError, match="is not a text encoding Python knows"):
            DataSettings(encoding=codec)



def test_a_key_written_twice_in_the_config_is_refused_with_its_lines(tmp_path):
    """YAML keeps the last of two equal keys silently: a second `epochs:` in a long config overrode the first."""
    config = tmp_path / "twice.yaml"
    config.write_text("training:\n  epochs: 5\n  batch_size: 64\n  epochs: 7\n")
    code, flat = _shown_flat("--config", str(config))
    assert code == 2 and "found the key 'epochs' a second time (first on line 2)" in flat
    config.write_text("training:\n  epochs: 5\ntraining:\n  batch_size: 7\n")  # a section twice
    code, flat = _shown_flat("--config", str(config))
    assert code == 2 and "found the key 'training' a second time" in flat
    # A merge key's values may be overridden, as YAML means them.
    config.write_text("x: &base\n  epochs: 5\n  batch_size: 64\ntraining:\n  <<: *base\n  epochs: 7\n")
    from mmrec.settings import load_yaml

    assert load_yaml(config)["training"] == {"epochs": 7, "batch_size": 64}


def test_a_key_that_is_no_text_is_refused_with_its_line(tmp_path):
    """`1: 2` or `true: 1` at the top of a config raised a TypeError (a traceback, exit 1): names are text."""
    config = tmp_path / "keys.yaml"
    for text, shown in (("1: 2\n", "found the key 1 (int)"), ("true: 1\n", "found the key True (bool)"),
                        ("? [a, b]\n: 1\n", "found a list as a key"),
                        ("data:\n  rating_values: {1: 2}\n", "found the key 1 (int)")):
        config.write_text(text)
        code, flat = _shown_flat("--config", str(config))
        assert code == 2 and shown in flat and "quote a key that looks like a number" in flat, flat


def test_a_study_name_ending_like_a_studys_own_files_is_refused():
    """`--study t2.db` made results/tune/t2.db/ a folder under study t2's database file: a misleading disk error."""
    code, flat = _shown_flat(env={"MMREC_TUNE__STUDY_NAME": "t2.db"})
    assert code == 2 and "tune.study_name: 't2.db' ends like a study's own files" in flat
    code, _ = _shown_flat(env={"MMREC_TUNE__STUDY_NAME": "t2.v1"})
    assert code == 0


def test_inf_and_nan_are_refused_as_settings_values():
    """`--lr inf` passed the settings (gt=0) and trained to NaN at its first step."""
    from pydantic import ValidationError

    from mmrec.settings import TrainingSettings

    for value in (float("inf"), float("nan")):
        with pytest.raises(ValidationError, match="finite number"):
            TrainingSettings(learning_rate=value)
