import pandas as pd

from mmrec.data.encoders import IdEncoder
from mmrec.models.histories import user_histories


def test_histories_are_most_recent_last_right_aligned():
    train = pd.DataFrame({"user_id": ["a", "a", "a", "b", "a"], "item_id": ["x", "y", "z", "x", "gone"],
                          "timestamp": [3, 1, 2, 5, 4]})
    users = IdEncoder.fit(["a", "b"])
    rows = pd.Series([0, 1, 2, 3], index=["w", "x", "y", "z"])
    hist = user_histories(train, users, rows, 2)
    assert hist.tolist() == [[-1, -1], [3, 1], [-1, 1]]  # a: y(1) z(2) x(3) -> last two z, x; 'gone' skipped
