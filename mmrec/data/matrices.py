"""Sparse user x item matrices built from index arrays (train profiles, relevance and exclusion sets)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def interaction_matrix(
    user_rows: np.ndarray, item_cols: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Binary CSR [n_users, n_items] from row/column index arrays (duplicates collapse to 1)."""
    data = np.ones(len(user_rows), dtype=np.float32)
    matrix = sp.csr_matrix((data, (user_rows, item_cols)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def held_out_unseen(relevant: sp.csr_matrix, seen: sp.csr_matrix) -> tuple[sp.csr_matrix, int]:
    """(`relevant` without the pairs `seen` holds, how many went): a held-out pair the user already has is
    not a positive, as no served list holds it (validation and evaluation both rank this way)."""
    repeated = relevant.multiply(seen > 0)
    if not repeated.nnz:
        return relevant, 0
    kept = sp.csr_matrix(relevant - repeated)
    kept.eliminate_zeros()
    return kept, int(repeated.nnz)
