"""The `fpattr evaluate` protocol: bench layout -> embeddings -> threshold-free metrics.

A bench is ``BENCH/<model_id>/<image files>``: the first N images of a folder (sorted by
name; or N drawn with a seed, ``--ref-choice random``) are that model's references, the
rest its queries; ``BENCH/real/`` holds real
photos, used only as open-set unknowns. What is an image is decided by content, as in
``attribute`` (a PNG without a suffix counts), and every file left out is listed with
its reason (``Bench.ignored_files``). Every image is decoded once, optionally
degraded in memory (resize -> center crop -> JPEG), and embedded once per backbone,
so several backbones are compared on exactly the same pixels, pairs and folds.

Nothing is ever fitted on the queries being scored: identification uses centroids of
the references, and verification / open-set figures are threshold-free (ROC-AUC, EER,
TAR@FAR read off the query ROC, AUROC, OSCR).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.backbones.base import Backbone
from fpattr.decision import NOT_A_MODEL
from fpattr.errors import ImageLoadError, UsageError
from fpattr.evaluation import DISJOINT_SPLITS, metrics
from fpattr.evaluation.decisions import make_gallery
from fpattr.gallery import RESERVED_NAMES
from fpattr.io.loader import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, LoadedImage, load_image
from fpattr.io.prefetch import iter_loaded
from fpattr.io.sniff import HEAD_BYTES, image_kind
from fpattr.io.sniff import describe as describe_head
from fpattr.io.walk import NOT_REGULAR, InputItem, NotRegularFileError, open_regular
from fpattr.pipeline import decode_workers
from fpattr.processing import Processing
from fpattr.scorespace import ScoreSpace
from fpattr.views import ViewBatcher, all_flat

SCHEMA = "fpattr.evaluate/1"
#: Folder names a model cannot have: the words results use for decisions
_DECISION_WORDS = RESERVED_NAMES | NOT_A_MODEL
THRESHOLDS_NOTE = "none fitted on queries"
TRANSFORM_ORDER = ("resize", "crop", "jpeg")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Transform:
    """In-memory degradation applied before views, to every image (refs and queries) or,
    with ``queries_only``, to the queries and real photos only: the references stay as
    enrolled, as when an analyst enrols clean samples and meets processed copies.

    Order: bicubic resize by ``resize`` (a scale factor), then a ``crop`` x ``crop``
    center crop, then JPEG re-encoding at quality ``jpeg`` -- the order a sharing
    platform applies them. With nothing set the pixels pass through untouched (16-bit
    precision included), so clean and degraded runs share one code path.
    """

    jpeg: int | None = None
    resize: float | None = None
    crop: int | None = None
    queries_only: bool = False

    def __post_init__(self) -> None:
        if self.jpeg is not None and not 1 <= self.jpeg <= 100:
            raise UsageError(f"--jpeg must be a quality in 1..100, not {self.jpeg}")
        if self.resize is not None and not self.resize > 0:
            raise UsageError(f"--resize must be a positive scale factor, not {self.resize}")
        if self.crop is not None and self.crop < 1:
            raise UsageError(f"--crop must be a positive size in pixels, not {self.crop}")
        if self.queries_only and not self.active:
            raise UsageError("--degrade-queries-only needs --resize, --crop or --jpeg")

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.jpeg, self.resize, self.crop))

    def describe(self) -> str:
        """What was done to the images, in the order it is done ("none" when nothing):
        e.g. "x0.5 bicubic, JPEG 75 (queries only)"."""
        steps = [f"x{self.resize:g} bicubic"] if self.resize is not None else []
        steps += [f"center crop {self.crop}"] if self.crop is not None else []
        steps += [f"JPEG {self.jpeg}"] if self.jpeg is not None else []
        if not steps:
            return "none"
        return ", ".join(steps) + (" (queries only)" if self.queries_only else " (every image)")

    def query_processing(
        self,
        size: tuple[int, int],
        fmt: str | None,
        reference_formats: frozenset[str],
        least_sides: tuple[int, int] | None,
        *,
        jpeg_quality: int | None = None,
    ) -> str | None:
        """The processed copies (fpattr.processing.PROCESSINGS) ``attribute`` would decide
        a query of ``size`` (W, H), format ``fmt`` and JPEG quality ``jpeg_quality`` (all
        before this transform) with, against references stored as ``reference_formats``
        whose smallest sides are ``least_sides``: the rule of
        :func:`fpattr.processing.query_processing` applied to the query as this transform
        leaves it (its size after resize and crop; JPEG at ``jpeg``, else as it was)."""
        from fpattr.processing import query_processing, scaled_size

        w, h = size
        if self.resize is not None and self.resize != 1.0:
            w, h = scaled_size(w, h, self.resize)
        if self.crop is not None:
            w, h = min(w, self.crop), min(h, self.crop)
        jpeg = self.jpeg is not None
        return query_processing(
            "JPEG" if jpeg else fmt,
            (w, h),
            reference_formats,
            least_sides,
            jpeg_quality=self.jpeg if jpeg else jpeg_quality,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "resize": self.resize,
            "crop": self.crop,
            "jpeg": self.jpeg,
            "order": list(TRANSFORM_ORDER),
            "applied_to": "queries" if self.queries_only else "every image",
        }

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] -> the degraded image, same convention."""
        return Processing(jpeg=self.jpeg, resize=self.resize, crop=self.crop)(pixels)


@dataclass
class EvalConfig:
    """Protocol knobs, recorded verbatim under "settings" in the output."""

    refs: int = 10
    #: "first": the first ``refs`` files of a model folder, sorted by name, are its
    #: references; "random": a draw seeded by ``seed`` (the references then span the
    #: folder's batches, prompts or seeds instead of its first one)
    ref_choice: str = "first"
    pairs: int = 10000
    seed: int = 0
    min_queries: int = 1
    real_dir: str = "real"
    views: int | None = None  # None -> each backbone's default
    view_strategy: str = "grid"
    batch_size: int | None = None  # views per inference batch; None -> backbone default
    workers: int | None = None  # decoding threads; None: fpattr.pipeline.decode_workers()
    max_pixels: int = DEFAULT_MAX_PIXELS
    transform: Transform = field(default_factory=Transform)
    target_far: float = 0.01  # decision metrics: the policy's target false-accept rate
    threshold: float | None = None  # decision metrics: a user threshold instead
    min_probability: float = 0.5  # decision metrics: posterior needed to name one model
    splits: int = DISJOINT_SPLITS  # random halves of the generator-disjoint protocol
    decisions: bool = True  # measure decision quality under the attribute/verify policy
    #: with ``transform.queries_only``: calibrate with the references' processed copies,
    #: as ``attribute`` does with a gallery enrolled by ``gallery add``
    processed_references: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "transform"}
        out["transform"] = self.transform.to_dict()
        out["thresholds"] = THRESHOLDS_NOTE
        return out


# --------------------------------------------------------------------------- bench layout


@dataclass
class ModelSplit:
    """One model folder, split by sorted file name into references and queries."""

    name: str
    refs: list[Path]
    queries: list[Path]


@dataclass
class Bench:
    """A discovered bench: evaluable models, real images, and what was left out and why."""

    root: Path
    models: list[ModelSplit]
    real: list[Path]
    skipped: list[dict[str, Any]]
    #: every file not read, ``{"path": relative to root, "reason": ...}``, sorted by path:
    #: a non-image, a hidden or special file, an image directly in BENCH/
    ignored_files: list[dict[str, str]]
    #: folders inside a model (or the real) folder: evaluate reads only the images
    #: directly in BENCH/<model_id>/, and says what it did not read
    ignored_subfolders: list[str] = field(default_factory=list)

    def images(self) -> tuple[list[Path], list[str | None], list[str]]:
        """All image paths in a fixed order, with their model (None = real) and role."""
        paths: list[Path] = []
        labels: list[str | None] = []
        roles: list[str] = []
        for m in self.models:
            for role, group in (("ref", m.refs), ("query", m.queries)):
                paths += group
                labels += [m.name] * len(group)
                roles += [role] * len(group)
        paths += self.real
        labels += [None] * len(self.real)
        roles += ["real"] * len(self.real)
        return paths, labels, roles

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.root),
            "models": [m.name for m in self.models],
            "n_images": sum(len(m.refs) + len(m.queries) for m in self.models) + len(self.real),
            "n_real": len(self.real),
            "ignored_files": [dict(f) for f in self.ignored_files],
            "ignored_subfolders": list(self.ignored_subfolders),
        }


def _subfolders(folder: str, root: Path) -> list[str]:
    """Non-hidden folders directly inside ``folder``, relative to ``root``, sorted."""
    with os.scandir(folder) as it:
        found = [e for e in it if not e.name.startswith(".") and e.is_dir()]
    return sorted(os.path.relpath(e.path, root) for e in found)


#: Why a file directly in BENCH/ (not in a model folder) is not read.
_LOOSE_IMAGE = "an image directly in the bench folder (images belong in BENCH/<model_id>/)"
_HIDDEN_FILE = "hidden (name starts with '.')"


def _not_an_image(path: str) -> str | None:
    """Why the file at ``path`` is not an image input, or None: it is one.

    The loader's rule (:func:`fpattr.io.loader.load_image`), from the same header bytes:
    an image by content, whatever its name (a PNG without a suffix), or a file named as an
    image, which then fails when loaded with its reason instead of vanishing. Only
    HEAD_BYTES are read, through :func:`open_regular` (a FIFO cannot block the listing).
    """
    try:
        with open_regular(path) as f:
            head = f.read(HEAD_BYTES)
    except NotRegularFileError:
        return NOT_REGULAR
    except IsADirectoryError:
        return "is a directory"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if image_kind(head) is not None or os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS:
        return None
    return f"not an image by its content: {describe_head(head)}"


def _image_files(folder: str, root: Path) -> tuple[list[Path], list[dict[str, str]]]:
    """Image files directly inside ``folder``, sorted by name, and the files left out
    (``{"path": relative to root, "reason": ...}``: hidden, not an image by content, ...).
    Folders inside are not files: :func:`_subfolders` names them."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    images: list[Path] = []
    ignored: list[dict[str, str]] = []
    for e in entries:
        try:
            if e.is_dir():
                continue
        except OSError:
            pass  # e.g. a symlink loop: _not_an_image says what it is
        reason = _HIDDEN_FILE if e.name.startswith(".") else _not_an_image(e.path)
        if reason is None:
            images.append(Path(e.path))
        else:
            ignored.append({"path": os.path.relpath(e.path, root), "reason": reason})
    return images, ignored


REF_CHOICES = ("first", "random")


def split_references(
    files: list[Path], refs: int, choice: str, seed: int, model: str
) -> ModelSplit:
    """One model folder's sorted ``files`` split into ``refs`` references and the queries.

    ``choice`` "first": the first ``refs`` files; "random": ``refs`` files drawn without
    replacement by a generator seeded with ``seed`` and the model's name (the draw of one
    model does not depend on which other folders the bench holds). Both lists keep the
    sorted order. Raises ValueError for another ``choice``."""
    if choice == "first":
        return ModelSplit(model, files[:refs], files[refs:])
    if choice != "random":
        raise ValueError(f"unknown reference choice {choice!r}; expected one of {REF_CHOICES}")
    key = int.from_bytes(hashlib.sha256(model.encode("utf-8")).digest()[:8], "little")
    pick = set(np.random.default_rng([seed, key]).choice(len(files), refs, replace=False).tolist())
    chosen = [f for k, f in enumerate(files) if k in pick]
    rest = [f for k, f in enumerate(files) if k not in pick]
    return ModelSplit(model, chosen, rest)


def discover_bench(
    root: str | os.PathLike[str],
    refs: int,
    *,
    real_dir: str = "real",
    min_queries: int = 1,
    ref_choice: str = "first",
    seed: int = 0,
) -> Bench:
    """Read the bench layout; folders with fewer than ``refs + min_queries`` images are
    listed in ``skipped`` (with the reason) rather than silently dropped. ``ref_choice``
    and ``seed``: which files are the references (:func:`split_references`).

    A file is an image by its content (a few header bytes), as for ``attribute``: a PNG
    without a suffix counts. Every file not read (a non-image, a hidden file, an image
    directly in ``root``) is in ``ignored_files`` with its reason.

    Raises UsageError for a missing folder (the bench, or a ``real_dir`` other than the
    default), a bad count or an unknown ``ref_choice``."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"bench folder not found: {root}")
    if refs < 1 or min_queries < 1:
        raise UsageError("--refs and --min-queries must be >= 1")
    if real_dir != "real" and not (root / real_dir).is_dir():
        # a mistyped --real-dir left the real photos' folder scored as a generator, unsaid
        # (break-it 28b); the default "real" may be absent (no real photos)
        raise UsageError(
            f"--real-dir {real_dir!r}: no such folder in {root} (the folder of real photos, "
            "by name)"
        )
    if ref_choice not in REF_CHOICES:
        raise UsageError(f"unknown --ref-choice {ref_choice!r}; choose {' | '.join(REF_CHOICES)}")
    need = refs + min_queries
    models: list[ModelSplit] = []
    skipped: list[dict[str, Any]] = []
    real: list[Path] = []
    ignored: list[str] = []
    subfolders: list[str] = []
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            # nothing in the bench is dropped without a word (break-it: a text file
            # and PNGs without a suffix vanished): each file left out says why
            if entry.name.startswith("."):
                reason = _HIDDEN_FILE
            else:
                reason = _not_an_image(entry.path) or _LOOSE_IMAGE
            ignored.append({"path": entry.name, "reason": reason})
            continue
        if entry.name.startswith("."):
            continue  # .git, .cache: not a model folder
        try:
            files, left_out = _image_files(entry.path, root)
            ignored.extend(left_out)
            subfolders.extend(_subfolders(entry.path, root))
        except OSError as exc:
            skipped.append(
                {"model": entry.name, "n_images": None, "reason": f"cannot list folder: {exc}"}
            )
            continue
        if entry.name == real_dir:
            real = files
        elif entry.name.lower() in _DECISION_WORDS:
            # a model named like a decision: its right answers read as that decision
            # ("unknown" named: counted as not named, accuracy halved; break-it 27c)
            skipped.append(
                {
                    "model": entry.name,
                    "n_images": len(files),
                    "reason": "named like a decision (reserved in any letter case: "
                    f"{', '.join(sorted(_DECISION_WORDS))}): rename the folder",
                }
            )
        elif len(files) < need:
            skipped.append(
                {
                    "model": entry.name,
                    "n_images": len(files),
                    "reason": f"fewer than {need} images (--refs {refs} + "
                    f"--min-queries {min_queries})",
                }
            )
        else:
            models.append(split_references(files, refs, ref_choice, seed, entry.name))
    return Bench(root, models, real, skipped, ignored, subfolders)


#: The references' processed copies for the decision metrics: (kind, (N, D) embeddings,
#: (N,) usable, {what attribute would call the queries: count}), rows as the bench's.
Processed = tuple[str, np.ndarray, np.ndarray, dict[str, int]]

# --------------------------------------------------------------------------- embedding


@dataclass
class EmbeddingSet:
    """One backbone's embeddings of every bench image (rows of failed images are zero)."""

    backbone: Backbone
    emb: np.ndarray  # (N, D) float32, L2-normalised mean over views
    ok: np.ndarray  # (N,) bool
    errors: dict[int, str]
    seconds: float  # views + inference of this backbone only
    views: np.ndarray | None = None  # (N,) effective views per image (0 where failed)
    sha256: list[str | None] | None = None  # per image, None where it failed to load
    flat: np.ndarray | None = None  # (N,) bool: every view flat, no fingerprint evidence


def _load_transformed(
    path: Any, *, max_pixels: int, transform: Transform, clean: frozenset[str] = frozenset()
) -> LoadedImage:
    """The safe loader plus the transform (not for the paths in ``clean``); runs in the
    decode threads, off the main loop."""
    img = load_image(path, max_pixels=max_pixels)
    if transform.active and str(path) not in clean:
        try:
            img.pixels = transform(img.pixels)
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop the run
            raise ImageLoadError(path, f"transform: {exc}") from exc
        img.height, img.width = img.pixels.shape[:2]
    return img


def _embedding_set(
    b: ViewBatcher,
    n: int,
    load_errors: dict[int, str],
    views: np.ndarray,
    shas: list[str | None],
    flat: np.ndarray | None = None,
) -> EmbeddingSet:
    dim = next(iter(b.out.values())).shape[0] if b.out else 0
    emb = np.zeros((n, dim), np.float32)
    ok = np.zeros(n, bool)
    for k, v in b.out.items():
        emb[k], ok[k] = v, True
    errors = {**load_errors, **b.errors}
    return EmbeddingSet(b.backbone, emb, ok, errors, b.seconds, views, shas, flat)


def embed_images(
    paths: Sequence[Path],
    backbones: Sequence[Backbone],
    cfg: EvalConfig,
    *,
    on_image: Callable[[bool], None] | None = None,
    clean: Sequence[Path] = (),
) -> tuple[list[EmbeddingSet], float]:
    """Decode (+ transform) every image once and embed it with every backbone.

    Embeds like :class:`fpattr.pipeline.Embedder` (same loader, and the same
    :class:`fpattr.views.ViewBatcher`: views, cross-image view batching, pooling
    L2 per view, mean, L2). An Embedder with ``loader=`` would apply the transform
    too, but decodes once per backbone; here one :class:`ViewBatcher` per backbone is
    fed from a single decode pass, so all backbones see exactly the same pixels.
    ``clean``: paths the transform is not applied to (the references, with
    :attr:`Transform.queries_only`).
    Returns the per-backbone sets and the seconds the main loop waited for decoded images.
    """
    loader = partial(
        _load_transformed, transform=cfg.transform, clean=frozenset(str(p) for p in clean)
    )
    batchers = [
        ViewBatcher(bb, n_views=cfg.views, batch_views=cfg.batch_size, strategy=cfg.view_strategy)
        for bb in backbones
    ]
    load_errors: dict[int, str] = {}
    views = [np.zeros(len(paths), np.int32) for _ in batchers]
    flats = [np.zeros(len(paths), bool) for _ in batchers]
    shas: list[str | None] = [None] * len(paths)
    wait = 0.0
    loaded = iter_loaded(
        [InputItem(Path(p)) for p in paths],
        workers=decode_workers() if cfg.workers is None else cfg.workers,
        max_pixels=cfg.max_pixels,
        loader=loader,
    )
    try:
        k = 0
        while True:
            t0 = time.perf_counter()
            nxt = next(loaded, None)
            wait += time.perf_counter() - t0
            if nxt is None:
                break
            _, res = nxt
            if isinstance(res, ImageLoadError):
                load_errors[k] = res.reason
            else:
                shas[k] = res.sha256
                for j, b in enumerate(batchers):
                    info = b.add(k, res.pixels)
                    if info is not None:
                        views[j][k] = info.get("effective_views", info["n_views"])
                        flats[j][k] = all_flat(info)
                    if b.full:
                        b.flush()
            nxt = res = None  # drop the pixels before the next image arrives
            if on_image is not None:
                on_image(k not in load_errors)
            k += 1
        for b in batchers:
            b.flush()
    finally:
        loaded.close()
    sets = [
        _embedding_set(b, len(paths), load_errors, v, shas, f)
        for b, v, f in zip(batchers, views, flats, strict=True)
    ]
    return sets, wait


# --------------------------------------------------------------------------- metrics


@dataclass
class RunResult:
    """One backbone's figures (``summary``, JSON-ready) plus the raw scores for plots."""

    summary: dict[str, Any]
    genuine: np.ndarray
    impostor: np.ndarray


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd) if np.isfinite(x) else float("nan")


def score_run(
    bench: Bench,
    es: EmbeddingSet,
    cfg: EvalConfig,
    *,
    extra_seconds: float = 0.0,
    processed: Processed | None = None,
) -> RunResult:
    """All metrics of one backbone on one bench (threshold-free, nothing fitted on queries).

    ``processed``: (kind, (N, D) embeddings, (N,) usable) of the references' processed
    copies, rows as the bench's (other rows ignored): the decision metrics calibrate
    processed queries with them, as ``attribute`` does."""
    t0 = time.perf_counter()
    paths, labels_l, roles_l = bench.images()
    labels = np.asarray(labels_l, dtype=object)
    roles = np.asarray(roles_l)
    ok = es.ok.copy()
    skipped = [dict(s) for s in bench.skipped]
    # a query that is byte-identical to a reference scores as a perfect match and
    # inflates every figure: left out, loudly, before anything is counted
    duplicates: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    repeated: list[dict[str, Any]] = []
    if es.sha256 is not None:
        # the same bytes under two labels (two model folders, or a model folder and the
        # real photos) have no ground truth: every copy is left out, loudly (a break-it
        # pass: one reference shared by two folders made both models "ambiguous" and the
        # figures said nothing)
        by_sha: dict[str, list[int]] = {}
        for k in np.flatnonzero(ok):
            if es.sha256[k]:
                by_sha.setdefault(es.sha256[k], []).append(int(k))
        # within one label, the first copy is kept (references come before queries in
        # bench order): a later query equal to a reference is a copy of the reference
        # (it would score as a perfect match); any other repeat counts once, as `gallery
        # add` enrols it once (a repeated reference would weigh double in the centroid and
        # its own leave-one-out, a repeated query or real photo would be counted twice)
        for sha, ks in by_sha.items():
            labs = {"real" if labels[k] is None else str(labels[k]) for k in ks}
            if len(labs) > 1:
                conflicts.append(
                    {"sha256": sha, "paths": [str(paths[k]) for k in ks], "labels": sorted(labs)}
                )
                ok[ks] = False
                continue
            keep = ks[0]
            for k in ks[1:]:
                if roles[keep] == "ref" and roles[k] != "ref":
                    duplicates.append({"path": str(paths[k]), "same_as": str(paths[keep])})
                else:
                    repeated.append(
                        {"path": str(paths[k]), "same_as": str(paths[keep]), "role": str(roles[k])}
                    )
                ok[k] = False
    # an image whose every view is flat carries no fingerprint: `gallery add` leaves such
    # references out and `attribute` answers "insufficient signal"; here they are listed
    # and left out of every figure (a break-it pass: flat references were enrolled, flat
    # real photos counted as correct "unknown" answers)
    flat_images: list[dict[str, str]] = []
    if es.flat is not None:
        for k in np.flatnonzero(ok & es.flat):
            flat_images.append({"path": str(paths[k]), "role": str(roles[k])})
            ok[k] = False
    names: list[str] = []
    short_of_refs: list[dict[str, Any]] = []
    for m in bench.models:
        n_ref = int(np.sum(ok & (labels == m.name) & (roles == "ref")))
        n_q = int(np.sum(ok & (labels == m.name) & (roles == "query")))
        if n_ref == 0 or n_q < cfg.min_queries:
            skipped.append(
                {
                    "model": m.name,
                    "n_images": len(m.refs) + len(m.queries),
                    "reason": "after unreadable, flat, repeated and conflicting images and "
                    f"copies of references: {n_ref} references, {n_q} queries",
                }
            )
        else:
            names.append(m.name)
            if n_ref < cfg.refs:  # the split is made by name, before the images are read
                short_of_refs.append({"model": m.name, "n_refs": n_ref})
    if len(names) < 2:
        why = (
            "; every query is a byte-identical copy of a reference (same sha256)"
            if duplicates and not np.any(ok & (roles == "query"))
            else ""
        )
        if es.errors:  # why the images failed, when that is why (e.g. all smaller than --crop)
            k, err = next(iter(sorted(es.errors.items())))
            why += f"; {len(es.errors)} of {len(paths)} image(s) failed, e.g. {paths[k]}: {err}"
        if flat_images:
            why += f"; {len(flat_images)} image(s) are flat (no fingerprint evidence)"
        raise UsageError(
            f"nothing to evaluate with {es.backbone.name}: {len(names)} evaluable model "
            f"folder(s), need >= 2 with >= {cfg.refs} references + {cfg.min_queries} "
            f"queries each{why}"
        )
    keep = np.isin(labels, np.asarray(names, dtype=object)) & ok
    is_ref, is_q = keep & (roles == "ref"), keep & (roles == "query")
    is_real = ok & (roles == "real")
    # scored in the space attribute would use with these references as the gallery
    # (fpattr.scorespace; the leave-one-model-out open set keeps the full gallery's centre)
    space = ScoreSpace.for_gallery(
        es.backbone.calibration(), make_gallery(es.emb[is_ref], labels[is_ref], names)
    )
    emb = space.project(es.emb)
    ref_emb, ref_lab = emb[is_ref], labels[is_ref]
    q_emb, q_lab = emb[is_q], labels[is_q]

    # 1:N identification: nearest reference centroid by cosine
    cents = metrics.centroids(ref_emb, ref_lab, names)
    sims = q_emb.astype(np.float64) @ cents.T
    pred_idx = sims.argmax(1)
    pred = np.asarray(names, dtype=object)[pred_idx]
    correct = pred == q_lab
    conf = metrics.confusion(q_lab.tolist(), pred.tolist(), names)[:, : len(names)]
    per_model: dict[str, Any] = {}
    for k, n in enumerate(names):
        sel = q_lab == n
        per_model[n] = {
            "n_refs": int(np.sum(ref_lab == n)),
            "n_queries": int(sel.sum()),
            "top1": _r(correct[sel].mean()),
            "mean_genuine_similarity": _r(sims[sel, k].mean()),
        }

    # 1:1 verification: single query image vs single query image
    pairs, same = metrics.sample_pairs(q_lab, cfg.pairs, np.random.default_rng(cfg.seed))
    gen, imp = metrics.score_pairs(q_emb, pairs, same)
    counts = [int(np.sum(q_lab == n)) for n in names]

    # open set: leave-one-model-out (+ real photos as unknowns in every fold)
    lomo = metrics.open_set_lomo(ref_emb, ref_lab, q_emb, q_lab, emb[is_real])
    open_set: dict[str, Any] = {
        "auroc": _r(lomo["auroc"]),
        "oscr": _r(lomo["oscr"]),
        "protocol": "leave-one-model-out",
        "n_folds": lomo["n_folds"],
        "n_real": int(is_real.sum()),
        "per_fold": [
            {**f, "auroc": _r(f["auroc"]), "oscr": _r(f["oscr"])} for f in lomo["per_fold"]
        ],
    }
    if is_real.any():  # all models known, real photos unknown
        real = metrics.open_set_scores(cents, names, q_emb, q_lab, emb[is_real])
        open_set["real_vs_known"] = {"auroc": _r(real["auroc"]), "oscr": _r(real["oscr"])}

    decisions = None
    if cfg.decisions:
        decisions = _decision_metrics(
            es, labels, roles, keep | is_real, names, cfg, processed=processed
        )
    failed = [{"path": str(paths[k]), "error": e} for k, e in sorted(es.errors.items())]
    bb = es.backbone
    metric_seconds = time.perf_counter() - t0
    seconds = extra_seconds + es.seconds + metric_seconds
    n_ok = int(ok.sum())
    summary = {
        "schema": SCHEMA,
        "backbone": bb.name,
        "backbone_id": bb.id,
        "extractor_sha256": bb.sha256,
        "n_models": len(names),
        "refs_per_model": cfg.refs,
        "ref_choice": cfg.ref_choice
        if cfg.ref_choice == "first"
        else f"{cfg.ref_choice} (seed {cfg.seed})",
        "n_queries": int(is_q.sum()),
        "processing": cfg.transform.describe(),
        "identification": {
            "top1": _r(correct.mean()),
            "macro_f1": _r(metrics.macro_f1(q_lab.tolist(), pred.tolist(), names)),
            "method": "nearest reference centroid (cosine)",
            "score_space": space.info(),
        },
        "verification": {
            "roc_auc": _r(metrics.roc_auc(gen, imp)),
            "eer": _r(metrics.eer(gen, imp)) if gen.size and imp.size else float("nan"),
            "tar_at_far_1e-2": _r(metrics.tar_at_far(gen, imp, 1e-2))
            if gen.size and imp.size
            else float("nan"),
            "n_pairs": int(gen.size + imp.size),
            "n_genuine": int(gen.size),
            "n_impostor": int(imp.size),
            # distinct pairs the queries allow: fewer than n_pairs means pairs repeat
            "n_possible_genuine": int(sum(c * (c - 1) // 2 for c in counts)),
            "n_possible_impostor": int((sum(counts) ** 2 - sum(c * c for c in counts)) // 2),
            "n_distinct_pairs": metrics.distinct_pairs(pairs),
            "pairs": "single query image vs single query image",
        },
        "open_set": open_set,
        "decisions": decisions,
        "duplicate_queries": duplicates,
        "conflicting_labels": conflicts,
        "repeated_images": repeated,
        "short_of_refs": short_of_refs,
        "flat_images": flat_images,
        "thresholds": THRESHOLDS_NOTE,
        "per_model": per_model,
        "confusion": {"labels": names, "matrix": conf.tolist()},
        "skipped": skipped,
        "failed": failed,
        "n_images": len(paths),
        "n_failed": len(failed),
        "seconds": round(seconds, 3),
        "images_per_second": round(n_ok / seconds, 2) if seconds > 0 else None,
        "timing": {
            "decode_wait": round(extra_seconds, 3),
            "embed": round(es.seconds, 3),
            "metrics": round(metric_seconds, 3),
        },
        "settings": cfg.to_dict(),
    }
    return RunResult(summary, gen, imp)


def _decision_metrics(
    es: EmbeddingSet,
    labels: np.ndarray,
    roles: np.ndarray,
    use: np.ndarray,
    names: list[str],
    cfg: EvalConfig,
    *,
    processed: Processed | None = None,
) -> dict[str, Any]:
    """Decision quality under the policy ``attribute`` uses (fpattr.evaluation.decisions),
    headline figures first: single images, in-gallery (exactly as ``attribute`` with this
    bench's references as the gallery); both protocols in full below. ``processed``: see
    :func:`score_run`."""
    from fpattr.decision import DecisionPolicy
    from fpattr.evaluation.decisions import HEADLINE_KEYS, decision_quality

    card = es.backbone.calibration()
    kind, copies, note = None, {}, None
    if processed is not None:
        is_ref = use & (roles == "ref")
        if processed[2][is_ref].all():  # rows stay the references': all or none
            kind = processed[0]
            copies = {m: processed[1][is_ref & (labels == m)] for m in names}
            split = processed[3]
            if len(split) > 1:
                # one calibration per run here, where attribute picks one per query
                note = (
                    "attribute would judge the queries "
                    + ", ".join(f"{v} {k}" for k, v in split.items())
                    + f" against their own model's references: all are decided here with "
                    f"the {kind} calibration, the commonest"
                )
        else:
            note = f"some {processed[0]} copies of references failed: calibrated on clean ones"

    def policy_for(gallery: Any, cal_gallery: Any) -> DecisionPolicy:
        src = cal_gallery if cal_gallery is not None else gallery

        def make(**processed: Any) -> DecisionPolicy:
            return DecisionPolicy(
                card,
                gallery,
                target_far=cfg.target_far,
                threshold=cfg.threshold,
                min_probability=cfg.min_probability,
                calibration_gallery=cal_gallery,
                seed=cfg.seed,
                **processed,
            )

        if not kind:
            return make()
        # as Session.processed_policy: never below the clean calibration's threshold
        return make(
            processed_references={m: copies[m] for m in src.models},
            processing=kind,
            threshold_floor=make(),
        )

    res = decision_quality(
        policy_for,
        es.emb[use],
        labels[use],
        roles[use],
        names,
        views=None if es.views is None else es.views[use],
        n_pairs=min(cfg.pairs, 4000),
        seed=cfg.seed,
        splits=cfg.splits,
    )
    head = res["in_gallery"]["single"]
    keys = HEADLINE_KEYS
    return {
        "policy": "fpattr.decision/1 (gallery leave-one-out shrunk toward the card)",
        "processing": kind,
        **({"processing_note": note} if note else {}),
        "target_far": None if cfg.threshold is not None else cfg.target_far,
        "threshold": head.get("threshold"),
        "min_probability": cfg.min_probability,
        **{k: head[k] for k in keys},
        "sets": {n: {k: r[k] for k in keys} for n, r in res["in_gallery"]["sets"].items()},
        "pairs": {k: v for k, v in res["in_gallery"]["pairs"].items() if k != "reliability"},
        "generator_disjoint": res.get("generator_disjoint", {}).get("mean"),
        "protocols": res,
    }


def _header(path: Path) -> tuple[str | None, tuple[int, int] | None, int | None]:
    """(format, (W, H), estimated JPEG quality) from an image file's header (None where
    unreadable; the quality for JPEGs only, as the loader estimates it)."""
    from PIL import Image

    from fpattr.io.loader import jpeg_quality

    try:
        with Image.open(path) as im:
            return im.format, im.size, jpeg_quality(im)
    except Exception:  # noqa: BLE001 - the embedding pass reports the file
        return None, None, None


def _bench_query_processing(
    paths: list[Path], labels: list[str | None], roles: list[str], transform: Transform
) -> tuple[str | None, dict[str, int]]:
    """The processing ``attribute`` would infer for each of the bench's queries after
    ``transform``, against its own model's references (as ``attribute`` judges a query
    against the model it scores highest with; :meth:`Transform.query_processing`): the
    commonest answer (None on a tie with None), which the decision metrics calibrate
    every query with, and the count of each answer ("clean" for None)."""
    from collections import Counter

    from fpattr.processing import least_sides

    refs: dict[str | None, list[tuple[str | None, tuple[int, int] | None, int | None]]] = {}
    for p, lab, r in zip(paths, labels, roles, strict=True):
        if r == "ref":
            refs.setdefault(lab, []).append(_header(p))
    kinds: Counter[str | None] = Counter()
    for p, lab, r in zip(paths, labels, roles, strict=True):
        if r != "query" or lab not in refs:
            continue
        fmt, wh, quality = _header(p)
        if wh is None:
            continue
        own = refs[lab]
        formats = frozenset(f for f, _, _ in own if f)
        sides = least_sides(s for _, s, _ in own if s)
        kinds[transform.query_processing(wh, fmt, formats, sides, jpeg_quality=quality)] += 1
    counts = {k or "clean": v for k, v in kinds.most_common()}
    if not kinds:
        return None, counts
    (top, count), *_ = kinds.most_common()
    tie_with_clean = kinds.get(None, 0) == count  # a tie with clean queries stays clean
    return (None if top is None or tie_with_clean else top), counts


def _processed_copies(
    paths: list[Path],
    labels: list[str | None],
    roles: list[str],
    backbones: Sequence[Backbone],
    cfg: EvalConfig,
) -> list[Processed | None]:
    """Per backbone, the references' processed copies for :func:`score_run` when only the
    queries are degraded (the copies ``gallery add`` enrols, of the kind ``attribute``
    would pick for such a query), else None."""
    from dataclasses import replace

    from fpattr.processing import PROCESSINGS

    if not (cfg.decisions and cfg.processed_references and cfg.transform.queries_only):
        return [None] * len(backbones)
    kind, counts = _bench_query_processing(paths, labels, roles, cfg.transform)
    if kind is None:
        return [None] * len(backbones)
    p = PROCESSINGS[kind]
    idx = [k for k, r in enumerate(roles) if r == "ref"]
    tcfg = replace(cfg, transform=Transform(jpeg=p.jpeg, resize=p.resize, crop=p.crop))
    sets, _ = embed_images([paths[k] for k in idx], backbones, tcfg)
    out: list[Processed | None] = []
    for es in sets:
        emb = np.zeros((len(paths), es.emb.shape[1]), np.float32)
        ok = np.zeros(len(paths), bool)
        emb[idx], ok[idx] = es.emb, es.ok & (~es.flat if es.flat is not None else True)
        out.append((kind, emb, ok, counts))
    return out


def evaluate(
    bench: Bench,
    backbones: Sequence[Backbone],
    cfg: EvalConfig,
    *,
    on_image: Callable[[bool], None] | None = None,
) -> list[RunResult]:
    """Embed the bench once per backbone (one decode pass) and score each backbone."""
    if not backbones:
        raise UsageError("no backbone to evaluate")
    if len(bench.models) < 2:
        raise UsageError(
            f"nothing to evaluate in {bench.root}: {len(bench.models)} model folder(s) with "
            f">= {cfg.refs} references + {cfg.min_queries} queries; need >= 2"
        )
    t0 = time.perf_counter()
    paths, labels, roles = bench.images()
    clean = [p for p, r in zip(paths, roles, strict=True) if r == "ref"]
    sets, wait = embed_images(
        paths,
        backbones,
        cfg,
        on_image=on_image,
        clean=clean if cfg.transform.queries_only else (),
    )
    processed = _processed_copies(paths, labels, roles, backbones, cfg)
    runs = [
        score_run(bench, es, cfg, extra_seconds=wait, processed=pr)
        for es, pr in zip(sets, processed, strict=True)
    ]
    if len(runs) == 1:  # one backbone: its time is the whole run's wall time
        total = time.perf_counter() - t0
        s = runs[0].summary
        s["seconds"] = round(total, 3)
        n_ok = int(sets[0].ok.sum())
        s["images_per_second"] = round(n_ok / total, 2) if total > 0 else None
    return runs
