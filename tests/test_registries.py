"""Registry: names in a fixed order, filled by its provider modules on first use, clear errors."""

import sys

import pytest

from mmrec.errors import ConfigError
from mmrec.registry import Registry


@pytest.fixture
def providers(tmp_path, monkeypatch):
    """Two importable modules that register 'b' and 'a' (in that order) in `registry`."""
    registry = Registry("widget", providers=("widgets_two", "widgets_one"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "REGISTRY", registry, raising=False)
    (tmp_path / "widgets_one.py").write_text(
        f"from {__name__} import REGISTRY\n@REGISTRY.register('a')\nclass A: pass\n"
    )
    (tmp_path / "widgets_two.py").write_text(
        f"from {__name__} import REGISTRY\n@REGISTRY.register('c')\nclass C: pass\n"
        "@REGISTRY.register('b')\nclass B: pass\n"
    )
    yield registry
    for name in ("widgets_one", "widgets_two"):
        sys.modules.pop(name, None)


def test_providers_are_imported_on_first_use_only(providers):
    assert "widgets_one" not in sys.modules
    assert "a" in providers and "widgets_one" in sys.modules and "widgets_two" in sys.modules


def test_names_follow_provider_order_whatever_the_import_order(providers):
    import widgets_one  # noqa: F401  (imported first: 'a' is registered before 'c' and 'b')

    assert providers.names() == ["c", "b", "a"] and list(providers) == ["c", "b", "a"]


def test_unknown_name_errors_list_the_registered_names(providers):
    with pytest.raises(ConfigError, match="Unknown widget 'z'") as info:
        providers.get("z")
    assert info.value.hint == "Choose one of: c, b, a."
    with pytest.raises(ValueError, match="unknown widget 'z'; registered: c, b, a"):
        providers.check("z")
    assert providers.check("b") == "b"


def test_declared_names_are_checked_without_importing_the_providers(providers):
    declared = Registry("widget", providers=providers.providers, declared=("c", "b", "a"))
    assert declared.check("a") == "a" and "b" in declared and "z" not in declared
    with pytest.raises(ValueError, match="unknown widget 'z'; registered: c, b, a"):
        declared.check("z")
    assert "widgets_one" not in sys.modules and "widgets_two" not in sys.modules


def test_a_name_registered_twice_is_refused():
    registry = Registry("widget")
    registry.register("x")(object)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("x")(int)
