"""settings.tune: the search space of `mmrec tune`, validated and narrowable from YAML."""

from __future__ import annotations

import pytest
import yaml

from mmrec.errors import ConfigError
from mmrec.settings import DEFAULT_SEARCH_SPACE, Settings, load_settings


def load(tmp_path, tune):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"tune": tune}))
    return load_settings(path).settings.tune


def test_default_space_covers_model_loss_and_item_item_settings():
    space = Settings().tune.space()
    assert set(space) == set(DEFAULT_SEARCH_SPACE)
    for name in ("model.embedding_dim", "training.learning_rate", "training.weight_decay", "model.id_dropout",
                 "model.item_item_l2", "model.item_item_content_weight", "training.epochs"):
        assert name in space
    assert space["training.learning_rate"].log and space["model.item_item_l2"].log


def test_yaml_entries_replace_defaults_null_drops_and_params_restrict(tmp_path):
    tune = load(tmp_path, {"search_space": {
        "training.learning_rate": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
        "model.dropout": None,
        "model.num_layers": {"type": "int", "low": 1, "high": 2},
    }})
    assert tune.search_space["training.learning_rate"].low == 0.001
    assert "model.dropout" not in tune.space() and "model.num_layers" in tune.space()
    assert len(tune.space()) == len(DEFAULT_SEARCH_SPACE)  # one dropped, one added
    narrowed = load(tmp_path, {"params": ["training.learning_rate", "model.item_item_l2"]})
    assert list(narrowed.space()) == ["model.item_item_l2", "training.learning_rate"]
    # A dumped tune section (as in a best_config.yaml) loads back to the same space.
    assert load(tmp_path, tune.model_dump()).space() == tune.space()


@pytest.mark.parametrize("space, message", [
    ({"model.embedding_size": {"type": "int", "low": 8, "high": 16}}, "unknown setting 'model.embedding_size'"),
    ({"tune.n_trials": {"type": "int", "low": 1, "high": 2}}, "cannot search 'tune.n_trials'"),
    ({"model.dropout": {"type": "float", "low": 0.3, "high": 0.1}}, "needs low < high"),
    ({"model.dropout": {"type": "float", "low": 0.0, "high": 1.0}}, "model.dropout cannot take 1.0"),
    ({"training.weight_decay": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, "needs low > 0"),
    ({"model.embedding_dim": {"type": "float", "low": 8, "high": 64}}, "fractional part"),
    ({"model.fusion": {"type": "categorical", "choices": ["attention", "late"]}}, "cannot take 'late'"),
    ({"model.fusion": {"type": "categorical", "choices": []}}, "non-empty `choices`"),
    ({"model.num_layers": {"type": "int", "low": 1, "high": 3, "log": True, "step": 1}}, "cannot be combined"),
])
def test_bad_search_spaces_are_config_errors(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load(tmp_path, {"search_space": space})


@pytest.mark.parametrize("space, message", [
    # How trials are scored: a study had ranked one trial's recall@20 above the others' MRR (a walkthrough).
    ({"training.monitor": {"type": "categorical", "choices": ["recall@20", "mrr"]}},
     "cannot search 'training.monitor': it sets the metric every trial is scored by"),
    ({"training.max_validation_users": {"type": "int", "low": 50, "high": 100}},
     "cannot search 'training.max_validation_users'"),
])
def test_settings_that_decide_how_trials_are_scored_are_refused_by_a_study_only(tmp_path, space, message):
    # Refused when the settings loaded, a best_config.yaml an older mmrec wrote stopped evaluate and recommend too.
    tune = load(tmp_path, {"search_space": space})
    with pytest.raises(ConfigError, match=message) as info:
        tune.space()
    assert "Remove" in info.value.hint and "base settings" in info.value.hint


def test_every_mistake_of_a_search_space_is_named_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, {"search_space": {"model.embedding_size": {"type": "int", "low": 8, "high": 16},
                                         "model.dropout": {"type": "float", "low": 0.0, "high": 1.0},
                                         "tune.n_trials": {"type": "int", "low": 1, "high": 2}}})
    text = str(info.value.message)
    assert "unknown setting 'model.embedding_size'" in text and "model.dropout cannot take 1.0" in text
    assert "cannot search 'tune.n_trials'" in text


def test_params_must_name_searched_settings_and_study_names_stay_in_their_folder(tmp_path):
    with pytest.raises(ConfigError, match="tune.params names model.nope"):
        load(tmp_path, {"params": ["model.nope"]})
    with pytest.raises(ConfigError, match="tune.params is empty"):
        load(tmp_path, {"params": []})
    for name in ("../up", "a/b", ""):
        with pytest.raises(ConfigError, match="study_name"):
            load(tmp_path, {"study_name": name})


def test_an_unknown_key_inside_a_search_dimension_lists_the_dimension_keys(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, {"search_space": {"training.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2,
                                                                    "lgo": True}}})
    text = str(info.value.message)
    assert "tune.search_space.training.learning_rate.lgo: unknown key" in text
    assert "allowed here: type, low, high, log, step, choices" in text and "n_trials" not in text
