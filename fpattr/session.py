"""The Python API and the one inference path: ``Session(backbone, gallery, policy)``.

    >>> from fpattr import Session
    >>> s = Session.open("default", gallery="~/my-gallery")      # doctest: +SKIP
    >>> for r in s.attribute(["suspects/"]):                       # doctest: +SKIP
    ...     print(r["path"], r["decision"], r["probability"])

Every command goes through a Session: ``attribute`` streams one result dict per input
(errors included) over one decode-and-batch loop (:class:`fpattr.pipeline.Embedder`),
``verify`` compares two files or folders, ``embed_references`` makes the embeddings
``gallery.add`` enrols (the session refits its policy after every ``gallery.add`` and
``gallery.remove``). All
decisions and probabilities come from the session's :class:`fpattr.decision.DecisionPolicy`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.backbones.base import Backbone
from fpattr.decision import INSUFFICIENT, UNKNOWN, DecisionPolicy, names_a_model
from fpattr.errors import NoReferenceError, UsageError
from fpattr.gallery import Gallery
from fpattr.index import GalleryIndex, choose_kind, open_index
from fpattr.pipeline import Embedded, Embedder, RunStats, Settings
from fpattr.processing import PROCESSING_STRENGTH
from fpattr.views import l2_normalize

#: Candidates an approximate index hands the policy (at least the shown top_k).
N_CANDIDATES = 10


class Session:
    """One backbone, an optional gallery and the decision policy, ready to decide.

    ``backbone``: a :class:`fpattr.backbones.base.Backbone`; ``gallery``: a
    :class:`fpattr.gallery.Gallery` bound to that backbone (None: verify only);
    ``policy``: default ``DecisionPolicy(backbone.calibration(), gallery, ...)`` from
    ``settings`` (target false-accept rate, user threshold, prior of unknown);
    ``provenance``: add each file's metadata claims to attribute results (never to the
    decision; :func:`fpattr.provenance.with_decision` says whether they agree).
    ``index``: how the gallery is searched, "auto" | "exact" | "hnsw" (:mod:`fpattr.index`;
    "auto": exact below :data:`fpattr.index.EXACT_MAX_ENTRIES` entries), over ``index_entries``
    "models" (centroids) or "references" (every reference, candidates re-scored by their
    model's centroid). An exact search decides on every model exactly as before; an
    approximate one decides on the top candidates (``fpattr.decision.DecisionPolicy.
    decide_scores`` with ``n_models``).

    Raises :class:`fpattr.errors.GalleryError` when the gallery was made by another
    extractor.
    """

    def __init__(
        self,
        backbone: Backbone,
        gallery: Gallery | None = None,
        policy: DecisionPolicy | None = None,
        settings: Settings | None = None,
        *,
        provenance: bool = True,
        index: str = "auto",
        index_entries: str = "models",
    ) -> None:
        self.backbone = backbone
        self.provenance = provenance
        self.index_kind = index
        self.index_entries = index_entries
        self._index: GalleryIndex | None = None
        self._approximate: bool | None = None
        self._gallery = gallery
        self.settings = settings or Settings()
        if gallery is not None:
            gallery.check_backbone(backbone.info())
        # the references' formats and sizes, sides and owners by content, per gallery
        # version (_references)
        self._refs: tuple[int, dict[str | None, Any], dict[str | None, Any], dict] | None = None
        self._own_policy = policy is None  # built here: refitted when the gallery changes
        self._policy = policy or self._new_policy()
        self._decided_with = self._decision_settings()
        self._gallery_version = getattr(gallery, "version", 0)
        self._processed: dict[str, DecisionPolicy | None] = {}

    @property
    def gallery(self) -> Gallery | None:
        """The gallery queries are attributed against. Assigning another one (checked
        against the backbone) refits the session's own policy and drops every cache of the
        old one: its index, the references' shapes and owners, the processed
        calibrations (break-it: ``s.gallery = Gallery.load(...)`` kept deciding with the
        old gallery, whose caches were keyed by a version number the new one shared).
        A policy the caller supplied is the caller's to replace."""
        return self._gallery

    @gallery.setter
    def gallery(self, gallery: Gallery | None) -> None:
        if gallery is not None:
            gallery.check_backbone(self.backbone.info())
        self._gallery = gallery
        self._refs = None
        self._index, self._approximate = None, None
        self._gallery_version = getattr(gallery, "version", 0)
        self._processed = {}
        if self._own_policy:
            self._policy = self._new_policy()
            self._decided_with = self._decision_settings()

    def _decision_settings(self) -> tuple[Any, ...]:
        """The settings the session's own policy is fitted from."""
        s = self.settings
        return (s.target_far, s.threshold, s.prior_unknown, s.min_probability)

    def _sync_policy(self) -> None:
        """Refit the session's own policy when the gallery was edited (``gallery.add``,
        ``gallery.remove``: a break-it pass found a removed model still named, an added one
        never) or the decision settings changed (``session.settings = Settings(...)`` or a
        field of it set: a break-it pass found ``top_k`` applied and ``threshold``,
        ``target_far`` and ``min_probability`` silently not)."""
        if not self._own_policy:
            return
        version = getattr(self.gallery, "version", 0)
        if version != self._gallery_version:
            self._gallery_version = version
            self._index, self._approximate = None, None
        elif self._decision_settings() == self._decided_with:
            return
        self._policy = self._new_policy()
        self._decided_with = self._decision_settings()
        self._processed = {}

    def _new_policy(self, **processed: Any) -> DecisionPolicy:
        """The policy from the settings; ``processed``: ``processed_references=`` and
        ``processing=`` for :meth:`processed_policy`."""
        s = self.settings
        return DecisionPolicy(
            self.backbone.calibration(),
            self.gallery,
            target_far=s.target_far,
            threshold=s.threshold,
            prior_unknown=s.prior_unknown,
            min_probability=s.min_probability,
            **processed,
        )

    def query_processing(self, image: Any, model: str | None = None) -> str | None:
        """What a query looks to have gone through (:func:`fpattr.processing.
        query_processing`: "x0.5" markedly smaller, "jpeg75" a JPEG among non-JPEG
        references, None) from its decoded ``image`` (:class:`fpattr.io.loader.
        LoadedImage`), against the references of ``model`` (the one it would be attributed
        to: generators have native sizes, and a halved 256 px image is still larger than a
        32 px generator's references) or, without one, every enrolled reference."""
        from fpattr.processing import query_processing

        shapes, sides, _ = self._references()
        key = model if model is not None and model in shapes else None
        if image is None or key not in shapes:
            return None
        size = (image.width, image.height) if image.width and image.height else None
        return query_processing(
            getattr(image, "format", None),
            size,
            shapes[key][0],
            sides.get(key),
            jpeg_quality=getattr(image, "jpeg_quality", None),
        )

    def processed_policy(self, kind: str | None) -> DecisionPolicy | None:
        """The session's policy calibrated for queries processed as ``kind``: its
        pseudo-queries are the references' ``kind`` copies against their clean centroids
        (``DecisionPolicy(processed_references=)``). None for ``kind`` None, for a gallery
        without those copies for every model, and for a policy the caller supplied."""
        if kind is None or not self._own_policy or self.gallery is None:
            return None
        self._sync_policy()
        if kind not in self._processed:
            refs = self.gallery.processed_references(kind)
            self._processed[kind] = None
            if refs is not None:
                self._processed[kind] = self._new_policy(
                    processed_references=refs, processing=kind, threshold_floor=self.policy
                )
        return self._processed[kind]

    def policy_info(self) -> dict[str, Any]:
        """:meth:`DecisionPolicy.info` of the session's policy, its ``calibrations`` followed
        by those the policies for processed queries (:meth:`processed_policy`) fitted."""
        info = self.policy.info()
        extra = [p.info()["calibrations"] for p in self._processed.values() if p is not None]
        info["calibrations"] = [*info["calibrations"], *(c for cs in extra for c in cs)]
        return info

    @property
    def policy(self) -> DecisionPolicy:
        """The decision policy; the session's own is refitted after ``gallery.add`` or
        ``gallery.remove`` (the gallery index rebuilt on next use) and after the decision
        settings change (:meth:`_sync_policy`)."""
        self._sync_policy()
        return self._policy

    @policy.setter
    def policy(self, policy: DecisionPolicy) -> None:
        self._policy, self._own_policy = policy, False

    def _references(
        self,
    ) -> tuple[dict[str | None, Any], dict[str | None, Any], dict[str, list[str]]]:
        """(:func:`reference_shapes`, :func:`reference_sides`, :func:`reference_owners_of`)
        of the gallery, once per gallery version (not a scan of every reference per
        query)."""
        version = getattr(self.gallery, "version", 0)
        if self._refs is None or self._refs[0] != version:
            g = self.gallery
            self._refs = (version, reference_shapes(g), reference_sides(g), reference_owners_of(g))
        return self._refs[1], self._refs[2], self._refs[3]

    def reference_owners(self, sha256: str | None) -> list[str]:
        """The enrolled models holding a reference with this content (sha256), in gallery
        order; [] for None or none."""
        return list(self._references()[2].get(sha256, ())) if sha256 else []

    @classmethod
    def open(
        cls,
        backbone: str = "auto",
        gallery: str | Path | None = None,
        settings: Settings | None = None,
        **backbone_options: Any,
    ) -> Session:
        """A session from names: a registered backbone and a gallery folder (or None).

        An ONNX backbone gets the CLI's default intra-op threads
        (:data:`fpattr.pipeline.ONNX_THREADS`) unless ``threads=`` is given.
        """
        from fpattr.pipeline import open_backbone

        bb = open_backbone(backbone, **backbone_options)
        g = Gallery.load(Path(gallery).expanduser()) if gallery is not None else None
        return cls(bb, g, settings=settings)

    # -- embedding -------------------------------------------------------------------------------

    def embed(self, paths: Iterable[Any], *, exclude: Iterable[Any] = ()) -> Iterator[Embedded]:
        """Stream :class:`fpattr.pipeline.Embedded` for files and folders, in input order
        (skipped inputs included, with ``skipped=True``); ``exclude``: paths left out of the
        walk with their temp files (a run's own output files inside a scanned folder)."""
        from fpattr.io.walk import iter_inputs

        return self.embed_items(iter_inputs(paths, exclude=exclude))

    def embed_items(self, items: Iterable[Any]) -> Iterator[Embedded]:
        """:meth:`embed` for inputs already walked (``fpattr.io.walk.InputItem``), as the walk
        found them: a file met in a folder keeps ``in_folder`` (a non-image there is skipped,
        not failed) and a walk error keeps its reason (``--resume`` hands its leftovers)."""
        return self._embedder().embed_items(iter(items))

    def _embedder(self, *, provenance: bool = False) -> Embedder:
        # provenance is read in the decode threads, beside the decode, off the caller's
        # thread (a failed file is read after deciding, as before: see _provenance)
        metadata = _read_provenance if provenance else None
        return Embedder(self.backbone, self.settings, include_skipped=True, metadata=metadata)

    # -- attribute -------------------------------------------------------------------------------

    def attribute(
        self,
        paths: Iterable[Any],
        stats: RunStats | None = None,
        *,
        items: Iterable[Any] | None = None,
        exclude: Iterable[Any] = (),
    ) -> Iterator[dict[str, Any]]:
        """One result dict per input (schema in docs/user-guide.md), errors included; a
        file given again under any spelling (named twice, named and found in a folder,
        reached through a symlinked folder) is one input, counted in ``stats.n_repeated``
        (:func:`fpattr.io.walk.once_per_path`; hard links stay two). Copies of one file
        (the same sha256) within :data:`SAME_CONTENT_WINDOW` inputs of each other get the
        numbers of the first one, bit for bit.

        ``stats`` (optional) accumulates counts and the pooled embedding for
        :meth:`attribute_set`. ``items``: inputs already walked, used instead of walking
        ``paths`` (see :meth:`embed_items`); ``exclude``: see :meth:`embed`.
        """
        if self.gallery is None or not self.gallery.models:
            raise UsageError("attribute needs a gallery: enrol models with `fpattr gallery add`")
        from fpattr.io.walk import iter_inputs, once_per_path

        stats = stats if stats is not None else RunStats()
        if items is None:
            items = iter_inputs(paths, exclude=exclude)
        items = once_per_path(items, stats.count_repeat)
        embedded = self._embedder(provenance=self.provenance).embed_items(items)
        recent: OrderedDict[str, np.ndarray] = OrderedDict()  # sha256 -> first embedding
        for e in embedded:
            if e.skipped:
                stats.n_skipped += 1
            else:
                stats.n_inputs += 1
            res: dict[str, Any] = {
                "path": e.path,
                "sha256": e.image.sha256 if e.image else None,
                "status": "skipped" if e.skipped else ("error" if e.error else "ok"),
                "error": e.error,
                "image": _image_info(e),
                "n_views": e.n_views,
                "effective_views": e.effective_views,
                "top": [],
                "decision": None,
                "probability": None,
                # the decision's keys on every record, failed ones too (None): the user
                # guide's loop read r["threshold"] and met a KeyError (break-it)
                "leaning": None,
                "candidates": [],
                "p_unknown": None,
                # set by an approximate index's search only (fpattr.decision.
                # DecisionPolicy.decide_scores); None: every model was scored
                "p_not_retrieved": None,
                "threshold": None,
                "target_far": None,
                "calibration": None,
                # on every record ([] when none), so a reader can index it unguarded
                "caveats": [],
                "thumbnail": e.thumbnail,
            }
            if e.embedding is not None and not e.error:
                stats.n_ok += 1
                p = self.policy.project(_first_of(recent, res["sha256"], e.embedding))
                res.update(self._decide(p, views=e.effective_views, flat=e.flat, image=e.image))
                kind = (res.get("calibration") or {}).get("processing")
                caveats = [reference_caveat(res, e.image, self._references()[0])]
                owners = self.reference_owners(res["sha256"])
                if owners:
                    # its score against its own model includes itself: not independent
                    # evidence (evaluate leaves such queries out; attribute named them
                    # with no word, break-it)
                    caveats.append(
                        f"this file is an enrolled reference of {_some(owners)} (same "
                        "sha256): it is scored against a centroid it is part of, so the "
                        "answer is not independent evidence"
                    )
                res["caveats"] = [c for c in caveats if c]
                key = res["decision"] or "undecided"
                stats.decisions[key] = stats.decisions.get(key, 0) + 1
                if not e.flat:  # sets pool in the score space, as the policy's set calibration
                    stats.add_embedding(p, e.effective_views, res["sha256"], kind)
            if self.provenance:
                res["provenance"] = _provenance(
                    e.path,
                    res["decision"],
                    e.error,
                    e.skipped,
                    read=e.metadata,
                    models=self.gallery.models,  # its names
                )
            yield res

    def decide(
        self,
        embedding: np.ndarray,
        *,
        set_size: int = 1,
        views: int | None = None,
        flat: bool = False,
        processing: str | None = None,
    ) -> dict[str, Any]:
        """The policy's decision for one raw (D,) embedding against the gallery.

        ``processing``: decide as a query that went through that processing
        (:data:`fpattr.processing.PROCESSINGS`; :meth:`query_processing` infers it from a
        decoded image) with :meth:`processed_policy`, where the gallery holds the copies.

        Only the embedding's direction counts (it is scaled to unit length in float64).
        Raises ValueError for an embedding that is not a finite, non-zero vector of the
        gallery's dimension (a NaN one was answered "inconclusive" at probability NaN), for
        ``set_size`` or ``views`` not a whole number >= 1 (a bool is not), ``flat`` not a
        bool and an unknown ``processing``; :class:`~fpattr.errors.UsageError` without a
        gallery."""
        from fpattr.processing import PROCESSINGS

        if self.gallery is None or not self.gallery.models:
            raise UsageError("decide needs a gallery: enrol models with `fpattr gallery add`")
        # only the direction counts: scaled to unit length in float64 before the float32
        # the scores use (1e39 became inf in float32, probability NaN; 1e-50 became zeros
        # and 1e-15 a near-zero vector, answered "unknown"; break-it passes)
        emb = np.asarray(embedding, dtype=np.float64)
        peak = float(np.abs(emb).max()) if emb.ndim == 1 and emb.size else 0.0
        if emb.ndim != 1 or not np.isfinite(emb).all() or peak == 0.0:
            raise ValueError("decide needs a finite, non-zero (D,) embedding")
        unit = emb / peak
        as32 = (unit / np.linalg.norm(unit)).astype(np.float32)
        dim = next(iter(self.gallery.models.values())).embeddings.shape[1]
        if emb.shape[0] != dim:
            raise ValueError(f"decide needs a ({dim},) embedding, the gallery's; got {emb.shape}")
        if not _whole(set_size):
            raise ValueError(f"set_size must be an integer >= 1, got {set_size!r}")
        if views is not None and not _whole(views):
            raise ValueError(f"views must be None or an integer >= 1, got {views!r}")
        if processing is not None and processing not in PROCESSINGS:
            raise ValueError(
                f"unknown processing {processing!r}; expected one of {sorted(PROCESSINGS)}"
            )
        if not isinstance(flat, bool | np.bool_):  # "no" is truthy: read as flat (break-it)
            raise ValueError(f"flat must be True or False, got {flat!r}")
        res = self._decide(
            self.policy.project(as32),
            set_size=set_size,
            views=views,
            flat=flat,
            processing=processing,
        )
        res["caveats"] = []  # present on every answer, as on attribute's records
        if processing is not None and (res.get("calibration") or {}).get("processing") is None:
            res["caveats"].append(
                f"the gallery does not hold {processing} copies of every model's references: "
                "decided with the clean references' calibration"
            )
        return res

    def _decide(
        self,
        projected: np.ndarray,
        *,
        set_size: int = 1,
        views: int | None = None,
        flat: bool = False,
        processing: str | None = None,
        image: Any = None,
    ) -> dict[str, Any]:
        """:meth:`decide` for an embedding already in the policy's score space;
        ``processing``: decide with :meth:`processed_policy` of that kind when the gallery
        holds those copies (else the clean calibration, and the result's caveat says so);
        ``image`` (its :class:`fpattr.io.loader.LoadedImage`, with ``processing`` None):
        infer the processing from it against the references of the model it scores
        highest with (:meth:`query_processing`)."""
        n_models = None  # an exact search scores every model
        if self._uses_index():  # the index's top candidates, re-scored exactly
            idx = self.index
            names, sims = idx.candidates(projected, self._n_candidates(), self.policy.gallery)
            n_models = len(idx.names)
        else:
            names, sims = self.policy.scores(projected)
        if processing is None and image is not None and len(names) and not flat:
            # (a flat image is decided by no calibration: a 1x1 PNG read as "x0.5" was
            # said to be decided with the references' x0.5 copies, break-it 27)
            processing = self.query_processing(image, names[int(np.argmax(sims))])
        policy = self.processed_policy(processing) or self.policy
        return policy.decide_scores(
            sims,
            names,
            top_k=self.settings.top_k,
            set_size=set_size,
            views=views,
            flat=flat,
            n_models=n_models,
        )

    # -- gallery index ---------------------------------------------------------------------------

    def _uses_index(self) -> bool:
        """Whether decisions go through an approximate index (chosen once, by size)."""
        if self._approximate is None:
            if self.gallery is None or not self.gallery.models:
                self._approximate = False
            else:
                n = len(self.gallery.models)
                if self.index_entries == "references":
                    n = sum(m.embeddings.shape[0] for m in self.gallery.models.values())
                self._approximate = choose_kind(n, self.index_kind) != "exact"
        return self._approximate

    @property
    def index(self) -> GalleryIndex:
        """The gallery's search index, built (or loaded from its cache) on first use."""
        if self.gallery is None:
            raise UsageError("no gallery: nothing to index")
        if self._index is None:
            kind = "hnsw" if self._uses_index() else "exact"
            # the index holds the gallery as the policy scores it (its score space); its
            # cache is keyed by that gallery's digest and kept beside the gallery's folder
            self._index = open_index(
                self.policy.gallery, kind, entries=self.index_entries, cache_dir=self.gallery.path
            )
        return self._index

    def index_info(self) -> dict[str, Any] | None:
        """What the run manifest records about the search (``gallery.index``); builds or
        loads an approximate index now, so its build time is known. None: no gallery."""
        if self.gallery is None or not self.gallery.models:
            return None
        if not self._uses_index():  # the policy's own dense product: no index object
            n = len(self.gallery.models)
            return {"kind": "exact", "entries": "models", "n_entries": n, "n_models": n}
        return {**self.index.info(), "candidates": self._n_candidates()}

    def _n_candidates(self) -> int:
        # the policy needs the top_k it shows and a few more for the posterior's bulk
        return max(self.settings.top_k, N_CANDIDATES)

    def attribute_set(self, stats: RunStats) -> dict[str, Any] | None:
        """One decision for every good input of a run, assumed to share one source.

        Pooled like a folder (mean of the image embeddings, L2) and decided with the
        calibration fitted for sets of that size.
        """
        if stats.n_ok == 0:
            return None
        n_flat = stats.n_ok - stats.n_pooled - stats.n_duplicates  # no fingerprint: left out
        if stats.emb_sum is None or stats.n_pooled == 0:  # every good image was flat
            return {
                "n_images": 0,
                "n_flat": n_flat,
                "decision": INSUFFICIENT,
                "probability": None,
                "top": [],
                "note": f"every image is flat ({n_flat}): no fingerprint to pool",
            }
        # a set of processed copies (every image stored unlike the references, the same
        # way) is decided with that processing's calibration, as each image was; a mixed
        # set with the calibration of most of its images (ties: the stronger change), and
        # a note says so (a break-it pass: a mixed set fell back to the clean one silently)
        counts = stats.processings
        order = [None, *PROCESSING_STRENGTH]
        kind = max(counts, key=lambda k: (counts[k], order.index(k))) if counts else None
        d = self._decide(
            l2_normalize(stats.emb_sum),
            set_size=stats.n_pooled,
            views=stats.min_views,
            processing=kind,
        )
        out = {
            "n_images": stats.n_pooled,
            "n_duplicates": stats.n_duplicates,
            "n_flat": n_flat,
            **d,
        }
        notes = []
        if n_flat:
            notes.append(f"{n_flat} flat image(s) carry no fingerprint: left out of the set")
        if stats.n_duplicates:
            notes.append(
                f"{stats.n_duplicates} file(s) repeat the content (sha256) of another: pooled once"
            )
        named = sorted(k for k in stats.decisions if k != "undecided" and names_a_model(k))
        if len(named) > 1:
            notes.append(
                f"the images' own decisions name {len(named)} different models "
                f"({', '.join(named[:5])}{', ...' if len(named) > 5 else ''}): they may not "
                "share one source, which a set decision assumes"
            )
        owned = [self.reference_owners(sha) for sha in stats.pooled_sha]
        refs = [o for o in owned if o]
        if refs:  # second break-it pass: the images said so, the set did not
            owners = sorted({m for o in refs for m in o})
            notes.append(
                f"{len(refs)} of the pooled images are enrolled references of "
                f"{_some(owners)} (same sha256): the set is scored against centroids they "
                "are part of, so its answer is not independent evidence"
            )
        if len(counts) > 1:
            parts = ", ".join(
                f"{counts[k]} {k or 'stored like the references'}"
                for k in sorted(counts, key=lambda k: order.index(k))
            )
            used = "the clean one" if kind is None else f"the references' {kind} copies"
            tie = sum(1 for v in counts.values() if v == counts[kind]) > 1
            which = "the stronger change of a tie" if tie else "most of them"
            notes.append(
                "the set mixes images stored like the references and processed ones "
                f"({parts}): decided with the calibration of {which} ({used})"
            )
        if notes:
            out["note"] = "; ".join(notes)
        return out

    def view_notes(self) -> list[str]:
        """Where the gallery's references were cropped otherwise than this run crops
        queries (:func:`fpattr.views.view_rule`): models enrolled with another ``--views``,
        or before galleries recorded it (when a 256 px reference had 4 views, not 16)."""
        from fpattr.views import view_rule

        if self.gallery is None:
            return []
        rule = view_rule(self.settings.views)
        other: dict[str, list[str]] = {}
        unrecorded: list[str] = []
        for name, m in self.gallery.models.items():
            got = {r.get("views") for r in m.refs}
            if None in got:
                unrecorded.append(name)
            for g in sorted(str(x) for x in got - {None, rule}):
                other.setdefault(g, []).append(name)
        notes = []
        for got, names in sorted(other.items()):
            notes.append(
                f"{_some(names)} enrolled with views {got}, this run crops with {rule}: "
                "images of two views a side or more are not fingerprinted alike; re-enrol "
                "them or pass the same --views"
            )
        if unrecorded:
            notes.append(
                f"{_some(unrecorded)} enrolled before galleries recorded their views: "
                "references of two views a side or more (128 px and up with 64 px views) "
                "were then cropped 4 times, where this run may crop queries up to 16; "
                "re-enrol them (gallery add NAME REFS --replace) to compare like for like"
            )
        return notes

    # -- verify ----------------------------------------------------------------------------------

    def _side(self, path: Any) -> tuple[list[tuple[str | None, np.ndarray, Any]], dict[str, Any]]:
        """One verify side's images: ([(sha256, embedding in the score space, effective
        views)] of each distinct content that carries a fingerprint, counts); pooled by
        :func:`_pool_side` once the two sides are compared for shared files."""
        n_flat, n_dup, failed, skipped, shas = 0, 0, [], [], set()
        images: list[tuple[str | None, np.ndarray, Any]] = []
        read: list[str | None] = []  # the sha256 of every file decoded, evidence or not
        for e in self.embed([path]):
            if e.skipped:
                skipped.append({"path": e.path, "reason": e.error})
                continue
            if e.image is not None:
                read.append(e.image.sha256)
            if e.embedding is None or e.error:
                failed.append({"path": e.path, "error": e.error})
                continue
            if e.flat:
                n_flat += 1
                continue
            sha = e.image.sha256 if e.image else None
            if sha is not None and sha in shas:  # the same content twice: one piece of evidence
                n_dup += 1
                continue
            shas.add(sha)
            # a folder pools in the score space
            images.append((sha, self.policy.project(e.embedding), e.effective_views))
        info = {
            "path": str(path),
            # a side of one file keeps its sha256 whatever becomes of it (flat, or left out
            # as shared with the other side: `verify a.png a.png` reported null, break-it)
            "sha256": read[0] if len(read) == 1 else None,
            "n_duplicates": n_dup,
            "n_flat": n_flat,
            "failed": failed,
            "skipped": skipped,
        }
        return images, info

    def verify(self, a: Any, b: Any) -> dict[str, Any]:
        """Same source or not for two files or folders (a folder is pooled into one
        fingerprint); the policy decides with the calibration for those set sizes."""
        images_a, ia = self._side(a)
        images_b, ib = self._side(b)
        # content on both sides is not independent evidence (break-it: a file against the
        # folder holding it, or a folder against itself, answered "same" at 0.975): it is
        # kept on the side with fewer images and left out of the other, or left out of
        # both when they hold as many (so that `verify A B` and `verify B A` agree)
        shared = {sha for sha, _, _ in images_a} & {sha for sha, _, _ in images_b} - {None}
        drop_a = len(images_a) >= len(images_b)
        drop_b = len(images_b) >= len(images_a)
        if shared:
            if drop_a:
                images_a = [x for x in images_a if x[0] not in shared]
            if drop_b:
                images_b = [x for x in images_b if x[0] not in shared]
        ea, ia = _pool_side(images_a, ia)
        eb, ib = _pool_side(images_b, ib)
        res: dict[str, Any] = {
            # as attribute records paths: bytes and path objects decoded, not their repr
            # ("b'q/x.png'" came back for bytes paths; break-it 28)
            "a": os.fsdecode(os.fspath(a)),
            "b": os.fsdecode(os.fspath(b)),
            **self._verify_provenance(a, b),
            "a_sha256": ia["sha256"],
            "b_sha256": ib["sha256"],
            "a_images": ia["n_images"],
            "b_images": ib["n_images"],
            # read, but no evidence: flat images and repeats of an image already counted
            "a_flat": ia["n_flat"],
            "b_flat": ib["n_flat"],
            "a_duplicates": ia["n_duplicates"],
            "b_duplicates": ib["n_duplicates"],
            # images also on the other side, counted on the side they were left out of
            "a_shared": len(shared) if drop_a else 0,
            "b_shared": len(shared) if drop_b else 0,
            "a_failed": len(ia["failed"]),
            "b_failed": len(ib["failed"]),
            "failed": ia["failed"] + ib["failed"],
            "skipped": ia["skipped"] + ib["skipped"],
            "status": "ok",
            "error": None,
            "similarity": None,
            "probability": None,
            "decision": None,
        }
        # a side with no image at all is an error whatever the other side holds (a flat
        # side beside an empty one answered 'insufficient signal' and exit 0)
        sides = (("A", ea, ia), ("B", eb, ib))
        unusable = [k for k, e, i in sides if e is None and not i["n_flat"]]
        if unusable:
            side = unusable[0]
            failed = (ia if side == "A" else ib)["failed"]
            res["status"] = "error"
            if res[f"{side.lower()}_shared"]:
                other = "B" if side == "A" else "A"
                res["error"] = (
                    f"every image of {side} is also in {other} (the same sha256): nothing "
                    "independent to compare"
                )
                return res
            skipped = (ia if side == "A" else ib)["skipped"]
            if failed:
                res["error"] = f"{side} has no usable image ({failed[0]['error']})"
            elif skipped:
                res["error"] = (
                    f"{side} has no usable image: it holds no image ({len(skipped)} file(s) "
                    "skipped, listed in skipped)"
                )
            else:  # nothing read or refused: said as what it is, no input failed
                res["error"] = f"{side} has no usable image: it is an empty folder"
            return res
        if ea is None or eb is None:  # a side read whole, but every image flat
            res["similarity"] = None
            return res | self.policy.verify(0.0, flat=True)
        s = float(np.clip(ea @ eb, -1.0, 1.0))  # float32 rounding can pass 1
        views = min(v for v in (ia["views"], ib["views"]) if v is not None)
        d = self.policy.verify(s, a_images=ia["n_images"], b_images=ib["n_images"], views=views)
        return res | {"similarity": s} | d

    @staticmethod
    def verify_counts(res: dict[str, Any]) -> dict[str, Any]:
        """A :meth:`verify` result's inputs accounted for, as a run summary counts them: the
        files, never the sides. ``n_inputs``: files read or refused; ``n_ok``: read (the
        images pooled, and the flat images, repeats and images also on the other side, read
        but carrying no further evidence); ``n_failed``: refused; ``n_skipped``;
        ``decisions`` ({decision: 1}, or {}). A side that compares nothing (an empty folder,
        non-images only, every image also on the other side) is the result's error, not a
        failed input: it counted as one, and a folder against itself read "8 inputs, 2
        failed" for 6 files all read (break-it)."""
        n_ok = n_failed = 0
        for side in "ab":
            n_ok += sum(
                res.get(f"{side}_{k}", 0) for k in ("images", "flat", "duplicates", "shared")
            )
            n_failed += res.get(f"{side}_failed", 0)
        return {
            "n_inputs": n_ok + n_failed,
            "n_ok": n_ok,
            "n_failed": n_failed,
            "n_skipped": len(res["skipped"]),
            "decisions": {res["decision"]: 1} if res["decision"] else {},
        }

    def _verify_provenance(self, a: Any, b: Any) -> dict[str, Any]:
        """``provenance_a`` / ``provenance_b``: each side's record as in attribute results
        (a verify decision names no model, so ``agrees_with_fingerprint`` is None). A
        folder side is many files: None there (``fpattr provenance FOLDER`` lists them)."""
        if not self.provenance:
            return {}
        import os

        return {
            f"provenance_{k}": (None if os.path.isdir(p) else _provenance(p, None))
            for k, p in (("a", a), ("b", b))
        }

    # -- enrol -----------------------------------------------------------------------------------

    def embed_references(
        self, paths: Iterable[Any], on_each: Any = None
    ) -> tuple[np.ndarray | None, list[dict[str, Any]], list[dict[str, Any]]]:
        """Embeddings of reference images for enrolment: (N, D) or None, their refs
        ({"path", "sha256", "views": the view rule they were cropped with,
        :func:`fpattr.views.view_rule`}), and the inputs left out with reasons (failed,
        flat, or an exact duplicate by sha256 of an earlier reference)."""
        from fpattr.views import view_rule

        rule = view_rule(self.settings.views)
        embs, refs, left_out = [], [], []
        seen: dict[str, str] = {}
        for e in self.embed(paths):
            if on_each is not None:
                on_each({"status": "skipped" if e.skipped else ("error" if e.error else "ok")})
            sha = e.image.sha256 if e.image else None
            if e.skipped:
                left_out.append({"path": e.path, "error": e.error, "skipped": True})
            elif e.embedding is None or e.error:
                left_out.append({"path": e.path, "error": e.error})
            elif e.flat:
                why = (
                    "every view is flat"
                    if e.embedding is None or np.any(e.embedding)
                    else "the backbone returned an all-zero embedding"
                )
                left_out.append({"path": e.path, "error": f"insufficient signal: {why}"})
            elif sha is not None and sha in seen:
                left_out.append(
                    {
                        "path": e.path,
                        "error": f"duplicate of {seen[sha]} (same sha256)",
                        "duplicate": True,
                    }
                )
            else:
                if sha is not None:
                    seen[sha] = e.path
                embs.append(e.embedding)
                ref = {"path": e.path, "sha256": sha, "views": rule}
                if e.image is not None:  # what a query is compared with (reference_caveat)
                    ref |= {"width": e.image.width, "height": e.image.height}
                    ref["format"] = e.image.format
                refs.append(ref)
        return (np.stack(embs) if embs else None), refs, left_out

    def embed_processed(
        self, paths: list[Any], kinds: Iterable[str] | None = None
    ) -> tuple[dict[str, np.ndarray], list[str]]:
        """The processed copies of references :meth:`embed_references` accepted (``paths``,
        in its order): ``({kind: (N, D)}, notes)`` for each of :data:`fpattr.processing.
        PROCESSINGS` (or ``kinds``). A kind is left out, with a note, when any copy fails
        or has no fingerprint left: its rows must stay the references'.

        Raises ValueError for a kind that is not in PROCESSINGS."""
        from fpattr.io.walk import InputItem
        from fpattr.processing import PROCESSINGS, processed_loader

        todo = list(kinds) if kinds is not None else list(PROCESSINGS)
        unknown = [k for k in todo if k not in PROCESSINGS]
        if unknown:
            raise ValueError(
                f"unknown processing {unknown[0]!r}; expected one of {sorted(PROCESSINGS)}"
            )
        out: dict[str, np.ndarray] = {}
        notes: list[str] = []
        for kind in todo:
            embedder = Embedder(
                self.backbone,
                self.settings,
                loader=processed_loader(PROCESSINGS[kind]),
                include_skipped=True,
            )
            rows, bad = [], None
            for e in embedder.embed_items(InputItem(p) for p in paths):
                if e.embedding is None or e.error or e.flat:
                    bad = f"{e.path}: {e.error or 'every view flat'}"
                    break
                rows.append(e.embedding)
            if bad is None and len(rows) == len(paths) and rows:
                out[kind] = np.stack(rows)
            else:
                notes.append(f"no {kind} copies enrolled ({bad or 'no reference'})")
        return out, notes

    # -- enrol -----------------------------------------------------------------------------------

    def enrol(
        self,
        name: str,
        paths: Iterable[Any],
        *,
        replace: bool = False,
        append: bool = False,
        processed_copies: bool = True,
        save_to: str | os.PathLike[str] | None = None,
        on_each: Any = None,
        on_stage: Any = None,
    ) -> dict[str, Any]:
        """Enrol model ``name`` from reference images or folders (zero-shot: no training),
        the one enrolment path (``fpattr gallery add`` calls it).

        The references are embedded as queries are (:meth:`embed_references`: failed,
        flat and exact-duplicate files left out with their reasons), with their JPEG 75
        and x0.5 copies when ``processed_copies`` (:meth:`embed_processed`). ``save_to``: a
        gallery folder, edited under its lock (read, add, save) and then the session's
        gallery; None: the session's gallery in memory (a new one for the backbone when it
        has none). The session's own policy is refitted either way. ``replace`` /
        ``append``: what to do with a model of that name already enrolled (else
        :class:`fpattr.errors.GalleryError`). ``on_each``: called with each reference's
        record as it is read (progress); ``on_stage``: called with a short text before
        the processed copies are embedded.

        Returns the enrolment report (``gallery add --format json``): ``model``,
        ``n_refs``, ``n_models``, ``failed`` / ``skipped`` / ``duplicates_dropped`` /
        ``already_enrolled`` (what was left out), ``shared_references`` (other models
        holding the same files), ``enrolment_check`` (this model's references under
        leave-one-out, :meth:`DecisionPolicy.enrolment_check`; None with one model),
        ``calibration``, ``processed_copies``, and ``warnings`` / ``notes`` (plain text,
        for the user). Raises :class:`fpattr.errors.NoReferenceError` (a UsageError)
        when no reference is usable (the gallery is then unchanged), UsageError for
        ``replace`` with ``append``.
        """
        from fpattr import gallery as gal

        if replace and append:
            raise UsageError("--replace and --append are exclusive")
        gal.check_model_name(name)
        embs, refs, left_out = self.embed_references(paths, on_each=on_each)
        failed = [x for x in left_out if not x.get("duplicate") and not x.get("skipped")]
        skipped = [x for x in left_out if x.get("skipped")]
        duplicates = [x for x in left_out if x.get("duplicate")]
        if embs is None:
            raise NoReferenceError(
                f"no usable reference image for {name!r}; gallery unchanged", left_out
            )
        processed: dict[str, np.ndarray] = {}
        notes: list[str] = []
        if processed_copies:
            if on_stage is not None:
                on_stage(f"enrolling the processed copies of {len(refs)} reference(s)")
            processed, notes = self.embed_processed([r["path"] for r in refs])

        def add(g: Gallery) -> tuple[Any, ...]:
            before = len(g.models[name].refs) if name in g.models and append else 0
            kinds_before = g.processed_kinds()
            model = g.add(name, embs, refs, replace=replace, append=append, processed=processed)
            return model, before, g.processed_change_note(kinds_before)

        if save_to is not None:
            with gal.editing(Path(save_to), self.backbone.info()) as g:
                model, before, lost_note = add(g)
            self.gallery = g  # the saved gallery (refits the session's policy)
        else:
            if self.gallery is None:
                binding = {k: self.backbone.info().get(k) for k in ("name", "id", "sha256")}
                self.gallery = Gallery(backbone=binding)
            g = self.gallery
            model, before, lost_note = add(g)
        shared = g.shared_references(name)
        already = before + len(refs) - len(model.refs)
        shown = repr(name)
        warnings: list[str] = []
        if duplicates:
            notes.insert(
                0,
                f"{len(duplicates)} exact duplicate reference(s) left out (same sha256 as "
                "another reference: one file is one piece of evidence)",
            )
        for other, n in shared.items():
            warnings.append(
                f"{n} reference(s) of {shown} are also enrolled under {other!r} (same file "
                "content): queries will be split between the two"
            )
        if len(model.refs) < 3:
            notes.append(
                f"{shown} has {len(model.refs)} reference(s); 5-10 give much more reliable "
                "centroids"
            )
        rules = sorted({str(r.get("views", "unrecorded")) for r in model.refs})
        if len(rules) > 1:  # appended references cropped otherwise than the earlier ones
            warnings.append(
                f"{shown}'s references were enrolled with views {' and '.join(rules)}: its "
                "centroid mixes fingerprints cropped differently"
            )
        if already:
            notes.append(
                f"{already} reference(s) already enrolled under {shown} (same sha256) were not "
                "added again"
            )
        # a policy the caller supplied is theirs (not refitted): the report is made with
        # one fitted on the edited gallery (it described the old one; review 28)
        pol = self.policy if self._own_policy else self._new_policy()
        mine = pol.enrolment_check().get(name)
        if mine is not None and not mine["checkable"]:
            notes.append(f"{shown} has one reference: leave-one-out cannot check it")
        elif mine is not None and mine["recognised"] * 2 < mine["n_refs"]:
            warnings.append(
                f"fewer than half of {shown}'s references are recognised as their own model: "
                "expect it to be answered 'unknown' or 'ambiguous'; add references (5-10 from "
                "the same source) or check that they really share one source"
            )
        warnings += pol.enrolment_warnings(name)
        if append and processed and not model.processed:
            # Gallery.add keeps only the kinds both batches have
            notes.append(
                f"{name!r}'s earlier references have no processed copies, so the copies of "
                "the appended ones were not kept (re-enrol the model with --replace to have "
                "them)"
            )
        lacking = g.lacking_processed()
        if lost_note:
            notes.append(lost_note)
        elif processed_copies and model.processed and lacking:
            others = sorted({n for v in lacking.values() for n in v} - {name})
            if others:
                notes.append(
                    "not every enrolled model has processed copies of its references (missing "
                    f"for {', '.join(repr(n) for n in others[:5])}"
                    f"{' and more' if len(others) > 5 else ''}): JPEG or down-scaled queries "
                    "are decided with the clean references' calibration and a caveat "
                    "(re-enrol them with --replace)"
                )
        cal = pol.calibration("image-vs-model")
        pair = pol.calibration("image-vs-image")
        return {
            "gallery": str(save_to) if save_to is not None else None,
            "model": name,
            "n_refs": len(model.refs),
            "n_models": len(g.models),
            "failed": failed,
            "skipped": skipped,
            "duplicates_dropped": [x["path"] for x in duplicates],
            "already_enrolled": already,
            "backbone": self.backbone.id,
            "shared_references": shared,
            "enrolment_check": mine,
            "warnings": warnings,
            "calibration": {
                "image-vs-model": cal.info() if cal else None,
                "image-vs-image": pair.info() if pair else None,
            },
            "processed_copies": {
                "enrolled": sorted(model.processed),
                "gallery": g.processed_kinds(),
            },
            "notes": notes,
        }


#: Measured on the public generators, 5 references, queries processed unlike their
#: references (benchmarks/processed_queries.py, docs/benchmarks.md): precision of named
#: answers (generator-disjoint, target FAR 1 %) and nearest-centroid top-1 (0.54 clean).
PROCESSED_PRECISION = {"re-encoded": 0.81, "resized": 0.61}
PROCESSED_TOP1 = {"re-encoded": 0.43, "resized": 0.27}
#: The same, decided with the calibration made of the references' processed copies
#: (benchmarks/processed_reference_calibration.py): (precision, coverage) of named
#: answers for JPEG 75 and x0.5 queries.
CALIBRATED_PRECISION = {"jpeg75": (0.90, 0.08), "x0.5": (0.88, 0.01)}


def _per_model(gallery: Any, of: Any) -> dict[str | None, Any]:
    """``of(refs)`` for every enrolled model's references and (key None) for all of them."""
    if gallery is None:
        return {}
    out: dict[str | None, Any] = {name: of(m.refs) for name, m in gallery.models.items()}
    out[None] = of([r for m in gallery.models.values() for r in m.refs])
    return out


def reference_shapes(gallery: Any) -> dict[str | None, tuple[frozenset[str], int | None]]:
    """Per enrolled model (and ``None``: every reference), the formats its references were
    stored in and the smallest reference area in pixels (None when unrecorded): what
    :func:`reference_caveat` compares a query with."""

    def shape(refs: list[dict[str, Any]]) -> tuple[frozenset[str], int | None]:
        formats = frozenset(r["format"] for r in refs if r.get("format"))
        areas = [r["width"] * r["height"] for r in refs if r.get("width") and r.get("height")]
        return formats, (min(areas) if areas else None)

    return _per_model(gallery, shape)


def reference_owners_of(gallery: Any) -> dict[str, list[str]]:
    """sha256 -> the enrolled models holding a reference with that content, in gallery
    order (what :meth:`Session.reference_owners` answers from)."""
    owners: dict[str, list[str]] = {}
    for name, m in gallery.models.items() if gallery is not None else ():
        for r in m.refs:
            sha = r.get("sha256")
            if sha and name not in owners.setdefault(sha, []):
                owners[sha].append(name)
    return owners


def reference_sides(gallery: Any) -> dict[str | None, tuple[int, int] | None]:
    """Per enrolled model (and ``None``: every reference), the smallest short and long
    sides of its references (:func:`fpattr.processing.least_sides`; None when unrecorded):
    what :meth:`Session.query_processing` compares a query's size with."""
    from fpattr.processing import least_sides

    return _per_model(
        gallery, lambda refs: least_sides((r.get("width"), r.get("height")) for r in refs)
    )


def reference_caveat(
    res: dict[str, Any], image: Any, shapes: dict[str | None, tuple[frozenset[str], int | None]]
) -> str | None:
    """A caveat when the query was stored unlike the references it is judged against:
    another format (a JPEG query, PNG references: re-encoded?) or smaller than every
    reference (resized?). Those are the references of the model the result names or leans
    to, or of every model for "unknown" (``shapes``: :func:`reference_shapes` of the
    gallery). The calibration is fitted on the references themselves, so it foresees
    queries stored like them; measured on the public generators, named answers for
    re-encoded or halved queries were right 0.81 and 0.61 of the time
    (:data:`PROCESSED_PRECISION`). None when the references carry no record of their
    format and size (galleries enrolled before they were recorded) or nothing differs.
    """
    if image is None or not shapes or res.get("decision") is None:
        return None
    processing = (res.get("calibration") or {}).get("processing")
    top = (res.get("top") or [{}])[0].get("model")
    name = res["decision"] if res["decision"] in shapes else res.get("leaning")
    if processing is not None and top is not None and top in shapes:
        # judged against the references the processing was inferred from, those of the
        # model the query scores highest with (Session.query_processing): judged against
        # every reference, a 64 px query leaning to unknown was decided as a x0.5 copy
        # with no caveat at all (break-it)
        name = top
        (formats, least) = shapes[top]
        whose = f"{top}'s references (the model it scores highest with)"
    elif name is not None and name in shapes:
        (formats, least), whose = shapes[name], f"{name}'s references"
    elif res["decision"] == UNKNOWN or res.get("leaning") == UNKNOWN:
        (formats, least), whose = shapes[None], "every enrolled reference"
        name = None
    else:
        return None
    from fpattr.processing import codec

    fmt = getattr(image, "format", None)
    # by codec: an MPO (a camera's multi-picture JPEG) among JPEG references is not re-encoded
    reencoded = bool(formats and fmt and codec(fmt) not in {codec(f) for f in formats})
    smaller = least is not None and image.width * image.height < least
    # the wording follows the calibration that decided (a JPEG query smaller than the
    # references is decided as a x0.5 copy, and the caveat said "re-encoded")
    if smaller and (processing == "x0.5" or not reencoded):
        kind = "resized"
        what = f"the query ({image.width}x{image.height}) is smaller than {whose}"
    elif reencoded:
        kind = "re-encoded"
        what = f"the query is {fmt}, {whose} {'/'.join(sorted(formats))}"
    elif processing in CALIBRATED_PRECISION:  # (the references hold no record to compare)
        kind = "resized" if processing == "x0.5" else "re-encoded"
        what = f"the query looks {kind} against {whose}"
    else:
        return None
    if processing in CALIBRATED_PRECISION:
        prec, cover = CALIBRATED_PRECISION[processing]
        return (
            f"{what}: a {kind} copy? Decided with the calibration made of the references' "
            f"{processing} copies; on the public generators such queries were named "
            f"{cover:.0%} of the time and right {prec:.0%} of the time when named "
            "(docs/benchmarks.md)"
        )
    from fpattr.processing import JPEG75_MAX_QUALITY

    quality = getattr(image, "jpeg_quality", None)
    if kind == "re-encoded" and quality is not None and quality > JPEG75_MAX_QUALITY:
        # judged near-lossless on purpose (fpattr.processing.query_processing), not for
        # want of the processed copies
        return (
            f"{what}, saved at quality {quality}: near-lossless, so decided with the clean "
            f"references' calibration (the JPEG 75 one is for quality {JPEG75_MAX_QUALITY} "
            "or less)"
        )
    if name is not None:
        then = (
            f"{kind} queries' named answers were right {PROCESSED_PRECISION[kind]:.0%} of the "
            "time on the public generators"
        )
    else:
        then = (
            f"a {kind} copy of an enrolled generator can score as unknown (top-1 on the public "
            f"generators {PROCESSED_TOP1[kind]:.2f}, 0.54 unprocessed)"
        )
    return (
        f"{what}: a {kind} copy? The calibration foresees queries stored like the "
        f"references; {then} (docs/benchmarks.md)"
    )


def _whole(x: Any) -> bool:
    """``x`` is a whole number >= 1 (inf, NaN, 1.5, 0 and True are not: a bool passed
    for a set size was taken as 1, break-it 27b)."""
    if isinstance(x, bool | np.bool_):
        return False
    try:
        return bool(np.isfinite(x)) and int(x) == x and x >= 1
    except (TypeError, ValueError):
        return False


#: How many recent inputs' embeddings :meth:`Session.attribute` keeps by content (about
#: 2.8 kB each for the default extractor: 5.7 MB, memory stays flat).
SAME_CONTENT_WINDOW = 2048


def _first_of(recent: OrderedDict[str, np.ndarray], sha256: str | None, emb: np.ndarray) -> Any:
    """The embedding of the first input with this content among the last
    :data:`SAME_CONTENT_WINDOW` (``emb`` itself when it is the first): ONNX Runtime's
    results move in the last float32 bit with a view's place in its batch, and two copies
    of one file in a report showed probabilities 0.53755872 and 0.53755866 (break-it)."""
    if sha256 is None:
        return emb
    first = recent.get(sha256)
    if first is not None:
        recent.move_to_end(sha256)
        return first
    recent[sha256] = emb
    if len(recent) > SAME_CONTENT_WINDOW:
        recent.popitem(last=False)
    return emb


def _pool_side(
    images: list[tuple[str | None, np.ndarray, Any]], info: dict[str, Any]
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """A verify side's fingerprint (the L2-normalised sum of its images' embeddings, None
    without any) and its counts completed with ``n_images`` and ``views`` (the least
    evidence among them)."""
    total = None
    for _, p, _ in images:
        total = p if total is None else total + p
    views = [v for _, _, v in images]
    info = {**info, "n_images": len(images), "views": min(views) if views else None}
    return (l2_normalize(total) if total is not None else None), info


def _some(names: list[str], shown: int = 3) -> str:
    """'model 'a'' / 'models 'a', 'b' and 2 more' for a note."""
    head = ", ".join(repr(n) for n in names[:shown])
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"model{'s' if len(names) > 1 else ''} {head}{more}"


def _read_provenance(path: str) -> dict[str, Any]:
    from fpattr.provenance import read_provenance

    return read_provenance(path)


def _provenance(
    path: Any,
    decision: str | None,
    error: str | None = None,
    skipped: bool = False,
    *,
    read: dict[str, Any] | None = None,
    models: Iterable[str] = (),
) -> dict[str, Any]:
    """The file's metadata claims beside the decision (read from the file by the metadata
    readers only: metadata never reaches the fingerprint). ``models``: the gallery's model
    names, so that a claim naming another enrolled model never agrees with the decision.

    ``read``: the record already read in a decode thread (:class:`fpattr.pipeline.Embedder`
    ``metadata``); without it the file is read now. A skipped input (hidden, a special file
    in a folder, a non-image) is not opened again; its record says why it was not read
    instead of "no provenance metadata".
    """
    from fpattr.provenance import empty_record, with_decision

    if skipped:
        rec = empty_record()
        rec["read_error"] = f"input skipped ({error})" if error else "input skipped"
        return with_decision(rec, None)
    rec = read if read is not None else _read_provenance(path)
    return with_decision(rec, decision, models)


def _image_info(e: Embedded) -> dict[str, Any] | None:
    if e.image is None:
        return None
    info = e.image.info()
    info.pop("path", None)
    info.pop("sha256", None)
    conv = list(info.get("conversions", []))
    if e.padded:
        conv.append("reflect-padded to the view size")
    if e.dropped_views:
        conv.append(f"{e.dropped_views} flat view(s) left out (non-finite backbone output)")
    if e.flat:
        conv.append("every view is flat: no fingerprint evidence")
    if conv:
        info["conversions"] = conv
    return info
