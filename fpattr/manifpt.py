"""ManiFPT artifacts (Song, Khayatkhoei, AbdAlmageed, CVPR 2024): a(x) = x - P(x).

P(x) is the projection of x on the real-data manifold, estimated as its nearest
real sample. A real image has (close to) zero artifact; what a generator adds or
misses is left in a(x), and a model's fingerprint is the distribution of its
artifacts. Here the "real samples" are fixed-size patches of real photos cropped at
native resolution (never resized: resampling would change exactly the
high-frequency content that is being measured), so a view of the same size as the
patches can be projected and subtracted pixel by pixel.

The nearest neighbour can be searched in three spaces (``pixel``, ``frequency``,
``embedding``); the artifact itself is always the pixel difference. Every space
used here ignores a per-channel brightness offset, so the projection is the
nearest patch shifted to the view's per-channel mean (``align_mean``): in pixel
space the search distance is then exactly the artifact's L2 norm.

A :class:`RealReference` is stored as one ``.npz`` (no pickle) whose JSON metadata
carries the sha256 of the content, so galleries built on artifacts can be bound to
the exact reference set (see :mod:`fpattr.backbones.artifact`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fpattr import signal
from fpattr.errors import FpattrError
from fpattr.views import l2_normalize

SCHEMA = "fpattr.manifpt-ref/1"
SPACES = ("pixel", "frequency", "embedding")
METRICS = ("l2", "cosine")
INDEX_KINDS = ("auto", "exact", "ivf")
ANN_BACKENDS = ("auto", "numpy", "faiss", "hnswlib")
STRATEGIES = ("random", "grid")
DTYPES = ("auto", "uint8", "float16", "float32")
FREQ_INPUTS = ("patch", "residual")
#: ``index="auto"`` switches from exact search to the approximate index at this size.
AUTO_EXACT_MAX = 50_000
#: the approximate index's coarse quantiser works on a PCA to this many dims
DEFAULT_PROJ_DIM = 128
DEFAULT_NPROBE = 8
_META_KEY = "manifpt.json"
_FREQ_EPS = 1e-3  # ~8-bit quantisation noise per orthonormal FFT coefficient
_CHUNK_BYTES = 64 << 20  # float32 working set of one search block
#: keep the float32 search matrix in memory when it is at most this big
DEFAULT_CACHE_BYTES = 512 << 20


class ManifptError(FpattrError):
    """A real reference is missing, corrupt, or inconsistent with its options."""


def _choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ManifptError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


# ------------------------------------------------------------------------------- descriptors


def as_float(patches: np.ndarray) -> np.ndarray:
    """Stored patches (uint8 / float16 / float32) -> float32 in [0, 1]."""
    if patches.dtype == np.uint8:
        return patches.astype(np.float32) * np.float32(1 / 255)
    return patches.astype(np.float32)


def centre(x: np.ndarray) -> np.ndarray:
    """Subtract each patch's per-channel mean: (N, S, S, 3) -> same shape, float32."""
    x = np.asarray(x, dtype=np.float32)
    return x - x.mean(axis=(1, 2), keepdims=True)


def frequency_descriptor(x: np.ndarray, freq_input: str = "patch") -> np.ndarray:
    """Log-magnitude spectrum of the luma (or of its noise residual), half plane, DC dropped.

    Orthonormal FFT so magnitudes are in pixel units and ``_FREQ_EPS`` sits at 8-bit
    quantisation noise; rows are mean-centred (a global gain is not content).
    """
    g = signal.to_gray(np.asarray(x, dtype=np.float32))
    if freq_input == "residual":
        g = signal.residual(g)
    g = g - g.mean(axis=(1, 2), keepdims=True)
    mag = np.abs(np.fft.rfft2(g, norm="ortho")).astype(np.float32)
    d = np.log(mag + np.float32(_FREQ_EPS)).reshape(len(g), -1)
    d[:, 0] = np.log(np.float32(_FREQ_EPS))  # DC is zero after centring
    return (d - d.mean(axis=1, keepdims=True)).astype(np.float32)


def space_backbone(name: str, options: dict[str, Any], size: int) -> Any:
    """The backbone of the ``embedding`` space, consuming views of exactly ``size`` px."""
    from fpattr.backbones.resolve import create_backbone
    from fpattr.errors import BackboneError

    if name == "manifpt":
        raise ManifptError("the embedding space cannot use the manifpt backbone itself")
    try:
        bb = create_backbone(name, **{"size": size, **options})
    except BackboneError:
        if "size" in options:
            raise
        bb = create_backbone(name, **options)  # a backbone without a ``size`` option
    if bb.input_size != size:
        raise ManifptError(
            f"backbone {name!r} consumes {bb.input_size} px views but the patches are {size} px: "
            f"pass --size {bb.input_size} or a backbone option that sets its size"
        )
    return bb


def describe(
    patches: np.ndarray, space: str, *, freq_input: str = "patch", backbone: Any = None
) -> np.ndarray:
    """(N, S, S, 3) float32 in [0, 1] -> (N, D) float32 search descriptors in ``space``."""
    x = np.asarray(patches, dtype=np.float32)
    if space == "pixel":
        return centre(x).reshape(len(x), -1)
    if space == "frequency":
        return frequency_descriptor(x, freq_input)
    if space == "embedding":
        if backbone is None:
            raise ManifptError("the embedding space needs a backbone")
        e = np.asarray(backbone.embed(x), dtype=np.float32)
        return l2_normalize(e)
    raise ManifptError(f"space must be one of {', '.join(SPACES)}; got {space!r}")


# ------------------------------------------------------------------------- nearest neighbours

Rows = Callable[[Any], np.ndarray]  # slice or index array -> (m, D) float32 descriptors


class NeighbourIndex:
    """Nearest-neighbour search over N descriptors, exact or approximate (IVF).

    Descriptors are read through ``rows(selection)`` so that the pixel space never
    needs an (N, S*S*3) float32 copy of them. The hot loops read ``dot_rows``
    instead: rows whose dot product with any query equals the descriptor's (for
    the pixel space, the un-centred patch: a centred query is orthogonal to the
    per-channel means); when all of them fit in ``cache_bytes`` they are read once
    and kept. Distances returned are Euclidean for ``l2`` and ``1 - cos`` for
    ``cosine``, recomputed directly for the winners (no cancellation error from the
    |q|^2 + |d|^2 - 2 q.d expansion used to rank).

    ``kind="ivf"`` is an inverted file: a PCA to ``proj_dim`` dims (randomised SVD of
    a seeded sample), k-means cells on it, and an exact
    re-ranking of the rows in the ``nprobe`` nearest cells. ``ann="faiss"`` /
    ``"hnswlib"`` use those libraries instead (optional, never required).
    """

    def __init__(
        self,
        rows: Rows,
        n: int,
        metric: str = "l2",
        *,
        kind: str = "exact",
        ann: str = "numpy",
        nlist: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
        proj_dim: int = DEFAULT_PROJ_DIM,
        seed: int = 0,
        state: dict[str, np.ndarray] | None = None,
        sq_norms: np.ndarray | None = None,
        dot_rows: Rows | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if n < 1:
            raise ManifptError("cannot index an empty reference")
        self.rows, self.n = rows, int(n)
        self.metric = _choice("metric", metric, METRICS)
        self.kind = _choice("index", kind, ("exact", "ivf"))
        self.ann = _choice("ann", ann, ANN_BACKENDS[1:]) if kind == "ivf" else "none"
        self.nlist = min(self.n, int(nlist or max(1, round(math.sqrt(self.n)))))
        self.nprobe = max(1, min(int(nprobe), self.nlist))
        self.proj_dim, self.seed = int(proj_dim), int(seed)
        self.dim = int(self.rows(slice(0, 1)).shape[1])
        self.block = max(1, min(self.n, _CHUNK_BYTES // (4 * self.dim)))
        if sq_norms is None:
            sq_norms = np.concatenate([np.einsum("ij,ij->i", b, b) for _, b in self._blocks()])
        self.sq_norms = np.asarray(sq_norms, np.float32)
        if len(self.sq_norms) != self.n:
            raise ManifptError(f"{len(self.sq_norms)} norms for {self.n} rows")
        self._dot_rows = dot_rows or rows
        self._cache: np.ndarray | None = None
        if self.n * self.dim * 4 <= cache_bytes:
            self._cache = np.concatenate(
                [self._dot_rows(slice(i, i + self.block)) for i in range(0, self.n, self.block)]
            )
        self._ext: Any = None
        self.state: dict[str, np.ndarray] = {}
        if self.kind == "ivf" and self.ann == "numpy":
            self.state = dict(state) if state else self._build_ivf()
        elif self.kind == "ivf":
            if not _importable(self.ann):
                raise ManifptError(
                    f"this index uses the optional {self.ann!r} package, which is not installed: "
                    "install it, or search exactly (backbone option index=exact)"
                )
            self._ext = self._build_external()

    @classmethod
    def from_array(cls, data: np.ndarray, metric: str = "l2", **kwargs: Any) -> NeighbourIndex:
        """An index over an in-memory (N, D) array (float32 rows read on demand)."""
        x = np.asarray(data)
        if x.dtype == np.float32:  # rows are views or cheap gathers: nothing to cache
            kwargs.setdefault("cache_bytes", 0)
            return cls(lambda sel: x[sel], len(x), metric, **kwargs)
        return cls(lambda sel: x[sel].astype(np.float32), len(x), metric, **kwargs)

    def config(self) -> dict[str, Any]:
        """The search settings that decide results (recorded where results are bound)."""
        if self.kind == "exact":
            return {"kind": "exact", "metric": self.metric}
        out = {"kind": "ivf", "ann": self.ann, "metric": self.metric, "nlist": self.nlist}
        out.update(nprobe=self.nprobe, seed=self.seed)
        if self.ann == "numpy":
            out["proj_dim"] = int(self.state["proj"].shape[1]) if "proj" in self.state else 0
        return out

    # -- search -----------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) descriptors -> (indices (Q, k) int64, distances (Q, k) float32), best first."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise ManifptError(f"query descriptors have {q.shape[1]} dims, the index {self.dim}")
        k = max(1, min(int(k), self.n))
        if self.kind == "exact":
            idx = self._exact(q, k)
        elif self._ext is not None:
            idx = np.asarray(self._ext(q, k), np.int64)
            short = (idx < 0).any(axis=1)  # faiss pads with -1 when the probed cells are short
            if short.any():
                idx[short] = self._exact(q[short], k)
        else:
            idx = self._ivf(q, k)
        return self._refine(q, idx)

    def _blocks(self, dots: bool = False) -> Iterable[tuple[int, np.ndarray]]:
        """(start, float32 rows) blocks of at most ``_CHUNK_BYTES``; ``dots``: dot rows."""
        for i in range(0, self.n, self.block):
            sel = slice(i, min(self.n, i + self.block))
            yield i, self._dots(sel) if dots else self.rows(sel)

    def _dots(self, sel: Any) -> np.ndarray:
        return self._cache[sel] if self._cache is not None else self._dot_rows(sel)

    def _scores(self, q: np.ndarray, qsq: np.ndarray, d: np.ndarray, dsq: np.ndarray) -> np.ndarray:
        """Smaller is nearer: squared L2 (expanded) or minus the cosine."""
        dots = q @ d.T
        if self.metric == "l2":
            return qsq[:, None] + dsq[None, :] - 2 * dots
        return -dots / np.sqrt(np.maximum(qsq[:, None] * dsq[None, :], 1e-24))

    def _exact(self, q: np.ndarray, k: int) -> np.ndarray:
        qsq = np.einsum("ij,ij->i", q, q)
        best_s = np.zeros((len(q), 0), np.float32)
        best_i = np.zeros((len(q), 0), np.int64)
        for start, d in self._blocks(dots=True):
            s = self._scores(q, qsq, d, self.sq_norms[start : start + len(d)])
            ids = np.broadcast_to(np.arange(start, start + len(d)), s.shape)
            best_s = np.concatenate([best_s, s], axis=1)
            best_i = np.concatenate([best_i, ids], axis=1)
            if best_s.shape[1] > k:
                part = np.argpartition(best_s, k - 1, axis=1)[:, :k]
                best_s = np.take_along_axis(best_s, part, 1)
                best_i = np.take_along_axis(best_i, part, 1)
        return best_i

    def _project(self, x: np.ndarray) -> np.ndarray:
        return self._project_rows(x, self.state.get("proj"))

    def _project_rows(self, x: np.ndarray, proj: np.ndarray | None) -> np.ndarray:
        """Coarse-quantiser space: unit rows for cosine, then the stored basis (if any)."""
        if self.metric == "cosine":
            x = l2_normalize(x)
        return x if proj is None or proj.size == 0 else x @ proj

    def _build_ivf(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        if self.dim > self.proj_dim:
            proj = self._pca_basis(rng)
        else:
            proj = np.zeros((0, 0), np.float32)  # identity: already low-dimensional
        self.state = {"proj": proj}
        z = np.concatenate([self._project(d) for _, d in self._blocks()]).astype(np.float32)
        sample = z if len(z) <= 256 * self.nlist else z[rng.choice(len(z), 256 * self.nlist, False)]
        cents = _kmeans(sample, self.nlist, rng)
        assign = _assign(z, cents)
        order = np.argsort(assign, kind="stable").astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(assign, minlength=self.nlist))])
        return {
            "proj": proj,
            "centroids": cents,
            "order": order,
            "offsets": offsets.astype(np.int64),
        }

    def _pca_basis(self, rng: np.random.Generator, n_sample: int = 2048) -> np.ndarray:
        """(D, proj_dim) top principal directions of a row sample (randomised SVD).

        Patches and spectra have most of their variance in few directions, which a
        PCA keeps and a random projection smears over all of its dims: cells on
        the PCA follow the data, so fewer probes reach the true neighbour.
        """
        sel = np.sort(rng.choice(self.n, min(self.n, n_sample), replace=False))
        x = self._project_rows(self.rows(sel), None)
        x = x - x.mean(axis=0, keepdims=True)
        k = min(self.proj_dim, len(x))
        y = x @ rng.standard_normal((self.dim, min(self.dim, k + 16))).astype(np.float32)
        for _ in range(2):  # power iterations sharpen the spectrum's head
            y = x @ (x.T @ _orthonormal(y))
        b = _orthonormal(y).T @ x  # (l, D): x's rows expressed in the captured subspace
        w, u = np.linalg.eigh((b @ b.T).astype(np.float64))
        top = np.argsort(w)[::-1][:k]
        vt = (u[:, top].T @ b) / np.sqrt(np.maximum(w[top], 1e-30))[:, None]
        return np.ascontiguousarray(vt.T, dtype=np.float32)

    def _ivf(self, q: np.ndarray, k: int) -> np.ndarray:
        """Probe the ``nprobe`` nearest cells, batched by cell: one gather and one matrix
        product per probed cell for all the queries probing it (not one per query)."""
        cents, order, offsets = self.state["centroids"], self.state["order"], self.state["offsets"]
        z = self._project(q)
        cell = np.einsum("ij,ij->i", cents, cents)[None, :] - 2 * z @ cents.T
        probes = np.argpartition(cell, self.nprobe - 1, axis=1)[:, : self.nprobe]
        qsq = np.einsum("ij,ij->i", q, q)
        best_s = np.full((len(q), k), np.inf, np.float32)
        best_i = np.full((len(q), k), -1, np.int64)
        flat_q = np.repeat(np.arange(len(q)), probes.shape[1])
        by_cell = np.argsort(probes.ravel(), kind="stable")
        cells, starts = np.unique(probes.ravel()[by_cell], return_index=True)
        ends = np.append(starts[1:], len(by_cell))
        for c, a, b in zip(cells, starts, ends, strict=True):
            rows = order[offsets[c] : offsets[c + 1]]
            if len(rows) == 0:
                continue
            qi = flat_q[by_cell[a:b]]  # each query probes a cell at most once
            s = self._scores(q[qi], qsq[qi], self._dots(rows), self.sq_norms[rows])
            ms = np.concatenate([best_s[qi], s], axis=1)
            mi = np.concatenate([best_i[qi], np.broadcast_to(rows, s.shape)], axis=1)
            part = np.argpartition(ms, k - 1, axis=1)[:, :k]
            best_s[qi] = np.take_along_axis(ms, part, 1)
            best_i[qi] = np.take_along_axis(mi, part, 1)
        short = (best_i < 0).any(axis=1)  # fewer than k rows in the probed cells
        if short.any():
            best_i[short] = self._exact(q[short], k)
        return best_i

    def _build_external(self) -> Callable[[np.ndarray, int], np.ndarray]:
        x = np.concatenate([d for _, d in self._blocks()]).astype(np.float32)
        if self.metric == "cosine":
            l2_normalize(x, out=x)
        if self.ann == "faiss":
            import faiss  # type: ignore[import-not-found]

            ip = self.metric == "cosine"
            quant = faiss.IndexFlatIP(self.dim) if ip else faiss.IndexFlatL2(self.dim)
            metric = faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2
            index = faiss.IndexIVFFlat(quant, self.dim, self.nlist, metric)
            index.train(x)
            index.add(x)
            index.nprobe = self.nprobe

            def search(q: np.ndarray, k: int) -> np.ndarray:
                if ip:
                    q = l2_normalize(q)
                return index.search(np.ascontiguousarray(q, np.float32), k)[1].astype(np.int64)

            return search
        import hnswlib  # type: ignore[import-not-found]

        index = hnswlib.Index(space="cosine" if self.metric == "cosine" else "l2", dim=self.dim)
        index.init_index(max_elements=self.n, ef_construction=200, M=16, random_seed=self.seed)
        index.add_items(x, np.arange(self.n))
        index.set_ef(max(50, 8 * self.nprobe))

        def search_h(q: np.ndarray, k: int) -> np.ndarray:
            return np.asarray(index.knn_query(q, k=k)[0], np.int64)

        return search_h

    def _refine(self, q: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact distances of the chosen rows, then sort each query's k results."""
        idx = np.asarray(idx, np.int64)
        dist = np.empty(idx.shape, np.float32)
        for j in range(idx.shape[1]):
            d = self.rows(idx[:, j])
            if self.metric == "l2":
                dist[:, j] = np.linalg.norm(q - d, axis=1)
            else:
                num = np.einsum("ij,ij->i", q, d)
                den = np.linalg.norm(q, axis=1) * np.linalg.norm(d, axis=1)
                dist[:, j] = 1 - num / np.maximum(den, 1e-12)
        order = np.argsort(dist, axis=1, kind="stable")
        return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def _orthonormal(y: np.ndarray) -> np.ndarray:
    """Orthonormal basis of y's columns via the eigen-decomposition of the small Gram matrix.

    Only small (l x l) LAPACK calls: a tall QR runs threaded LAPACK, which stalls for
    seconds on a machine whose cores are busy. Directions with negligible energy are dropped.
    """
    w, v = np.linalg.eigh((y.T @ y).astype(np.float64))
    keep = w > max(float(w.max()), 1e-30) * 1e-7
    return (y @ (v[:, keep] / np.sqrt(w[keep])).astype(np.float32)).astype(np.float32)


def _assign(z: np.ndarray, cents: np.ndarray, block: int = 8192) -> np.ndarray:
    csq = np.einsum("ij,ij->i", cents, cents)
    return np.concatenate(
        [
            np.argmin(csq[None, :] - 2 * z[i : i + block] @ cents.T, axis=1)
            for i in range(0, len(z), block)
        ]
    )


def _kmeans(z: np.ndarray, k: int, rng: np.random.Generator, iters: int = 12) -> np.ndarray:
    """Plain Lloyd iterations from random distinct points; empty cells are re-seeded."""
    cents = z[rng.choice(len(z), k, replace=False)].astype(np.float32)
    for _ in range(iters):
        assign = _assign(z, cents)
        counts = np.bincount(assign, minlength=k)
        order = np.argsort(assign, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        nonempty = counts > 0
        sums = np.add.reduceat(z[order], starts[nonempty], axis=0)
        cents[nonempty] = sums / counts[nonempty, None]
        n_empty = int((~nonempty).sum())
        if n_empty:
            cents[~nonempty] = z[rng.choice(len(z), n_empty, replace=False)]
    return cents


# --------------------------------------------------------------------------------- reference


@dataclass
class Projection:
    """Where each view landed on the real manifold."""

    projected: np.ndarray  #: (V, S, S, 3) float32 P(x), mean-aligned when the reference says so
    indices: np.ndarray  #: (V,) int64 row of the nearest real patch
    distances: np.ndarray  #: (V,) float32 distance in the search space


@dataclass
class RealReference:
    """N real patches of side S, their search descriptors, and how to search them."""

    patches: np.ndarray  #: (N, S, S, 3) uint8 | float16 | float32
    origins: np.ndarray  #: (N, 3) int32: source index, y, x of each patch
    sources: list[dict[str, Any]]  #: {"path", "sha256", "width", "height", "n_patches"}
    config: dict[str, Any]  #: space, metric, size, options: decides the descriptors
    descriptors: np.ndarray | None = None  #: (N, D); None for pixel space (derived on the fly)
    index_config: dict[str, Any] = field(default_factory=lambda: {"kind": "exact"})
    index_state: dict[str, np.ndarray] = field(default_factory=dict)
    sq_norms: np.ndarray | None = None  #: (N,) float32 squared descriptor norms (derived, kept)
    path: Path | None = None
    _index: NeighbourIndex | None = field(default=None, repr=False)
    _backbone: Any = field(default=None, repr=False)
    _sha: str | None = field(default=None, repr=False)
    _search: dict[str, Any] | None = field(default=None, repr=False)

    # -- identity ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return int(self.config["size"])

    @property
    def space(self) -> str:
        return str(self.config["space"])

    @property
    def metric(self) -> str:
        return str(self.config["metric"])

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    def _arrays(self) -> dict[str, np.ndarray]:
        out = {"patches": self.patches, "origins": self.origins}
        if self.descriptors is not None:
            out["descriptors"] = self.descriptors
        if self.sq_norms is not None:
            out["sq_norms"] = self.sq_norms
        out.update({f"ivf/{k}": v for k, v in self.index_state.items()})
        return out

    @property
    def sha256(self) -> str:
        """Digest of everything that decides a projection: arrays, config, index, sources."""
        self.norms()
        if self._sha is None:
            self._sha = _content_sha256(self._arrays(), self._hashed_meta())
        return self._sha

    def norms(self) -> np.ndarray:
        """(N,) squared descriptor norms: derived once, then stored with the reference."""
        if self.sq_norms is None:
            step = max(1, _CHUNK_BYTES // (4 * self._rows(slice(0, 1)).shape[1]))
            out = []
            for i in range(0, len(self), step):
                b = self._rows(slice(i, i + step))
                out.append(np.einsum("ij,ij->i", b, b))
            self.sq_norms, self._sha = np.concatenate(out).astype(np.float32), None
        return self.sq_norms

    def _hashed_meta(self) -> dict[str, Any]:
        return {"config": self.config, "index": self.index_config, "sources": self.sources}

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
            "n_patches": len(self),
            "n_sources": len(self.sources),
            "dtype": str(self.patches.dtype),
            **self.config,
            "index": self.index_config,
            "search": self.index().config(),
        }

    # -- descriptors and search -------------------------------------------------------------

    def backbone(self) -> Any:
        """The embedding-space backbone, checked against the one the descriptors came from."""
        if self._backbone is None:
            b = self.config["backbone"]
            bb = space_backbone(b["name"], dict(b.get("options") or {}), self.size)
            if b.get("sha256") and bb.sha256 != b["sha256"]:
                raise ManifptError(
                    f"reference {self.path or ''} was described with backbone {b.get('id')} "
                    f"(sha256 {b['sha256'][:12]}...); here it is {bb.id} "
                    f"(sha256 {bb.sha256[:12]}...): rebuild it with `fpattr artifacts index`"
                )
            self._backbone = bb
        return self._backbone

    def describe(self, views: np.ndarray) -> np.ndarray:
        """Views (V, S, S, 3) float32 -> descriptors comparable with the reference's."""
        v = self._check_views(views)
        bb = self.backbone() if self.space == "embedding" else None
        return describe(
            v, self.space, freq_input=self.config.get("freq_input", "patch"), backbone=bb
        )

    def _rows(self, sel: Any) -> np.ndarray:
        if self.descriptors is not None:
            return self.descriptors[sel].astype(np.float32)
        p = as_float(self.patches[sel])
        return centre(p).reshape(len(p), -1)

    def _pixel_dot_rows(self, sel: Any) -> np.ndarray:
        """Un-centred patches: same dot product as the centred ones with a centred query."""
        p = as_float(self.patches[sel])
        return p.reshape(len(p), -1)

    def index(self) -> NeighbourIndex:
        """The search index: the stored one, or the :meth:`use_search` override."""
        if self._index is None:
            c = self._search or self.index_config
            self._index = NeighbourIndex(
                self._rows,
                len(self),
                self.metric,
                kind=c.get("kind", "exact"),
                ann=c.get("ann", "numpy"),
                nlist=c.get("nlist"),
                nprobe=int(c.get("nprobe", DEFAULT_NPROBE)),
                proj_dim=int(c.get("proj_dim", DEFAULT_PROJ_DIM)),
                seed=int(c.get("seed", 0)),
                state=self.index_state or None,
                sq_norms=self.norms(),
                dot_rows=self._pixel_dot_rows if self.descriptors is None else None,
            )
            if self._search is None and c.get("kind") == "ivf" and not self.index_state:
                # freshly built: the IVF arrays become part of the stored content
                self.index_state = self._index.state
                self.index_config = {**c, **self._index.config()}
                self._sha = None
        return self._index

    def build_index(
        self,
        kind: str = "auto",
        *,
        ann: str = "auto",
        nlist: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
        proj_dim: int = DEFAULT_PROJ_DIM,
        seed: int = 0,
    ) -> NeighbourIndex:
        """(Re)build the search index; ``auto`` = exact below AUTO_EXACT_MAX patches."""
        kind = _choice("index", kind, INDEX_KINDS)
        if kind == "auto":
            kind = "exact" if len(self) < AUTO_EXACT_MAX else "ivf"
        ann = _choice("ann", ann, ANN_BACKENDS)
        if ann == "auto":
            ann = next((m for m in ("faiss", "hnswlib") if _importable(m)), "numpy")
        elif ann != "numpy" and kind == "ivf" and not _importable(ann):
            raise ManifptError(f"--ann {ann}: the {ann!r} package is not installed (optional)")
        self.index_config = {"kind": kind}
        if kind == "ivf":
            self.index_config.update(
                ann=ann, nlist=nlist, nprobe=nprobe, proj_dim=proj_dim, seed=seed
            )
        self.index_state, self._index, self._sha, self._search = {}, None, None, None
        return self.index()

    def use_search(self, kind: str | None = None, nprobe: int | None = None) -> None:
        """Search a loaded reference differently (exact on an IVF one, another nprobe).

        Only the stored IVF (or exact search) can be used: another IVF has to be
        built and saved with ``fpattr artifacts index``. The stored content, and so
        :attr:`sha256`, are unchanged; ``index().config()`` says what is in effect.
        """
        if kind not in (None, "exact", "ivf"):
            raise ManifptError(f"index must be exact or ivf; got {kind!r}")
        if kind == "ivf" and self.index_config.get("kind") != "ivf":
            raise ManifptError(
                "this reference has no approximate index: rebuild it with "
                "`fpattr artifacts index ... --index ivf`"
            )
        cfg = {"kind": "exact"} if kind == "exact" else dict(self.index_config)
        if nprobe is not None and cfg.get("kind") == "ivf":
            cfg["nprobe"] = int(nprobe)
        self._search = None if cfg == self.index_config else cfg
        self._index = None

    def search(self, views: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Views -> (indices (V, k), distances (V, k)) of the nearest real patches."""
        return self.index().search(self.describe(views), k)

    def project(self, views: np.ndarray) -> Projection:
        """P(x) for each view: its nearest real patch (mean-aligned if configured)."""
        v = self._check_views(views)
        idx, dist = self.search(v, 1)
        idx, dist = idx[:, 0], dist[:, 0]
        p = as_float(self.patches[idx])
        if self.config.get("align_mean", True):
            p = p - p.mean(axis=(1, 2), keepdims=True) + v.mean(axis=(1, 2), keepdims=True)
        return Projection(p.astype(np.float32), idx, dist)

    def artifacts(self, views: np.ndarray) -> np.ndarray:
        """a(x) = x - P(x) in pixels, (V, S, S, 3) float32 (may be negative)."""
        v = self._check_views(views)
        return (v - self.project(v).projected).astype(np.float32)

    def source_of(self, row: int) -> dict[str, Any]:
        """Which real image (and where in it) a patch came from."""
        s, y, x = (int(t) for t in self.origins[row])
        return {"source": self.sources[s].get("path"), "y": y, "x": x}

    def _check_shapes(self) -> None:
        """Refuse arrays that do not fit together (before anything indexes into them)."""
        n, s = len(self.patches), int(self.config["size"])
        expect = {
            "patches": (self.patches.shape, (n, s, s, 3)),
            "origins": (self.origins.shape, (n, 3)),
        }
        if self.descriptors is not None:
            expect["descriptors"] = (self.descriptors.shape[:1], (n,))
        if self.sq_norms is not None:
            expect["sq_norms"] = (self.sq_norms.shape, (n,))
        for name, (got, want) in expect.items():
            if tuple(got) != want:
                raise ManifptError(f"malformed reference: {name} has shape {got}, expected {want}")
        if n == 0 or int(self.origins[:, 0].max(initial=0)) >= len(self.sources):
            raise ManifptError("malformed reference: no patches, or origins name unknown sources")
        if self.config.get("space") not in SPACES or self.config.get("metric") not in METRICS:
            raise ManifptError("malformed reference: unknown space or metric")

    def _check_views(self, views: np.ndarray) -> np.ndarray:
        v = np.asarray(views, dtype=np.float32)
        if v.ndim != 4 or v.shape[1:] != (self.size, self.size, 3):
            raise ManifptError(
                f"views must be (V, {self.size}, {self.size}, 3) like the reference patches; "
                f"got {v.shape}"
            )
        return v

    # -- storage -----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one .npz atomically: arrays + JSON metadata (uint8) with the content sha256."""
        from fpattr import __version__
        from fpattr.io.atomic import atomic_open

        self.index()  # an IVF is built (and stored) before the digest is taken
        meta = {
            "schema": SCHEMA,
            "sha256": self.sha256,
            "fpattr_version": __version__,
            **self._hashed_meta(),
        }
        arrays = dict(self._arrays())
        arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        path = Path(path)
        if path.suffix != ".npz":
            raise ManifptError(f"a real reference is saved as .npz; got {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RealReference:
        """Read and verify a reference written by :meth:`save` (no pickle)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise ManifptError(
                f"no real reference at {path}: build one with `fpattr artifacts index`"
            )
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z[_META_KEY]).decode("utf-8"))
                if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
                    schema = meta.get("schema") if isinstance(meta, dict) else None
                    raise ManifptError(f"{path}: not an fpattr real reference ({schema!r})")
                arrays = {k: z[k] for k in z.files if k != _META_KEY}
            ref = cls(
                patches=arrays["patches"],
                origins=arrays["origins"],
                sources=list(meta["sources"]),
                config=dict(meta["config"]),
                descriptors=arrays.get("descriptors"),
                index_config=dict(meta["index"]),
                index_state={k[4:]: v for k, v in arrays.items() if k.startswith("ivf/")},
                sq_norms=arrays.get("sq_norms"),
                path=path,
            )
            ref._check_shapes()
            ok = ref.sha256 == meta.get("sha256")
        except ManifptError:
            raise
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise ManifptError(f"cannot read real reference {path}: {exc}") from exc
        if not ok:
            raise ManifptError(
                f"{path}: content does not match its recorded sha256 (corrupted or edited); "
                "rebuild it with `fpattr artifacts index`"
            )
        return ref

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        *,
        size: int = 64,
        n_patches: int = 20_000,
        space: str = "pixel",
        metric: str | None = None,
        strategy: str = "random",
        seed: int = 0,
        dtype: str = "auto",
        freq_input: str = "patch",
        backbone: str = "spectrum",
        backbone_options: dict[str, Any] | None = None,
        align_mean: bool = True,
        workers: int = 2,
        max_pixels: int | None = None,
        on_image: Callable[[str, str | None], None] | None = None,
    ) -> tuple[RealReference, list[dict[str, str]]]:
        """Crop ``n_patches`` patches of side ``size`` from the real images under ``paths``.

        Patches are spread evenly over the images (an image's share goes unused if
        it fails to load); ``random`` crops are seeded per image, so a rebuild gives
        the same reference. Returns the reference (index not built yet) and the
        failures ``[{"path", "error"}]``.
        """
        from fpattr.io.loader import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageLoadError
        from fpattr.io.prefetch import iter_loaded
        from fpattr.io.walk import iter_inputs
        from fpattr.views import pad_to

        space = _choice("space", space, SPACES)
        metric = metric or ("cosine" if space == "embedding" else "l2")
        _choice("metric", metric, METRICS)
        _choice("strategy", strategy, STRATEGIES)
        _choice("dtype", dtype, DTYPES)
        _choice("freq_input", freq_input, FREQ_INPUTS)
        if size < 8 or n_patches < 1:
            raise ManifptError(f"size must be >= 8 and patches >= 1; got {size}, {n_patches}")
        config: dict[str, Any] = {
            "space": space,
            "metric": metric,
            "size": int(size),
            "strategy": strategy,
            "seed": int(seed),
            "align_mean": bool(align_mean),
            "n_requested": int(n_patches),
        }
        bb = None
        if space == "frequency":
            config["freq_input"] = freq_input
        if space == "embedding":
            opts = dict(backbone_options or {})
            bb = space_backbone(backbone, opts, size)
            config["backbone"] = {
                "name": backbone,
                "options": opts,
                "id": bb.id,
                "sha256": bb.sha256,
            }

        items = list(iter_inputs(paths, extensions=IMAGE_EXTENSIONS))
        if not items:
            raise ManifptError("no real images found under " + ", ".join(map(str, paths)))
        quota = [n_patches // len(items) + (k < n_patches % len(items)) for k in range(len(items))]
        chunks: list[np.ndarray] = []
        descs: list[np.ndarray] = []
        origins: list[np.ndarray] = []
        sources: list[dict[str, Any]] = []
        failed: list[dict[str, str]] = []
        loaded = iter_loaded(items, workers=workers, max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
        try:
            for k, (item, res) in enumerate(loaded):
                if isinstance(res, ImageLoadError):
                    failed.append({"path": str(item.path), "error": res.reason})
                    if on_image:
                        on_image(str(item.path), res.reason)
                    continue
                if quota[k] == 0:
                    continue
                pixels, _ = pad_to(res.pixels, size)
                pos = _positions(pixels.shape[:2], size, quota[k], strategy, (seed, k))
                p = np.stack([pixels[y : y + size, x : x + size] for y, x in pos]).astype(
                    np.float32
                )
                if bb is not None or space == "frequency":
                    d = describe(p, space, freq_input=freq_input, backbone=bb)
                    descs.append(d.astype(np.float32 if dtype == "float32" else np.float16))
                chunks.append(_store(p, dtype))
                o = np.column_stack([np.full(len(pos), len(sources)), np.asarray(pos)])
                origins.append(o.astype(np.int32))
                sources.append(
                    {
                        "path": str(item.path),
                        "sha256": res.sha256,
                        "width": res.width,
                        "height": res.height,
                        "n_patches": len(pos),
                    }
                )
                if on_image:
                    on_image(str(item.path), None)
        finally:
            loaded.close()
        if not chunks:
            raise ManifptError("no real image could be read: nothing to index")
        if len({c.dtype for c in chunks}) > 1:  # dtype auto, some images not 8-bit
            chunks = [
                c if c.dtype == np.float16 else as_float(c).astype(np.float16) for c in chunks
            ]
        patches = np.concatenate(chunks)
        config["dtype"] = str(patches.dtype)
        ref = cls(
            patches=patches,
            origins=np.concatenate(origins),
            sources=sources,
            config=config,
            descriptors=np.concatenate(descs) if descs else None,
        )
        ref._backbone = bb
        return ref, failed


def artifacts(views: np.ndarray, ref: RealReference) -> np.ndarray:
    """ManiFPT's a(x) = x - P(x) for (V, S, S, 3) views, P(x) the nearest real patch."""
    return ref.artifacts(views)


# ---------------------------------------------------------------------------------- helpers


def _importable(module: str) -> bool:
    import importlib.util

    return module in sys.modules or importlib.util.find_spec(module) is not None


def _store(p: np.ndarray, dtype: str) -> np.ndarray:
    """Patches in the storage dtype; ``auto`` keeps 8-bit images exact as uint8."""
    if dtype in ("auto", "uint8"):
        q = np.round(p * 255)
        if dtype == "uint8" or np.abs(p * 255 - q).max(initial=0) < 1e-3:
            return np.clip(q, 0, 255).astype(np.uint8)
        return p.astype(np.float16)
    return p.astype(np.float16 if dtype == "float16" else np.float32)


def _positions(
    hw: tuple[int, int], size: int, n: int, strategy: str, seed: tuple[int, int]
) -> list[tuple[int, int]]:
    """``n`` top-left corners of size x size crops inside an (H, W) image."""
    h, w = hw
    if strategy == "random":
        rng = np.random.default_rng(list(seed))
        ys = rng.integers(0, h - size + 1, n)
        xs = rng.integers(0, w - size + 1, n)
        return list(zip(ys.tolist(), xs.tolist(), strict=True))
    rows = max(1, min(h - size + 1, round(math.sqrt(n * h / w))))
    cols = max(1, min(w - size + 1, math.ceil(n / rows)))
    ys = np.linspace(0, h - size, rows).round().astype(int)
    xs = np.linspace(0, w - size, cols).round().astype(int)
    grid = [(int(y), int(x)) for y in ys for x in xs]
    if len(grid) >= n:
        return [grid[i] for i in np.linspace(0, len(grid) - 1, n).round().astype(int)]
    return [grid[i % len(grid)] for i in range(n)]  # tiny image: crops repeat


def _content_sha256(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()
