"""What the feature store holds: keys naming content + backbone + weights, and float16 values.

Values are never pickled: each is `header + float16 bytes`. Header (8 bytes): b"MF", version 1,
dtype code b"e" (float16), uint32 little-endian dim. A header with dim 0 followed by UTF-8 text marks
an input that could not be read (e.g. a corrupt image); its key carries the content fingerprint, so
a repaired input has a new key and is tried again.
"""

from __future__ import annotations

import struct

import numpy as np

from mmrec.errors import FeatureError

_HEADER = struct.Struct("<2sBcI")
HEADER_SIZE = _HEADER.size  # 8
# Fingerprint of an image file that could not be read at all (missing, no permission): once the
# file can be read its fingerprint becomes its content hash, a new key.
UNREADABLE = "unreadable"
# The backbone name of vectors given to `mmrec cache import` (imported_backbone.py), here where no torch is
# imported, so that listing a store does not load torch.
IMPORTED = "imported"


def value_header(dim: int) -> bytes:
    """The 8 header bytes every `dim`-d vector value starts with."""
    return _HEADER.pack(b"MF", 1, b"e", dim)


def encode_vector(vector: np.ndarray) -> bytes:
    """[dim] array -> header + float16 bytes."""
    flat = np.ascontiguousarray(vector, dtype=np.float16).reshape(-1)
    return value_header(flat.size) + flat.tobytes()


def encode_failure(reason: str) -> bytes:
    return value_header(0) + reason.encode("utf-8", "replace")[:500]


def is_failure(value: bytes) -> bool:
    """True for a "could not read" marker (dim 0)."""
    return len(value) >= HEADER_SIZE and _HEADER.unpack_from(value)[3] == 0


def decode_value(value: bytes) -> tuple[int, np.ndarray | str]:
    """(dim, vector) for a vector, (0, reason) for a failure marker; FeatureError if not ours."""
    if len(value) < HEADER_SIZE:
        raise FeatureError("Corrupt feature-store entry (too short).", hint="Run `mmrec cache clear` for this combo.")
    magic, version, code, dim = _HEADER.unpack_from(value)
    if magic != b"MF" or version != 1 or code != b"e":
        raise FeatureError("Corrupt feature-store entry (bad header).", hint="Run `mmrec cache clear` for this combo.")
    if dim == 0:
        return 0, value[HEADER_SIZE:].decode("utf-8", "replace")
    if len(value) != HEADER_SIZE + 2 * dim:
        raise FeatureError("Corrupt feature-store entry (wrong length).", hint="Run `mmrec cache clear` for this combo.")
    return dim, np.frombuffer(value, np.float16, offset=HEADER_SIZE)


def make_key(modality: str, backbone: str, weights_id: str, item_id: str, fingerprint: str) -> str:
    """Feature key: any change of content, backbone or weights gives a new key (nothing stale served)."""
    return f"{modality}|{backbone}|{weights_id}|{item_id}|{fingerprint}"


def split_key(key: str) -> tuple[str, str, str, str, str]:
    """Inverse of make_key (item ids may contain '|': modality/backbone/weights lead, fingerprint ends)."""
    modality, backbone, weights_id, rest = key.split("|", 3)
    item_id, _, fingerprint = rest.rpartition("|")
    return modality, backbone, weights_id, item_id, fingerprint


def key_prefix(key: str) -> str:
    """`modality|backbone|weights_id` of a key (the vectors one backbone made)."""
    return "|".join(key.split("|", 3)[:3])
