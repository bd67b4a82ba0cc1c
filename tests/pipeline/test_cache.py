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
