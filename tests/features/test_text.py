"""Every text backbone's real loading + forward code on a tiny random model; MiniLM for real."""

import pytest
import torch
import torch.nn.functional as F

from mmrec.features.extract import iter_text_features
from mmrec.features.text import BertBase, MPNetBase, RobertaBase, SentenceBert

TEXTS = ["A short one.", "A considerably longer sentence about ships, sailors and the open sea at night.", ""]


@pytest.mark.parametrize("cls", [BertBase, RobertaBase, MPNetBase, SentenceBert])
def test_hf_text_backbones_load_an_explicit_folder(tiny_hf_text_dirs, cls):
    source = cls.resolve(str(tiny_hf_text_dirs[cls.name]), allow_download=False)
    backbone = cls.load(source, max_tokens=16)
    assert backbone.dim == 32 and backbone.max_tokens == 16
    with torch.inference_mode():
        features = backbone.embed(TEXTS)
    assert features.shape == (3, 32) and torch.isfinite(features).all()
    assert max(backbone.token_lengths(TEXTS * 20)) <= 16  # fixed max length
    if cls.pooling == "mean_normalized":
        assert torch.allclose(features.norm(dim=-1), torch.ones(3), atol=1e-4)


def test_pooling_ignores_padding(tiny_hf_text_dirs):
    backbone = RobertaBase.load(RobertaBase.resolve(str(tiny_hf_text_dirs["roberta"]), False), max_tokens=32)
    with torch.inference_mode():
        alone = backbone.embed([TEXTS[0]])
        padded = backbone.embed([TEXTS[0], TEXTS[1]])[:1]  # padded to the longer text
    assert torch.allclose(alone, padded, atol=1e-5)


def test_clip_text_tower_loads_an_explicit_checkpoint(tiny_clip_checkpoint, tiny_clip_classes):
    _, text_cls = tiny_clip_classes
    backbone = text_cls.load(text_cls.resolve(str(tiny_clip_checkpoint), allow_download=False), max_tokens=200)
    assert backbone.token_limit == 77  # CLIP's positional table caps the length
    with torch.inference_mode():
        features = backbone.embed(TEXTS)
    assert features.shape == (3, 16)
    assert torch.allclose(features.norm(dim=-1), torch.ones(3), atol=1e-4)


def test_real_minilm_ranks_a_paraphrase_above_an_unrelated_sentence(real_text):
    assert real_text.dim == 384
    with torch.inference_mode():
        anchor, paraphrase, unrelated = real_text.embed([
            "A man is playing a guitar on stage.",
            "Someone performs a song with an acoustic guitar in front of an audience.",
            "Quarterly tax filings are due at the end of the month.",
        ])
    assert F.cosine_similarity(anchor, paraphrase, dim=0) > F.cosine_similarity(anchor, unrelated, dim=0) + 0.2


def test_text_batches_are_sorted_by_length_and_cover_every_text(real_text):
    texts = [("word " * n).strip() for n in (3, 40, 1, 12, 25)]
    batches = list(iter_text_features(real_text, texts, batch_size=2))
    order = [p for b in batches for p in b.positions]
    assert sorted(order) == list(range(5)) and order[0] == 1  # longest first
    with torch.inference_mode():
        direct = real_text.embed([texts[3]])[0]
    by_position = {p: v for b in batches for p, v in zip(b.positions, b.features)}
    assert torch.allclose(torch.from_numpy(by_position[3]), direct, atol=1e-4)
