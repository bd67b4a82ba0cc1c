"""Content similarity to a user's items (ContentKNN inside the model) and its blend search."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.models.content_profile import ContentProfileModel, content_features, content_modalities
from mmrec.models.inputs import build_item_inputs
from mmrec.settings import ModelSettings


def _catalogue(n: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    vision, text = torch.rand(n, 5, generator=g), torch.randn(n, 3, generator=g)
    vision_mask = torch.tensor([True] * (n - 1) + [False])
    text_mask = torch.ones(n, dtype=torch.bool)
    return build_item_inputs(np.arange(1, n + 1), vision * vision_mask.unsqueeze(1), vision_mask, text, text_mask,
                             None, "cpu")


def test_scores_are_cosine_to_the_mean_of_the_users_items():
    catalogue = _catalogue()
    profiles = sp.csr_matrix(np.array([[1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 2, 0, 0, 0, 1]], dtype=np.float32))
    model = ContentProfileModel.build(catalogue, "text", profiles)
    text = torch.nn.functional.normalize(catalogue.text, dim=1)
    mean = (text[0] + text[2]) / 2
    expected = torch.nn.functional.normalize(mean, dim=0) @ text.T
    scores = model.scores(np.array([0, 1, 2]))
    torch.testing.assert_close(scores[0], expected)
    assert torch.equal(scores[1], torch.zeros(6))  # no history: no content signal
    # Weights in the profile do not matter: it is the 0/1 pattern (a set of liked items).
    torch.testing.assert_close(scores[2], model.scores(np.array([2]))[0])
    twice = text[1] + text[5]
    torch.testing.assert_close(scores[2], torch.nn.functional.normalize(twice, dim=0) @ text.T)


def test_image_features_are_centred_over_present_items_and_missing_rows_stay_zero():
    catalogue = _catalogue()
    image = content_features(catalogue, "image")
    present = catalogue.vision[:5]
    torch.testing.assert_close(image[:5], torch.nn.functional.normalize(present - present.mean(0), dim=1))
    assert torch.equal(image[5], torch.zeros(5))
    both = content_features(catalogue, "text+image")
    assert both.shape == (6, 8)
    torch.testing.assert_close(both.norm(dim=1)[:5], torch.ones(5))


def test_modalities_follow_the_model_and_the_catalogue():
    catalogue = _catalogue()
    assert content_modalities(ModelSettings(), catalogue) == ["text", "image", "text+image"]
    assert content_modalities(ModelSettings(use_vision=False), catalogue) == ["text"]
    no_features = build_item_inputs(np.arange(1, 4), None, None, None, None, None, "cpu")
    assert content_modalities(ModelSettings(), no_features) == []
