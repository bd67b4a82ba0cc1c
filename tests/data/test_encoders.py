import json

import numpy as np
import pandas as pd
import pytest

from mmrec.data.encoders import IdEncoder, fit_encoders, load_encoders, save_encoders
from mmrec.errors import CheckpointError


def test_encode_decode_with_unknown_as_zero():
    encoder = IdEncoder.fit(["b", "a", "c", "a"])
    assert encoder.ids == ["a", "b", "c"] and len(encoder) == 4
    codes = encoder.encode(["c", "zz", "a"])
    assert codes.dtype == np.int64 and codes.tolist() == [3, 0, 1]
    assert encoder.unknown_seen == 1 and encoder.count_unknown(["zz", "a", "q"]) == 2
    assert encoder.decode([1, 0, 3, 99]) == ["a", None, "c", None]
    assert "a" in encoder and "zz" not in encoder


def test_fingerprint_depends_on_order_only():
    assert IdEncoder.fit(["x", "y"]).fingerprint == IdEncoder.fit(["y", "x"]).fingerprint
    assert IdEncoder.fit(["x", "y"]).fingerprint != IdEncoder.fit(["x", "z"]).fingerprint


def test_save_load_round_trip_is_json(tmp_path):
    train = pd.DataFrame({"user_id": ["u2", "u1"], "item_id": ["007", "7"]})
    users, items = fit_encoders(train)
    save_encoders(tmp_path, users, items)
    stored = json.loads((tmp_path / "encoders" / "item_encoder.json").read_text())
    assert stored["ids"] == ["007", "7"]
    loaded_users, loaded_items = load_encoders(tmp_path)
    assert loaded_items.ids == ["007", "7"] and loaded_users.fingerprint == users.fingerprint


def test_missing_or_tampered_encoders_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="encoders extract"):
        load_encoders(tmp_path)
    users, items = fit_encoders(pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}))
    save_encoders(tmp_path, users, items)
    path = tmp_path / "encoders" / "user_encoder.json"
    state = json.loads(path.read_text())
    state["ids"] = ["other"]
    path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="fingerprint"):
        load_encoders(tmp_path)
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_encoders(tmp_path)
