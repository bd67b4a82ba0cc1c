import math

import torch
import torch.nn.functional as F

from mmrec.models.losses import NegativeSampler, bpr_loss, info_nce_loss, sampled_softmax_loss


def test_sampled_softmax_matches_cross_entropy_and_applies_log_q():
    logits = torch.randn(3, 5)
    rows = torch.tensor([10, 11, 12, 13, 14])
    expected = F.cross_entropy(logits, torch.arange(3))
    torch.testing.assert_close(sampled_softmax_loss(logits, rows[:3], rows), expected)
    log_q = torch.log(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    torch.testing.assert_close(sampled_softmax_loss(logits, rows[:3], rows, log_q),
                               F.cross_entropy(logits - log_q, torch.arange(3)))


def test_duplicate_positive_is_not_its_own_negative():
    logits = torch.tensor([[1.0, 5.0, 0.0], [1.0, 5.0, 0.0]])
    rows = torch.tensor([7, 7, 8])  # both users' positive is item 7
    loss = sampled_softmax_loss(logits, rows[:2], rows)
    # user 0: column 1 (the other copy of 7) is masked -> softmax over [1, 0]
    first = -F.log_softmax(torch.tensor([1.0, 0.0]), 0)[0]
    second = -F.log_softmax(torch.tensor([5.0, 0.0]), 0)[0]
    torch.testing.assert_close(loss, (first + second) / 2)


def test_bpr_loss_value():
    loss = bpr_loss(torch.tensor([2.0]), torch.tensor([[0.0, 2.0]]))
    expected = (-math.log(torch.sigmoid(torch.tensor(2.0)).item()) + math.log(2.0)) / 2
    assert abs(loss.item() - expected) < 1e-6


def test_info_nce_is_low_for_aligned_pairs_and_zero_for_fewer_than_two():
    a = torch.eye(4) * 5
    assert info_nce_loss(a, a, 0.07) < 1e-3
    assert info_nce_loss(a, a.roll(1, 0), 0.07) > 5
    assert info_nce_loss(torch.ones(1, 4), torch.ones(1, 4), 0.07) == 0


def test_popularity_sampler_follows_counts_and_log_q_is_log_expected_count():
    counts = torch.tensor([0.0, 9.0, 99.0])
    sampler = NegativeSampler("popularity", counts)
    torch.testing.assert_close(sampler.probs, torch.tensor([1.0, 10.0, 100.0]) / 111)
    draws = sampler.sample(20000, torch.Generator().manual_seed(0))
    assert abs((draws == 2).float().mean().item() - 100 / 111) < 0.02
    torch.testing.assert_close(sampler.log_expected_count(torch.tensor([2]), 8), torch.log(torch.tensor([800 / 111])))
    uniform = NegativeSampler("uniform", counts)
    torch.testing.assert_close(uniform.probs, torch.full((3,), 1 / 3))
