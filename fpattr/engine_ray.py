"""`fpattr attribute --engine ray`: the same attribute pipeline mapped over Ray Data.

The driver (the ``fpattr`` process) walks the inputs with the same walker, order and
exclusions as a local run, hands the walked items to a Ray Dataset and maps them with
:class:`_AttributeWorker`: each actor opens one :class:`fpattr.session.Session` (backbone
and gallery loaded once per actor) and runs ``Session.attribute(items=...)`` on its
batches, so decisions come from the one inference path. Results come back to the driver,
are released in input order and go to the same :class:`fpattr.report.outputs.Outputs`
writers as a local run (so Ctrl-C, ``--resume`` and the output formats behave the same).

:class:`RayEngine` joins or starts the cluster and plans the actors before the run
manifest is written (:func:`plan_actors`: actors x inference lanes x ONNX Runtime threads
never exceed a node's CPUs unless ``--backbone-opt threads=N`` asks for more); the manifest
records the plan and the summary what each actor ran with.

Failures: an actor never raises. A file that fails is a result with its reason, as in a
local run; an actor that cannot open the backbone or gallery (or hits a bug) returns a
fatal record, which stops the run with that message after the records before it are
written. A lost worker (process killed, node gone) makes Ray abort the dataset; the
driver then redoes only the inputs not yet returned, up to :data:`MAX_ATTEMPTS` times.

Ray is imported here only, and this module only when the engine is ray, so a local run
never needs the ``[ray]`` extra.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.errors import ExitCode, FpattrError, UsageError
from fpattr.pipeline import ONNX_THREADS, RunStats, Settings
from fpattr.pipeline import decode_workers as default_decoders

#: Most items per map batch: large enough to fill the backbone's view batches, small
#: enough that results stream back (and a Ctrl-C or a lost worker costs little).
MAX_BATCH_ITEMS = 64
#: Tries over the inputs not yet done when Ray loses workers: a file that kills its
#: worker process every time ends the run after this many, instead of looping forever.
MAX_ATTEMPTS = 3
#: Seconds to wait for a TCP connection to ``--ray-address`` before giving up: Ray itself
#: retries an unreachable address for minutes, printing warnings.
CONNECT_TIMEOUT_S = 5.0


class RayEngineError(FpattrError):
    """The cluster could not finish the run: a worker could not open the backbone or the
    gallery (its own exit code, 2 for usage), hit a bug, or workers were lost
    :data:`MAX_ATTEMPTS` times (70). The results written before it are complete."""

    def __init__(self, message: str, exit_code: int = ExitCode.INTERNAL) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)


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


# -- the plan: actors and threads ------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How a run uses the cluster, decided on the driver and recorded in the manifest."""

    nodes: int
    cluster_cpus: int
    actors: int
    #: CPUs Ray reserves for each actor: Ray never places more actors on a node than fit
    cpus_per_actor: int
    #: ONNX Runtime intra-op threads of each inference lane (None: the backbone is not ONNX)
    onnx_threads_per_lane: int | None
    #: batches each actor runs through the backbone at once (fpattr.pipeline.inference_lanes)
    lanes_per_actor: int
    #: image-decoding threads of each actor (``--workers``, else the local default for its
    #: CPUs; at most its CPUs)
    decode_workers_per_actor: int


def plan_actors(
    node_cpus: Iterable[float],
    workers: int | None,
    decode_workers: int | None,
    *,
    onnx: bool,
    threads: int | None = None,
) -> Plan:
    """Actors and per-actor threads for a cluster whose nodes have ``node_cpus`` CPUs.

    ``workers`` actors (default: one per CPU), each given the most whole CPUs that still
    places them all (an actor never spans nodes). Its inference takes those CPUs and no
    more: CPUs // threads lanes (:func:`fpattr.pipeline.inference_lanes`, sized by the
    actor's share) of ``threads`` ONNX Runtime threads (default
    :data:`fpattr.pipeline.ONNX_THREADS`); so actors x lanes x threads never exceed a
    node's cores. ``threads``: the user's ``--backbone-opt threads=N``, kept as given.
    """
    cpus = [int(c) for c in node_cpus if int(c) >= 1]
    total = sum(cpus)
    if not total:
        raise UsageError("the Ray cluster has no CPUs to run actors on")
    n = workers or total
    if n > total:
        raise UsageError(
            f"--ray-workers {n}: the Ray cluster has {total} CPU(s) on {len(cpus)} node(s) "
            f"and each actor needs one, so at most {total} actors (more would oversubscribe "
            "the cores)"
        )
    per = max(k for k in range(1, max(cpus) + 1) if sum(c // k for c in cpus) >= n)
    t: int | None = None
    n_lanes = 1  # a backbone other than ONNX Runtime runs one batch at a time
    if onnx:
        t = threads if threads is not None else min(per, ONNX_THREADS)
        # threads=0 is ONNX Runtime's own default (every core): one lane, as inference_lanes
        n_lanes = max(1, per // t) if t >= 1 else 1
    return Plan(
        nodes=len(cpus),
        cluster_cpus=total,
        actors=n,
        cpus_per_actor=per,
        onnx_threads_per_lane=t,
        lanes_per_actor=n_lanes,
        # None: the local default for the actor's share (fpattr.pipeline.decode_workers)
        decode_workers_per_actor=max(1, min(decode_workers or default_decoders(per), per)),
    )


# -- the actor -------------------------------------------------------------------------------


@dataclass
class WorkerSpec:
    """What an actor needs to open the same Session as the driver (picklable)."""

    backbone: str
    backbone_opt: list[str]
    device: str
    gallery: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    #: CPUs of the actor's share: its inference lanes are sized to them, not the node's
    cpus: int | None = None
    #: send each image's pooled embedding back (``--as-set`` needs them; 4 KB a record)
    pool: bool = True
    #: the driver's working directory when some input path is relative: a worker on the
    #: same machine (or a shared filesystem at the same paths) opens them from there
    cwd: str | None = None


class _PoolRecorder(RunStats):
    """RunStats that remembers what ``Session.attribute`` pooled for the item it just
    yielded, so the driver can rebuild the run's stats (``--as-set`` included) in input
    order: pooling de-duplicates by sha256 across the whole run, not per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.last: tuple[np.ndarray, int | None, str | None, str | None] | None = None

    def add_embedding(
        self,
        embedding: np.ndarray,
        views: int | None,
        sha256: str | None = None,
        processing: str | None = None,
    ) -> None:
        self.last = (np.asarray(embedding), views, sha256, processing)


def _fatal(exc: BaseException, node: str) -> dict[str, Any]:
    """What stops the run, as data: Ray's own error plumbing loses the exception's type."""
    if isinstance(exc, FpattrError):
        return {"message": f"on Ray node {node}: {exc}", "exit_code": int(exc.exit_code)}
    return {
        "message": f"on Ray node {node}: internal error: {type(exc).__name__}: {exc} "
        "(please report it)",
        "exit_code": int(ExitCode.INTERNAL),
    }


class _AttributeWorker:
    """Ray Data callable class: one Session per actor, reused for every batch. It never
    raises (see the module docstring): Ray would abort the whole dataset and lose why."""

    def __init__(self, spec: WorkerSpec) -> None:
        import ray

        self.fatal: dict[str, Any] | None = None
        self.pool = spec.pool
        self.used: list[tuple[str, int, int, int | None]] = []
        node = ray.util.get_node_ip_address()
        self.about: dict[str, Any] = {"node": node, "pid": os.getpid()}
        try:
            self._open(spec)
        except Exception as exc:  # noqa: BLE001  # reported with every batch, see __call__
            self.fatal = _fatal(exc, node)

    def _open(self, spec: WorkerSpec) -> None:
        from fpattr import pipeline
        from fpattr.cli import common
        from fpattr.session import Session

        if spec.cwd is not None:
            if not os.path.isdir(spec.cwd):
                raise UsageError(
                    f"the driver's working directory {spec.cwd} does not exist here, so "
                    "relative input paths cannot be opened: give absolute paths, or run "
                    "from a folder every node has (a shared filesystem at the same paths)"
                )
            os.chdir(spec.cwd)
        if spec.cpus is not None:  # inference lanes for this actor's share, not the node
            pipeline.PROCESS_CPUS = spec.cpus
        settings = Settings(**spec.settings)
        bb = common.load_backbone(spec.backbone, spec.backbone_opt, spec.device)
        self.session = Session(bb, common.open_gallery(spec.gallery, bb), settings=settings)
        self.about.update(
            onnx_threads=getattr(bb, "threads", None),
            lanes=pipeline.inference_lanes(bb),
            providers=getattr(bb, "active_providers", None),
            decode_workers=settings.workers,
        )
        # the run summary lists the calibrations the run used, in order of first use; they
        # are fitted here, so each record says which it used and the driver replays them
        self._record(self.session.policy, None)
        # ... and those of the policies for processed queries (made on first use)
        processed_policy = self.session.processed_policy
        recorded: set[int] = set()

        def processed(kind: str | None) -> Any:
            pol = processed_policy(kind)
            if pol is not None and id(pol) not in recorded:
                recorded.add(id(pol))
                self._record(pol, kind)
            return pol

        self.session.processed_policy = processed  # type: ignore[method-assign]

    def _record(self, policy: Any, processing: str | None) -> None:
        """Wrap ``policy.calibration`` to list each fit in :attr:`used` as it is used."""
        fit = policy.calibration

        def calibration(
            comparison: str = "image-vs-model",
            *,
            set_size: int = 1,
            other_size: int = 1,
            views: int | None = None,
        ) -> Any:
            key = (comparison, int(set_size), int(other_size), views, processing)
            if key not in self.used:
                self.used.append(key)
            return fit(comparison, set_size=set_size, other_size=other_size, views=views)

        policy.calibration = calibration  # type: ignore[method-assign]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from fpattr.io.walk import InputItem

        started = time.time()  # wall clock: comparable with the driver's on one machine
        out: list[str] = []
        if self.fatal is None:
            try:
                items = []
                for text in batch["item"]:
                    path, error, skipped, in_folder = json.loads(text)
                    items.append(
                        InputItem(Path(path), error=error, skipped=skipped, in_folder=in_folder)
                    )
                out = list(self._attribute(items))
            except Exception as exc:  # noqa: BLE001  # a bug: stop the run, saying what
                self.fatal = _fatal(exc, self.about["node"])
        # rows past a failure carry it; the driver stops at the first one, in input order
        out += [json.dumps({"fatal": self.fatal})] * (len(batch["idx"]) - len(out))
        about = json.dumps({**self.about, "batch_started": started})
        return {
            "idx": np.asarray(batch["idx"]),
            "record": np.array(out, dtype=object),
            "actor": np.array([about] * len(out), dtype=object),
        }

    def _attribute(self, items: list[Any]) -> Iterator[str]:
        rec = _PoolRecorder()
        self.used = []
        for res in self.session.attribute([], rec, items=items):
            pooled = None
            if rec.last is not None and self.pool:  # float32 -> JSON -> float32 is exact
                pooled = [rec.last[0].tolist(), *rec.last[1:]]
            # JSON text, not Arrow columns: Arrow would rewrite nested dicts (missing keys
            # become nulls); no pickle in fpattr (tests/core/test_no_unsafe_loading.py)
            blob = {
                "res": res,
                "ok": bool(rec.n_ok),
                "pooled": pooled,
                "calibrations": self.used,
            }
            yield json.dumps(blob, default=_plain, ensure_ascii=True)
            rec.n_ok, rec.last, self.used = 0, None, []


def _plain(obj: Any) -> Any:
    """numpy scalars and arrays in a result as the JSON writers would write them."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot send {type(obj).__name__} from a ray worker")


def _count(stats: RunStats, rec: dict[str, Any], session: Any) -> None:
    """Account one worker result in the driver's stats as ``Session.attribute`` does, and
    use the same calibrations in the driver's ``session`` (what the summary reports)."""
    for comparison, set_size, other_size, views, kind in rec["calibrations"]:  # JSON lists
        policy = session.processed_policy(kind) or session.policy
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
        emb, views, sha, kind = rec["pooled"]
        stats.add_embedding(np.asarray(emb, dtype=np.float32), views, sha, kind)


# -- the driver ------------------------------------------------------------------------------


def _check_reachable(address: str) -> None:
    """A usage error now for a ``host:port`` nobody listens on (Ray would retry for
    minutes); other forms (``auto``, ``ray://``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UsageError(
            f"cannot join the Ray cluster at {address}: {exc.strerror or exc} (start one with "
            "`ray start --head`, or leave out --ray-address for a local cluster)"
        ) from exc


#: Where Ray's notices to the driver go (the running engine's ``notify``; see _quiet_ray)
_notices: list[Callable[[str], None]] = []


def _quiet_ray(notify: Callable[[str], None]) -> None:
    """Ray's messages off the driver's stdout and out of fpattr's stderr.

    Ray Data logs errors with tracebacks to the console (they stay in its session log
    file; the run reports failures itself). Ray prints its notices to the driver (a dead
    worker, an actor that cannot be placed) on *stdout*, where they would corrupt
    ``-f jsonl`` results: they go to ``notify`` instead, which ``--quiet`` silences.
    """
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setLevel(logging.CRITICAL + 1)
    _notices[:] = [notify]
    from ray._private import worker as ray_worker

    orig = getattr(ray_worker, "print_to_stdstream", None)
    if orig is None or getattr(orig, "_fpattr", False):
        return

    def to_notify(data: dict[str, Any], ignore_prefix: bool) -> None:
        for line in data.get("lines") or ():
            _notices[0](f"ray ({data.get('pid')}): {line}")

    to_notify._fpattr = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_notify


def _init(ray: Any, address: str | None) -> None:
    """``ray.init``: join ``address`` or start a local cluster (never the one named by
    ``RAY_ADDRESS``: ``--ray-address auto`` joins that).

    Uninterrupted: a Ctrl-C or SIGTERM in the middle of it would leave the processes it
    had started running with no one to stop them; the signal is delivered once it returns,
    and the caller shuts the cluster down. Ray would replace fpattr's SIGTERM handler with
    a plain exit (skipping the closing of outputs): it is not let to, and fpattr's handlers
    are put back in any case.
    """
    from ray._private import utils as ray_utils

    from fpattr.io.atomic import uninterrupted

    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    set_sigterm = getattr(ray_utils, "set_sigterm_handler", None)
    if set_sigterm is not None:
        ray_utils.set_sigterm_handler = lambda handler: None
    try:
        with uninterrupted():
            if address:
                _check_reachable(address)
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            else:
                ray.init(
                    address="local",
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
    except ConnectionError as exc:
        raise UsageError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    finally:
        if set_sigterm is not None:
            ray_utils.set_sigterm_handler = set_sigterm
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)


class RayEngine:
    """A Ray cluster joined (or started) for one run, and the plan of its actors.

    :meth:`start` connects and plans (before the manifest is written, which records
    :meth:`info`), :meth:`attribute` maps the inputs, :meth:`close` shuts down a cluster
    this engine started. ``notify`` gets one line per event worth telling the user (a lost
    worker and the retry).
    """

    def __init__(
        self,
        ray: Any,
        plan: Plan,
        *,
        address: str | None,
        cluster: str,
        started: bool,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.ray = ray
        self.plan = plan
        self.address = address
        self.cluster = cluster
        self._started = started
        self._notify = notify or (lambda msg: None)
        self.actors: dict[str, dict[str, Any]] = {}  # what ran, by actor (node:pid)
        self.worker_failures = 0
        self._first_batch: float | None = None  # when an actor began the first batch
        self._last_result: float | None = None  # when the driver released the last result

    @classmethod
    def start(
        cls,
        *,
        address: str | None,
        workers: int | None,
        backbone: str,
        backbone_opt: list[str] | None,
        device: str,
        decode_workers: int | None,
        notify: Callable[[str], None] | None = None,
    ) -> RayEngine:
        """Join ``address`` (None: start a local cluster; Ray already initialised by the
        caller: use it as it is) and plan ``workers`` actors (None: one per CPU)."""
        if device == "cuda":
            raise UsageError(
                "--engine ray runs its actors on CPUs (no GPU is reserved for them): use "
                "the local engine for --device cuda"
            )
        from fpattr.backbones.onnx import is_onnx_backbone
        from fpattr.backbones.resolve import resolve_backbone_name
        from fpattr.cli.common import parse_opts

        ray = require_ray()
        started = not ray.is_initialized()
        notify = notify or (lambda msg: None)
        try:
            if started:
                _init(ray, address)
            _quiet_ray(notify)
            threads = parse_opts(backbone_opt).get("threads")
            plan = plan_actors(
                [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")],
                workers,
                decode_workers,
                onnx=is_onnx_backbone(resolve_backbone_name(backbone)),
                threads=int(threads) if threads is not None else None,
            )
        except BaseException:
            if started and ray.is_initialized():  # a signal held during _init lands here
                ray.shutdown()
            raise
        cluster = "connected" if not started else ("joined" if address else "started")
        engine = cls(ray, plan, address=address, cluster=cluster, started=started, notify=notify)
        t = plan.onnx_threads_per_lane
        if t is not None and t * plan.lanes_per_actor > plan.cpus_per_actor:
            engine._notify(
                f"note: --backbone-opt threads={t} gives each of {plan.actors} Ray actors "
                f"more ONNX Runtime threads than its {plan.cpus_per_actor} CPU(s): the "
                "cores are oversubscribed"
            )
        return engine

    def info(self) -> dict[str, Any]:
        """The manifest's ``engine``: where it ran and the plan."""
        return {"name": "ray", "address": self.address, "cluster": self.cluster} | asdict(self.plan)

    def summary_info(self) -> dict[str, Any]:
        """The summary's ``engine``: what each actor ran with and how many inputs it did,
        and ``map_seconds``, from the first batch begun to the last result released (the
        run's seconds less the cluster's and the actors' start-up)."""
        span = None
        if self._first_batch is not None and self._last_result is not None:
            span = round(max(0.0, self._last_result - self._first_batch), 3)
        return {
            "name": "ray",
            "actors": sorted(self.actors.values(), key=lambda a: (a["node"], a["pid"])),
            "worker_failures": self.worker_failures,
            "map_seconds": span,
        }

    def spec(
        self,
        backbone: str,
        backbone_opt: list[str] | None,
        device: str,
        gallery: str | None,
        settings: Settings,
        *,
        pool: bool = True,
    ) -> WorkerSpec:
        """The actors' spec for the driver's session options (thumbnails included), with
        the plan's threads: decoding threads, ONNX threads per lane and the CPU share.
        ``pool``: the run decides ``--as-set`` (results carry their pooled embedding)."""
        opts = list(backbone_opt or [])
        t = self.plan.onnx_threads_per_lane
        if t is not None and not any(o.partition("=")[0].strip() == "threads" for o in opts):
            opts.append(f"threads={t}")
        worker_settings = replace(settings, workers=self.plan.decode_workers_per_actor)
        return WorkerSpec(
            backbone=backbone,
            backbone_opt=opts,
            # actors reserve no GPU (Ray hides the devices from them): say CPU, so ONNX
            # Runtime never tries a GPU provider there ("cuda" is refused in start)
            device="cpu" if device == "auto" else device,
            gallery=None if gallery is None else str(gallery),
            settings=dict(asdict(worker_settings)),
            cpus=self.plan.cpus_per_actor,
            pool=pool,
        )

    def attribute(
        self, items: Iterable[Any], stats: RunStats, spec: WorkerSpec, session: Any
    ) -> Iterator[dict[str, Any]]:
        """Result dicts for walked ``items`` (``fpattr.io.walk.InputItem``), in input order;
        ``stats`` and ``session`` (the driver's, its decision policies) are updated as in a
        local run, for the summary."""
        ray = self.ray
        rows: list[dict[str, Any]] = []
        relative = False
        for i, it in enumerate(items):
            relative = relative or not it.path.is_absolute()
            # each walked item travels as JSON text: Arrow would turn a None error into NaN
            item = [str(it.path), it.error, bool(it.skipped), bool(it.in_folder)]
            # ensure_ascii: undecodable file names (surrogates) survive exactly
            rows.append({"idx": i, "item": json.dumps(item, ensure_ascii=True)})
        if not rows:
            return
        if relative:
            spec = replace(spec, cwd=os.getcwd())
        pending: dict[int, str] = {}  # returned out of input order, waiting for their turn
        nxt = 0  # the next index to release
        attempt = 1
        while nxt < len(rows):
            todo = [r for r in rows[nxt:] if r["idx"] not in pending]
            try:
                for out in self._map(todo, spec).iter_batches(
                    batch_format="numpy", batch_size=None
                ):
                    for idx, blob, about in zip(
                        out["idx"], out["record"], out["actor"], strict=True
                    ):
                        pending[int(idx)] = blob
                        self._tally(about, blob)
                    while nxt in pending:
                        rec = json.loads(pending.pop(nxt))
                        if "fatal" in rec:
                            f = rec["fatal"]
                            raise RayEngineError(f["message"], f["exit_code"])
                        _count(stats, rec, session)
                        nxt += 1
                        self._last_result = time.time()
                        yield rec["res"]
            except ray.exceptions.RayError as exc:
                # a lost worker or node: Ray aborted the dataset; redo what is not back
                self.worker_failures += 1
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                left = len(rows) - nxt - len(pending)
                if attempt >= MAX_ATTEMPTS:
                    raise RayEngineError(
                        f"Ray workers were lost {attempt} times ({type(exc).__name__}: "
                        f"{reason}); {len(rows) - nxt} input(s) not done. The results "
                        "written so far are complete: continue with --resume"
                    ) from exc
                attempt += 1
                self._notify(
                    f"a Ray worker was lost ({type(exc).__name__}: {reason}); redoing the "
                    f"{left} input(s) not yet done (try {attempt} of {MAX_ATTEMPTS})"
                )
                continue
            if nxt < len(rows):
                raise RuntimeError(f"ray engine returned {nxt} of {len(rows)} results")

    def _map(self, rows: list[dict[str, Any]], spec: WorkerSpec) -> Any:
        ray, plan = self.ray, self.plan
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # fpattr's own progress bar counts results
        ctx.execution_options.preserve_order = True  # results stream back in input order
        # a few batches per actor so every actor gets work even on small runs
        batch = max(1, min(MAX_BATCH_ITEMS, math.ceil(len(rows) / (2 * plan.actors))))
        with warnings.catch_warnings():
            # max_restarts goes through Ray's deprecated ray_remote_args (no named
            # parameter yet): without it a dead actor is restarted and its batch retried
            # forever, so a file that crashes its worker would never end the run
            warnings.simplefilter("ignore", DeprecationWarning)
            return ray.data.from_items(
                rows, override_num_blocks=max(1, math.ceil(len(rows) / batch))
            ).map_batches(
                _AttributeWorker,
                fn_constructor_kwargs={"spec": spec},
                batch_size=batch,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=plan.actors),
                num_cpus=plan.cpus_per_actor,
                max_restarts=0,
            )

    def _tally(self, about: str, blob: str) -> None:
        if blob.startswith('{"fatal"'):
            return
        a = json.loads(about)
        started = a.pop("batch_started")
        self._first_batch = min(self._first_batch or started, started)
        key = f"{a['node']}:{a['pid']}"
        if key not in self.actors:
            self.actors[key] = {**a, "inputs": 0}
        self.actors[key]["inputs"] += 1

    def close(self) -> None:
        """Disconnect from the cluster if this engine connected: a local cluster it
        started stops, a joined one only loses this run's actors."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False
