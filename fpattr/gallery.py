"""Reference galleries: enrolment, storage and matching.

On disk a gallery is a folder::

    gallery.json             metadata: schema, backbone binding, models, refs
    emb/<model>-<hash>.npy   float32 (n_refs, D) embeddings, one file per model
    emb/<model>.<kind>-<hash>.npy  the same references' processed copies (optional,
                             ``"processed": {kind: file}``; kinds: fpattr.processing)

``gallery.json`` is the commit point: new .npy files are written first under
content-addressed names, then the JSON is replaced atomically, then files no
longer referenced are removed. A crash at any point leaves the previous or the
new gallery, never a mix. Updates take an exclusive lock (``.lock``) so two
concurrent ``fpattr gallery add`` never lose each other's model. No pickle:
``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import time
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.errors import GalleryError
from fpattr.io.atomic import atomic_write_bytes, atomic_write_text, file_lock
from fpattr.views import l2_normalize

SCHEMA = "fpattr.gallery/1"
#: Reads of a gallery that an edit changed meanwhile (see :meth:`Gallery.load`).
LOAD_ATTEMPTS = 5
#: What numpy's .npy / .npz readers raise on a damaged file (a truncated header parses as
#: Python literals; a damaged zip fails in zipfile or zlib).
_DAMAGED: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,
    NotImplementedError,
    RuntimeError,
    zipfile.BadZipFile,
    zlib.error,
    tokenize.TokenError,
)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")  # fullmatch: no trailing "\n"
#: Names of processed copies (fpattr.processing.PROCESSINGS keys; later ones kept as read)
_KIND_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.]{0,31}")


#: Words results use for outcomes that name no model (fpattr.decision, verify): a model
#: named like one would read as that outcome in every report. Any letter case.
RESERVED_NAMES = frozenset({"unknown", "ambiguous", "inconclusive", "same", "different"})


def check_model_name(name: str) -> str:
    """``name`` if it can name an enrolled model, else :class:`GalleryError`."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name.lower() in RESERVED_NAMES:
        raise GalleryError(
            f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_', '+', '-' "
            "(starting with a letter or digit; "
            f"{', '.join(sorted(RESERVED_NAMES))} are reserved in any letter case: "
            "results use them for decisions)"
        )
    return name


def _normalise(x: np.ndarray) -> np.ndarray:
    """Unit rows as float32, the dtype gallery embeddings are stored in."""
    return l2_normalize(np.asarray(x, dtype=np.float32))


def _listed_files(path: Path) -> set[str]:
    """Names of the emb/ files the gallery.json at ``path`` lists (none when there is no
    readable one): the only files :meth:`Gallery.save` may delete."""
    try:
        doc = json.loads((path / "gallery.json").read_text(encoding="utf-8"))
        models = doc.get("models") or {}
        files = {Path(str(e["file"])).name for e in models.values()}
        files |= {
            Path(str(f)).name for e in models.values() for f in (e.get("processed") or {}).values()
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()
    return files


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _check_refs(name: str, refs: Any, n: int, where: str = "") -> list[dict[str, Any]]:
    """The reference records of a model as stored: one {"path", "sha256"} dict per row (an
    empty list: no provenance recorded, one blank record per row)."""
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise GalleryError(f"{where}model {name!r}: references are not a list of records")
    if not refs:  # written without provenance: the embeddings stand alone
        return [{"path": None, "sha256": None} for _ in range(n)]
    if len(refs) != n:
        raise GalleryError(f"{where}model {name!r}: {len(refs)} references for {n} embeddings")
    return refs


def _check_dim(g: Gallery, name: str, emb: np.ndarray, where: str = "") -> None:
    """Every model of a gallery embeds in the same dimension."""
    for other in g.models.values():
        if other.embeddings.shape[1] != emb.shape[1]:
            raise GalleryError(
                f"{where}model {name!r} has {emb.shape[1]}-dimensional embeddings, "
                f"{other.name!r} {other.embeddings.shape[1]}"
            )
        break


def _check_embeddings(name: str, emb: np.ndarray, where: str = "") -> np.ndarray:
    """Refuse what would give NaN or meaningless scores: no reference, no dimension,
    non-finite values."""
    if emb.ndim != 2 or emb.shape[0] == 0 or emb.shape[1] == 0:
        raise GalleryError(
            f"{where}model {name!r} has no references (embeddings of shape {emb.shape}): "
            "a model needs at least one reference image"
        )
    if not np.isfinite(emb).all():
        raise GalleryError(f"{where}model {name!r} has non-finite embeddings")
    return emb


def _check_processed(
    name: str, processed: Any, n: int, dim: int, where: str = "", *, stored: bool = True
) -> dict[str, np.ndarray]:
    """A model's processed copies: {kind: finite (n, D) float32}, one row per reference
    (:mod:`fpattr.processing`); anything else is refused. New ones (``stored`` False) are
    L2-normalised; stored ones are kept bit for bit (the gallery's digest covers them)."""
    if not isinstance(processed, dict):
        raise GalleryError(f"{where}model {name!r}: processed copies are not a mapping")
    out = {}
    for kind, arr in processed.items():
        if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
            raise GalleryError(f"{where}model {name!r}: invalid processed-copy kind {kind!r}")
        a = np.asarray(arr)
        if a.ndim != 2 or a.shape != (n, dim) or not np.issubdtype(a.dtype, np.floating):
            raise GalleryError(
                f"{where}model {name!r}: {kind} copies of shape {a.shape} and dtype "
                f"{a.dtype}, not ({n}, {dim}) floating point"
            )
        if not np.isfinite(a).all():
            raise GalleryError(f"{where}model {name!r}: non-finite {kind} copies")
        out[kind] = a.astype(np.float32) if stored else _normalise(a)
    return out


def _first_of_each_sha(refs: list[dict[str, Any]]) -> list[int]:
    """Indices of the references to keep: the first of each sha256 (unknown hashes kept)."""
    seen: set[str] = set()
    keep = []
    for k, r in enumerate(refs):
        sha = r.get("sha256")
        if sha is None or sha not in seen:
            keep.append(k)
            if sha is not None:
                seen.add(sha)
    return keep


@dataclass
class GalleryModel:
    """One enrolled generative model."""

    name: str
    embeddings: np.ndarray  # (n_refs, D) float32, L2-normalised per reference
    refs: list[dict[str, Any]] = field(default_factory=list)  # {"path", "sha256"}
    created: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: the references' processed copies (fpattr.processing.PROCESSINGS): kind -> (n_refs,
    #: D) float32, L2-normalised, rows as ``embeddings``; what the decision policy
    #: calibrates a processed query with. Empty: none enrolled.
    processed: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def centroid(self) -> np.ndarray:
        return _normalise(self.embeddings.mean(axis=0))


@dataclass
class Gallery:
    """An in-memory gallery bound to one backbone (id + sha256)."""

    backbone: dict[str, Any]  # {"name", "id", "sha256"}
    models: dict[str, GalleryModel] = field(default_factory=dict)
    path: Path | None = None
    description: str = ""
    #: Bumped by every :meth:`add` and :meth:`remove`: a :class:`fpattr.session.Session`
    #: refits its decision policy when it changes (it kept deciding with the old models).
    version: int = field(default=0, compare=False, repr=False)

    # -- binding -------------------------------------------------------------------------------

    def check_backbone(self, backbone_info: dict[str, Any]) -> None:
        """Refuse to match embeddings from a different extractor."""
        mine, theirs = self.backbone.get("sha256"), backbone_info.get("sha256")
        if mine != theirs:
            raise GalleryError(
                f"gallery {self.path or ''} was made with backbone {self.backbone.get('id')} "
                f"(sha256 {str(mine)[:12]}...), not {backbone_info.get('id')} "
                f"(sha256 {str(theirs)[:12]}...): re-enrol the references with this backbone "
                "or pick the matching --backbone"
            )

    # -- editing -------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        embeddings: np.ndarray,
        refs: list[dict[str, Any]],
        *,
        replace: bool = False,
        append: bool = False,
        meta: dict[str, Any] | None = None,
        processed: dict[str, np.ndarray] | None = None,
    ) -> GalleryModel:
        """Enrol (or with ``replace``/``append`` update) model ``name`` from (N, D)
        ``embeddings`` of N references (``refs``: their records) and, optionally, their
        ``processed`` copies ({kind: (N, D)}). Raises :class:`GalleryError` for a bad
        name or shape, a dimension unlike the gallery's, or a name already enrolled."""
        check_model_name(name)
        emb = _check_embeddings(name, np.atleast_2d(np.asarray(embeddings, dtype=np.float32)))
        emb = _normalise(emb)
        if emb.shape[0] != len(refs):
            raise GalleryError(f"{emb.shape[0]} embeddings for {len(refs)} references")
        proc = _check_processed(name, processed or {}, *emb.shape, stored=False)
        # an exact duplicate (same sha256) is one piece of evidence, not two: keep the first
        first = _first_of_each_sha(refs)
        if len(first) < len(refs):
            emb, refs = emb[first], [refs[k] for k in first]
            proc = {k: v[first] for k, v in proc.items()}
        if self.models:
            dim = next(iter(self.models.values())).embeddings.shape[1]
            if emb.shape[1] != dim:
                raise GalleryError(f"embedding size {emb.shape[1]} != gallery's {dim}")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if name in self.models and append:
            old = self.models[name]
            known = {r.get("sha256") for r in old.refs}
            keep = [k for k, r in enumerate(refs) if r.get("sha256") not in known]
            old.embeddings = np.concatenate([old.embeddings, emb[keep]])
            old.refs.extend(refs[k] for k in keep)
            old.meta.update(meta or {})
            # a copy kept only where every reference has it: rows stay the references'
            old.processed = {
                k: np.concatenate([v, proc[k][keep]]) for k, v in old.processed.items() if k in proc
            }
            self.version += 1
            return old
        if name in self.models and not replace:
            raise GalleryError(f"model {name!r} is already enrolled; use --replace or --append")
        model = GalleryModel(name, emb, list(refs), now, dict(meta or {}), proc)
        self.models[name] = model
        self.version += 1
        return model

    def shared_references(self, name: str) -> dict[str, int]:
        """Other models holding references with the same content (sha256) as ``name``'s.

        The same file under two names makes their centroids alike, so a query of either
        is split between them: almost always a mistake when enrolling.
        """
        mine = {r.get("sha256") for r in self.models[name].refs} - {None}
        out = {}
        for other, m in self.models.items():
            n = sum(r.get("sha256") in mine for r in m.refs) if other != name else 0
            if n:
                out[other] = n
        return out

    def remove(self, name: str) -> None:
        if name not in self.models:
            raise GalleryError(f"no model {name!r} in the gallery (has: {', '.join(self.models)})")
        del self.models[name]
        self.version += 1

    # -- matching ------------------------------------------------------------------------------

    def centroids(self) -> tuple[list[str], np.ndarray]:
        names = list(self.models)
        if not names:
            return [], np.zeros((0, 0), np.float32)
        return names, np.stack([self.models[n].centroid for n in names])

    def similarities(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Cosine similarity of (N, D) embeddings to every model centroid -> (N, M)."""
        names, c = self.centroids()
        if not names:
            raise GalleryError("the gallery is empty: enrol models with `fpattr gallery add`")
        return names, _normalise(np.atleast_2d(embeddings)) @ c.T

    def loo_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-out (genuine, impostor) reference-vs-centroid scores.

        Each reference is compared with its own model's centroid computed without
        it (genuine) and with the other models' centroids (impostor): held-out
        data for calibration that never touches the queries.
        """
        names, cents = self.centroids()
        genuine: list[float] = []
        impostor: list[float] = []
        for m, name in enumerate(names):
            emb = self.models[name].embeddings
            others = np.delete(cents, m, axis=0)
            for k in range(emb.shape[0]):
                if emb.shape[0] >= 2:
                    rest = _normalise(np.delete(emb, k, axis=0).mean(axis=0))
                    genuine.append(float(emb[k] @ rest))
                if others.size:
                    impostor.extend((others @ emb[k]).tolist())
        return np.asarray(genuine), np.asarray(impostor)

    def loo_pair_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference-vs-reference (genuine, impostor) cosines, for pair calibration."""
        genuine: list[float] = []
        impostor: list[float] = []
        names = list(self.models)
        for a, na in enumerate(names):
            ea = self.models[na].embeddings
            s = ea @ ea.T
            iu = np.triu_indices(len(ea), k=1)
            genuine.extend(s[iu].tolist())
            for nb in names[a + 1 :]:
                impostor.extend((ea @ self.models[nb].embeddings.T).ravel().tolist())
        return np.asarray(genuine), np.asarray(impostor)

    # -- identity ------------------------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """Content digest: backbone binding + every model's name and embeddings."""
        h = hashlib.sha256()
        h.update(json.dumps(self.backbone, sort_keys=True).encode())
        for name in sorted(self.models):
            h.update(name.encode() + b"\0")
            h.update(np.ascontiguousarray(self.models[name].embeddings, np.float32).tobytes())
            # processed copies only when present: galleries without them keep their digest
            for kind, arr in sorted(self.models[name].processed.items()):
                h.update(b"\0processed\0" + kind.encode() + b"\0")
                h.update(np.ascontiguousarray(arr, np.float32).tobytes())
        return h.hexdigest()

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
            "backbone": self.backbone,
            "n_models": len(self.models),
            "models": {n: len(m.refs) for n, m in self.models.items()},
            "processed_copies": self.processed_kinds(),
        }

    def processed_kinds(self) -> list[str]:
        """The kinds of processed copies every enrolled model holds (sorted): those a
        processed query can be calibrated for (:mod:`fpattr.processing`)."""
        kinds = [set(m.processed) for m in self.models.values()]
        return sorted(set.intersection(*kinds)) if kinds else []

    def lacking_processed(self) -> dict[str, list[str]]:
        """{kind: models without it} for every kind of processed copy that some enrolled
        model holds and some other does not: what keeps :meth:`processed_kinds` short."""
        held = set().union(*(m.processed for m in self.models.values())) if self.models else set()
        out = {k: sorted(n for n, m in self.models.items() if k not in m.processed) for k in held}
        return {k: v for k, v in sorted(out.items()) if v}

    def processed_change_note(self, before: list[str]) -> str | None:
        """A note when an edit left fewer kinds of processed copies held by every model
        than ``before`` (:meth:`processed_kinds` before it): the calibrations for JPEG or
        down-scaled queries are then off for the whole gallery. None when none was lost."""
        lost = sorted(set(before) - set(self.processed_kinds()))
        if not lost:
            return None
        lacking = sorted({n for k in lost for n in self.lacking_processed().get(k, [])})
        shown = ", ".join(repr(n) for n in lacking[:5]) + (
            f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
        )
        return (
            f"the gallery no longer holds {' and '.join(lost)} copies of every model's "
            f"references (missing for {shown}): JPEG or down-scaled queries are now decided "
            "with the clean references' calibration and a caveat; re-enrol "
            f"{'it' if len(lacking) == 1 else 'them'} with `gallery add --replace` "
            "(processed copies on) to restore it"
        )

    def processed_references(self, kind: str) -> dict[str, np.ndarray] | None:
        """{model: (n_refs, D)} of the ``kind`` copies, or None unless every model has
        them (what ``DecisionPolicy(processed_references=)`` takes)."""
        if kind not in self.processed_kinds():
            return None
        return {n: m.processed[kind] for n, m in self.models.items()}

    # -- storage -------------------------------------------------------------------------------

    def save(self, path: Path | None = None) -> Path:
        """Write atomically (see module docstring). Caller holds the lock if needed."""
        path = Path(path or self.path or "")
        if not str(path):
            raise GalleryError("no gallery path given")
        emb_dir = path / "emb"
        emb_dir.mkdir(parents=True, exist_ok=True)
        listed = _listed_files(path)  # what the gallery being replaced wrote, before the commit
        entries = {}
        for name, m in self.models.items():
            check_model_name(name)  # the name becomes part of a file path
            _check_embeddings(name, m.embeddings, f"gallery {path}: ")
            blob = _npy_bytes(m.embeddings)
            fname = f"{name}-{hashlib.sha256(blob).hexdigest()[:16]}.npy"
            if not (emb_dir / fname).exists():
                atomic_write_bytes(emb_dir / fname, blob)
            processed = {}
            for kind, arr in sorted(m.processed.items()):
                pblob = _npy_bytes(arr)
                pname = f"{name}.{kind}-{hashlib.sha256(pblob).hexdigest()[:16]}.npy"
                if not (emb_dir / pname).exists():
                    atomic_write_bytes(emb_dir / pname, pblob)
                processed[kind] = f"emb/{pname}"
            entries[name] = {
                "file": f"emb/{fname}",
                "n_refs": len(m.refs),
                "dim": int(m.embeddings.shape[1]),
                "refs": m.refs,
                "created": m.created,
                "meta": m.meta,
            }
            if processed:
                entries[name]["processed"] = processed
        doc = {
            "schema": SCHEMA,
            "backbone": self.backbone,
            "description": self.description,
            "sha256": self.sha256,
            "models": entries,
        }
        atomic_write_text(path / "gallery.json", json.dumps(doc, indent=2, sort_keys=False) + "\n")
        used = {Path(e["file"]).name for e in entries.values()}
        used |= {Path(f).name for e in entries.values() for f in e.get("processed", {}).values()}
        # only files the previous gallery.json listed: never a file fpattr did not write (a
        # user's own .npy in emb/, the arrays of a gallery whose gallery.json was lost were
        # deleted by `gallery add`, break-it 27)
        for name in listed - used:
            (emb_dir / name).unlink(missing_ok=True)
        self.path = path
        return path

    @classmethod
    def load(cls, path: Path) -> Gallery:
        """Read and verify a gallery: names, embedding files, integrity hash (sha256).

        Raises :class:`GalleryError` for a missing gallery, and for a damaged one with the
        way out (no command edits a gallery that fails these checks)."""
        path = Path(path)
        meta_file = path / "gallery.json"
        if not meta_file.is_file():
            raise GalleryError(f"no gallery at {path} (missing gallery.json)")
        for attempt in range(LOAD_ATTEMPTS):
            try:
                text = meta_file.read_bytes()
            except OSError as exc:
                raise GalleryError(f"cannot read {meta_file}: {exc}") from exc
            try:
                return cls._load(path, text)
            except GalleryError as exc:
                # readers take no lock: an edit that committed a new gallery.json and then
                # deleted the arrays of the old one meanwhile is not damage (a break-it pass
                # saw "the gallery is damaged" beside a writer). Read it again as it is now.
                with contextlib.suppress(OSError):
                    if meta_file.read_bytes() != text and attempt + 1 < LOAD_ATTEMPTS:
                        time.sleep(0.01 * (attempt + 1))
                        continue
                error = exc
                break
        raise GalleryError(
            f"{error} -- the gallery is damaged and no command will change it: move the "
            f"folder aside and enrol the models again (`fpattr gallery add ... -g "
            f"{path}`), or `fpattr gallery import` an export of it into a new folder"
        ) from None

    @classmethod
    def _load(cls, path: Path, text: bytes) -> Gallery:
        meta_file = path / "gallery.json"
        try:
            doc = json.loads(text.decode("utf-8"))
        except ValueError as exc:
            raise GalleryError(f"cannot read {meta_file}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            schema = doc.get("schema") if isinstance(doc, dict) else None
            raise GalleryError(f"{meta_file}: unknown schema {schema!r}")
        if not isinstance(doc.get("sha256"), str) or not doc["sha256"]:
            raise GalleryError(
                f'{meta_file} has no integrity hash ("sha256"): it was not written by '
                "fpattr or was edited by hand; refusing it. Re-create the gallery with "
                "`fpattr gallery add`, or import it from an `fpattr gallery export` file"
            )
        models = doc.get("models", {})
        if not isinstance(doc.get("backbone"), dict) or not isinstance(models, dict):
            raise GalleryError(f"{meta_file}: malformed (backbone or models missing)")
        g = cls(backbone=doc["backbone"], path=path, description=doc.get("description", ""))
        for name, e in models.items():
            try:
                check_model_name(name)
            except GalleryError as exc:
                raise GalleryError(f"{meta_file}: {exc}") from None
            file = e.get("file") if isinstance(e, dict) else None
            emb = _load_npy(path, file, name)
            n_refs = e.get("n_refs", emb.shape[0])
            if not isinstance(n_refs, int) or isinstance(n_refs, bool):
                raise GalleryError(f"gallery {path}: {name!r} has n_refs {n_refs!r}, not a count")
            if emb.ndim != 2 or emb.shape[0] != n_refs:
                raise GalleryError(
                    f"gallery {path}: {Path(file).name} has shape {emb.shape}, not ({n_refs}, D)"
                )
            _check_embeddings(name, emb, f"gallery {path}: ")
            _check_dim(g, name, emb, f"gallery {path}: ")
            files = e.get("processed", {})
            if not isinstance(files, dict):
                raise GalleryError(f"{meta_file}: {name!r} has processed copies {files!r}")
            proc = {kind: _load_npy(path, f, name) for kind, f in files.items()}
            g.models[name] = GalleryModel(
                name,
                emb.astype(np.float32),
                _check_refs(name, e.get("refs", []), emb.shape[0], f"gallery {path}: "),
                str(e.get("created", "")),
                e.get("meta", {}) if isinstance(e.get("meta", {}), dict) else {},
                _check_processed(name, proc, *emb.shape, f"gallery {path}: "),
            )
        if doc["sha256"] != g.sha256:
            raise GalleryError(f"gallery {path}: content does not match its recorded sha256")
        return g

    @classmethod
    def open_or_create(cls, path: Path, backbone_info: dict[str, Any]) -> Gallery:
        """The gallery at ``path``, or a new one there. Raises :class:`GalleryError` for a
        damaged gallery (:meth:`load`), another backbone's, or a folder whose ``emb/``
        holds arrays but no ``gallery.json`` lists them (a gallery that lost its metadata,
        or files of the user's own): a new gallery is not made on top of them."""
        path = Path(path)
        if (path / "gallery.json").is_file():
            g = cls.load(path)
            g.check_backbone(backbone_info)
            return g
        stray = sorted(p.name for p in (path / "emb").glob("*.npy")) if path.is_dir() else []
        if stray:
            raise GalleryError(
                f"{path} has no gallery.json but its emb/ holds {len(stray)} array file(s) "
                f"({', '.join(stray[:3])}{', ...' if len(stray) > 3 else ''}): a gallery "
                "that lost its metadata, or files of your own; fpattr makes no gallery on "
                "top of them. Give another folder, or move emb/ aside"
            )
        binding = {k: backbone_info.get(k) for k in ("name", "id", "sha256")}
        return cls(backbone=binding, path=path)


def _load_npy(gallery: Path, file: Any, name: str) -> np.ndarray:
    """An array a gallery.json entry names: ``emb/<file>.npy`` inside the gallery only."""
    rel = Path(file) if isinstance(file, str) else None
    if rel is None or rel.is_absolute() or len(rel.parts) != 2 or rel.parts[0] != "emb":
        raise GalleryError(
            f"{gallery / 'gallery.json'}: refuses embedding path {file!r} of {name!r}"
        )
    f = gallery / rel
    try:
        return np.load(f, allow_pickle=False)
    except _DAMAGED as exc:
        raise GalleryError(f"gallery {gallery}: cannot load {f.name}: {exc}") from exc


@contextmanager
def editing(path: Path, backbone_info: dict[str, Any]) -> Iterator[Gallery]:
    """Lock, load (or create), yield for edits, save: a safe read-modify-write."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with file_lock(path / ".lock"):
        g = Gallery.open_or_create(path, backbone_info)
        yield g
        g.save(path)


def update(path: Path, backbone_info: dict[str, Any], fn: Callable[[Gallery], Any]) -> Any:
    with editing(path, backbone_info) as g:
        return fn(g)


def export_npz(gallery: Gallery, dest: Path) -> Path:
    """One portable file: metadata as UTF-8 JSON bytes + one float32 array per model."""
    meta = {
        "schema": SCHEMA,
        "backbone": gallery.backbone,
        "description": gallery.description,
        "sha256": gallery.sha256,
        "models": {
            n: {
                "refs": m.refs,
                "created": m.created,
                "meta": m.meta,
                "processed": sorted(m.processed),
            }
            for n, m in gallery.models.items()
        },
    }
    arrays = {f"emb/{n}": np.asarray(m.embeddings, np.float32) for n, m in gallery.models.items()}
    for n, m in gallery.models.items():
        for kind, arr in m.processed.items():
            arrays[f"processed/{n}/{kind}"] = np.asarray(arr, np.float32)
    arrays["gallery.json"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(dest, buf.getvalue())
    return Path(dest)


def import_npz(src: Path) -> Gallery:
    """Read a file written by :func:`export_npz` (no pickle) and verify its digest."""
    try:
        with np.load(src, allow_pickle=False) as z:
            meta = json.loads(bytes(z["gallery.json"]).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
                raise GalleryError(f"{src}: not an fpattr gallery export")
            if not isinstance(meta.get("sha256"), str) or not meta["sha256"]:
                raise GalleryError(
                    f'{src} has no integrity hash ("sha256"): not written by '
                    "`fpattr gallery export`; refusing it"
                )
            g = Gallery(backbone=meta["backbone"], description=meta.get("description", ""))
            for name, e in meta["models"].items():
                check_model_name(name)
                emb = _check_embeddings(name, z[f"emb/{name}"], f"{src}: ")
                _check_dim(g, name, emb, f"{src}: ")
                kinds = e.get("processed", [])
                if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                    raise GalleryError(f"{src}: {name!r} has processed copies {kinds!r}")
                proc = {k: z[f"processed/{name}/{k}"] for k in kinds}
                g.models[name] = GalleryModel(
                    name,
                    emb.astype(np.float32),
                    _check_refs(name, e.get("refs", []), emb.shape[0], f"{src}: "),
                    str(e.get("created", "")),
                    e.get("meta", {}) if isinstance(e.get("meta", {}), dict) else {},
                    _check_processed(name, proc, *emb.shape, f"{src}: "),
                )
    except GalleryError:
        raise
    except (*_DAMAGED, KeyError, TypeError, AttributeError) as exc:
        raise GalleryError(f"cannot read gallery export {src}: {exc}") from exc
    if meta.get("sha256") != g.sha256:
        raise GalleryError(f"{src}: content does not match its recorded sha256 (corrupted?)")
    return g
