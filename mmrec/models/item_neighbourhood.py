"""The item-item model for large catalogues: EASE restricted to each item's k nearest neighbours.

EASE's column j is the ridge regression of item j's column on every other item's:
b_j = (G_{-j,-j} + lambda I)^-1 G_{-j,j} with G = X^T X + alpha F F^T (see mmrec.models.item_item).
Here column j regresses on its k items N_j of largest G_ij only, so B is sparse (k weights per
column) and the fit streams over the catalogue in chunks: memory O(n k + chunk n), time O(n^2 r)
for the neighbour search (a dense product per chunk: seconds on a GPU) and O(n k^2 r) for the solves.

What each local system uses:
- the right-hand side G_{N_j, j} and the neighbour choice: exact co-occurrence counts (a sparse row
  of X^T X computed per chunk) plus the content term through a rank-r factor of F F^T;
- the k x k matrix G_{N_j, N_j}: exact diagonal (item counts, content norms, lambda); off-diagonal
  co-occurrences from a rank-`gram_rank` factor of X^T X (randomized SVD of X), content as above.
How N_j is found (`search`): "exact" ranks every item (a dense [chunk, n] block per chunk: time n^2 r,
about 1.5 h at 1M items on 2 CPU cores); "ivf" ranks every item j co-occurs with (exactly, from the
sparse co-occurrence rows) plus the items of the IVF_PROBES content clusters nearest j's own (a
spherical k-means of the content factor into ~sqrt(n) clusters), so only neighbours by content alone
are approximate and the cost is n x probe set x r plus co-occurrences x r. Without content the ivf
search is exact. model.item_item_neighbour_search = auto picks exact up to 200k items.
k and the ranks were chosen on MovieLens validation (random split, seed 0): k = 128 with ranks 64 / 128
gave NDCG@10 0.1936 vs dense EASE's 0.1920 with content, 0.1812 vs 0.1806 without. Over both text
variants, 3 seeds and two protocols see bench/results/item_item_quality.md; cost vs catalogue size
bench/results/item_item.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch

NEIGHBOURS = 128  # regressors per item
CONTENT_RANK = 128  # rank of the content factor
GRAM_RANK = 64  # rank of the co-occurrence factor used off the diagonal of the local systems
CHUNK_ELEMENTS = 2**25  # dense [chunk, n] float32 block per step: 128 MiB
SOLVE_BATCH = 256  # local systems solved at once
IVF_PROBES = 8  # content clusters searched per item by the "ivf" neighbour search
IVF_QUERY_SLICE = 4096  # items whose co-occurrence rows are computed at once by the "ivf" search


def _seeded_svd_lowrank(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torch.svd_lowrank with a fixed sketch seed, leaving the global RNG untouched (fits are reproducible)."""
    with torch.random.fork_rng(devices=[matrix.device] if matrix.device.type == "cuda" else []):
        torch.manual_seed(0)
        return torch.svd_lowrank(matrix, q=rank, niter=4)


def content_factor(content: Sequence[torch.Tensor], rank: int, device: torch.device | str) -> torch.Tensor | None:
    """[n, r] float32 L with L L^T ~= sum_m F_m F_m^T (the prepared content matrices, one per modality).

    Exact (their concatenation) when the total width is at most `rank`; else F V_r with V_r the top-r
    eigenvectors of F^T F, F = [F_1 | F_2 | ...] (one [f, f] product and eigendecomposition: cheap for
    n >> f). F is never concatenated: at 1M items x 1,664 dims that copy alone would be 6.6 GB.
    """
    parts = [f.to(device=device, dtype=torch.float32) for f in content if f.shape[1]]
    if not parts:
        return None
    if sum(f.shape[1] for f in parts) <= rank:
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (one part, e.g. a factor: no copy)
    covariance = torch.cat([torch.cat([a.T @ b for b in parts], dim=1) for a in parts]).to(torch.float64)  # [f, f]
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    top = vectors[:, -rank:].to(torch.float32)
    factor, offset = None, 0
    for f in parts:
        term = f @ top[offset : offset + f.shape[1]]
        factor = term if factor is None else factor.add_(term)
        offset += f.shape[1]
    return factor


def gram_factor(binary: sp.csr_matrix, rank: int, device: torch.device | str) -> torch.Tensor:
    """[n_items, r] float32 Q with Q Q^T ~= X^T X (right singular vectors of X times its singular values)."""
    coo = binary.tocoo()
    # Scoped opt-out: torch 2.11 warns "invariant checks are implicitly disabled" despite check_invariants=False.
    with torch.sparse.check_sparse_tensor_invariants(enable=False):
        sparse = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data.astype(np.float32),
                                         size=coo.shape, device=device, check_invariants=False).coalesce()
    rank = max(1, min(rank, *binary.shape))
    _, s, v = _seeded_svd_lowrank(sparse, rank)
    return v * s.unsqueeze(0)


def fit_neighbourhood_path(
    interactions: sp.csr_matrix,
    content: Sequence[torch.Tensor],
    l2s: Sequence[float],
    content_weight: float,
    neighbours: int = NEIGHBOURS,
    content_rank: int = CONTENT_RANK,
    gram_rank: int = GRAM_RANK,
    device: torch.device | str = "cpu",
    search: str = "exact",
) -> list[torch.Tensor]:
    """B^T for each lambda of `l2s`: sparse CSR float32 tensors [n_items (target j), n_items (source i)], k entries
    per row.

    `interactions` [n_users, n_items]: its 0/1 pattern is X. `content`: the prepared [n, f_m]
    matrices (mmrec.models.item_item.content_matrix). Scores of users are (B^T X_u^T)^T.
    `search`: how each item's k neighbours are found -- "exact" (every pair: time n^2 r) or "ivf"
    (co-occurring items exactly, content-only neighbours from an inverted-file index: `_ivf_candidates`).
    One pass serves every lambda: the neighbour search, the right-hand sides and each local k x k Gram matrix do
    not depend on lambda, so only the Cholesky factorization and solve are repeated per lambda (about half a local
    solve's time each; the lambdas' B^T share one column-index tensor)."""
    if search not in ("exact", "ivf"):
        raise ValueError(f"unknown neighbour search {search!r}")
    n = interactions.shape[1]
    if n < 2:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        crow = torch.zeros(n + 1, dtype=torch.long, device=device)
        return [_csr(crow, empty, torch.zeros(0, device=device), n) for _ in l2s]
    k = min(neighbours, n - 1)
    binary = interactions.tocsr(copy=True).astype(np.float32)
    binary.data[:] = 1.0
    by_item = binary.T.tocsr()  # [n_items, n_users]
    diagonal = torch.as_tensor(np.asarray(binary.sum(axis=0)).ravel(), dtype=torch.float64, device=device)
    content_part = content_factor(content, content_rank, device) if content_weight > 0 else None
    off_diagonal = gram_factor(binary, gram_rank, device).to(torch.float64)  # [n, r_g]
    if content_part is not None:
        scaled = content_part.to(torch.float64) * content_weight**0.5
        off_diagonal = torch.cat([off_diagonal, scaled], dim=1)
        diagonal = diagonal + (scaled * scaled).sum(dim=1)  # exact diagonal: counts + alpha |f_a|^2
    columns = torch.empty((n, k), dtype=torch.long, device=device)
    values = torch.empty((len(l2s), n, k), dtype=torch.float32, device=device)
    candidates = _ivf_candidates if search == "ivf" else _exact_candidates
    for rows, rhs, support in candidates(by_item, binary, content_part, content_weight, k, device):
        for first in range(0, len(rows), SOLVE_BATCH):  # [batch, k, r] and [batch, k, k] float64 stay small
            part = slice(first, first + SOLVE_BATCH)
            solved = _solve_local(off_diagonal, diagonal, l2s, support[part], rhs[part])  # [len(l2s), batch, k]
            order = torch.argsort(support[part], dim=1)  # CSR wants sorted column indices per row
            columns[rows[part]] = torch.gather(support[part], 1, order)
            values[:, rows[part]] = torch.gather(solved, 2, order.expand(len(l2s), -1, -1)).float()
    crow = torch.arange(0, n * k + 1, k, dtype=torch.long, device=device)
    flat = columns.reshape(-1)
    return [_csr(crow, flat, values[i].reshape(-1), n) for i in range(len(l2s))]


Candidates = Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # (rows [m], G_{j,N_j} [m, k], N_j [m, k])


def _exact_candidates(by_item: sp.csr_matrix, binary: sp.csr_matrix, content_part: torch.Tensor | None,
                      content_weight: float, k: int, device: torch.device | str) -> Candidates:
    """Each item's k largest G_ij over the whole catalogue, a dense [chunk, n] block at a time."""
    n = binary.shape[1]
    chunk = max(1, min(n, CHUNK_ELEMENTS // n))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = torch.arange(start, stop, device=device)
        block = torch.as_tensor((by_item[start:stop] @ binary).toarray(), device=device)  # [m, n] = (X^T X)_C
        if content_part is not None:
            block.addmm_(content_part[start:stop], content_part.T, alpha=content_weight)
        block[torch.arange(stop - start, device=device), rows] = float("-inf")
        rhs, support = torch.topk(block, k, dim=1)  # G_{j, N_j} and N_j, [m, k]
        del block
        yield rows, rhs, support


def _ivf_candidates(by_item: sp.csr_matrix, binary: sp.csr_matrix, content_part: torch.Tensor | None,
                    content_weight: float, k: int, device: torch.device | str) -> Candidates:
    """Each item's k largest G_ij among the items it co-occurs with (all of them: exact) and the items of
    the IVF_PROBES content clusters nearest its own (`ivf_groups`): only neighbours by content alone are
    approximate. Items of one cluster share its probe set, so their content block is one matmul; the
    co-occurring items stay sparse. G over the candidates is exact. No dense [chunk, n] block is ever
    built: time ~ n x probe set x r + co-occurrences x r instead of n^2 r."""
    n = binary.shape[1]
    first_items = np.arange(k + 1)  # always candidates: at least k besides the item itself
    if content_part is None:
        groups: list[tuple[np.ndarray, np.ndarray]] = [(np.arange(n), np.zeros(0, dtype=np.int64))]
    else:
        groups = ivf_groups(content_part, IVF_PROBES)
    for queries, probe in groups:
        probe = np.union1d(probe, first_items)
        for start in range(0, len(queries), IVF_QUERY_SLICE):
            batch = queries[start : start + IVF_QUERY_SLICE]
            cooc = (by_item[batch] @ binary).tocsr()  # exact co-occurrences, sparse [len(batch), n]
            per_row = np.diff(cooc.indptr)
            first = 0
            while first < len(batch):  # sub-chunks: [m, probe] block and co-occurrences under CHUNK_ELEMENTS
                last, nnz = first + 1, int(per_row[first])
                while (last < len(batch) and (last + 1 - first) * len(probe) <= CHUNK_ELEMENTS
                       and nnz + per_row[last] <= CHUNK_ELEMENTS // 8):
                    nnz += int(per_row[last])
                    last += 1
                yield _ivf_block(cooc[first:last], batch[first:last], probe, content_part, content_weight, k,
                                 device)
                first = last


def _ivf_block(cooc: sp.csr_matrix, queries: np.ndarray, probe: np.ndarray, content_part: torch.Tensor | None,
               content_weight: float, k: int, device: torch.device | str
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, G_{j,N_j}, N_j) of `queries`: the k best of their co-occurring items and the k best of
    `probe` (a sorted probe set of at least k + 1 items), merged."""
    m = len(queries)
    rows = torch.as_tensor(queries, device=device)
    coo = cooc.tocoo()
    local = torch.as_tensor(coo.row, device=device, dtype=torch.long)
    items = torch.as_tensor(coo.col, device=device, dtype=torch.long)
    counts = torch.as_tensor(coo.data, device=device, dtype=torch.float32)

    # The co-occurring items: G = count + alpha f_j . f_i, each pair's dot product (in slices).
    values = counts.clone()
    if content_part is not None:
        for at in range(0, len(items), 1 << 16):
            part = slice(at, at + (1 << 16))
            values[part] += content_weight * (content_part[rows[local[part]]] * content_part[items[part]]).sum(1)
    values[items == rows[local]] = float("-inf")
    top_values, top_items = _row_topk(local, values, items, m, k)

    # The probe set: one [m, probe] block, co-occurrence counts added where a probe item co-occurs.
    probe_t = torch.as_tensor(probe, device=device)
    if content_part is not None:
        block = (content_part[rows] @ content_part[probe_t].T).mul_(content_weight)
    else:
        block = torch.zeros((m, len(probe)), device=device)
    position = torch.searchsorted(probe_t, items).clamp_max_(len(probe) - 1)
    hit = probe_t[position] == items
    block[local[hit], position[hit]] += counts[hit]
    own = torch.searchsorted(probe_t, rows).clamp_max_(len(probe) - 1)
    is_own = probe_t[own] == rows
    block[torch.nonzero(is_own).squeeze(1), own[is_own]] = float("-inf")
    probe_values, probe_position = torch.topk(block, k, dim=1)
    del block

    # Merge: an item in both lists (a probe item that co-occurs) has the same G in both; keep one.
    values = torch.cat([top_values, probe_values], dim=1)
    merged = torch.cat([top_items, probe_t[probe_position]], dim=1)
    merged, order = torch.sort(merged, dim=1)
    values = torch.gather(values, 1, order)
    values[:, 1:][merged[:, 1:] == merged[:, :-1]] = float("-inf")
    rhs, pick = torch.topk(values, k, dim=1)
    return rows, rhs, torch.gather(merged, 1, pick)


def _row_topk(rows: torch.Tensor, values: torch.Tensor, items: torch.Tensor, m: int, k: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """[m, k] largest `values` per row of a sparse list (row, value, item); -inf / -1 where a row has fewer."""
    order = torch.argsort(values, descending=True, stable=True)
    order = order[torch.argsort(rows[order], stable=True)]  # by row, each row's values descending
    sorted_rows = rows[order]
    starts = torch.searchsorted(sorted_rows, torch.arange(m, device=rows.device))
    rank = torch.arange(len(order), device=rows.device) - starts[sorted_rows]
    keep = rank < k
    out_values = torch.full((m, k), float("-inf"), device=values.device)
    out_items = torch.full((m, k), -1, dtype=torch.long, device=values.device)
    out_values[sorted_rows[keep], rank[keep]] = values[order[keep]]
    out_items[sorted_rows[keep], rank[keep]] = items[order[keep]]
    return out_values, out_items


def ivf_groups(factor: torch.Tensor, probes: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(query items, probe items) per cluster of a spherical k-means over the rows of `factor`.

    ~sqrt(n) clusters; a cluster's probe set is the items of the `probes` clusters whose centroids are
    closest to its own (itself first). Rows with no content (zero) form one group with no probe set.
    """
    n = factor.shape[0]
    norms = factor.norm(dim=1)
    has = torch.nonzero(norms > 0).squeeze(1)
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    empty = np.flatnonzero((norms <= 0).cpu().numpy())
    if len(empty):
        groups.append((empty, np.zeros(0, dtype=np.int64)))
    if not len(has):
        return groups
    unit = factor[has] / norms[has].unsqueeze(1)
    centroids = spherical_kmeans(unit, max(1, int(round(len(has) ** 0.5))), seed)
    assign = torch.cat([torch.argmax(unit[i : i + 65536] @ centroids.T, dim=1)
                        for i in range(0, len(has), 65536)])
    order = torch.argsort(assign, stable=True)
    members = has[order].cpu().numpy()
    bounds = np.searchsorted(assign[order].cpu().numpy(), np.arange(len(centroids) + 1))
    nearest = torch.topk(centroids @ centroids.T, min(probes, len(centroids)), dim=1).indices.cpu().numpy()
    for cluster in range(len(centroids)):
        queries = members[bounds[cluster] : bounds[cluster + 1]]
        if len(queries):
            probe = np.sort(np.concatenate([members[bounds[c] : bounds[c + 1]] for c in nearest[cluster]]))
            groups.append((queries, probe))
    assert sum(len(q) for q, _ in groups) == n
    return groups


def spherical_kmeans(unit: torch.Tensor, clusters: int, seed: int = 0, iterations: int = 10,
                     sample: int = 256) -> torch.Tensor:
    """[clusters, r] unit centroids of unit rows `unit`, fitted on at most `sample` rows per cluster."""
    generator = torch.Generator().manual_seed(seed)
    n = unit.shape[0]
    clusters = min(clusters, n)
    train = unit[torch.randperm(n, generator=generator)[: clusters * sample].to(unit.device)]
    centroids = train[torch.randperm(len(train), generator=generator)[:clusters].to(unit.device)].clone()
    for _ in range(iterations):
        assign = torch.argmax(train @ centroids.T, dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, train)
        counts = torch.bincount(assign, minlength=clusters)
        empty = counts == 0
        sums[empty] = centroids[empty]  # an empty cluster keeps its centroid
        centroids = sums / sums.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return centroids


def _solve_local(off_diagonal: torch.Tensor, diagonal: torch.Tensor, l2s: Sequence[float], support: torch.Tensor,
                 rhs: torch.Tensor) -> torch.Tensor:
    """[len(l2s), b, k] ridge solutions (G_NN + lambda I)^-1 G_Nj per lambda, G_NN = low-rank off-diagonal + exact
    diagonal; the [b, k, k] product is formed once and only its diagonal changes between lambdas."""
    factor = off_diagonal[support]  # [b, k, r]
    local = factor @ factor.transpose(1, 2)
    base = diagonal[support]
    rhs = rhs.to(torch.float64).unsqueeze(2)
    solved = []
    for l2 in l2s:
        local.diagonal(dim1=1, dim2=2).copy_(base + l2)
        chol, _ = torch.linalg.cholesky_ex(local)  # a new tensor: `local` is left for the next lambda
        solved.append(torch.cholesky_solve(rhs, chol).squeeze(2))
    return torch.stack(solved)


def _csr(crow: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, columns, values, size=(n, n), check_invariants=False)
