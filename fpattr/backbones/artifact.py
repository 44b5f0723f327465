"""Backbone ``manifpt``: embed the ManiFPT artifact a(x) = x - P(x) of each view.

A view is projected on a real reference (its nearest real patch, see
:mod:`fpattr.manifpt`) and only what is left, the artifact, is embedded; a model's
gallery centroid then summarises the distribution of its artifacts, which is
ManiFPT's definition of a fingerprint. Two feature maps:

* ``spectrum`` (default): the artifact through :class:`SpectrumBackbone`'s code
  path (residual log power spectrum, pooled, radial profile split off). That path
  is linear up to the power spectrum and never clips, so signed artifacts go in as
  they are;
* ``raw``: the flattened artifact, zero-mean and unit-norm (position-dependent,
  like ``marra``: only meaningful for aligned, same-size images).

Embeddings depend on the reference set, so ``id`` names its sha256 prefix and
``sha256`` covers it: a gallery enrolled with one reference refuses another.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fpattr.backbones.base import Backbone, config_sha256
from fpattr.errors import BackboneError
from fpattr.views import l2_normalize

VERSION = 1
FEATURES = ("spectrum", "raw")


class ManifptBackbone(Backbone):
    name = "manifpt"

    def __init__(
        self,
        ref: str | None = None,
        features: str = "spectrum",
        size: int | None = None,
        views: int = 4,
        pool: int = 2,
        index: str | None = None,
        nprobe: int | None = None,
    ) -> None:
        from fpattr.manifpt import ManifptError, RealReference

        if not ref:
            raise BackboneError(
                "the manifpt backbone needs a real reference: build one with "
                "`fpattr artifacts index REAL_DIR --out ref.npz`, then pass "
                "--backbone-opt ref=ref.npz"
            )
        if features not in FEATURES:
            raise BackboneError(f"manifpt features must be one of {FEATURES}, got {features!r}")
        if int(views) < 1:
            raise BackboneError(f"manifpt views must be >= 1, got {views}")
        try:
            self.reference = RealReference.load(str(ref))
            if index is not None or nprobe is not None:
                self.reference.use_search(index, None if nprobe is None else int(nprobe))
            search = self.reference.index().config()
        except ManifptError as exc:
            raise BackboneError(f"manifpt: {exc}") from exc
        s = self.reference.size
        if size is not None and int(size) != s:
            raise BackboneError(
                f"manifpt size {size} differs from the reference's patch size {s}: views are "
                "subtracted from real patches pixel by pixel (build a reference with --size)"
            )
        self.input_size = s
        self.default_views = int(views)
        self.features = features
        self._spectrum = None
        if features == "spectrum":
            from fpattr.backbones.spectrum import SpectrumBackbone

            try:
                self._spectrum = SpectrumBackbone(size=s, views=int(views), pool=int(pool))
            except ValueError as exc:
                raise BackboneError(f"manifpt: {exc}") from exc
        self._config = {
            "name": self.name,
            "version": VERSION,
            "size": s,
            "features": features,
            "reference_sha256": self.reference.sha256,
            "space": self.reference.space,
            "search": search,
        }
        if self._spectrum is not None:
            self._config["spectrum"] = self._spectrum.info()["config"]

    @property
    def id(self) -> str:
        ref = self.reference.sha256[:12]
        return f"manifpt-v{VERSION}-s{self.input_size}-{self.reference.space}-{self.features}-{ref}"

    @property
    def sha256(self) -> str:
        return config_sha256(self._config)

    def embed(self, views: np.ndarray) -> np.ndarray:
        art = self.reference.artifacts(np.asarray(views, dtype=np.float32))
        if self._spectrum is not None:
            return self._spectrum.embed(art)
        flat = art.reshape(len(art), -1).astype(np.float64)
        flat -= flat.mean(axis=1, keepdims=True)
        l2_normalize(flat, out=flat)
        return flat.astype(np.float32)

    def info(self) -> dict[str, Any]:
        ref = self.reference
        where = {"path": str(ref.path) if ref.path else None, "n_patches": len(ref)}
        return {**super().info(), "config": dict(self._config), "reference": where}
