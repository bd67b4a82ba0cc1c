"""The `imported` backbone name: vectors given to `mmrec cache import` instead of computed ones.

Registered in both registries (`features.vision_backbone: imported` makes the combo
`imported_<text>`), so settings, `mmrec cache backbones` and completion list it with the others.
It has no weights and embeds nothing: its identity in store keys is "imported:<digest>", read from
what the last import recorded in the combo's meta.json (see imported_vectors.py).
"""

from __future__ import annotations

from typing import ClassVar, NoReturn

from mmrec.errors import FeatureError
from mmrec.features.base import TextBackbone, VisionBackbone
from mmrec.features.store_format import IMPORTED


class ImportedVectors:
    """Shared parts of the two imported "backbones": resolve/load refuse with what to do instead."""

    name: ClassVar[str] = IMPORTED
    modality: ClassVar[str]
    imported: ClassVar[bool] = True
    nominal_dim: ClassVar[int] = 0  # the imported file decides
    default_weights: ClassVar[str] = "vectors given to `mmrec cache import` (per combo)"

    @classmethod
    def _refuse(cls) -> NoReturn:
        raise FeatureError(
            f"The {cls.modality} backbone 'imported' computes no vectors: they come from a file.",
            hint=f"Run `mmrec cache import --modality {cls.modality} FILE` for this config.",
        )

    @classmethod
    def resolve(cls, explicit: str | None, allow_download: bool) -> NoReturn:
        cls._refuse()

    @classmethod
    def load(cls, *args: object) -> NoReturn:
        cls._refuse()


class ImportedVision(ImportedVectors, VisionBackbone):
    """Image vectors imported from a file (e.g. MMRec's image_feat.npy, CLIP embeddings)."""


class ImportedText(ImportedVectors, TextBackbone):
    """Text vectors imported from a file (e.g. MMRec's text_feat.npy, sentence embeddings)."""
