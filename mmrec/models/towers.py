"""The item tower (id + vision + text + numeric + category tokens fused by self-attention) and the user tower."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmrec.data.categories import SLOTS
from mmrec.errors import ConfigError
from mmrec.models.fusion import FusionEncoder, dropout
from mmrec.models.inputs import ItemInputs
from mmrec.settings import ModelSettings


@dataclass(frozen=True)
class ModelDims:
    """Sizes the model is built for (recorded in the checkpoint sidecar as `model_args`)."""

    n_user_ids: int  # len(user IdEncoder): known users + index 0 (unknown)
    n_item_ids: int  # len(item IdEncoder)
    vision_dim: int
    text_dim: int
    numeric_dim: int
    # Embedding rows per category column (its values + the none row, mmrec.data.categories); () = no columns
    category_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "category_sizes", tuple(int(n) for n in self.category_sizes))  # a list from JSON

    def to_dict(self) -> dict[str, int | list[int]]:
        return {**asdict(self), "category_sizes": list(self.category_sizes)}


class ItemTower(nn.Module):
    """Item inputs -> item vector [b, d].

    Tokens (one per enabled modality) + modality-type embeddings -> fusion -> Linear. A token whose
    modality the item lacks is masked out of attention and pooling.
    """

    def __init__(self, cfg: ModelSettings, dims: ModelDims) -> None:
        super().__init__()
        d = cfg.embedding_dim
        self.fusion = cfg.fusion
        self.modalities: list[str] = []
        if cfg.use_id_embeddings:
            # Index 0 is the learned "no id" embedding: unseen items and id-dropped training items.
            self.id_embedding = nn.Embedding(dims.n_item_ids, d)
            nn.init.normal_(self.id_embedding.weight, std=0.1)
            self.modalities.append("id")
        if cfg.use_vision and dims.vision_dim:
            self.vision_proj = nn.Linear(dims.vision_dim, d)
            self.modalities.append("vision")
        if cfg.use_text and dims.text_dim:
            self.text_proj = nn.Linear(dims.text_dim, d)
            self.modalities.append("text")
        if cfg.use_numeric and dims.numeric_dim:
            self.numeric_proj = nn.Linear(dims.numeric_dim, d)
            self.modalities.append("numeric")
        self.category_embeddings = nn.ModuleList()
        if cfg.use_categories and dims.category_sizes:
            for c, size in enumerate(dims.category_sizes):
                # Row 0 = none (no value, or one the vocabulary lacks): never trained, never read (masked out).
                # Zeros at first, as the history item embeddings (every value has a training item to learn from).
                table = nn.Embedding(size, d, padding_idx=0)
                nn.init.zeros_(table.weight)
                self.category_embeddings.append(table)
                self.modalities.append(f"category{c}")
        if not self.modalities:
            raise ConfigError(
                "The item tower has no input: ids, vision, text and numeric features are all off or empty.",
                hint="Enable at least one of model.use_id_embeddings/use_vision/use_text/use_numeric.",
            )
        n_tokens = len(self.modalities)
        self.type_embedding = nn.Parameter(torch.randn(n_tokens, d) * 0.02)
        self.encoder: nn.Module | None = None
        if cfg.fusion == "attention" and cfg.num_layers > 0:
            self.encoder = FusionEncoder(d, cfg.num_heads, cfg.num_layers, cfg.dropout)
        self.dropout_rate = cfg.dropout
        self.output = nn.Linear(n_tokens * d if cfg.fusion == "concat" else d, d)

    def projections(self, inputs: ItemInputs) -> dict[str, torch.Tensor]:
        """Per-modality token inputs before fusion: {name: [b, d]}."""
        out: dict[str, torch.Tensor] = {}
        for name in self.modalities:
            if name == "id":
                out[name] = self.id_embedding(inputs.ids)
            elif name == "vision":
                out[name] = self.vision_proj(inputs.vision)
            elif name == "text":
                out[name] = self.text_proj(inputs.text)
            elif name == "numeric":
                out[name] = self.numeric_proj(inputs.numeric)
            else:
                c = int(name.removeprefix("category"))
                values = self._category_slots(inputs, c)  # [b, SLOTS]
                held = (values > 0).to(self.type_embedding.dtype)
                summed = (self.category_embeddings[c](values) * held.unsqueeze(-1)).sum(dim=1)
                out[name] = summed / held.sum(dim=1, keepdim=True).clamp(min=1.0)  # the mean of its values
        return out

    @staticmethod
    def _category_slots(inputs: ItemInputs, c: int) -> torch.Tensor:
        return inputs.categories[:, c * SLOTS : (c + 1) * SLOTS]

    def _presence(self, inputs: ItemInputs) -> torch.Tensor:
        """[b, T] bool: which tokens the item has."""
        columns = []
        for name in self.modalities:
            if name == "vision":
                columns.append(inputs.vision_mask)
            elif name == "text":
                columns.append(inputs.text_mask)
            elif name.startswith("category"):
                columns.append((self._category_slots(inputs, int(name.removeprefix("category"))) > 0).any(dim=1))
            else:
                columns.append(torch.ones_like(inputs.ids, dtype=torch.bool))
        present = torch.stack(columns, dim=1)
        # An item with none of the enabled modalities keeps its first token (a learned constant).
        present[:, 0] |= ~present.any(dim=1)
        return present

    def token_parts(self, inputs: ItemInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Additive decomposition: (parts [b, T, d], bias [d]) with item vector = parts.sum(1) + bias."""
        tokens = torch.stack(list(self.projections(inputs).values()), dim=1) + self.type_embedding  # [b, T, d]
        present = self._presence(inputs)
        weight = present.to(tokens.dtype).unsqueeze(-1)  # [b, T, 1]
        if self.encoder is not None:
            tokens = self.encoder(tokens, ~present)
        tokens = dropout(tokens, self.dropout_rate, self.training) * weight
        d = tokens.shape[-1]
        if self.fusion == "concat":
            blocks = self.output.weight.view(d, len(self.modalities), d)  # [d_out, T, d_in]
            parts = torch.einsum("btd,otd->bto", tokens, blocks)
        else:
            if self.fusion == "attention":  # mean over present tokens; "sum" keeps the plain sum
                tokens = tokens / weight.sum(dim=1, keepdim=True)
            parts = tokens @ self.output.weight.T
        return parts, self.output.bias

    def forward(self, inputs: ItemInputs) -> torch.Tensor:
        """[b, d] item vectors."""
        parts, bias = self.token_parts(inputs)
        return parts.sum(dim=1) + bias


class UserTower(nn.Module):
    """User id embedding (0 = unknown user) plus attention over the user's recent items' vectors.

    The attention is nn.MultiheadAttention's (its parameters, its maths) with the key and value
    projections folded into the one query and the pooled history (see `_attend`): a step projects
    neither the b x L history slots nor their distinct items (up to b x L of them on a large
    catalogue), only b queries and b pooled vectors per head.
    """

    def __init__(self, cfg: ModelSettings, dims: ModelDims) -> None:
        super().__init__()
        d = cfg.embedding_dim
        # Without user ids every user shares row 0 (the unknown user's): a learned bias, no per-user parameters.
        self.use_ids = cfg.user_ids
        self.id_embedding = nn.Embedding(dims.n_user_ids if self.use_ids else 1, d)
        nn.init.normal_(self.id_embedding.weight, std=0.1)
        self.use_history = cfg.user_history_length > 0
        if self.use_history:
            self.query = nn.Parameter(torch.zeros(d))
            self.history_norm = nn.LayerNorm(d)
            self.attention = nn.MultiheadAttention(d, cfg.num_heads, dropout=cfg.dropout, batch_first=True)
        self.history_embedding: nn.Embedding | None = None
        if self.use_history and cfg.history_item_embeddings:
            # Indexed by item id (0 = unknown item: a learned constant); starts at 0, so training starts from
            # the plain item vectors.
            self.history_embedding = nn.Embedding(dims.n_item_ids, d)
            nn.init.zeros_(self.history_embedding.weight)
        self.output = nn.Linear(d, d)

    def forward(
        self,
        user_idx: torch.Tensor,
        table: torch.Tensor | None = None,
        history_rows: torch.Tensor | None = None,
        history_mask: torch.Tensor | None = None,
        history_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """user_idx [b]; table [n, d] item vectors; history_rows [b, L] rows of `table` (read where
        history_mask [b, L] is True); history_ids [b, L] the items' ids (needed with history item
        embeddings) -> [b, d]."""
        base = self.id_embedding(user_idx if self.use_ids else torch.zeros_like(user_idx))
        if self.use_history and table is not None and history_rows is not None and history_rows.shape[1] > 0:
            assert history_mask is not None
            base = base + self._attend(base, table, history_rows, history_mask, history_ids)
        return self.output(base)

    def _attend(self, base: torch.Tensor, table: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor,
                ids: torch.Tensor | None = None) -> torch.Tensor:
        attention = self.attention
        b, length = rows.shape
        d, heads = base.shape[1], attention.num_heads
        held = mask  # the slots that really hold an item
        empty = ~mask.any(dim=1)
        mask = mask.clone()
        mask[:, 0] |= empty  # all-masked rows would give NaN attention; their output is zeroed below
        distinct, slot = torch.unique(rows.clamp(min=0), return_inverse=True)
        keys_in = table.index_select(0, distinct)  # [m, d], m <= min(n, b * L)
        if self.history_embedding is not None:
            if ids is None:
                raise ValueError("history item embeddings need the history items' ids")
            # Each distinct row's id, from the slots that really hold it: padding (and an empty history's
            # dummy slot) points at row 0, which may be another user's real item.
            distinct_ids = torch.zeros(len(distinct), dtype=ids.dtype, device=ids.device)
            distinct_ids[slot[held]] = ids[held]
            keys_in = keys_in + self.history_embedding(distinct_ids)
        keys_in = self.history_norm(keys_in)
        w_q, w_k, w_v = attention.in_proj_weight.chunk(3)
        b_q, _, b_v = attention.in_proj_bias.chunk(3)
        head_dim = d // heads
        # The key and value projections are folded into the query and the pooled history, so no history slot
        # (b x L of them) and no distinct item (up to b x L on a large catalogue) is ever projected:
        #   logit[b, l, h] = (W_k,h x_l + b_k,h) . q_bh = x_l . (W_k,h^T q_bh) + const(b, h)   (const cancels in
        #   the softmax over l), and sum_l w_blh (W_v,h x_l + b_v,h) = W_v,h (sum_l w_blh x_l) + b_v,h sum_l w_blh.
        slots = keys_in.index_select(0, slot.reshape(-1)).view(b, length, d)  # [b, L, d]
        query = F.linear(base + self.query, w_q, b_q).view(b, heads, head_dim) * (1.0 / math.sqrt(head_dim))
        folded_query = torch.bmm(query.transpose(0, 1), w_k.view(heads, head_dim, d)).transpose(0, 1)  # [b, heads, d]
        logits = torch.bmm(slots, folded_query.transpose(1, 2))  # [b, L, heads]
        weights = torch.softmax(logits.masked_fill(~mask.unsqueeze(-1), float("-inf")), dim=1)
        weights = dropout(weights, attention.dropout, self.training)
        pooled = torch.bmm(weights.transpose(1, 2), slots)  # [b, heads, d]
        attended = torch.bmm(pooled.transpose(0, 1), w_v.view(heads, head_dim, d).transpose(1, 2)).transpose(0, 1)
        attended = attended + weights.sum(1).unsqueeze(-1) * b_v.view(heads, head_dim)  # [b, heads, d / heads]
        attended = attention.out_proj(attended.reshape(b, d))
        return attended * (~empty).to(base.dtype).unsqueeze(1)
