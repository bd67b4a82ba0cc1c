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


def test_a_folder_that_is_not_the_backbone_is_refused_never_loaded_at_random(tiny_hf_text_dirs, tmp_path):
    """transformers loads another model type's folder, or one missing weights, with those weights random (exit 0,
    vectors from noise); a damaged folder raised its own exceptions (a traceback, exit 1). Each is a clear error."""
    import shutil

    from safetensors.torch import load_file, save_file

    from mmrec.errors import WeightsNotFoundError
    from mmrec.features.vision import DinoV2Small

    bert = tiny_hf_text_dirs["bert"]
    with pytest.raises(WeightsNotFoundError, match="holds a 'bert' model; the 'dino' backbone is 'dinov2'"):
        DinoV2Small.load(DinoV2Small.resolve(str(bert), False))
    with pytest.raises(WeightsNotFoundError, match="holds a 'roberta' model; the 'bert' backbone is 'bert'"):
        BertBase.load(BertBase.resolve(str(tiny_hf_text_dirs["roberta"]), False), max_tokens=16)

    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(bert / name, no_tokenizer / name)
    with pytest.raises(WeightsNotFoundError, match="knows 5 tokens, the model 30,522: its vocabulary files are"):
        BertBase.load(BertBase.resolve(str(no_tokenizer), False), max_tokens=16)

    truncated = shutil.copytree(bert, tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsNotFoundError, match="Could not load its weights from .*truncated"):
        BertBase.load(BertBase.resolve(str(truncated), False), max_tokens=16)

    partial = shutil.copytree(bert, tmp_path / "partial")
    tensors = load_file(partial / "model.safetensors")
    dropped = next(key for key in tensors if "attention.self.query.weight" in key)
    save_file({key: value for key, value in tensors.items() if key != dropped}, partial / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(WeightsNotFoundError, match="1 weight\\(s\\) of the 'bert' model are missing"):
        BertBase.load(BertBase.resolve(str(partial), False), max_tokens=16)


def test_a_broken_folder_is_named_by_what_is_broken(tmp_path, tiny_hf_text_dirs, tiny_dino_dir):
    import argparse
    import shutil

    from safetensors.torch import load_file

    from mmrec.errors import WeightsNotFoundError

    folder = tmp_path / "bert"
    shutil.copytree(tiny_hf_text_dirs["bert"], folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(WeightsNotFoundError, match="Could not load its config.json"):  # not blamed on the tokenizer
        BertBase.load(BertBase.resolve(str(folder), allow_download=False), 32)
    shutil.rmtree(folder)
    shutil.copytree(tiny_hf_text_dirs["bert"], folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save({**state, "args": argparse.Namespace(a=1)}, folder / "pytorch_model.bin")
    with pytest.raises(WeightsNotFoundError, match="holds Python objects besides tensors, which mmrec does not "):
        BertBase.load(BertBase.resolve(str(folder), allow_download=False), 32)
    with pytest.raises(WeightsNotFoundError, match=r"backend tokenizer from one of: \(1\) a `tokenizers`"):  # whole
        SentenceBert.load(SentenceBert.resolve(str(tiny_dino_dir), allow_download=False), 32)


@pytest.mark.parametrize("cls", [BertBase, RobertaBase, MPNetBase])
def test_the_token_limit_never_passes_the_models_position_table(tiny_hf_text_dirs, cls):
    """The tokenizer's model_max_length (512 here; none for one saved without it) let features.max_text_tokens
    (128 by default) pass the model's 80 positions: every long text crashed the extraction."""
    backbone = cls.load(cls.resolve(str(tiny_hf_text_dirs[cls.name]), allow_download=False), max_tokens=128)
    numbered_after_padding = cls is not BertBase  # RoBERTa and MPNet count positions from the padding index + 1
    assert backbone.token_limit == (80 - backbone.model.config.pad_token_id - 1 if numbered_after_padding else 80)
    with torch.inference_mode():
        assert backbone.embed(["word " * 300]).shape == (1, 32)


def test_another_models_tokenizer_with_more_tokens_than_the_model_is_refused(tiny_hf_text_dirs, tmp_path):
    import shutil

    from transformers import AutoTokenizer, BertConfig, BertModel

    from mmrec.errors import WeightsNotFoundError

    folder = tmp_path / "small-vocab-bert"
    BertModel(BertConfig(vocab_size=20000, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(tiny_hf_text_dirs["bert"])).save_pretrained(str(folder))  # 30,522 tokens
    with pytest.raises(WeightsNotFoundError, match="knows 30,522 tokens, more than the model's 20,000"):
        BertBase.load(BertBase.resolve(str(folder), allow_download=False), max_tokens=16)
    shutil.rmtree(folder)


def test_a_texts_vector_does_not_depend_on_the_texts_beside_it(real_text):
    """Padded to the batch's longest text, a vector changed in its last bits with its companions, so a cache filled a
    few items at a time held other vectors than one filled at once (and results followed the cache's history)."""
    import numpy as np

    texts = [("ship sea night " * n).strip() for n in (1, 2, 3, 5, 8)]
    others = [("word " * n).strip() for n in range(1, 40)] + [f"a tale of {n} ships" for n in range(40)]

    def vectors(batch, batch_size):
        batches = iter_text_features(real_text, batch, batch_size)
        return {batch[p]: v for b in batches for p, v in zip(b.positions, b.features)}

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # on several threads the rounding followed the batch size too (32 of 32 texts differed)
    try:
        alone = {text: vectors([text], 32)[text] for text in texts + others[-3:]}
        together = vectors(texts + others, 32)
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(alone[text], together[text]) for text in alone)  # bit for bit
