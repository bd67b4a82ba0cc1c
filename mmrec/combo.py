"""The one rule for feature-combo names, shared by the feature store and the checkpoints.

A combo names a folder (`cache/{combo}/`, `checkpoints/{combo}/`), so it must be a single safe path
component: `<vision>_<text>`, each part letters, digits, '.' and '-', starting with a letter or
digit, no '..' anywhere, at most 120 characters.
"""

from __future__ import annotations

import re

from mmrec.errors import ConfigError, MmrecError

COMBO_NAME = re.compile(r"^(?!.*\.\.)(?=.{3,120}$)[A-Za-z0-9][A-Za-z0-9.-]*_[A-Za-z0-9][A-Za-z0-9.-]*$")


def check_combo_name(combo: str, error: type[MmrecError] = ConfigError) -> str:
    """`combo` if it follows the rule, else `error` (the caller's error class) saying what a combo is."""
    if not isinstance(combo, str) or not COMBO_NAME.match(combo):
        raise error(
            f"{combo!r} is not a valid feature combo name.",
            hint="A combo is '<vision>_<text>' (letters, digits, '.', '-'), e.g. "
                 "efficientnet-lite_sentence-bert (see `mmrec cache list`).",
        )
    return combo
