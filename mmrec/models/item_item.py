"""The closed-form multimodal item-item model blended into the two-tower scores.

EASE (Steck, WWW 2019) with content as side information (Jeunen et al., RecSys 2020): with X the
[users x items] 0/1 train matrix and F_m the item features of modality m (L2-normalized, centred
over the items that have them, zero rows where missing), B minimises

    ||X - X B||^2 + alpha * sum_m ||F_m^T - F_m^T B||^2 + lambda ||B||^2   subject to diag(B) = 0,

whose closed form is G = X^T X + alpha * sum_m F_m F_m^T + lambda I, P = G^-1, B_ij = -P_ij / P_jj
(B_jj = 0). A user's scores are x_u B, where the profile x_u may weigh recent items more (a
recency half-life). The content term ties items to items that look or read alike, so items with
few (or no) interactions still get weights: it is what lifts this above plain EASE, and it scores
cold items. Memory and time grow as n_items^2 and n_items^3, so above
`model.item_item_dense_max_items` items the neighbourhood solver (mmrec.models.item_neighbourhood)
restricts each column to its k nearest items: memory n_items x k.

The final score blends the two models after standardizing each user's row over the catalogue:
(1 - beta) * z(two-tower) + beta * z(item-item), with beta chosen on validation by `mmrec train`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from mmrec.data.matrices import interaction_matrix
from mmrec.models.histories import IdEncoding, ordered_pairs
from mmrec.models.inputs import ItemInputs
from mmrec.models.item_item_store import ItemItemStore, fit_key
from mmrec.models.item_neighbourhood import CONTENT_RANK, GRAM_RANK, content_factor, fit_neighbourhood_path
from mmrec.settings import ModelSettings

# Blend weights `mmrec train` tries on validation when model.item_item_blend is not fixed.
BLEND_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
# Multiples of model.item_item_l2 `mmrec train` tries on validation (item_item_l2_search, dense solver);
# the configured value first, so ties and a run without validation data keep it.
L2_GRID = (1.0, 0.5, 2.0, 4.0)
# When validation's best is the grid's largest (smallest) lambda, up to this many more, each twice (half) the
# last, while validation improves.
L2_EDGE_STEPS = 6
# Recency half-lives (in items; 0 = every training item weighs 1) tried when item_item_halflife is null.
HALFLIFE_GRID = (0.0, 2.0, 5.0, 20.0)


def _content_matrix(features: torch.Tensor, mask: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """[n, f]: rows L2-normalized and centred over present items; missing rows zero.

    One [n, f] copy, modified in place (at 1M items x 1,664 dims each extra copy is 6.6 GB).
    """
    values = features.to(dtype=dtype, copy=True)
    values.div_(values.norm(dim=1, keepdim=True).clamp_min_(1e-12))
    weight = mask.to(device=values.device, dtype=values.dtype)
    if bool(weight.any()):
        values.sub_((weight @ values).div_(weight.sum()).unsqueeze(0))  # mean over present rows, no row copy
    return values.mul_(weight.unsqueeze(1))


def _content_matrices(content: Sequence[tuple[torch.Tensor, torch.Tensor]], content_weight: float,
                      device: torch.device | str, dtype: torch.dtype) -> list[torch.Tensor]:
    """The prepared F_m (`_content_matrix`) of the modalities that add a content term (none at weight 0)."""
    return [_content_matrix(features.to(device), mask.to(device), dtype)
            for features, mask in content if content_weight > 0 and features.shape[1] and bool(mask.any())]


def dense_gram(interactions: sp.csr_matrix, matrices: Sequence[torch.Tensor], content_weight: float,
               device: torch.device | str) -> torch.Tensor:
    """[n, n] float64 X^T X + alpha * sum_m F_m F_m^T (X = the 0/1 pattern of `interactions`): G without lambda."""
    binary = interactions.copy()
    binary.data[:] = 1.0
    gram = torch.as_tensor((binary.T @ binary).toarray(), dtype=torch.float64, device=device)
    for f in matrices:
        gram.addmm_(f, f.T, alpha=content_weight)
    return gram


def dense_weights(gram: torch.Tensor, l2: float, overwrite: bool = False) -> torch.Tensor:
    """[n, n] float32 B of the dense closed form at `l2`: P = (gram + l2 I)^-1, B_ij = -P_ij / P_jj, B_jj = 0.

    The factorization and the inverse run in one float64 buffer (`gram` itself with overwrite=True, else
    a copy), so a fit holds at most two n^2 float64 matrices, the caller's gram and that buffer, and B.
    """
    work = gram if overwrite else gram.clone()
    work.diagonal().add_(l2)
    info = torch.empty((), dtype=torch.int32, device=work.device)
    torch.linalg.cholesky_ex(work, out=(work, info))  # lower factor, in place
    if int(info) != 0:  # cannot happen for l2 > 0 (G is then positive definite) but for round-off
        raise ValueError(f"item-item Gram matrix is not positive definite (minor {int(info)})")
    torch.cholesky_inverse(work, out=work)  # P, in place
    weights = work.div_((-work.diagonal()).unsqueeze(0))
    weights.diagonal().zero_()
    return weights.to(torch.float32)


# Dense B on the CPU: a chunk of profiles is multiplied as sparse when its share of nonzeros times the threads
# dense matrix products would use stays below this (scipy's sparse x dense runs on one thread; on one thread
# the two broke even near 6% nonzeros: bench/results/item_item_scoring.md).
SPARSE_SCORING_DENSITY = 0.05


def sparse_enough(profiles: sp.csr_matrix) -> bool:
    """Whether x @ B for these profile rows is cheaper as scipy sparse x dense than as a dense product."""
    cells = profiles.shape[0] * profiles.shape[1]
    return profiles.nnz * torch.get_num_threads() < SPARSE_SCORING_DENSITY * cells


def profile_sums(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, users: torch.Tensor,
                 columns: torch.Tensor) -> torch.Tensor:
    """[b, c] x_u @ columns for the CSR profile rows `users` (indptr/indices/values of [n_users, n]),
    columns [n, c]: a weighted embedding-bag sum over each user's items, so only the profiles' nonzeros
    move and no dense [b, n] block is built."""
    start = indptr[users]
    lengths = indptr[users + 1] - start
    offsets = torch.cumsum(lengths, 0) - lengths
    total = int(lengths.sum())
    positions = torch.arange(total, device=indptr.device) + torch.repeat_interleave(start - offsets, lengths,
                                                                                   output_size=total)
    return F.embedding_bag(indices[positions], columns, offsets, mode="sum",
                           per_sample_weights=values[positions].to(columns.dtype))


def interaction_csr(user_rows: np.ndarray, item_cols: np.ndarray, n_users: int, n_items: int,
                    halflife: float = 0.0) -> sp.csr_matrix:
    """[n_users, n_items] matrix of (user row, item column) pairs given oldest first (duplicates count once).

    halflife 0: every pair weighs 1. halflife h > 0: a user's item weighs 0.5 ** (age / h), where age
    is its position from that user's most recent item (0 = most recent; a repeated item keeps its
    latest position): the profile x_u a time-decayed item-item model scores from.
    """
    if halflife <= 0:
        return interaction_matrix(np.asarray(user_rows), np.asarray(item_cols), n_users, n_items)
    frame = pd.DataFrame({"u": np.asarray(user_rows, dtype=np.int64), "i": np.asarray(item_cols, dtype=np.int64)})
    frame = frame.drop_duplicates(["u", "i"], keep="last")
    age = frame.groupby("u").cumcount(ascending=False).to_numpy()
    weights = np.power(0.5, age / halflife).astype(np.float32)
    return sp.csr_matrix((weights, (frame["u"].to_numpy(), frame["i"].to_numpy())), shape=(n_users, n_items))


@dataclass
class ItemItemModel:
    """Item-item weights (float32, on the scoring device) and the train matrix its users score from.

    `weights` is B [n_items, n_items] dense (the exact solver) or B^T as a sparse CSR tensor with k
    entries per row (the neighbourhood solver, mmrec.models.item_neighbourhood); scores are x_u B either way.
    """

    weights: torch.Tensor
    interactions: sp.csr_matrix  # [n_users, n_items] user profiles, rows as indexed by `scores`
    _scipy: sp.csr_matrix | None = field(default=None, repr=False, compare=False)  # B for CPU scoring
    _device_csr: tuple[torch.Tensor, ...] | None = field(default=None, repr=False, compare=False)
    _scipy_t: sp.csr_matrix | None = field(default=None, repr=False, compare=False)  # sparse B^T, its rows per step

    @classmethod
    def fit(
        cls,
        interactions: sp.csr_matrix,
        content: Sequence[tuple[torch.Tensor, torch.Tensor]],
        l2: float,
        content_weight: float,
        device: torch.device | str = "cpu",
        neighbours: int | None = None,
        search: str = "exact",
    ) -> ItemItemModel:
        """Solve for B from the 0/1 pattern of `interactions` (which also become the scoring profiles).

        `content` = (features [n_items, f], present mask [n_items]) per modality. `neighbours` None:
        the exact dense solution (memory n^2, time n^3); k: each item regresses on its k nearest
        neighbours only (mmrec.models.item_neighbourhood: memory n k, for large catalogues), found by
        `search` (exact | ivf).
        """
        if neighbours is not None:
            return next(cls.fit_l2_path(interactions, content, [l2], content_weight, device, neighbours, search))
        matrices = _content_matrices(content, content_weight, device, torch.float64)
        gram = dense_gram(interactions, matrices, content_weight, device)
        del matrices
        return cls(dense_weights(gram, l2, overwrite=True), interactions.tocsr())

    @classmethod
    def fit_l2_path(
        cls,
        interactions: sp.csr_matrix,
        content: Sequence[tuple[torch.Tensor, torch.Tensor]],
        l2s: Sequence[float],
        content_weight: float,
        device: torch.device | str = "cpu",
        neighbours: int | None = None,
        search: str = "exact",
    ) -> Iterator[ItemItemModel]:
        """The fit at each lambda of `l2s` in turn, the same B as `fit` gives. `l2s` may be a list the caller
        extends while the path runs (a generator runs nothing before the first fit is asked for).

        Dense (`neighbours` None): G without lambda (X^T X and the content products, a large share of a fit's
        time) is built once and kept meanwhile; each value is solved when the path reaches it. Neighbourhood
        solver: every lambda listed but not yet solved when the path reaches it is solved in one pass of
        `fit_neighbourhood_path` (one neighbour search and one local Gram matrix per item for all of them).
        """
        matrices = _content_matrices(content, content_weight, device,
                                     torch.float64 if neighbours is None else torch.float32)
        if neighbours is not None:
            # The solver only needs the content's rank-CONTENT_RANK factor: hand it that and free the prepared
            # copies first (at 1M items x 1,664 dims they are 6.6 GB held through the whole fit otherwise).
            factor = content_factor(matrices, CONTENT_RANK, device)
            del matrices
            done = 0
            while done < len(l2s):
                pending = list(l2s[done:])
                for weights in fit_neighbourhood_path(interactions, [] if factor is None else [factor], pending,
                                                      content_weight, neighbours, device=device, search=search):
                    yield cls(weights, interactions.tocsr())
                done += len(pending)
            return
        gram = dense_gram(interactions, matrices, content_weight, device)
        del matrices
        for l2 in l2s:
            yield cls(dense_weights(gram, l2), interactions.tocsr())

    @property
    def is_sparse(self) -> bool:
        return self.weights.layout == torch.sparse_csr

    def with_profiles(self, interactions: sp.csr_matrix) -> ItemItemModel:
        """The same B scoring from other profiles (e.g. another recency half-life)."""
        return ItemItemModel(self.weights, interactions.tocsr(), self._scipy, _scipy_t=self._scipy_t)

    def scores(self, rows: torch.Tensor | np.ndarray, columns: torch.Tensor | None = None) -> torch.Tensor:
        """[len(rows), n_items] x_u B for interaction-matrix rows `rows` (only B's `columns` when given: [len(rows),
        len(columns)]), on the weights' device, float32.

        Profiles are sparse (a user has a few of the catalogue's items), so on the CPU a chunk whose profiles
        are sparse enough (SPARSE_SCORING_DENSITY) multiplies them as scipy CSR: |x_u| * n multiply-adds per user
        instead of n^2 (bench/results/item_item_scoring.md: 7,000 items and 6 items per user, 50x faster on
        one thread). On a GPU the dense product (or, for some columns, an embedding-bag sum) is fast anyway.
        """
        rows = np.asarray(torch.as_tensor(rows).cpu())
        device = self.weights.device
        if columns is not None:
            columns = torch.as_tensor(columns, device=device)
        if self.is_sparse:
            if device.type == "cpu" and columns is not None:
                # B's columns are rows of the stored B^T: multiply by those alone, never a [b, n_items] block (the
                # distillation teacher's candidates each step: 0.55 -> 0.03 s at 20,000 items, 1,024 users).
                block = self._scipy_transposed()[columns.numpy()].T
                return torch.as_tensor((self.interactions[rows] @ block).toarray(), dtype=torch.float32)
            if device.type == "cpu":  # sparse x sparse: cost sum_u |u| k, not n_items k
                scores = torch.as_tensor((self.interactions[rows] @ self._scipy_weights()).toarray(),
                                         dtype=torch.float32)
            else:
                x = torch.as_tensor(self.interactions[rows].toarray(), device=device)
                with torch.autocast(device_type=device.type, enabled=False):  # never bf16: B's weights are small
                    scores = torch.sparse.mm(self.weights, x.T).T
            return scores if columns is None else scores[:, columns]
        # index_select: ~1.6x faster than weights[:, columns] on the CPU (a step's teacher columns at 10k items)
        weights = self.weights if columns is None else torch.index_select(self.weights, 1, columns)
        profiles = self.interactions[rows]
        if device.type == "cpu" and sparse_enough(profiles):
            return torch.from_numpy(np.asarray(profiles @ weights.numpy(), dtype=np.float32))
        if device.type != "cpu" and columns is not None:  # a few columns (training candidates): no [b, n] block
            return profile_sums(*self._device_profiles(), torch.as_tensor(rows, device=device), weights)
        x = torch.as_tensor(profiles.toarray(), device=device)
        with torch.autocast(device_type=device.type, enabled=False):
            return x @ weights

    def _device_profiles(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The profiles' CSR arrays (indptr, indices, values) on the weights' device, moved there once."""
        if self._device_csr is None:
            csr = self.interactions
            self._device_csr = tuple(torch.as_tensor(a, device=self.weights.device)
                                     for a in (csr.indptr.astype(np.int64), csr.indices.astype(np.int64), csr.data))
        return self._device_csr

    def _scipy_transposed(self) -> sp.csr_matrix:
        """The stored sparse B^T as a scipy CSR matrix, built once (scipy copies the indices to int32: 0.3 s at
        200,000 items, too much for every training step)."""
        if self._scipy_t is None:
            bt = self.weights
            self._scipy_t = sp.csr_matrix((bt.values().numpy(), bt.col_indices().numpy(), bt.crow_indices().numpy()),
                                          shape=tuple(bt.shape))
        return self._scipy_t

    def _scipy_weights(self) -> sp.csr_matrix:
        """B as a scipy CSR matrix (the transpose of the stored B^T), built once."""
        if self._scipy is None:
            self._scipy = self._scipy_transposed().T.tocsr()
        return self._scipy

    def pair_weights(self, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """[len(sources), len(targets)] B[sources][:, targets] (zeros where the sparse B has no entry)."""
        if not self.is_sparse:
            return self.weights[sources][:, targets]
        crow, col, val = self.weights.crow_indices(), self.weights.col_indices(), self.weights.values()
        out = torch.zeros((len(targets), self.weights.shape[1]), dtype=val.dtype, device=val.device)
        for t, j in enumerate(targets.tolist()):  # a row of B^T per recommended item: few rows
            start, stop = int(crow[j]), int(crow[j + 1])
            out[t, col[start:stop]] = val[start:stop]
        return out[:, sources].T


def item_item_content(model_cfg: ModelSettings, catalogue: ItemInputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (features, present mask) pairs the item-item model ties items with: the modalities the model uses."""
    content = []
    if model_cfg.use_vision and catalogue.vision.shape[1]:
        content.append((catalogue.vision, catalogue.vision_mask))
    if model_cfg.use_text and catalogue.text.shape[1]:
        content.append((catalogue.text, catalogue.text_mask))
    return content


def item_item_profiles(train: pd.DataFrame, users: IdEncoding, rows: pd.Series, halflife: float) -> sp.csr_matrix:
    """[len(users), n_items] profiles x_u of `train` (row = the user's index in `users`, 0 = nobody)."""
    user_idx, item_rows = ordered_pairs(train, users, rows)
    return interaction_csr(user_idx, item_rows, len(users), len(rows), halflife)


def item_item_fit_key(profiles: sp.csr_matrix, content: Sequence[tuple[torch.Tensor, torch.Tensor]],
                      model_cfg: ModelSettings) -> str:
    """The key a fit of `profiles` with `content` and model_cfg's item-item settings is stored under."""
    return fit_key(profiles, content, {"l2": model_cfg.item_item_l2,
                                       "neighbours": item_item_neighbours(model_cfg, profiles.shape[1]),
                                       "search": item_item_search(model_cfg, profiles.shape[1]),
                                       "content_weight": model_cfg.item_item_content_weight,
                                       "content_rank": CONTENT_RANK, "gram_rank": GRAM_RANK})


def fit_item_item(train: pd.DataFrame, users: IdEncoding, rows: pd.Series, catalogue: ItemInputs,
                  model_cfg: ModelSettings, halflife: float, device: torch.device | str = "cpu",
                  store: ItemItemStore | None = None, announce: Callable[[str], None] | None = None
                  ) -> ItemItemModel:
    """The item-item model of `train` with model_cfg's l2 / content weight and the modalities the model uses.

    B depends on the 0/1 pattern only; `halflife` shapes the profiles it scores from (see
    `with_profiles` for other half-lives without a refit). With a `store`, a B fitted earlier from
    the same pattern, content and settings is loaded instead of refitted, and a new fit is stored.
    """
    return fit_profiles(item_item_profiles(train, users, rows, halflife), catalogue, model_cfg, device, store,
                        announce)


def fit_profiles(profiles: sp.csr_matrix, catalogue: ItemInputs, model_cfg: ModelSettings,
                 device: torch.device | str = "cpu", store: ItemItemStore | None = None,
                 announce: Callable[[str], None] | None = None) -> ItemItemModel:
    """The item-item model of `profiles` ([n_users, n_items]) with model_cfg's settings (see fit_item_item).
    `announce` is told when a fit starts (no stored one): on a large catalogue it takes minutes."""
    content = item_item_content(model_cfg, catalogue)
    key = item_item_fit_key(profiles, content, model_cfg) if store is not None else ""
    weights = store.load(key, device) if store is not None else None
    if weights is not None:
        return ItemItemModel(weights, profiles.tocsr())
    n_items = profiles.shape[1]
    if announce is not None:
        announce(f"Fitting the item-item model of {profiles.nnz:,} interactions x {n_items:,} items"
                 + (" (stored: later runs on the same interactions load it)" if store is not None else ""))
    model = ItemItemModel.fit(profiles, content, model_cfg.item_item_l2, model_cfg.item_item_content_weight,
                              device, neighbours=item_item_neighbours(model_cfg, n_items),
                              search=item_item_search(model_cfg, n_items))
    if store is not None:
        store.save(key, model.weights)
    return model


def item_item_neighbours(model_cfg: ModelSettings, n_items: int) -> int | None:
    """k for the neighbourhood solver, or None for the exact dense one (model.item_item_solver)."""
    solver = model_cfg.item_item_solver
    if solver == "dense" or (solver == "auto" and n_items <= model_cfg.item_item_dense_max_items):
        return None
    return model_cfg.item_item_neighbours


def item_item_search(model_cfg: ModelSettings, n_items: int) -> str:
    """The neighbourhood solver's neighbour search, exact or ivf (model.item_item_neighbour_search)."""
    search = model_cfg.item_item_neighbour_search
    if search == "auto":
        return "exact" if n_items <= model_cfg.item_item_exact_search_max_items else "ivf"
    return search


def standardize(scores: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """Each row shifted to mean 0 and scaled to std 1 (a constant row becomes zeros).

    inplace=True overwrites `scores` (float32, owned by the caller): no [b, n_items] allocation,
    which matters when the scoring path standardizes several such matrices per chunk.
    """
    if scores.dtype != torch.float32:
        scores, inplace = scores.float(), True
    out = scores if inplace else scores.clone()
    # Two passes (mean, then the norm of the centred rows): 2.3x faster than torch.std_mean on the CPU, whose
    # one-pass kernel was the largest cost of the blend search on a 30,000-item catalogue; the same std (n - 1).
    out.sub_(out.sum(dim=1, keepdim=True).div_(out.shape[1]))
    return out.div_(centred_std(out))


def centred_std(centred: torch.Tensor) -> torch.Tensor:
    """[b, 1] std (n - 1) of rows already centred, at least 1e-8 (a constant row divides to zeros)."""
    n = centred.shape[1]
    return torch.linalg.vector_norm(centred, dim=1, keepdim=True).div_(max(n - 1, 1) ** 0.5).clamp_min_(1e-8)
