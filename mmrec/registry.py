"""Name -> class registries (timm style) for backbones and recommenders: the one list of their names.

Classes register themselves where they are defined (`@VISION_BACKBONES.register("resnet")` in
mmrec/features/vision.py). The registries are declared here, in the bottom layer, so that settings
can check a configured name without importing the layers above at import time: each registry
knows the modules that fill it and imports them the first time its names are asked for. A registry may also
declare its names up front (`declared`), so that checking a name imports nothing (the backbones: their modules
import torch, seconds that `cache list` or `config show` would otherwise spend); a test checks that the declared
names are the registered ones.
`mmrec cache backbones`, shell completion, settings validation and the parametrized tests all
iterate these registries.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of classes; `@registry.register("name")` adds one.

    `providers` are the modules whose import registers the entries; any lookup imports them first, except
    `check` and `in` when `declared` lists the names (in `names()` order).
    """

    def __init__(self, kind: str, providers: tuple[str, ...] = (), declared: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.providers = providers
        self.declared = declared
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # set first: a provider that asks for names while importing sees its own
        try:
            for module in self.providers:
                importlib.import_module(module)
        except BaseException:
            self._loaded = False
            raise

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            from mmrec.errors import ConfigError

            raise ConfigError(
                f"Unknown {self.kind} {name!r}.",
                hint=f"Choose one of: {', '.join(self.names())}.",
            ) from None

    def check(self, name: str) -> str:
        """`name` if registered, else ValueError listing the registered names (for pydantic validators)."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.declared or self.names())}")
        return name

    def names(self) -> list[str]:
        """Registered names in a fixed order: by provider module, then as registered in it.

        (Import order would otherwise decide it, e.g. the column order of `evaluate --compare`.)
        """
        self._load()
        entries = list(self._entries.items())

        def rank(position: int) -> tuple[int, int]:
            module = getattr(entries[position][1], "__module__", None)
            found = self.providers.index(module) if module in self.providers else len(self.providers)
            return found, position

        return [entries[i][0] for i in sorted(range(len(entries)), key=rank)]

    def __contains__(self, name: object) -> bool:
        if self.declared:
            return name in self.declared
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


VISION_BACKBONES: Registry[type] = Registry(
    "vision backbone",
    providers=("mmrec.features.vision",),
    declared=("efficientnet-lite", "resnet", "convnext", "clip", "dino", "imported"),
)
TEXT_BACKBONES: Registry[type] = Registry(
    "text backbone",
    providers=("mmrec.features.text",),
    declared=("sentence-bert", "bert", "roberta", "mpnet", "clip", "imported"),
)
RECOMMENDERS: Registry[type] = Registry(
    "recommender",
    providers=(
        "mmrec.recommenders.multimodal",
        "mmrec.recommenders.random",
        "mmrec.recommenders.popularity",
        "mmrec.recommenders.knn",
    ),
)
