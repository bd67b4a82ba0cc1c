"""FusionEncoder computes nn.TransformerEncoder's function with its parameter names; the CPU dropout keeps F.dropout's contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmrec.models.fusion import FusionEncoder, dropout


def _reference(d: int, heads: int, layers: int, rate: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=2 * d, dropout=rate, batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)


@pytest.mark.parametrize("layers", [1, 2])
def test_same_function_gradients_and_state_dict_as_torch_encoder(layers: int) -> None:
    torch.manual_seed(0)
    reference = _reference(16, 4, layers, 0.2).eval()
    ours = FusionEncoder(16, 4, layers, 0.2).eval()
    ours.load_state_dict(reference.state_dict())  # strict: same names and shapes
    assert set(ours.state_dict()) == set(reference.state_dict())
    tokens = torch.randn(9, 4, 16, requires_grad=True)
    padding = torch.zeros(9, 4, dtype=torch.bool)
    padding[::2, 1] = True
    padding[1, 1:] = True  # only the first token present
    grad = torch.randn(9, 4, 16)
    outputs, grads = [], []
    for model in (reference, ours):
        tokens.grad = None
        model.zero_grad()
        out = model(tokens, src_key_padding_mask=padding) if model is reference else model(tokens, padding)
        (out * grad).sum().backward()
        outputs.append(out.detach())
        grads.append((tokens.grad.clone(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[1][0], grads[0][0], atol=1e-4, rtol=1e-4)
    for mine, theirs in zip(grads[1][1], grads[0][1], strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)


def test_same_initial_weights_as_torch_encoder_under_one_seed() -> None:
    torch.manual_seed(3)
    reference = _reference(8, 2, 2, 0.1)
    torch.manual_seed(3)
    ours = FusionEncoder(8, 2, 2, 0.1)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value, rtol=0, atol=0)


def test_padded_tokens_are_never_attended_to() -> None:
    torch.manual_seed(1)
    encoder = FusionEncoder(8, 2, 1, 0.0).eval()
    tokens = torch.randn(3, 3, 8)
    padding = torch.tensor([[False, True, False]] * 3)
    changed = tokens.clone()
    changed[:, 1] = 100.0  # what an absent token holds must not reach the present ones
    first, second = encoder(tokens, padding), encoder(changed, padding)
    torch.testing.assert_close(first[:, [0, 2]], second[:, [0, 2]])


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5])
def test_cpu_dropout_rate_scale_and_seeding(rate: float) -> None:
    x = torch.ones(400_000)
    torch.manual_seed(5)
    out = dropout(x, rate, training=True)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - rate) < 0.005  # ~7 standard errors at 400k draws
    survivors = out[out != 0]
    torch.testing.assert_close(survivors, torch.full_like(survivors, survivors[0].item()))
    assert abs(survivors[0].item() - 1 / (1 - rate)) < 1e-3
    assert abs(out.mean().item() - 1.0) < 0.01  # expectation kept
    torch.manual_seed(5)
    torch.testing.assert_close(dropout(x, rate, training=True), out)  # the seeded torch generator decides


def test_cpu_dropout_is_identity_in_eval_and_at_rate_zero_and_keeps_gradients() -> None:
    x = torch.randn(5, 7, requires_grad=True)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    out = dropout(x, 0.3, training=True)
    out.sum().backward()
    kept = out.detach() != 0
    torch.testing.assert_close(x.grad[kept], torch.full_like(x.grad[kept], 65536 / round(0.7 * 65536)))
    assert (x.grad[~kept] == 0).all()
    assert out.shape == x.shape and out.dtype == x.dtype
