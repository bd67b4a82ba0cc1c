"""Reading item vectors from .npy (+ id list) and parquet: what is accepted, and every refusal."""

import json

import numpy as np
import pandas as pd
import pytest

from mmrec.errors import FeatureError
from mmrec.features.vector_file import read_id_list, read_vector_file

CATALOGUE = [f"item{i}" for i in range(5)]


def _truncate(path, keep: int = 200) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _all_rows(vectors) -> np.ndarray:
    return np.concatenate([block for _, block in vectors.chunks(2)])


def test_npy_with_a_text_id_list(tmp_path):
    matrix = np.arange(15, dtype=np.float64).reshape(5, 3)
    np.save(tmp_path / "v.npy", matrix)
    (tmp_path / "ids.txt").write_text("item4\nitem3\n item2 \nitem1\nitem0\n\n")
    vectors = read_vector_file(tmp_path / "v.npy", str(tmp_path / "ids.txt"), CATALOGUE)
    assert vectors.ids == ["item4", "item3", "item2", "item1", "item0"] and (vectors.rows, vectors.dim) == (5, 3)
    assert [start for start, _ in vectors.chunks(2)] == [0, 2, 4]
    np.testing.assert_array_equal(_all_rows(vectors), matrix.astype(np.float32))
    assert vectors.column is None and len(vectors.digest) == 64


def test_npy_ids_from_npy_json_or_the_catalogue_order(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((5, 2), np.float32))
    np.save(tmp_path / "ids.npy", np.array([10, 11, 12, 13, 14]))
    (tmp_path / "ids.json").write_text(json.dumps(["a", "b", 3, "d", "e"]))
    assert read_vector_file(tmp_path / "v.npy", str(tmp_path / "ids.npy"), CATALOGUE).ids == [str(i) for i in
                                                                                             range(10, 15)]
    assert read_vector_file(tmp_path / "v.npy", str(tmp_path / "ids.json"), CATALOGUE).ids == ["a", "b", "3", "d", "e"]
    assert read_vector_file(tmp_path / "v.npy", "catalogue", CATALOGUE).ids == CATALOGUE


def test_parquet_with_a_list_column(tmp_path):
    frame = pd.DataFrame({"item_id": ["item1", "item0"], "emb": [[1.0, 2.0], [3.0, 4.0]]})
    frame.to_parquet(tmp_path / "v.parquet")
    vectors = read_vector_file(tmp_path / "v.parquet", None, CATALOGUE)
    assert vectors.ids == ["item1", "item0"] and vectors.dim == 2 and vectors.column == "emb"
    np.testing.assert_array_equal(_all_rows(vectors), [[1, 2], [3, 4]])
    frame.assign(other=[[0.0], [1.0]]).to_parquet(tmp_path / "two.parquet")
    assert read_vector_file(tmp_path / "two.parquet", None, CATALOGUE, column="other").dim == 1
    with pytest.raises(FeatureError, match="2 columns besides item_id.*which holds the vectors"):
        read_vector_file(tmp_path / "two.parquet", None, CATALOGUE)
    with pytest.raises(FeatureError, match="no vector column 'nope'"):
        read_vector_file(tmp_path / "two.parquet", None, CATALOGUE, column="nope")
    pd.concat([frame, frame]).iloc[[0, 3]].to_parquet(tmp_path / "filtered.parquet")  # pandas keeps its index
    assert read_vector_file(tmp_path / "filtered.parquet", None, CATALOGUE).column == "emb"
    frame.rename(columns={"item_id": "isbn"}).to_parquet(tmp_path / "isbn.parquet")  # data.item_id_column: isbn
    assert read_vector_file(tmp_path / "isbn.parquet", None, CATALOGUE, id_column="isbn").ids == ["item1", "item0"]
    with pytest.raises(FeatureError, match=r"no item_id or sku \(data.item_id_column\) column"):
        read_vector_file(tmp_path / "isbn.parquet", None, CATALOGUE, id_column="sku")


def test_parquet_with_one_number_column_per_dimension(tmp_path):
    wide = pd.DataFrame(np.arange(6, dtype=np.float64).reshape(2, 3), columns=["d0", "d1", "d2"])
    wide.insert(0, "item_id", ["item1", "item0"])
    wide.astype({"d1": np.float32, "d2": np.int64}).to_parquet(tmp_path / "wide.parquet")
    vectors = read_vector_file(tmp_path / "wide.parquet", None, CATALOGUE)
    assert vectors.ids == ["item1", "item0"] and vectors.dim == 3 and vectors.column == "d0..d2 (3 columns)"
    np.testing.assert_array_equal(_all_rows(vectors), [[0, 1, 2], [3, 4, 5]])
    wide.assign(title=["x", "y"]).to_parquet(tmp_path / "mixed.parquet")  # a text column: not one vector
    with pytest.raises(FeatureError, match="(?s)4 columns besides item_id.*which holds the vectors.*one number column"):
        read_vector_file(tmp_path / "mixed.parquet", None, CATALOGUE)


@pytest.mark.parametrize("make, ids, message", [
    (lambda p: np.save(p / "v.npy", np.ones((3, 2))), None, "(?s)bare matrix: its rows need item ids.*--ids catalogue"),
    (lambda p: np.save(p / "v.npy", np.ones(4)), "catalogue", r"shape \(4,\); expected a 2-D matrix"),
    (lambda p: np.save(p / "v.npy", np.ones((2, 2, 2))), "catalogue", "expected a 2-D matrix"),
    (lambda p: np.save(p / "v.npy", np.ones((0, 3))), "catalogue", r"is empty \(shape \(0, 3\)\)"),
    (lambda p: np.save(p / "v.npy", np.array([["a", "b"]])), "catalogue", "<U1 values; vectors must be numbers"),
    (lambda p: np.save(p / "v.npy", np.ones((2, 2), bool)), "catalogue", "bool values"),
    (lambda p: np.save(p / "v.npy", np.array([[{"x": 1}]], dtype=object)), "catalogue",
     "holds Python objects.*never unpickles"),
    (lambda p: (p / "v.npy").write_bytes(b"garbage, not numpy"), "catalogue", "not a .npy file"),
    (lambda p: (np.save(p / "v.npy", np.ones((5, 64))), _truncate(p / "v.npy")), "catalogue",
     "Cannot read vector file"),
    (lambda p: np.save(p / "v.npy", np.ones((4, 2))), "catalogue", "4 rows but the processed item table gives 5"),
    (lambda p: (np.save(p / "v.npy", np.ones((3, 2))), (p / "i.txt").write_text("a\nb\n")), "i.txt",
     "3 rows but .*i.txt gives 2 item ids"),
    (lambda p: (np.save(p / "v.npy", np.ones((3, 2))), (p / "i.txt").write_text("a\nb\na\n")), "i.txt",
     "1 item id\\(s\\) have more than one row: 'a'"),
    (lambda p: (np.save(p / "v.npy", np.ones((3, 2))), (p / "i.txt").write_text("a\n\nb\n")), "i.txt",
     "Line 2 of id list .* is empty"),
    (lambda p: np.save(p / "v.npy", np.ones((3, 2))), "missing.txt", "Id list .*missing.txt does not exist"),
    (lambda p: np.save(p / "v.npy", np.ones((3, 2))) or (p / "deep.json").write_text("[" * 100_000 + "]" * 100_000),
     "deep.json", "Cannot read id list .*deep.json: maximum recursion depth"),  # was a RecursionError traceback
    (lambda p: (p / "v.csv").write_text("1,2\n"), None, "neither .npy nor .parquet"),
])
def test_npy_refusals(tmp_path, make, ids, message):
    make(tmp_path)
    name = "v.csv" if (tmp_path / "v.csv").exists() else "v.npy"
    with pytest.raises(FeatureError, match=message):
        read_vector_file(tmp_path / name, str(tmp_path / ids) if ids and ids != "catalogue" else ids, CATALOGUE)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(FeatureError, match="does not exist"):
        read_vector_file(tmp_path / "nope.npy", "catalogue", CATALOGUE)


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"id": ["a"], "emb": [[1.0]]}), "no item_id column"),
    (pd.DataFrame({"item_id": ["a", "b"], "x": [1.0, 2.0]}), "(?s)holds double, not vectors.*one list of floats"),
    (pd.DataFrame({"item_id": ["a"], "emb": [["u", "v"]]}), "lists of string; vectors must be numbers"),
    (pd.DataFrame({"item_id": ["a", "b"], "emb": [[1.0, 2.0], [1.0]]}), "differ in length"),
    (pd.DataFrame({"item_id": ["a", "b"], "emb": [[1.0], None]}), "1 row\\(s\\) of column 'emb' have no vector"),
    (pd.DataFrame({"item_id": ["a", None], "emb": [[1.0], [2.0]]}), "1 row\\(s\\) have no item_id"),
    (pd.DataFrame({"item_id": ["a", "a"], "emb": [[1.0], [2.0]]}), "more than one row: 'a'"),
])
def test_parquet_refusals(tmp_path, frame, message):
    frame.to_parquet(tmp_path / "v.parquet")
    with pytest.raises(FeatureError, match=message):
        vectors = read_vector_file(tmp_path / "v.parquet", None, CATALOGUE)
        _all_rows(vectors)


def test_an_empty_parquet_file_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"item_id": pa.array([], pa.string()), "emb": pa.array([], pa.list_(pa.float32()))}),
                   tmp_path / "v.parquet")
    with pytest.raises(FeatureError, match="is empty"):
        read_vector_file(tmp_path / "v.parquet", None, CATALOGUE)


def test_parquet_refuses_ids_and_npy_refuses_a_column(tmp_path):
    pd.DataFrame({"item_id": ["a"], "emb": [[1.0]]}).to_parquet(tmp_path / "v.parquet")
    np.save(tmp_path / "v.npy", np.ones((5, 2)))
    with pytest.raises(FeatureError, match="--ids is for .npy"):
        read_vector_file(tmp_path / "v.parquet", "catalogue", CATALOGUE)
    with pytest.raises(FeatureError, match="--column is for parquet"):
        read_vector_file(tmp_path / "v.npy", "catalogue", CATALOGUE, column="emb")


def test_unreadable_parquet_and_pickled_id_lists_are_refused(tmp_path):
    (tmp_path / "v.parquet").write_bytes(b"PAR1 broken")
    with pytest.raises(FeatureError, match="Cannot read vector file"):
        read_vector_file(tmp_path / "v.parquet", None, CATALOGUE)
    np.save(tmp_path / "ids.npy", np.array(["a", {"b": 1}], dtype=object))
    with pytest.raises(FeatureError, match="Cannot read id list"):
        read_id_list(tmp_path / "ids.npy")
    (tmp_path / "ids.json").write_text('{"a": 1}')
    with pytest.raises(FeatureError, match="not a JSON list"):
        read_id_list(tmp_path / "ids.json")
