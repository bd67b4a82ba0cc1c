"""The item tower's token-fusion encoder and a dropout that is cheap on CPU.

Why not `nn.TransformerEncoder`: an item has at most four tokens (id, vision, text, numeric), so
the generic attention kernel runs thousands of 4 x 4 matrix products per batch, and on CPU its
dropout masks (`bernoulli_`) cost more than the layer's matrix products. `FusionEncoder` computes
the same function -- a pre-norm transformer encoder with key-padding mask and a final LayerNorm --
with the attention as T elementwise passes over the tokens, and on CPU draws dropout masks as random
16-bit integers. Its parameters have `nn.TransformerEncoder`'s names and shapes, so checkpoints
written with either load into the other.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Inverted dropout with `F.dropout`'s contract (zero at `rate`, survivors scaled to keep the mean).

    On CPU the mask comes from random 16-bit integers (the keep probability is 1 - rate rounded to
    1/65536, and the scale uses that rounded probability, so the expectation is exact): about three
    times faster than `torch.bernoulli_`. Elsewhere it is `F.dropout` (fused on CUDA). Both draw from
    torch's seeded generator.
    """
    if not training or rate <= 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, rate, training=True)
    keep_level = round((1.0 - rate) * 65536)
    if keep_level >= 65536:
        return x
    if keep_level <= 0:
        return x * 0.0
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    bits = words.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    scale = (bits < keep_level - 32768).to(x.dtype).mul_(65536.0 / keep_level)  # one multiply forward and back
    return x * scale


class FusionLayer(nn.Module):
    """One pre-norm encoder layer: x + Dropout(Attention(LN(x))), then x + Dropout(FF(LN(x))).

    The maths and parameter names of `nn.TransformerEncoderLayer(norm_first=True, batch_first=True,
    activation=relu)`; built in the same order, so the same seed gives the same initial weights.
    """

    def __init__(self, d: int, num_heads: int, dim_feedforward: int, rate: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, num_heads, dropout=rate, batch_first=True)
        self.linear1 = nn.Linear(d, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.rate = rate

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        x = x + dropout(self._attention(self.norm1(x), padding), self.rate, self.training)
        hidden = dropout(F.relu(self.linear1(self.norm2(x))), self.rate, self.training)
        return x + dropout(self.linear2(hidden), self.rate, self.training)

    def _attention(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """x [b, T, d], padding [b, T] (True = absent token, never attended to) -> [b, T, d]."""
        b, t, d = x.shape
        heads = self.self_attn.num_heads
        qkv = F.linear(x, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias).view(b, t, 3, heads, d // heads)
        q, k, v = qkv.unbind(2)  # [b, T, heads, d / heads]
        # One elementwise pass per key token (T is the number of modalities, <= 4), keys on dim 1: a softmax
        # over a non-last dim vectorizes across the rest, one over a last dim of size 4 is ~20x slower on CPU.
        logits = torch.stack([(q * k[:, j : j + 1]).sum(-1) for j in range(t)], dim=1)  # [b, T keys, T, heads]
        # Scaled here, not on q: the logits are d / (heads x T) times smaller.
        logits = (logits * (1.0 / math.sqrt(d // heads))).masked_fill(padding[:, :, None, None], float("-inf"))
        weights = dropout(torch.softmax(logits, dim=1), self.self_attn.dropout, self.training)
        attended = weights[:, 0].unsqueeze(-1) * v[:, 0:1]  # [b, T, heads, d / heads]
        for j in range(1, t):
            attended = attended + weights[:, j].unsqueeze(-1) * v[:, j : j + 1]
        return self.self_attn.out_proj(attended.reshape(b, t, d))


class FusionEncoder(nn.Module):
    """`num_layers` FusionLayers (clones of one, as `nn.TransformerEncoder` makes them) and a final LayerNorm."""

    def __init__(self, d: int, num_heads: int, num_layers: int, rate: float) -> None:
        super().__init__()
        layer = FusionLayer(d, num_heads, 2 * d, rate)
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d)

    def forward(self, tokens: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """tokens [b, T, d]; padding [b, T] bool (True = the item lacks that token) -> [b, T, d]."""
        for layer in self.layers:
            tokens = layer(tokens, padding)
        return self.norm(tokens)
