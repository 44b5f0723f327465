"""Safe input layer: find inputs, decode untrusted images defensively, write outputs atomically.

Everything a user can get wrong here (missing paths, hostile or broken files) comes back as an
:class:`~fpattr.errors.ImageLoadError` value or an :class:`InputItem` error, never a traceback.
"""

from __future__ import annotations

from fpattr.io.atomic import atomic_open, atomic_write_bytes, atomic_write_text, file_lock
from fpattr.io.loader import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    MAX_FILE_BYTES,
    MAX_SIDE,
    SUPPORTED_FORMATS,
    LoadedImage,
    NotAnImageError,
    SkippedInputError,
    load_image,
    sha256_file,
)
from fpattr.io.prefetch import iter_loaded
from fpattr.io.walk import InputItem, iter_inputs

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_FILE_BYTES",
    "MAX_SIDE",
    "SUPPORTED_FORMATS",
    "InputItem",
    "LoadedImage",
    "NotAnImageError",
    "SkippedInputError",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_lock",
    "iter_inputs",
    "iter_loaded",
    "load_image",
    "sha256_file",
]
