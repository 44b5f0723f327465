"""Top-k search over a gallery's vectors: exact (dense numpy) or approximate (faiss HNSW).

A :class:`GalleryIndex` holds ``n`` unit vectors ("entries") and answers "which ``k``
entries have the highest cosine with this query". Entries are the models' centroids
(``entries="models"``, what the decision policy scores) or every reference embedding
(``entries="references"``, each mapped back to its model by ``owner``), for galleries whose
size is counted in references.

* ``exact``: a batched float32 matrix product and a partial sort. No build, no recall loss;
  the right choice below :data:`EXACT_MAX_ENTRIES`.
* ``hnsw``: faiss ``IndexHNSWFlat`` with inner product on L2-normalised vectors (the
  ``[index]`` extra, ``faiss-cpu``). The vectors are stored uncompressed, so the returned
  scores are exact cosines; only *which* entries come back is approximate.
* ``auto``: exact below the threshold, hnsw above it when faiss imports, exact otherwise
  (with a logged note).

Where the threshold comes from (benchmarks/gallery_index.py, docs/results/gallery_index.json;
694 dimensions, one query at a time, one thread on a busy 2-core machine): the exact search
costs ~0.1 µs per entry and query (0.06 ms at 1k entries, 0.76 ms at 10k, 1.9 ms at 20k,
5.1 ms at 50k), an HNSW query 0.03-0.13 ms. HNSW answers faster at every measured size,
but it must be built first (3.3 s at 20k, 13 s at 50k, single thread) and it only
approximates which models come back. Below 20,000 entries the exact search costs under
half of the ~4.5 ms the whole pipeline spends per image (docs/results/speed.json,
~220 images/s) and a build would only pay back after ~1,800 queries, so ``auto`` stays
exact there; above, the exact cost grows linearly (extrapolated ~0.1 s per query at 1M)
and HNSW wins.

The built index is cached next to the gallery, in ``<gallery>/index/``, under a name keyed
by the gallery's content digest (:attr:`fpattr.gallery.Gallery.sha256`), the entry kind and
the index parameters: a changed gallery never reads a stale index. Files are written
atomically through ``faiss.serialize_index`` (no pickle) with a JSON sidecar recording the
build; older files for other digests are removed. A read-only gallery folder just skips the
cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.io.atomic import atomic_write_bytes, atomic_write_text
from fpattr.views import l2_normalize

log = logging.getLogger("fpattr.index")

KINDS = ("auto", "exact", "hnsw")
ENTRIES = ("models", "references")
#: Below this many entries ``auto`` searches exactly (see the module docstring).
EXACT_MAX_ENTRIES = 20_000
#: HNSW graph degree and build beam (faiss's defaults are 32 / 40: a wider build beam
#: gives a better graph, hence the recall target at a smaller search beam, for ~2x build).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
#: Search beam. On the clustered benchmark sets (docs/results/gallery_index*.json) recall@5
#: at 100k entries is 0.990 / 0.9988 / 1.0 for 32 / 64 / 128 (0.36 ms per query at 128);
#: at 1M it is 0.908 / 0.977 / 0.997 for 64 / 128 / 256 (0.97 ms per query at 256), so
#: galleries above HNSW_LARGE entries search with HNSW_EF_SEARCH_LARGE.
HNSW_EF_SEARCH = 128
HNSW_LARGE = 200_000
HNSW_EF_SEARCH_LARGE = 256


def default_ef_search(n: int) -> int:
    """The search beam that keeps recall@5 >= 0.99 for a gallery of ``n`` entries (measured)."""
    return HNSW_EF_SEARCH_LARGE if n > HNSW_LARGE else HNSW_EF_SEARCH


#: Query rows x entries multiplied at once by the exact search (~64 MB of float32 scores).
_EXACT_BLOCK = 16_000_000
_CACHE_DIR = "index"
_CACHE_SCHEMA = "fpattr.index/1"


def faiss_available() -> bool:
    """Whether the ``[index]`` extra (faiss) imports."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def choose_kind(n_entries: int, requested: str = "auto") -> str:
    """The index kind to use for ``n_entries`` vectors: ``requested`` unless it is "auto"."""
    if requested not in KINDS:
        raise ValueError(f"unknown index kind {requested!r} (choose from {', '.join(KINDS)})")
    if requested != "auto":
        if requested == "hnsw" and not faiss_available():
            raise ImportError("the hnsw index needs faiss: pip install 'fpattr[index]' (faiss-cpu)")
        return requested
    if n_entries < EXACT_MAX_ENTRIES:
        return "exact"
    if not faiss_available():
        log.warning(
            "gallery of %d entries searched exactly: install the [index] extra (faiss-cpu) "
            "for an approximate index in milliseconds per query",
            n_entries,
        )
        return "exact"
    return "hnsw"


def _unit_rows(x: np.ndarray) -> np.ndarray:
    # float32 and C-contiguous: what faiss / hnswlib read without a copy
    return l2_normalize(np.ascontiguousarray(np.atleast_2d(x), dtype=np.float32))


@dataclass
class GalleryIndex:
    """Base of the index kinds: ``n`` entries of dimension ``dim`` and their models.

    ``names``: the gallery's model names; ``owner``: (n,) int64, the model index of each
    entry (``arange(n)`` for ``entries="models"``); ``build_seconds``: time to build (or
    to load from the cache, then ``cached`` is True).
    """

    kind: str
    entries: str
    names: list[str]
    owner: np.ndarray
    dim: int
    params: dict[str, Any] = field(default_factory=dict)
    build_seconds: float = 0.0
    cached: bool = False
    cache_file: str | None = None

    @property
    def n_entries(self) -> int:
        return int(self.owner.shape[0])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` entries for each of (Q, D) (or (D,)) queries, best first.

        Returns ``(sims, ids)``: (Q, k) float32 cosines and (Q, k) int64 entry indices
        (``owner[ids]`` gives the models); ``k`` is capped at the number of entries.
        Queries are L2-normalised here.
        """
        raise NotImplementedError

    def candidates(self, query: np.ndarray, k: int, gallery: Any) -> tuple[list[str], np.ndarray]:
        """The (up to) ``k`` models whose entries come back for one (D,) ``query``, best
        first, and its exact cosines ((k,) float64) with their centroids in ``gallery``
        (the gallery the index was built from): what the decision policy decides on."""
        if self.entries == "models":
            _, ids = self.search(query, k)
            cand = [int(i) for i in ids[0] if i >= 0]
        else:  # references: enough of them for k distinct models on average
            per = -(-self.n_entries // len(self.names))
            _, ids = self.search(query, k * per)
            cand = list(dict.fromkeys(int(self.owner[i]) for i in ids[0] if i >= 0))[:k]
        names = [self.names[c] for c in cand]
        cents = np.stack([gallery.models[n].centroid for n in names])
        sims = np.clip(cents @ np.asarray(query, np.float32), -1.0, 1.0)
        return names, sims.astype(np.float64)

    def info(self) -> dict[str, Any]:
        """What the run manifest records under ``gallery.index``."""
        return {
            "kind": self.kind,
            "entries": self.entries,
            "n_entries": self.n_entries,
            "n_models": len(self.names),
            "dim": self.dim,
            "params": dict(self.params),
            "build_seconds": round(self.build_seconds, 3),
            "cached": self.cached,
            "cache_file": self.cache_file,
        }


@dataclass
class ExactIndex(GalleryIndex):
    """Dense search: ``vectors`` (n, D) float32 unit rows times the queries, in blocks."""

    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _unit_rows(queries)
        n = self.vectors.shape[0]
        k = max(0, min(int(k), n))
        sims = np.empty((q.shape[0], k), np.float32)
        ids = np.empty((q.shape[0], k), np.int64)
        step = max(1, _EXACT_BLOCK // max(n, 1))  # bounds the (rows, n) score block
        for a in range(0, q.shape[0], step):
            s = q[a : a + step] @ self.vectors.T
            if k < n:
                part = np.argpartition(-s, k - 1, axis=1)[:, :k]
            else:
                part = np.broadcast_to(np.arange(n), s.shape)
            top = np.take_along_axis(s, part, axis=1)
            # best first, ties by entry index (deterministic across block sizes)
            o = np.lexsort((part, -top), axis=1) if k else part
            ids[a : a + step] = np.take_along_axis(part, o, axis=1)
            sims[a : a + step] = np.take_along_axis(top, o, axis=1)
        return sims, ids


@dataclass
class HnswIndex(GalleryIndex):
    """faiss ``IndexHNSWFlat`` (inner product) over unit rows; ``params["ef_search"]`` is
    the search beam."""

    faiss_index: Any = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _unit_rows(queries)
        k = max(0, min(int(k), self.n_entries))
        # the beam must hold the k results; a larger one only costs time
        self.faiss_index.hnsw.efSearch = max(int(self.params["ef_search"]), k)
        sims, ids = self.faiss_index.search(q, k)
        return sims.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)


def gallery_vectors(gallery: Any, entries: str = "models") -> tuple[list[str], np.ndarray, Any]:
    """(names, (n, D) float32 unit vectors, (n,) int64 owner) for a gallery's entries."""
    if entries not in ENTRIES:
        raise ValueError(f"unknown entries {entries!r} (choose from {', '.join(ENTRIES)})")
    names = list(gallery.models)
    if entries == "models":
        _, vec = gallery.centroids()
        return names, np.ascontiguousarray(vec, np.float32), np.arange(len(names), dtype=np.int64)
    embs = [np.asarray(gallery.models[n].embeddings, np.float32) for n in names]
    owner = np.repeat(np.arange(len(names), dtype=np.int64), [e.shape[0] for e in embs])
    vec = np.concatenate(embs) if embs else np.zeros((0, 0), np.float32)
    return names, _unit_rows(vec) if vec.size else vec, owner


def build_index(
    vectors: np.ndarray,
    kind: str = "exact",
    *,
    names: list[str] | None = None,
    owner: np.ndarray | None = None,
    entries: str = "models",
    ef_search: int | None = None,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
) -> GalleryIndex:
    """An index of ``kind`` ("exact" | "hnsw") over (n, D) vectors (normalised here)."""
    vec = _unit_rows(vectors)
    n, d = vec.shape
    ef_search = default_ef_search(n) if ef_search is None else ef_search
    names = list(names) if names is not None else [str(i) for i in range(n)]
    own = np.arange(n, dtype=np.int64) if owner is None else np.asarray(owner, np.int64)
    if kind == "exact":
        return ExactIndex("exact", entries, names, own, d, {}, vectors=vec)
    if kind != "hnsw":
        raise ValueError(f"cannot build an index of kind {kind!r}")
    import faiss

    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(d, int(m), faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = int(ef_construction)
    index.add(vec)
    params = {"m": int(m), "ef_construction": int(ef_construction), "ef_search": int(ef_search)}
    params["library"] = f"faiss {faiss.__version__}"
    out = HnswIndex("hnsw", entries, names, own, d, params, faiss_index=index)
    out.build_seconds = time.perf_counter() - t
    return out


def open_index(
    gallery: Any,
    kind: str = "auto",
    *,
    entries: str = "models",
    cache: bool = True,
    ef_search: int | None = None,
    cache_dir: Path | None = None,
) -> GalleryIndex:
    """The index for a gallery: chosen (see :func:`choose_kind`), loaded from the cache next
    to the gallery (or in ``cache_dir``: an in-memory gallery derived from a saved one, such
    as the decision policy's projected copy) when its digest matches, else built and cached
    (approximate kinds only; an exact index is the vectors themselves)."""
    names, vec, owner = gallery_vectors(gallery, entries)
    if not names:
        raise ValueError("the gallery is empty")
    chosen = choose_kind(vec.shape[0], kind)
    ef_search = default_ef_search(vec.shape[0]) if ef_search is None else ef_search
    if chosen == "exact":
        return build_index(vec, "exact", names=names, owner=owner, entries=entries)
    where = cache_dir if cache_dir is not None else gallery.path
    folder = Path(where) / _CACHE_DIR if cache and where is not None else None
    key = hashlib.sha256(
        json.dumps(
            [gallery.sha256, entries, chosen, HNSW_M, HNSW_EF_CONSTRUCTION], sort_keys=True
        ).encode()
    ).hexdigest()[:24]
    stem = f"{chosen}-{entries}-{key}"
    if folder is not None:
        hit = _load_cached(folder, stem, names, owner, vec.shape[1], entries, ef_search)
        if hit is not None:
            return hit
    idx = build_index(vec, chosen, names=names, owner=owner, entries=entries, ef_search=ef_search)
    if folder is not None:
        _save_cached(folder, stem, idx, gallery.sha256)
    return idx


def _save_cached(folder: Path, stem: str, idx: GalleryIndex, digest: str) -> None:
    import faiss

    try:
        folder.mkdir(exist_ok=True)
        blob = faiss.serialize_index(idx.faiss_index)  # type: ignore[attr-defined]
        # the index first, the sidecar (the commit point) last
        atomic_write_bytes(folder / f"{stem}.faiss", blob.tobytes())
        side = {
            "schema": _CACHE_SCHEMA,
            "gallery_sha256": digest,
            **{k: v for k, v in idx.info().items() if k not in ("cached", "cache_file")},
        }
        atomic_write_text(folder / f"{stem}.json", json.dumps(side, indent=2) + "\n")
        for f in folder.glob(f"{idx.kind}-{idx.entries}-*"):  # other digests: stale
            if not f.name.startswith(stem):
                f.unlink(missing_ok=True)
        idx.cache_file = str(folder / f"{stem}.faiss")
    except OSError as exc:  # a read-only or full gallery folder: keep the index in memory
        log.warning("index not cached in %s: %s", folder, exc)


def _load_cached(
    folder: Path,
    stem: str,
    names: list[str],
    owner: np.ndarray,
    dim: int,
    entries: str,
    ef_search: int,
) -> GalleryIndex | None:
    side_f, blob_f = folder / f"{stem}.json", folder / f"{stem}.faiss"
    if not (side_f.is_file() and blob_f.is_file()):
        return None
    import faiss

    t = time.perf_counter()
    try:
        side = json.loads(side_f.read_text(encoding="utf-8"))
        index = faiss.deserialize_index(np.fromfile(blob_f, dtype=np.uint8))
    except (OSError, ValueError, RuntimeError) as exc:  # damaged: rebuild
        log.warning("rebuilding the damaged index cache %s: %s", blob_f, exc)
        return None
    if side.get("schema") != _CACHE_SCHEMA or index.ntotal != owner.shape[0] or index.d != dim:
        log.warning("rebuilding the index cache %s: it does not match the gallery", blob_f)
        return None
    params = {**side.get("params", {}), "ef_search": int(ef_search)}
    out = HnswIndex("hnsw", entries, names, owner, dim, params, faiss_index=index)
    out.build_seconds = float(side.get("build_seconds", 0.0))
    out.cached, out.cache_file = True, str(blob_f)
    out.params["load_seconds"] = round(time.perf_counter() - t, 3)
    return out


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean fraction of the exact top-k ids found in the approximate top-k, (Q, k) each."""
    hits = [
        len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx_ids, exact_ids, strict=True)
    ]
    return float(np.sum(hits) / max(exact_ids.size, 1))


def clustered_unit_vectors(
    n: int, dim: int, *, n_clusters: int | None = None, spread: float = 0.6, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic gallery entries for benchmarks and tests: ``n`` (n, dim) float32 unit
    vectors around ``n_clusters`` random centres (default ~n / 100), and the centres.

    ``spread`` is the noise norm relative to a centre's: nearest neighbours share a
    cluster yet are not obvious within it, so recall is not trivially 1.
    """
    rng = np.random.default_rng(seed)
    c = n_clusters or max(1, n // 100)
    centres = _unit_rows(rng.standard_normal((c, dim), dtype=np.float32))
    out = np.empty((n, dim), np.float32)
    step = 65_536  # fill in chunks: a 1M x 694 gaussian draw at once would double the peak
    for a in range(0, n, step):
        b = min(n, a + step)
        noise = rng.standard_normal((b - a, dim), dtype=np.float32) * (spread / math.sqrt(dim))
        out[a:b] = _unit_rows(centres[rng.integers(0, c, b - a)] + noise)
    return out, centres
