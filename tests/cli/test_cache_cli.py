import json
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from mmrec.cli.app import app
from mmrec.data.tables import save_items
from mmrec.features.file_digests import sha256_file
from mmrec.features.fingerprint import text_fingerprint

runner = CliRunner()
COMBO = "efficientnet-lite_sentence-bert"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    # Error panels too: at 80 columns a long temporary path moved line breaks into the phrases checked.
    from mmrec.cli.common import console, err_console

    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err_console, "width", 200)


@pytest.fixture
def config(tmp_path):
    """A processed catalogue of 4 items (one without image, one corrupt) and a config pointing at it."""
    processed = tmp_path / "processed"
    (processed / "images").mkdir(parents=True)
    rows = []
    for i in range(4):
        rel = f"images/{i}.jpg"
        if i == 2:
            (processed / rel).write_bytes(b"not a jpeg")
        elif i != 3:
            colour = np.full((64, 64, 3), (40 + 60 * i, 200 - 50 * i, 90), dtype=np.uint8)
            Image.fromarray(colour).save(processed / rel, "JPEG")
        text = f"Movie {i} about {['space', 'love', 'crime', 'dogs'][i]}"
        rows.append({"item_id": str(i), "title": f"Movie {i}", "description": "", "text": text,
                     "image_path": rel if i != 3 else None, "has_image": i != 3,
                     "image_fingerprint": sha256_file(processed / rel) if i != 3 else None,
                     "text_fingerprint": text_fingerprint(text)})
    save_items(pd.DataFrame(rows), processed)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "paths": {"processed_dir": str(processed), "cache_dir": str(tmp_path / "cache")},
        "features": {"num_workers": 0, "device": "cpu"},
    }))
    return path


def test_precompute_list_stats_clear(config, tmp_path):
    result = runner.invoke(app, ["cache", "precompute", "--config", str(config), "--max_items", "4"])
    assert result.exit_code == 0, result.output
    assert COMBO in result.output and "unreadable vision input for item 2" in result.output

    again = runner.invoke(app, ["cache", "precompute", "-c", str(config), "--test"])
    assert again.exit_code == 0 and "3" in again.output  # everything already cached

    listed = runner.invoke(app, ["cache", "list", "-c", str(config)])
    assert listed.exit_code == 0 and COMBO in listed.output and "1280/384" in listed.output

    stats = runner.invoke(app, ["cache", "stats", COMBO, "-c", str(config)])
    assert stats.exit_code == 0, stats.output
    assert "100.0%" in stats.output and "Catalogue: 4 items" in stats.output and "hits" in stats.output
    narrow = runner.invoke(app, ["cache", "stats", COMBO, "-c", str(config)], terminal_width=80)
    assert "coverage" in narrow.output and "unreadable" in narrow.output and "…" not in narrow.output

    # --json for scripts: the same figures as objects, whatever the terminal's width.
    listed = json.loads(runner.invoke(app, ["cache", "list", "-c", str(config), "--json"], terminal_width=40).output)
    assert [c["combo"] for c in listed["caches"]] == [COMBO] and listed["caches"][0]["dims"] == {"vision": 1280,
                                                                                                 "text": 384}
    figures = json.loads(runner.invoke(app, ["cache", "stats", COMBO, "-c", str(config), "--json"]).output)
    assert figures["catalogue_items"] == 4 and figures["coverage"] == {"vision": 1.0, "text": 1.0}
    assert figures["last_run"]["hits"] > 0 and figures["folder"].endswith(COMBO)
    assert figures["size_bytes"] == listed["caches"][0]["size_bytes"]  # one folder, one size (measured closed)

    missing = runner.invoke(app, ["cache", "stats", "clip_mpnet", "-c", str(config)])
    assert missing.exit_code == 2 and "No feature cache named" in missing.output

    refused = runner.invoke(app, ["cache", "clear", "--all", "-c", str(config)], input="n\n")
    assert refused.exit_code == 1 and (tmp_path / "cache" / COMBO).is_dir() and "Nothing deleted" in refused.output
    unanswered = runner.invoke(app, ["cache", "clear", "--all", "-c", str(config)], input="")  # a cron job
    assert unanswered.exit_code == 2 and (tmp_path / "cache" / COMBO).is_dir()
    assert "there is no answer to read" in unanswered.output and "Pass --yes" in unanswered.output
    cleared = runner.invoke(app, ["cache", "clear", COMBO, "--yes", "-c", str(config)])
    assert cleared.exit_code == 0 and not (tmp_path / "cache" / COMBO).exists()



def test_listing_inspecting_and_clearing_stores_import_no_torch(config, tmp_path, invoke_in_fresh_process):
    # `cache list` spent 2 of its 3.3 s importing torch to read a folder listing and JSON sidecars.
    assert runner.invoke(app, ["cache", "precompute", "-c", str(config)]).exit_code == 0
    codes, outputs, torch_loaded = invoke_in_fresh_process(
        ["cache", "list", "-c", config, "--json"], ["cache", "stats", COMBO, "-c", config, "--json"],
        ["cache", "clear", COMBO, "--yes", "-c", config])
    assert codes == [0, 0, 0] and json.loads(outputs[1])["catalogue_items"] == 4 and not torch_loaded
    assert not (tmp_path / "cache" / COMBO).exists()


def test_a_config_naming_backbones_is_listed_and_shown_without_importing_torch(config, tmp_path,
                                                                              invoke_in_fresh_process):
    # Settings validation imported the backbone modules (and torch) to check `features.vision_backbone`.
    named = tmp_path / "named.yaml"
    values = yaml.safe_load(config.read_text())
    values.setdefault("features", {}).update(vision_backbone="resnet", text_backbone="bert")
    named.write_text(yaml.safe_dump(values))
    codes, outputs, torch_loaded = invoke_in_fresh_process(
        ["cache", "list", "-c", named, "--json"], ["config", "show", "-c", named])
    assert codes == [0, 0] and "resnet" in outputs[1] and not torch_loaded


def test_a_damaged_store_is_named_with_its_remedy_and_the_others_still_listed(config, tmp_path):
    assert runner.invoke(app, ["cache", "precompute", "-c", str(config)]).exit_code == 0
    other = tmp_path / "cache" / "resnet_bert"
    other.mkdir()
    (other / "cache.db").write_bytes((tmp_path / "cache" / COMBO / "cache.db").read_bytes()[:3000])  # truncated
    listed = runner.invoke(app, ["cache", "list", "-c", str(config)])
    flat = " ".join(listed.output.split())
    assert listed.exit_code == 0 and "1280/384" in flat and "damaged" in flat
    assert "mmrec cache clear resnet_bert -y" in flat
    stats = runner.invoke(app, ["cache", "stats", "resnet_bert", "-c", str(config)], terminal_width=200)
    assert stats.exit_code == 2 and "is damaged" in " ".join(stats.output.split()) and "Traceback" not in stats.output
    (tmp_path / "cache" / COMBO / "meta.json").write_text('{"vision": {"dim"')  # cut off mid-write by hand
    stats = runner.invoke(app, ["cache", "stats", COMBO, "-c", str(config)], terminal_width=200)
    assert stats.exit_code == 2 and "JSONDecodeError" in stats.output
    assert runner.invoke(app, ["cache", "clear", "resnet_bert", "-y", "-c", str(config)]).exit_code == 0


def test_stats_of_precomputed_pipeline_counts(config):
    from mmrec.data.tables import load_items
    from mmrec.pipeline.cache import cache_stats, run_cache_precompute
    from mmrec.settings import load_settings

    settings = load_settings(config).settings
    result = run_cache_precompute(settings, max_items=2)
    assert result.report.computed == {"vision": 2, "text": 2}
    stats = cache_stats(settings.paths.cache_dir, COMBO, load_items(settings.paths.processed_dir))
    assert stats.vectors == {"vision": 2, "text": 2} and stats.dims == {"vision": 1280, "text": 384}
    assert stats.uncached == {"vision": 1, "text": 2} and stats.missing_modality == {"vision": 1, "text": 0}


def test_bad_usage_exits_2(config):
    both = runner.invoke(app, ["cache", "clear", COMBO, "--all", "-c", str(config)])
    assert both.exit_code == 2
    bad_name = runner.invoke(app, ["cache", "clear", "../x", "--yes", "-c", str(config)])
    assert bad_name.exit_code == 2 and "not a valid feature combo name" in bad_name.output


def test_backbones_lists_all_with_availability(config, tmp_path):
    result = runner.invoke(app, ["cache", "backbones"])
    assert result.exit_code == 0
    for name in ("efficientnet-lite", "resnet", "dino", "convnext", "sentence-bert", "roberta", "mpnet"):
        assert name in result.output
    # With the settings: their backbones marked, looked up at their explicit weights paths.
    env = {"MMREC_FEATURES__VISION_BACKBONE": "resnet", "MMREC_FEATURES__VISION_WEIGHTS": str(tmp_path / "none")}
    result = runner.invoke(app, ["cache", "backbones", "-c", str(config)], env=env, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "resnet *" in result.output and "sentence-bert *" in result.output and "not found at" in result.output


def _fill(cache_dir, combo):
    from mmrec.features.feature_store import FeatureStore
    from mmrec.features.store_format import encode_vector
    from mmrec.settings import CacheSettings

    with FeatureStore(cache_dir, combo, CacheSettings()) as store:
        store.put_many([("vision|a|w|item|fp", encode_vector(np.ones(4)))])


def test_symlinked_combo_is_refused_and_the_rest_cleared(config, tmp_path):
    cache_dir, outside = tmp_path / "cache", tmp_path / "outside"
    _fill(cache_dir, COMBO)
    _fill(tmp_path / "elsewhere", "x_y")
    (tmp_path / "elsewhere" / "x_y").rename(outside)
    (cache_dir / "x_y").symlink_to(outside, target_is_directory=True)
    before = sorted((p.name, p.stat().st_mtime_ns, p.read_bytes()) for p in outside.iterdir() if p.is_file())

    stats = runner.invoke(app, ["cache", "stats", "x_y", "-c", str(config)])
    assert stats.exit_code == 2 and "symbolic link" in stats.output
    one = runner.invoke(app, ["cache", "clear", "x_y", "--yes", "-c", str(config)])
    assert one.exit_code == 2 and "symbolic link" in one.output and (cache_dir / "x_y").is_symlink()
    listed = runner.invoke(app, ["cache", "list", "-c", str(config)])
    assert listed.exit_code == 0 and COMBO in listed.output and "x_y" in listed.output
    cleared = runner.invoke(app, ["cache", "clear", "--all", "--yes", "-c", str(config)])
    assert cleared.exit_code == 0, cleared.output
    assert "Deleted 1 feature cache(s): " + COMBO in cleared.output and "x_y" in cleared.output
    assert not (cache_dir / COMBO).exists() and (cache_dir / "x_y").is_symlink()
    assert sorted((p.name, p.stat().st_mtime_ns, p.read_bytes()) for p in outside.iterdir() if p.is_file()) == before


def test_prune_deletes_the_vectors_no_item_reads_any_more(config, tmp_path):
    from mmrec.data.tables import load_items
    from mmrec.features.fingerprint import text_fingerprint as fingerprint

    assert runner.invoke(app, ["cache", "precompute", "-c", str(config)]).exit_code == 0
    nothing = runner.invoke(app, ["cache", "prune", "-c", str(config)])
    assert nothing.exit_code == 0 and "0 of 7 entries" in nothing.output and "nothing to delete" in nothing.output
    items = load_items(tmp_path / "processed")
    items.loc[0, "text"] = "Movie 0, rewritten"  # an edited description, and an item gone from the catalogue
    items.loc[0, "text_fingerprint"] = fingerprint(items.loc[0, "text"])
    save_items(items[items["item_id"] != "1"].reset_index(drop=True), tmp_path / "processed")
    assert runner.invoke(app, ["cache", "precompute", "-c", str(config)]).exit_code == 0  # the new text: 8 entries
    dry = runner.invoke(app, ["cache", "prune", "-c", str(config), "--dry-run"])
    assert dry.exit_code == 0 and "3 of 8 entries" in dry.output and "nothing deleted" in dry.output
    done = runner.invoke(app, ["cache", "prune", "-c", str(config), "--yes"])
    assert done.exit_code == 0 and "Deleted 3 of 8 entries" in done.output
    figures = json.loads(runner.invoke(app, ["cache", "stats", COMBO, "-c", str(config), "--json"]).output)
    assert figures["vectors"] == {"vision": 1, "text": 3} and figures["failures"] == {"vision": 1, "text": 0}
    assert figures["coverage"] == {"vision": 1.0, "text": 1.0}
