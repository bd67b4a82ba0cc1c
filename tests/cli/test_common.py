"""The CLI's error block."""

from __future__ import annotations

from mmrec.cli import common
from mmrec.errors import ConfigError


def test_error_text_in_brackets_is_shown_not_read_as_markup():
    with common.err_console.capture() as captured:
        common.render_error(ConfigError("item [i1] is odd", hint="pip install 'mmrec[ann]'"))
    text = " ".join(captured.get().replace("│", " ").split())
    assert "item [i1] is odd" in text and "pip install 'mmrec[ann]'" in text
