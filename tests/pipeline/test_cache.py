import hashlib
from pathlib import Path

import numpy as np
import pytest

from mmrec.errors import FeatureError
from mmrec.pipeline.cache import cache_stats, clear_cache, list_caches

COMBO = "a_b"


def _fill(cache_dir: Path, combo: str) -> None:
    from mmrec.features.feature_store import FeatureStore
    from mmrec.features.store_format import encode_vector
    from mmrec.settings import CacheSettings

    with FeatureStore(cache_dir, combo, CacheSettings()) as store:
        store.put_many([(f"vision|a|w|item{i}|fp{i}", encode_vector(np.ones(4))) for i in range(3)])


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file below `folder` with its size, mtime and content hash."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns,
                                         hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def linked(tmp_path):
    """cache/a_b (a real combo), cache/x_y -> outside/ (a symlink to a cache outside cache_dir)."""
    cache_dir, outside = tmp_path / "cache", tmp_path / "outside"
    _fill(cache_dir, COMBO)
    _fill(tmp_path / "elsewhere", "x_y")
    (tmp_path / "elsewhere" / "x_y").rename(outside)
    (cache_dir / "x_y").symlink_to(outside, target_is_directory=True)
    return cache_dir, outside, _snapshot(outside)


def test_stats_refuses_a_symlinked_combo_without_opening_it(linked):
    cache_dir, outside, before = linked
    with pytest.raises(FeatureError, match="symbolic link"):
        cache_stats(cache_dir, "x_y")
    assert _snapshot(outside) == before


def test_clear_refuses_a_symlinked_combo_and_leaves_the_target(linked):
    cache_dir, outside, before = linked
    with pytest.raises(FeatureError, match="symbolic link"):
        clear_cache(cache_dir, "x_y")
    assert _snapshot(outside) == before and (cache_dir / "x_y").is_symlink()


def test_clear_all_clears_what_it_can_and_reports_the_links(linked):
    cache_dir, outside, before = linked
    result = clear_cache(cache_dir, None)
    assert result.removed == [COMBO] and result.refused == ["x_y"]
    assert not (cache_dir / COMBO).exists() and _snapshot(outside) == before


def test_list_reports_links_without_opening_them(linked):
    cache_dir, outside, before = linked
    listing = list_caches(cache_dir)
    assert [info.combo for info in listing.caches] == [COMBO] and listing.refused == ["x_y"]
    assert _snapshot(outside) == before


def test_torchrun_ranks_split_the_items_and_compute_each_once(tmp_path):
    import json
    import os
    import socket
    import subprocess
    import sys

    import pandas as pd
    import yaml

    from mmrec.data.tables import save_items
    from mmrec.features.fingerprint import text_fingerprint

    texts = [f"Item {i} about {['cats', 'ships', 'rain'][i % 3]} number {i}" for i in range(11)]
    save_items(pd.DataFrame([{"item_id": f"i{i}", "title": f"Item {i}", "description": "", "text": text,
                              "image_path": None, "has_image": False, "image_fingerprint": None,
                              "text_fingerprint": text_fingerprint(text)}
                             for i, text in enumerate(texts)]), tmp_path / "processed")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"paths": {"processed_dir": str(tmp_path / "processed"),
                                                "cache_dir": str(tmp_path / "cache")},
                                      "features": {"num_workers": 0, "device": "cpu", "batch_size": 4}}))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = str(Path(__file__).with_name("precompute_worker.py"))
    procs = [subprocess.Popen([sys.executable, worker, str(config), str(tmp_path)], env={
        **os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "RANK": str(rank), "LOCAL_RANK": str(rank),
        "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}) for rank in (0, 1)]
    assert [proc.wait(timeout=300) for proc in procs] == [0, 0]
    done = [(tmp_path / f"rank{rank}.txt").read_text(encoding="utf-8").splitlines() for rank in (0, 1)]
    assert len(done[0]) == 6 and len(done[1]) == 5  # rows rank::2, each computed by one rank only
    assert sorted(done[0] + done[1]) == sorted(texts)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == {"world_size": 2, "n_items": 11, "computed": {"vision": 0, "text": 11},
                      "with_content": {"vision": 0, "text": 11}}
    from mmrec.features.feature_store import FeatureStore
    from mmrec.settings import CacheSettings

    with FeatureStore(tmp_path / "cache", "efficientnet-lite_sentence-bert", CacheSettings()) as store:
        assert len(store) == 11


def test_a_second_precompute_of_one_store_is_refused_while_the_first_runs(tmp_path):
    import os

    import pandas as pd

    from mmrec.data.tables import save_items
    from mmrec.errors import ConfigError
    from mmrec.features.fingerprint import text_fingerprint
    from mmrec.pipeline.cache import run_cache_precompute
    from mmrec.settings import load_settings

    texts = ["Cats on a boat", "Rain over ships"]
    save_items(pd.DataFrame([{"item_id": f"i{i}", "title": text, "description": "", "text": text, "image_path": None,
                              "has_image": False, "image_fingerprint": None, "text_fingerprint": text_fingerprint(text)}
                             for i, text in enumerate(texts)]), tmp_path / "processed")
    settings = load_settings(None, {"paths.processed_dir": tmp_path / "processed",
                                    "paths.cache_dir": tmp_path / "cache", "features.num_workers": 0,
                                    "features.device": "cpu"}).settings
    lock = tmp_path / "cache" / f".{settings.features.combo}.precompute.lock"
    lock.parent.mkdir()
    lock.write_text(str(os.getppid()))  # a live process holds it
    with pytest.raises(ConfigError, match="Another run is filling the feature store"):
        run_cache_precompute(settings)
    lock.write_text("999999999")  # a killed run's: taken over
    assert run_cache_precompute(settings).report.computed["text"] == 2 and not lock.exists()
