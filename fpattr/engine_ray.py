"""`fpattr attribute --engine ray`: the same attribute pipeline mapped over Ray Data.

The driver walks the inputs (the same walker, order and exclusions as a local run), hands
the walked items to a Ray Dataset and maps them with :class:`_AttributeWorker`: each actor
opens one :class:`fpattr.session.Session` (backbone and gallery loaded once per actor) and
runs ``Session.attribute(items=...)`` on its batches, so decisions come from the one
inference path. Results come back to the driver in input order and go to the same
:class:`fpattr.report.outputs.Outputs` writers as a local run.

Ray is imported here only, and this module only when the engine is ray, so a local run
never needs the ``[ray]`` extra.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.errors import UsageError
from fpattr.pipeline import RunStats, Settings

#: Most items per map batch: large enough to fill the backbone's view batches, small
#: enough that results stream back (and a Ctrl-C loses little) on big runs.
MAX_BATCH_ITEMS = 64


def require_ray() -> Any:
    """The ``ray`` module, or a usage error (exit 2) naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401  # the extra is ray[data]: core alone is not enough
    except ImportError as exc:
        raise UsageError(
            f"--engine ray needs Ray Data: install fpattr[ray] (pip install 'fpattr[ray]'): {exc}"
        ) from exc
    return ray


@dataclass
class WorkerSpec:
    """What an actor needs to open the same Session as the driver (picklable)."""

    backbone: str
    backbone_opt: list[str]
    device: str
    gallery: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    #: the driver's working directory: relative input paths are the user's, so a worker
    #: on the same machine (or a shared filesystem at the same paths) opens them from there
    cwd: str | None = None


class _PoolRecorder(RunStats):
    """RunStats that remembers what ``Session.attribute`` pooled for the item it just
    yielded, so the driver can rebuild the run's stats (``--as-set`` included) in input
    order: pooling de-duplicates by sha256 across the whole run, not per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.last: tuple[np.ndarray, int | None, str | None] | None = None

    def add_embedding(
        self, embedding: np.ndarray, views: int | None, sha256: str | None = None
    ) -> None:
        self.last = (np.asarray(embedding), views, sha256)


class _AttributeWorker:
    """Ray Data callable class: one Session per actor, reused for every batch."""

    def __init__(self, spec: WorkerSpec) -> None:
        from fpattr.cli import common
        from fpattr.session import Session

        if spec.cwd and os.path.isdir(spec.cwd):
            os.chdir(spec.cwd)
        settings = Settings(**spec.settings)
        bb = common.load_backbone(
            spec.backbone, spec.backbone_opt, spec.device, decode_workers=settings.workers
        )
        self.session = Session(bb, common.open_gallery(spec.gallery, bb), settings=settings)
        # the run summary lists the calibrations the run used, in order of first use; they
        # are fitted here, so each record says which it used and the driver replays them
        self.used: list[tuple[str, int, int, int | None]] = []
        policy = self.session.policy
        fit = policy.calibration

        def calibration(
            comparison: str = "image-vs-model",
            *,
            set_size: int = 1,
            other_size: int = 1,
            views: int | None = None,
        ) -> Any:
            key = (comparison, int(set_size), int(other_size), views)
            if key not in self.used:
                self.used.append(key)
            return fit(comparison, set_size=set_size, other_size=other_size, views=views)

        policy.calibration = calibration  # type: ignore[method-assign]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from fpattr.io.walk import InputItem

        items = []
        for text in batch["item"]:
            path, error, skipped, in_folder = json.loads(text)
            items.append(InputItem(Path(path), error=error, skipped=skipped, in_folder=in_folder))
        rec = _PoolRecorder()
        out: list[str] = []
        self.used = []
        for res in self.session.attribute([], rec, items=items):
            n_ok = rec.n_ok
            pooled = None
            if rec.last is not None:  # float32 -> JSON float -> float32 is exact
                pooled = [rec.last[0].tolist(), rec.last[1], rec.last[2]]
            # JSON text, not Arrow columns: Arrow would rewrite nested dicts (missing keys
            # become nulls); no pickle in fpattr (tests/core/test_no_unsafe_loading.py)
            blob = {"res": res, "ok": bool(n_ok), "pooled": pooled, "calibrations": self.used}
            out.append(json.dumps(blob, default=_plain, ensure_ascii=True))
            rec.n_ok, rec.last, self.used = 0, None, []
        return {"idx": np.asarray(batch["idx"]), "record": np.array(out, dtype=object)}


def _plain(obj: Any) -> Any:
    """numpy scalars and arrays in a result as the JSON writers would write them."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot send {type(obj).__name__} from a ray worker")


def _count(stats: RunStats, rec: dict[str, Any], policy: Any) -> None:
    """Account one worker result in the driver's stats as ``Session.attribute`` does, and
    use the same calibrations in the driver's ``policy`` (what the summary reports)."""
    for comparison, set_size, other_size, views in rec["calibrations"]:  # lists in JSON
        policy.calibration(comparison, set_size=set_size, other_size=other_size, views=views)
    res = rec["res"]
    if res["status"] == "skipped":
        stats.n_skipped += 1
    else:
        stats.n_inputs += 1
    if rec["ok"]:
        stats.n_ok += 1
        key = res["decision"] or "undecided"
        stats.decisions[key] = stats.decisions.get(key, 0) + 1
    if rec["pooled"] is not None:
        emb, views, sha = rec["pooled"]
        stats.add_embedding(np.asarray(emb, dtype=np.float32), views, sha)


def attribute(
    items: Iterable[Any],
    stats: RunStats,
    spec: WorkerSpec,
    policy: Any,
    *,
    address: str | None = None,
    workers: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Result dicts for walked ``items`` (``fpattr.io.walk.InputItem``), in input order,
    computed by ``workers`` actors (default: one per CPU of the cluster); ``stats`` and
    ``policy`` (the driver's DecisionPolicy) are updated as in a local run, for the
    summary. ``address``: join that cluster; None: start a local one for this run and
    shut it down after."""
    ray = require_ray()
    # each walked item travels as JSON text: Arrow would turn a None error into NaN
    rows = [
        {
            "idx": i,
            "item": json.dumps(
                [str(it.path), it.error, bool(it.skipped), bool(it.in_folder)],
                ensure_ascii=True,  # undecodable file names (surrogates) survive exactly
            ),
        }
        for i, it in enumerate(items)
    ]
    if not rows:
        return
    started = False
    if not ray.is_initialized():
        # the driver's own logging stays fpattr's: Ray's INFO lines would mix into stderr
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        started = True
    try:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # fpattr's own progress bar counts results
        ctx.execution_options.preserve_order = True
        n_actors = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # a few batches per actor so every actor gets work even on small runs
        batch = max(1, min(MAX_BATCH_ITEMS, math.ceil(len(rows) / (2 * n_actors))))
        ds = ray.data.from_items(
            rows, override_num_blocks=max(1, math.ceil(len(rows) / batch))
        ).map_batches(
            _AttributeWorker,
            fn_constructor_kwargs={"spec": spec},
            batch_size=batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=n_actors),
            num_cpus=1,
        )
        # preserve_order already keeps input order; the heap makes it independent of that
        # setting (an unordered executor still streams results out in input order)
        pending: list[tuple[int, str]] = []
        nxt = 0
        for out in ds.iter_batches(batch_format="numpy", batch_size=None):
            for idx, blob in zip(out["idx"], out["record"], strict=True):
                heapq.heappush(pending, (int(idx), blob))
            while pending and pending[0][0] == nxt:
                rec = json.loads(heapq.heappop(pending)[1])
                _count(stats, rec, policy)
                nxt += 1
                yield rec["res"]
        if nxt != len(rows):
            raise RuntimeError(f"ray engine returned {nxt} of {len(rows)} results")
    finally:
        if started:
            ray.shutdown()


def spec_for(
    backbone: str,
    backbone_opt: list[str] | None,
    device: str,
    gallery: str | None,
    settings: Settings,
) -> WorkerSpec:
    """The worker spec for the driver's session options (thumbnails included)."""
    return WorkerSpec(
        backbone=backbone,
        backbone_opt=list(backbone_opt or []),
        device=device,
        gallery=None if gallery is None else str(gallery),
        settings=dict(asdict(settings)),
        cwd=os.getcwd(),
    )
