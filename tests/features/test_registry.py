from mmrec.features.registry import TEXT_BACKBONES, VISION_BACKBONES, backbone_availability
from mmrec.settings import TEXT_BACKBONES as TEXT_NAMES
from mmrec.settings import VISION_BACKBONES as VISION_NAMES


def test_registries_match_the_settings_names():
    assert sorted(VISION_BACKBONES.names()) == sorted(VISION_NAMES)
    assert sorted(TEXT_BACKBONES.names()) == sorted(TEXT_NAMES)


def test_every_backbone_declares_dim_and_default_source():
    for registry in (VISION_BACKBONES, TEXT_BACKBONES):
        for name in registry:
            cls = registry.get(name)
            assert cls.name == name and cls.nominal_dim > 0 and cls.default_weights


def test_availability_lists_every_backbone_and_finds_the_offline_defaults():
    rows = {(row.modality, row.name): row for row in backbone_availability()}
    assert len(rows) == len(VISION_NAMES) + len(TEXT_NAMES)
    assert rows[("vision", "efficientnet-lite")].available and rows[("vision", "efficientnet-lite")].dim == 1280
    assert rows[("text", "sentence-bert")].available and rows[("text", "sentence-bert")].dim == 384
