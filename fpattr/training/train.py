"""Extractor training: cross-entropy over synthetic models + batch-hard triplet.

Resumable: ``OUT/checkpoint.pt`` holds model, head, optimiser, scheduler, step,
RNG states and history, saved atomically every ``ckpt_every`` steps and at the
end; re-running the same command continues from it. Validation is zero-shot:
models (and whole architectures) held out from training are enrolled from 5
references and identified / verified. Calibration is fitted on a third split
of held-out models and stored with the weights.
"""

from __future__ import annotations

import json
import math
import os
import time
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fpattr.calibration import fit_card
from fpattr.errors import FpattrError, UsageError
from fpattr.evaluation.metrics import attribution_metrics
from fpattr.io.atomic import atomic_write_text, file_lock
from fpattr.training import checkpoint
from fpattr.training.augment import AugmentConfig
from fpattr.training.data import Zoo, eval_views, load_zoo, pk_batches, split_models
from fpattr.training.model import (
    CosineClassifier,
    Extractor,
    ExtractorConfig,
    batch_hard_triplet,
)


@dataclass
class TrainConfig:
    zoo: str
    out: str
    steps: int = 3000
    p: int = 16  #: models per batch
    k: int = 4  #: images per model per batch
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup: int = 100
    triplet_weight: float = 1.0
    triplet_margin: float = 0.2
    seed: int = 0
    val_frac: float = 0.1
    calib_frac: float = 0.1
    holdout_archs: int = 4
    #: hold out whole design values instead, e.g. [{"family": "autoencoder", "upsampling": ...}]
    holdout_where: list[dict[str, str]] | None = None
    #: ablations: drop matching models from the training split only (val/calib unchanged)
    exclude_where: list[dict[str, str]] | None = None
    max_train_models: int | None = None  #: seeded subset of the training split (zoo size)
    refs: int = 5  #: references per model in validation / calibration
    eval_views: int = 4
    eval_every: int = 500
    ckpt_every: int = 200
    max_per_model: int | None = None
    device: str = "auto"
    threads: int = 0
    workers: int = 0  #: data-loading processes (augmentation is CPU work; use them on a GPU)
    max_seconds: float | None = None  #: time budget: the schedule then runs on elapsed time
    extractor: ExtractorConfig = field(default_factory=ExtractorConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a preset plus ``--set`` overrides; an unknown key is a usage error
        naming the known ones (a typo must not silently train with the default)."""
        d = dict(d)
        ext = _checked(ExtractorConfig, d.pop("extractor", {}), "extractor.")
        aug = d.pop("augment", {})
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        aug = _checked(AugmentConfig, aug, "augment.")
        return _checked(cls, {**d, "extractor": ext, "augment": aug}, "")


def _checked(kind: type, values: dict[str, Any], prefix: str) -> Any:
    from dataclasses import fields

    if not isinstance(values, dict):
        raise UsageError(
            f"training setting {prefix.rstrip('.')} is a group of settings; set one of them "
            f"(e.g. --set {prefix}NAME=VALUE), not {values!r}"
        )
    known = [f.name for f in fields(kind)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(
            f"unknown training setting {prefix}{unknown[0]}; known "
            f"{prefix.rstrip('.') or 'top-level'} settings: {', '.join(known)}"
        )
    hints = typing.get_type_hints(kind)
    for name, value in values.items():
        if not _fits(hints[name], value):
            raise UsageError(
                f"training setting {prefix}{name} must be {_describe(hints[name])}, not {value!r}"
            )
    return kind(**values)


def _fits(hint: Any, value: Any) -> bool:
    """Whether ``value`` (a preset or a JSON-parsed ``--set`` value) has the field's type, so
    a wrong one (``--set lr=abc``) is a usage error, not a TypeError deep in training."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(a, value) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_fits(args[0], v) for v in value)
    if origin is tuple:
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(args)
            and all(_fits(a, v) for a, v in zip(args, value, strict=True))
        )
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return {"int": "an integer", "float": "a number", "bool": "true or false"}.get(
            hint.__name__, hint.__name__
        )
    return str(hint).replace("NoneType", "null")


def pick_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; one this machine cannot use is a usage
    error (checked before any training work; :func:`fpattr.devices.resolve_device`)."""
    from fpattr.devices import resolve_device

    return torch.device(resolve_device(name, kinds=("cpu", "cuda")))


TRAIN_LOCK = ".train.lock"  #: in the run folder: one `fpattr train` per run at a time


_CKPT_KEYS = {"config", "model", "head", "opt", "sched", "np_rng", "torch_rng", "state"}


def _save_atomic(obj: Any, path: Path) -> None:
    """Atomic, and loadable with ``weights_only=True`` (see :mod:`fpattr.training.checkpoint`)."""
    checkpoint.save(obj, path)


@torch.no_grad()
def pooled_eval_outputs(
    fn: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]],
    zoo: Zoo,
    *,
    size: int,
    n_views: int,
    aug: AugmentConfig | None = None,
    seed: int = 0,
    batch: int | None = 256,
    device: torch.device | str = "cpu",
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per image of ``zoo``, the mean of ``fn``'s outputs over the image's eval views.

    ``fn`` maps a (B, S, S, 3) float32 tensor of views (on ``device``) to a (B, D) tensor
    or a tuple of them; each output is averaged over an image's views and nothing more
    (normalising is the caller's choice). ``batch`` views go through ``fn`` per call,
    across image boundaries, and are pooled in numpy; ``batch=None`` makes one call per
    image, pooled in torch. Returns (one (N, D) float32 array per output, model index
    per image, image index within its model), in ``eval_views`` order.
    """
    stacks, labels, which = eval_views(zoo, size=size, n_views=n_views, aug=aug, seed=seed)

    def run(views: np.ndarray) -> tuple[torch.Tensor, ...]:
        out = fn(torch.from_numpy(views).to(device))
        return out if isinstance(out, tuple) else (out,)

    if batch is None:
        pooled = [[o.mean(0).float().cpu().numpy() for o in run(v)] for v in stacks]
    else:
        flat = np.concatenate(stacks)
        chunks = [
            [o.float().cpu().numpy() for o in run(flat[s : s + batch])]
            for s in range(0, len(flat), batch)
        ]
        outs = [np.concatenate(c) for c in zip(*chunks, strict=True)]
        pooled, start = [], 0
        for v in stacks:
            pooled.append([o[start : start + len(v)].mean(0) for o in outs])
            start += len(v)
    return [np.stack(p) for p in zip(*pooled, strict=True)], labels, which


def embed_zoo(
    model: Extractor,
    zoo: Zoo,
    *,
    n_views: int,
    device: torch.device,
    aug: AugmentConfig | None = None,
    seed: int = 0,
    batch: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image embeddings exactly as the inference pipeline pools them (mean, then L2)."""
    model.eval()
    (mean,), labels, which = pooled_eval_outputs(
        model,
        zoo,
        size=model.cfg.size,
        n_views=n_views,
        aug=aug,
        seed=seed,
        batch=batch,
        device=device,
    )
    per_image = [e / max(np.linalg.norm(e), 1e-12) for e in mean]
    return np.stack(per_image), labels, which


def zero_shot_metrics(
    model: Extractor,
    zoo: Zoo,
    *,
    refs: int,
    n_views: int,
    device: torch.device,
    aug: AugmentConfig | None = None,
) -> dict[str, Any]:
    emb, labels, which = embed_zoo(model, zoo, n_views=n_views, device=device, aug=aug)
    is_ref = which < refs
    return attribution_metrics(emb[is_ref], labels[is_ref], emb[~is_ref], labels[~is_ref])


def fit_calibration(
    model: Extractor,
    zoo: Zoo,
    *,
    refs: int,
    n_views: int,
    device: torch.device,
    target_far: float = 0.01,
) -> dict[str, Any]:
    """Card calibration on held-out models (:func:`fpattr.calibration.fit_card`): at
    ``n_views`` views per image and at one view, raw and gallery-centred."""
    emb, labels, which = embed_zoo(model, zoo, n_views=n_views, device=device)
    embs = {n_views: emb}  # the zoo's image order is the same at every view count

    def embed(views: int) -> np.ndarray:
        if views not in embs:
            embs[views] = embed_zoo(model, zoo, n_views=views, device=device)[0]
        return embs[views]

    return fit_card(embed, labels, which, refs=refs, n_views=n_views, target_far=target_far)


class _PKStream(torch.utils.data.IterableDataset):
    """P x K batches from worker processes, each with its own random stream."""

    def __init__(self, zoo: Zoo, cfg: TrainConfig, seed: int) -> None:
        self.zoo, self.cfg, self.seed = zoo, cfg, seed

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info is not None else 0])
        c = self.cfg
        yield from pk_batches(self.zoo, p=c.p, k=c.k, size=c.extractor.size, aug=c.augment, rng=rng)


def _batches(
    zoo: Zoo, cfg: TrainConfig, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """In-process batches (exactly resumable RNG), or a multi-process stream (``workers``)."""
    if cfg.workers <= 0:
        return pk_batches(zoo, p=cfg.p, k=cfg.k, size=cfg.extractor.size, aug=cfg.augment, rng=rng)
    stream = _PKStream(zoo, cfg, int(rng.integers(2**31)))
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=cfg.workers, prefetch_factor=4, persistent_workers=True
    )
    return ((np.asarray(v), np.asarray(y)) for v, y in loader)


class _TrainStep(torch.nn.Module):
    """Extractor + classifier head as one module, so DDP sees a single forward."""

    def __init__(self, model: Extractor, head: CosineClassifier) -> None:
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = F.normalize(self.model.features(x), dim=1)
        return emb, self.head(emb, y)


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, device) under ``torchrun``; (0, 1, device) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def train(
    cfg: TrainConfig,
    *,
    log: Callable[[str], None] = print,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run in ``cfg.out``.

    Everything a user can get wrong (device, zoo, sizes, a checkpoint of another
    configuration, another process training in the same folder) is checked before any
    training work; ``on_start`` is then called once, on rank 0, under the run folder's
    lock (the CLI records its command line there, so a refused run cannot replace it).
    """
    out = Path(cfg.out)
    device = pick_device(cfg.device)
    rank, world, device = _distributed(device)
    if rank != 0:  # one log, one set of checkpoints: rank 0's
        log = lambda _msg: None  # noqa: E731
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    zoo = load_zoo(Path(cfg.zoo), max_per_model=cfg.max_per_model)
    if len(zoo.models) < 8:
        raise UsageError(f"zoo {cfg.zoo} has {len(zoo.models)} usable models; need >= 8")
    split = split_models(
        zoo,
        val_frac=cfg.val_frac,
        calib_frac=cfg.calib_frac,
        holdout_archs=cfg.holdout_archs,
        seed=cfg.seed,
        holdout_where=cfg.holdout_where,
        exclude_where=cfg.exclude_where,
        max_train_models=cfg.max_train_models,
    )
    if len(split["train"]) < 2:
        knobs = [k for k in ("exclude_where", "max_train_models") if getattr(cfg, k) is not None]
        raise UsageError(
            f"{len(split['train'])} training model(s) left after the split"
            + (f" and {', '.join(knobs)}" if knobs else "")
            + "; need >= 2"
        )
    _check_images_for_evaluation(cfg, zoo, split)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; the run folder must be a folder")
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if rank == 0:  # one writer per run folder, as `fpattr synth` for its zoo
            try:
                stack.enter_context(file_lock(out / TRAIN_LOCK, timeout=1.0))
            except FpattrError as exc:
                raise UsageError(f"cannot take the run folder {out}: {exc}") from None
        return _train_locked(
            cfg, out, zoo, split, device, rank, world, log=log, progress=progress, on_start=on_start
        )


def zoo_signature(zoo: Zoo) -> str:
    """What a zoo holds, for a resumed run to compare: each model's id, the settings hash
    it was built with (``config_sha`` of its done.json) and its images' count and shape."""
    import hashlib
    import json

    rows = [
        [zid, m.get("config_sha"), *map(int, imgs.shape)]
        for zid, m, imgs in zip(zoo.ids, zoo.models, zoo.images, strict=True)
    ]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


#: Settings a run may change when it is resumed: where the zoo and the run folder lie and
#: which machine runs it (the run moves to another machine, a GPU, more cores). The zoo
#: itself is compared by its models (the checkpoint's ``zoo_ids``), not by how its path is
#: spelled. Every other setting changes what is trained, so a checkpoint made under
#: another value is refused.
RESUMABLE_ACROSS = ("zoo", "out", "device", "threads", "workers", "eval_every", "ckpt_every")


def _check_resumable(
    ckpt: Path, saved: dict[str, Any], cfg: TrainConfig, zoo: Zoo, log: Callable[[str], None]
) -> None:
    """Refuse (UsageError) a checkpoint of another configuration or another zoo; log the
    machine-side settings (:data:`RESUMABLE_ACROSS`) that changed since it was saved."""
    now, then = cfg.to_dict(), saved["config"]
    if not isinstance(then, dict):
        raise UsageError(f"{ckpt} was made with another configuration; use a new --out")
    differ = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
    fixed = [k for k in differ if k not in RESUMABLE_ACROSS]
    if fixed:
        shown = ", ".join(f"{k} {then.get(k)!r} -> {now.get(k)!r}" for k in fixed[:3])
        raise UsageError(f"{ckpt} was made with another configuration ({shown}); use a new --out")
    ids, sig = saved.get("zoo_ids"), saved.get("zoo_signature")
    if ids is not None and list(ids) != list(zoo.ids):
        raise UsageError(
            f"{ckpt} was trained on another zoo ({len(ids)} models; {cfg.zoo} has "
            f"{len(zoo.ids)}, {len(set(ids) ^ set(zoo.ids))} differing); use a new --out"
        )
    if sig is not None and sig != zoo_signature(zoo):
        # the same ids, built otherwise (another --size, --images-per-model, step budget:
        # the ids do not say; review 28)
        raise UsageError(
            f"{ckpt} was trained on another zoo (the same models' names, built with other "
            f"settings or other images than {cfg.zoo}'s); use a new --out"
        )
    if ids is None and sig is None and then.get("zoo") != now.get("zoo"):
        raise UsageError(
            f"{ckpt} does not record its zoo's models (an older fpattr): resume it with the "
            f"zoo path it was started with ({then.get('zoo')!r}), or use a new --out"
        )
    moved = [k for k in differ if k in RESUMABLE_ACROSS]
    if moved:
        log(
            "resuming with "
            + ", ".join(f"{k} {then.get(k)!r} -> {now.get(k)!r}" for k in moved)
            + (
                " (the batches drawn from here on differ from an uninterrupted run's)"
                if "workers" in moved
                else ""
            )
        )


def _check_images_for_evaluation(cfg: TrainConfig, zoo: Zoo, split: dict[str, list[int]]) -> None:
    """Every held-out model is enrolled from ``refs`` images and queried with the rest, so
    it needs at least ``refs + 1``: checked up front, not at the first evaluation."""
    if cfg.refs < 1:
        raise UsageError(f"training setting refs must be >= 1, not {cfg.refs}")
    need = cfg.refs + 1
    held = list(split["calib"])
    held += [k for name in ("val", "val_arch") if len(split[name]) >= 2 for k in split[name]]
    short = sorted((len(zoo.images[k]), zoo.ids[k]) for k in held if len(zoo.images[k]) < need)
    if short:
        have, first = short[0]
        capped = f" (max_per_model={cfg.max_per_model})" if cfg.max_per_model else ""
        raise UsageError(
            f"zoo {cfg.zoo}: held-out model {first} has {have} image(s){capped} "
            f"({len(short)} held-out model(s) have fewer than {need}); evaluation enrols "
            f"each held-out model from refs={cfg.refs} images and queries it with the "
            f"others, so every model needs at least {need} images: build the zoo with "
            f"`fpattr synth --images-per-model {need}` or more, or lower --set refs"
        )


def _train_locked(
    cfg: TrainConfig,
    out: Path,
    zoo: Zoo,
    split: dict[str, list[int]],
    device: torch.device,
    rank: int,
    world: int,
    *,
    log: Callable[[str], None],
    progress: Callable[[int, int, dict[str, float]], None] | None,
    on_start: Callable[[], None] | None,
) -> dict[str, Any]:
    train_zoo = zoo.subset(split["train"])
    log(
        f"zoo: {len(zoo.models)} models; train {len(split['train'])}, calib "
        f"{len(split['calib'])}, val {len(split['val'])}, held-out archs {len(split['val_arch'])}"
        f"; device {device}" + (f"; {world} processes (DDP)" if world > 1 else "")
    )
    model = Extractor(cfg.extractor).to(device)
    head = CosineClassifier(cfg.extractor.dim, len(train_zoo.models)).to(device)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def progress_fraction(step: int) -> float:
        t = step / cfg.steps
        if cfg.max_seconds:
            t = max(t, state["seconds"] / cfg.max_seconds)
        return min(1.0, t)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        return 0.5 * (1 + math.cos(math.pi * progress_fraction(step)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    rng = np.random.default_rng([cfg.seed, rank] if world > 1 else cfg.seed)
    state: dict[str, Any] = {"step": 0, "history": [], "seconds": 0.0}
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        saved = checkpoint.load(ckpt, map_location=device)
        missing = _CKPT_KEYS - set(saved)
        if missing:
            raise FpattrError(
                f"{ckpt} is not an fpattr training checkpoint (lacks {sorted(missing)})"
            )
        _check_resumable(ckpt, saved, cfg, zoo, log)
        model.load_state_dict(saved["model"])
        head.load_state_dict(saved["head"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        if world == 1:  # other layouts re-seed their streams from (seed, rank)
            rng.bit_generator.state = saved["np_rng"]
            torch.set_rng_state(saved["torch_rng"].cpu())  # map_location may move it
        state = saved["state"]
        log(f"resumed from {ckpt} at step {state['step']}")
    if on_start is not None and rank == 0:
        on_start()  # the run is accepted

    def save() -> None:
        _save_atomic(
            {
                "config": cfg.to_dict(),
                "model": model.state_dict(),
                "head": head.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "np_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "state": state,
                "split": split,
                "zoo_ids": zoo.ids,
                "zoo_signature": zoo_signature(zoo),
            },
            ckpt,
        )

    batches = _batches(train_zoo, cfg, rng)
    step_module: torch.nn.Module = _TrainStep(model, head)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        step_module = DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None
        )
    t0 = time.monotonic() - state["seconds"]
    run_loss: dict[str, float] = {}
    while progress_fraction(state["step"]) < 1.0:
        model.train()
        head.train()
        views, labels = next(batches)
        x = torch.from_numpy(views).to(device)
        y = torch.from_numpy(labels).to(device)
        emb, logits = step_module(x, y)
        ce = F.cross_entropy(logits, y)
        tri = batch_hard_triplet(emb, y, cfg.triplet_margin)
        loss = ce + cfg.triplet_weight * tri
        opt.zero_grad(set_to_none=True)  # every step (the paper's public code forgot this)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        state["step"] += 1
        for key, val in (("loss", loss.item()), ("ce", ce.item()), ("triplet", tri.item())):
            run_loss[key] = 0.95 * run_loss.get(key, val) + 0.05 * val
        state["seconds"] = time.monotonic() - t0
        if world > 1:  # every rank must agree on the schedule and on when to stop
            import torch.distributed as dist

            secs = torch.tensor([state["seconds"]], dtype=torch.float64, device=device)
            dist.all_reduce(secs, op=dist.ReduceOp.MAX)
            state["seconds"] = float(secs.item())
        if progress and rank == 0:
            progress(state["step"], cfg.steps, run_loss)
        last = progress_fraction(state["step"]) >= 1.0
        evaluate = rank == 0 and (state["step"] % cfg.eval_every == 0 or last)
        if evaluate:
            save()  # an evaluation that fails must not lose the steps since the last save
            rec = {
                "step": state["step"],
                "seconds": round(state["seconds"], 1),
                **{k: round(v, 4) for k, v in run_loss.items()},
            }
            for name in ("val", "val_arch"):
                if len(split[name]) >= 2:
                    m = zero_shot_metrics(
                        model,
                        zoo.subset(split[name]),
                        refs=cfg.refs,
                        n_views=cfg.eval_views,
                        device=device,
                    )
                    rec[f"{name}_top1"] = round(m["top1"], 4)
                    rec[f"{name}_auc"] = round(m["roc_auc"], 4)
            state["history"].append(rec)
            log(json.dumps(rec))
        if evaluate or (rank == 0 and state["step"] % cfg.ckpt_every == 0):
            save()  # after an evaluation too, so the checkpoint holds its history record

    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        if rank != 0:
            dist.destroy_process_group()
            return {"rank": rank, "steps": state["step"]}
    result = finish(cfg, model, zoo, split, device, state, log)
    save()
    if world > 1:
        dist.destroy_process_group()
    return result


def finish(
    cfg: TrainConfig,
    model: Extractor,
    zoo: Zoo,
    split: dict[str, list[int]],
    device: torch.device,
    state: dict[str, Any],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Final zero-shot figures (clean and processed), calibration, weights for export."""
    figures: dict[str, Any] = {}
    processed = AugmentConfig(p_resize=0.0, p_blur=0.0, p_jpeg=1.0, jpeg_quality=(75, 90))
    for name in ("val", "val_arch"):
        if len(split[name]) >= 2:
            sub = zoo.subset(split[name])
            figures[name] = zero_shot_metrics(
                model, sub, refs=cfg.refs, n_views=cfg.eval_views, device=device
            )
            figures[f"{name}_jpeg75-90"] = zero_shot_metrics(
                model, sub, refs=cfg.refs, n_views=cfg.eval_views, device=device, aug=processed
            )
    calibration = fit_calibration(
        model, zoo.subset(split["calib"]), refs=cfg.refs, n_views=cfg.eval_views, device=device
    )
    result = {
        "steps": state["step"],
        "seconds": round(state["seconds"], 1),
        "validation": figures,
        "calibration": calibration,
        "history": state["history"],
        "split_sizes": {k: len(v) for k, v in split.items()},
        "held_out_ids": {k: [zoo.ids[i] for i in v] for k, v in split.items() if k != "train"},
        "zoo": {
            "path": str(zoo.root),
            # as typed, and absolute: export --fuse-spectrum from another folder found no
            # zoo at a relative path (break-it 27d)
            "absolute_path": os.path.abspath(zoo.root),
            "n_models": len(zoo.models),
            "families": sorted({m.get("family", "?") for m in zoo.models}),
        },
        "config": cfg.to_dict(),
    }
    model_cpu = Extractor(cfg.extractor)
    model_cpu.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    _save_atomic(
        {"config": cfg.extractor.to_dict(), "model": model_cpu.state_dict()},
        Path(cfg.out) / "extractor.pt",
    )
    atomic_write_text(Path(cfg.out) / "train_result.json", json.dumps(result, indent=2))
    log(json.dumps({k: result[k] for k in ("steps", "seconds", "validation")}, indent=1))
    return result
