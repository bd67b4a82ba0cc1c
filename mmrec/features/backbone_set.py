"""The two backbones of a combo: their weights identities (cheap) and their models (loaded on use)."""

from __future__ import annotations

from mmrec.device import resolve_device
from mmrec.errors import WeightsNotFoundError
from mmrec.features.base import Backbone
from mmrec.features.feature_store import FeatureStore
from mmrec.features.file_digests import FileDigests
from mmrec.features.imported_vectors import imported_record
from mmrec.features.registry import TEXT_BACKBONES, VISION_BACKBONES
from mmrec.features.store_format import IMPORTED
from mmrec.features.weights import weights_id
from mmrec.settings import FeaturesSettings


class BackboneSet:
    """The combo's two backbones: weights ids resolved cheaply, models loaded only when needed."""

    def __init__(self, features: FeaturesSettings, store: FeatureStore, digests: FileDigests,
                 loaded: dict[str, Backbone] | None = None) -> None:
        self.features = features
        self.store = store
        self.digests = digests
        self.loaded: dict[str, Backbone] = dict(loaded or {})
        self.sources: dict = {}
        self.errors: dict[str, WeightsNotFoundError] = {}
        self._key_parts: dict[str, tuple[str, str | None]] = {}
        self._imported: dict[str, dict | None] = {}

    def backbone_class(self, modality: str) -> type[Backbone]:
        if modality in self.loaded:
            return type(self.loaded[modality])
        if modality == "vision":
            return VISION_BACKBONES.get(self.features.vision_backbone)
        return TEXT_BACKBONES.get(self.features.text_backbone)

    def is_imported(self, modality: str) -> bool:
        """True when the modality's vectors come from `mmrec cache import` (backbone `imported`)."""
        return self.backbone_class(modality).imported

    def imported_record(self, modality: str) -> dict | None:
        """What the last import recorded for `modality` (None: nothing imported into this combo); read
        once, so keys and dims come from the same import even if another one lands meanwhile."""
        if modality not in self._imported:
            self._imported[modality] = imported_record(self.store.read_meta(), modality)
        return self._imported[modality]

    def key_part(self, modality: str) -> tuple[str, str | None]:
        """(backbone name, weights id) for keys; falls back to the store's record when no weights are here.
        An imported modality's weights id is the last import's identity (None before any import)."""
        if modality not in self._key_parts:
            self._key_parts[modality] = self._resolve_key_part(modality)
        return self._key_parts[modality]

    def _resolve_key_part(self, modality: str) -> tuple[str, str | None]:
        if self.is_imported(modality):
            record = self.imported_record(modality)
            return IMPORTED, record["weights_id"] if record else None
        if modality in self.loaded:
            backbone = self.loaded[modality]
            max_tokens = getattr(backbone, "max_tokens", None)
            return backbone.name, weights_id(backbone.source, self.digests, max_tokens)
        cls = self.backbone_class(modality)
        explicit = self.explicit_weights(modality)
        max_tokens = self.features.max_text_tokens if modality == "text" else None
        try:
            source = cls.resolve(explicit, self.features.allow_download)
        except WeightsNotFoundError as error:
            recorded = self.store.read_meta().get(modality, {})
            # Vectors made earlier (maybe on another machine) by this backbone's default weights, with this token
            # limit, stay usable; computing new ones will fail. Vectors of weights someone named (a local folder)
            # are not what the default weights would make: they are never served in their place.
            same = (not explicit and recorded.get("backbone") == cls.name and recorded.get("default_weights") is True
                    and str(recorded.get("weights_id", "")).endswith(f"@t{max_tokens}" if max_tokens else ""))
            if not same:
                raise
            self.errors[modality] = error
            return cls.name, recorded["weights_id"]
        self.sources[modality] = source
        return cls.name, weights_id(source, self.digests, max_tokens)

    def explicit_weights(self, modality: str) -> str | None:
        """The weights the settings name for `modality` (features.vision_weights / text_weights), or None for the
        backbone's default ones."""
        return self.features.vision_weights if modality == "vision" else self.features.text_weights

    def get(self, modality: str) -> Backbone:
        """The loaded model (loads it on first use, on features.device)."""
        if modality not in self.loaded:
            if modality in self.errors:
                raise self.errors[modality]
            cls = self.backbone_class(modality)
            source = self.sources[modality]
            device = resolve_device(self.features.device, "features.device")  # not the command's --device
            backbone = cls.load(source) if modality == "vision" else cls.load(source, self.features.max_text_tokens)
            self.loaded[modality] = backbone.to(device)
        return self.loaded[modality]

    def nominal_dim(self, modality: str) -> int:
        if self.is_imported(modality):
            record = self.imported_record(modality)
            return int(record["dim"]) if record else 0
        if modality in self.loaded:
            return self.loaded[modality].dim
        return self.backbone_class(modality).nominal_dim
