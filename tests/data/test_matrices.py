import numpy as np

from mmrec.data.matrices import interaction_matrix


def test_interaction_matrix_collapses_duplicates():
    m = interaction_matrix(np.array([0, 0, 1]), np.array([2, 2, 0]), 2, 3)
    assert m.toarray().tolist() == [[0, 0, 1], [1, 0, 0]]
