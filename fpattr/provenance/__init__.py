"""Provenance: what an image file claims about its origin, beside the fingerprint.

Read from the file's metadata only (C2PA manifests through the optional ``c2pa-python``,
IPTC/XMP DigitalSourceType, PNG text chunks of generation tools, EXIF Software/Make/Model/
Artist). It never changes a fingerprint score or decision; :func:`with_decision` states
whether the two agree.

    >>> from fpattr.provenance import read_provenance
    >>> read_provenance("image.png")["claimed_generator"]            # doctest: +SKIP
    'Stable Diffusion (model: v1-5-pruned)'
"""

from __future__ import annotations

from fpattr.provenance.c2pa_check import NOT_CHECKED, TRUST_ENV
from fpattr.provenance.read import (
    agrees,
    describe,
    empty_record,
    is_ai_source_type,
    read_provenance,
    source_type_label,
    with_decision,
)

__all__ = [
    "NOT_CHECKED",
    "TRUST_ENV",
    "agrees",
    "describe",
    "empty_record",
    "is_ai_source_type",
    "read_provenance",
    "source_type_label",
    "with_decision",
]
