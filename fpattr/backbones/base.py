"""The backbone contract (how a name becomes a backbone: :mod:`fpattr.backbones.resolve`).

A backbone maps views (N, S, S, 3) float32 in [0, 1] to embeddings (N, D). Its
``id`` and ``sha256`` identify exactly which weights/configuration produced an
embedding: galleries are bound to them so that embeddings of two different
extractors are never compared.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy stays out of `fpattr --help` (plugins import this module)
    import numpy as np


class Backbone(ABC):
    """Base class for backbones (subclass it in plugins too)."""

    #: registry name, e.g. "spectrum"
    name: str = ""
    #: side of the square views the backbone consumes
    input_size: int = 64
    #: number of views per image by default
    default_views: int = 4
    #: views per inference batch by default (batched across images)
    batch_size: int = 64

    @property
    @abstractmethod
    def id(self) -> str:
        """Human-readable identity incl. version and config (e.g. ``spectrum-v1-s64``)."""

    @property
    @abstractmethod
    def sha256(self) -> str:
        """Digest of the weights (model file) or of the full configuration."""

    @property
    def embedding_dim(self) -> int:
        import numpy as np

        return int(
            self.embed(np.zeros((1, self.input_size, self.input_size, 3), np.float32)).shape[1]
        )

    @abstractmethod
    def embed(self, views: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) float32 in [0, 1] -> (N, D) float32 (not necessarily normalised)."""

    def calibration(self) -> dict[str, Any] | None:
        """Shipped calibration ({"centroid": {...}, "pair": {...}}) or None."""
        return None

    def info(self) -> dict[str, Any]:
        """What the run manifest records about this backbone."""
        return {
            "name": self.name,
            "id": self.id,
            "sha256": self.sha256,
            "input_size": self.input_size,
            "default_views": self.default_views,
        }


def config_sha256(config: dict[str, Any]) -> str:
    """Stable digest of a JSON-able configuration (for training-free backbones)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def __getattr__(name: str) -> Any:
    """``create_backbone`` and ``resolve_backbone_name`` live in :mod:`fpattr.backbones.resolve`
    (which imports this module, not the other way round); still importable from here."""
    if name in ("create_backbone", "resolve_backbone_name"):
        from fpattr.backbones import resolve

        return getattr(resolve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
