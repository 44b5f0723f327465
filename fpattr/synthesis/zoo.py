"""Build a zoo of trained synthetic models: one folder of generated images per model.

Layout (the same as the evaluation benchmarks, so a zoo can be evaluated as is)::

    OUT/<model_id>/000.png ... NNN.png
    OUT/<model_id>/done.json      the model's manifest entry, written last
    OUT/manifest.json             {"schema": "fpattr.zoo/1", "families", "config", "models"}

Resumable: a model is built in ``OUT/.partial/<model_id>`` and moved into place
with its ``done.json`` inside, so a finished folder is always complete. On a
re-run, models with a matching ``done.json`` are kept, anything else is rebuilt,
and the manifest is rebuilt from the ``done.json`` files. The plan (which
architecture and seed model *i* gets) depends only on the families, the
restrictions and the seed, never on ``n_models``, so a zoo can be extended.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.errors import FpattrError, UsageError
from fpattr.io.atomic import atomic_write_text, file_lock
from fpattr.synthesis.base import DEFAULT_LOSS_FLOOR, SynthesizerFamily

SCHEMA = "fpattr.zoo/1"
PARTIAL = ".partial"
DONE = "done.json"
LOCK = ".zoo.lock"  # hidden, so evaluating the zoo folder ignores it


@dataclass(frozen=True)
class ZooConfig:
    """Everything that decides what a zoo contains (saved in the manifest)."""

    families: tuple[str, ...]
    image_size: int = 64
    images_per_model: int = 32
    seed: int = 0
    width: int = 32
    loss_floor: float = DEFAULT_LOSS_FLOOR
    max_steps: int = 150
    batch_size: int = 16
    train_crop: int = 32
    train_photos: int = 64
    photo_pool: int = 512
    real_dir: str | None = None
    where: dict[str, list[str]] = field(default_factory=dict)
    siblings: int = 1

    def sha(self) -> str:
        """Fingerprint of the settings; a zoo folder never mixes two of them."""
        d = asdict(self)
        if d["siblings"] == 1:  # the default leaves the zoos built before it the same sha
            del d["siblings"]
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class ModelSpec:
    index: int
    id: str
    family: str
    arch: dict[str, str]
    arch_id: str
    seed: int
    #: the architecture slot: models of one slot (``siblings`` > 1) share the architecture and
    #: differ only in seed (weights, training photos, the images drawn)
    group: int = -1


def model_seed(zoo_seed: int, index: int) -> int:
    """Per-model seed, independent of how many models are planned."""
    return int(np.random.SeedSequence([zoo_seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


def iter_plan(
    families: Sequence[SynthesizerFamily],
    *,
    seed: int,
    where: Mapping[str, Sequence[str]] | None = None,
    siblings: int = 1,
) -> Iterator[ModelSpec]:
    """Models in build order: round-robin over families; within a family every
    architecture once (in a seeded random order) before any repeats.

    ``siblings`` > 1: each architecture slot is built that many times in a row, every model
    with its own seed, so its own initial weights, training photos and samples. Real
    generators that differ only so (two seeds, or one design trained on other photos) are
    the pairs a zero-shot extractor trained on one model per design confuses most
    (docs/benchmarks.md, "Where the false accepts come from"); siblings give training
    such pairs as distinct classes. Model *i* of the plan with ``siblings=1`` is the
    same as before the option existed.
    """
    if not families:
        raise UsageError("no synthesizer family selected")
    if siblings < 1:
        raise UsageError(f"--siblings must be at least 1, got {siblings}")
    archs = [fam.architectures(where) for fam in families]
    for fam, a in zip(families, archs, strict=True):
        if not a:
            raise UsageError(f"{fam.name}: the restrictions leave no architecture")
    perms: dict[int, tuple[int, np.ndarray]] = {}  # family -> (cycle, order of its archs)
    index = 0
    while True:
        slot = index // siblings
        f = slot % len(families)
        fam, fam_archs = families[f], archs[f]
        cycle, pos = divmod(slot // len(families), len(fam_archs))
        if f not in perms or perms[f][0] != cycle:
            ss = np.random.SeedSequence([seed, zlib.crc32(fam.name.encode()), cycle])
            perms[f] = (cycle, np.random.default_rng(ss).permutation(len(fam_archs)))
        arch = fam_archs[int(perms[f][1][pos])]
        arch_id = fam.arch_id(arch)
        spec_id = f"{index:05d}-{arch_id}"
        yield ModelSpec(index, spec_id, fam.name, arch, arch_id, model_seed(seed, index), slot)
        index += 1


def plan_models(
    families: Sequence[SynthesizerFamily],
    n_models: int,
    *,
    seed: int,
    where: Mapping[str, Sequence[str]] | None = None,
    siblings: int = 1,
) -> list[ModelSpec]:
    """The first ``n_models`` of :func:`iter_plan`."""
    it = iter_plan(families, seed=seed, where=where, siblings=siblings)
    return [next(it) for _ in range(n_models)]


# -- sizes -----------------------------------------------------------------------------------

#: the smallest image size a zoo can have (the photo crops need at least 8 px).
MIN_IMAGE_SIZE = 8


def arch_size_problem(
    family: SynthesizerFamily, arch: Mapping[str, str], *, width: int, image_size: int
) -> str | None:
    """Why ``arch`` cannot be built at ``image_size`` (None: it can).

    Families that define ``size_problem(arch, image_size)`` (the built-ins) answer
    without building anything; any other family is built to find out."""
    check = getattr(family, "size_problem", None)
    if callable(check):
        return check(arch, image_size)
    try:
        family.build(arch, width=width, image_size=image_size)
    except UsageError as exc:
        return str(exc)
    return None


def check_sizes(
    families: Sequence[SynthesizerFamily],
    plan: Sequence[ModelSpec],
    *,
    width: int,
    image_size: int,
    max_size: int = 4096,
) -> None:
    """Refuse (UsageError) an image size that some architecture of ``plan`` cannot be
    built at, before any model is built: the message names the nearest sizes, and the
    smallest, that suit every architecture of the plan (retrying would never help)."""
    by_name = {f.name: f for f in families}
    archs: dict[tuple[str, str], tuple[SynthesizerFamily, Mapping[str, str]]] = {}
    for spec in plan:
        archs.setdefault((spec.family, spec.arch_id), (by_name[spec.family], spec.arch))
    bad = []
    for (_, arch_id), (fam, arch) in archs.items():
        problem = arch_size_problem(fam, arch, width=width, image_size=image_size)
        if problem:
            bad.append((arch_id, problem))
    if not bad:
        return
    order = list(archs.values())

    def fits(size: int) -> bool:
        for i, (fam, arch) in enumerate(order):
            if arch_size_problem(fam, arch, width=width, image_size=size):
                order.insert(0, order.pop(i))  # the next size most likely fails on it too
                return False
        return True

    smallest = next((n for n in range(MIN_IMAGE_SIZE, max_size + 1) if fits(n)), None)
    below = (
        next((n for n in range(image_size - 1, MIN_IMAGE_SIZE - 1, -1) if fits(n)), None)
        if smallest is not None and smallest < image_size
        else None
    )
    above = next(
        (n for n in range(max(image_size + 1, MIN_IMAGE_SIZE), max_size + 1) if fits(n)), None
    )
    examples = "; ".join(f"{a}: {p}" for a, p in bad[:3])
    msg = (
        f"--size {image_size} does not suit {len(bad)} of the {len(archs)} architectures "
        f"this zoo builds ({examples}{'; ...' if len(bad) > 3 else ''})."
    )
    near = [str(n) for n in (below, above) if n is not None]
    if near:
        msg += f" Sizes that suit them all: nearest {' or '.join(near)}"
        msg += f", smallest {smallest}." if smallest is not None else "."
    else:
        msg += f" No size up to {max_size} suits them all; restrict the designs with --only."
    raise UsageError(msg)


# -- one model -------------------------------------------------------------------------------


def _finite_or_none(value: Any, ndigits: int = 6) -> float | None:
    """A float for JSON: NaN/inf (e.g. no training step was taken) become None (null)."""
    if value is None:
        return None
    value = float(value)
    return round(value, ndigits) if math.isfinite(value) else None


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None: strict JSON has no NaN."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path, format="PNG", compress_level=1)


def _to_tensor(images: np.ndarray) -> Any:
    """(N, H, W, 3) numpy -> (N, 3, H, W) torch, the families' layout."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def build_model(
    family: SynthesizerFamily,
    spec: ModelSpec,
    pool: np.ndarray,
    cfg: ZooConfig,
    out_dir: Path,
    device: str,
) -> dict[str, Any]:
    """Train one model, write its images and ``done.json``, move it into place."""
    import torch

    t0, c0 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(spec.seed)
    perm = rng.permutation(len(pool))
    n_train = min(cfg.train_photos, len(pool) - cfg.images_per_model)
    if n_train < 1:
        raise UsageError("photo pool too small for train + held-out photos")
    train = _to_tensor(pool[perm[:n_train]])
    held = _to_tensor(pool[perm[n_train : n_train + cfg.images_per_model]])
    torch.manual_seed(spec.seed)  # build() draws the initial weights from the global RNG
    model = family.build(spec.arch, width=cfg.width, image_size=cfg.image_size)
    stats = family.train(
        model,
        train,
        seed=spec.seed,
        loss_floor=cfg.loss_floor,
        max_steps=cfg.max_steps,
        batch_size=cfg.batch_size,
        device=device,
        crop=cfg.train_crop,
    )
    t_train = time.perf_counter() - t0
    images = family.generate(
        model,
        held if getattr(family, "needs_photos", True) else None,
        cfg.images_per_model,
        seed=spec.seed + 1,
        device=device,
    )
    want = (cfg.images_per_model, cfg.image_size, cfg.image_size, 3)
    if images.dtype != np.uint8 or images.shape != want:
        raise RuntimeError(
            f"{spec.family}.generate returned {images.dtype}{images.shape}, expected uint8{want}"
        )
    final_loss = _finite_or_none(stats["final_loss"])
    tmp = out_dir / PARTIAL / spec.id
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for i, img in enumerate(images):
        _save_png(tmp / f"{i:03d}.png", img)
    entry = {
        "id": spec.id,
        "index": spec.index,
        "family": spec.family,
        "arch_id": spec.arch_id,
        "design": dict(spec.arch),
        "seed": spec.seed,
        # the architecture slot its siblings share (--siblings > 1 only)
        **({"sibling_group": spec.group} if cfg.siblings > 1 else {}),
        # null when there is no finite loss (strict JSON has no NaN)
        "final_loss": final_loss,
        "steps": int(stats["steps"]),
        # trained to the floor, or stopped by the step budget (max_steps) above it
        "reached_floor": bool(
            stats.get("reached_floor", final_loss is not None and final_loss < cfg.loss_floor)
        ),
        "adv_steps": int(stats.get("adv_steps", 0)),
        "loss": spec.arch.get("loss", "l2"),
        "seconds": round(time.perf_counter() - t0, 3),
        # CPU time of this process: the one-core cost even when other jobs share the cores
        "cpu_seconds": round(time.process_time() - c0, 3),
        "train_seconds": round(t_train, 3),
        "n_images": int(len(images)),
        "config_sha": cfg.sha(),
    }
    atomic_write_text(tmp / DONE, json.dumps(json_safe(entry), indent=1, allow_nan=False) + "\n")
    final = out_dir / spec.id
    if final.exists():  # a stray, unfinished folder from an interrupted older layout
        shutil.rmtree(final)
    os.replace(tmp, final)
    return entry


# -- workers ---------------------------------------------------------------------------------

_W: dict[str, Any] = {}


def _worker_init(
    families: dict[str, SynthesizerFamily],
    pool: np.ndarray,
    cfg: ZooConfig,
    out: str,
    dev: str,
    perceptual: str | None = None,
) -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker; N workers use N cores
    _W.update(families=families, pool=pool, cfg=cfg, out=Path(out), device=dev)
    _use_perceptual(perceptual)


def _use_perceptual(path: str | None) -> None:
    """Every model of a zoo uses the zoo's one perceptual network (loaded, never retrained)."""
    if path is not None:
        from fpattr.synthesis.losses import load_perceptual_net, set_perceptual_net

        set_perceptual_net(load_perceptual_net(Path(path)))


PERCEPTUAL = ".perceptual.pt"


def perceptual_for(
    out_dir: Path, fams: Sequence[SynthesizerFamily], pool: np.ndarray, cfg: ZooConfig
) -> str | None:
    """Train (once per zoo, seeded) the perceptual network the ``*_perceptual*`` losses use;
    ``None`` when no selected family offers those losses."""
    wanted = any(any("perceptual" in v for v in f.design_space().get("loss", [])) for f in fams)
    if not wanted:
        return None
    path = out_dir / PERCEPTUAL
    if not path.is_file():
        from fpattr.synthesis.losses import save_perceptual_net, train_perceptual_net

        net = train_perceptual_net(_to_tensor(pool[:256]).float() / 255.0, seed=cfg.seed)
        save_perceptual_net(net, path)
    return str(path)


def _worker_run(spec: ModelSpec) -> dict[str, Any]:
    try:
        return build_model(
            _W["families"][spec.family], spec, _W["pool"], _W["cfg"], _W["out"], _W["device"]
        )
    except Exception as exc:  # noqa: BLE001 - one failing model must not stop the zoo
        return {"id": spec.id, "error": f"{type(exc).__name__}: {exc}"}


# -- zoo -------------------------------------------------------------------------------------


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when available, else cpu; a device this machine has not (cpu, cuda,
    cuda:N or mps) is a usage error (:func:`fpattr.devices.resolve_device`)."""
    from fpattr.devices import resolve_device as resolve

    return resolve(device, kinds=("cpu", "cuda", "mps"))


def resolve_families(families: Sequence[str | SynthesizerFamily]) -> list[SynthesizerFamily]:
    """Family names (looked up in the plugin registry) or family objects."""
    out: list[SynthesizerFamily] = []
    for fam in families:
        if isinstance(fam, str):
            from fpattr.plugins import synthesizers

            fam = synthesizers().get(fam)()
        out.append(fam)
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        raise UsageError(f"family listed twice: {names}")
    return out


def manifest_selection(out_dir: Path) -> set[str] | None:
    """The model ids ``manifest.json`` lists when it leaves built models out (a rerun with a
    smaller ``--models``: ``unlisted_models`` > 0), else None (every built model). What
    reads a zoo by its ``done.json`` files (training, the analysis labels) keeps to it, so
    that ``--models`` selects the first models for them too (review 28: the manifest said
    100 while training read all 500)."""
    path = Path(out_dir) / "manifest.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not doc.get("unlisted_models"):
        return None
    models = doc.get("models")
    if not isinstance(models, list):
        return None
    return {m["id"] for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)}


def read_done(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Finished models in a zoo folder: id -> done.json entry."""
    done: dict[str, dict[str, Any]] = {}
    if not out_dir.is_dir():
        return done
    for d in sorted(out_dir.iterdir()):
        f = d / DONE
        if d.is_dir() and not d.name.startswith(".") and f.is_file():
            try:
                entry = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # unreadable: treated as unfinished and rebuilt
            if isinstance(entry, dict) and entry.get("id") == d.name:
                done[d.name] = entry
    return done


def _below_floor(entry: Mapping[str, Any], cfg: ZooConfig) -> bool:
    loss = entry.get("final_loss", 1)
    return isinstance(loss, (int, float)) and math.isfinite(loss) and loss < cfg.loss_floor


def write_manifest(
    out_dir: Path,
    families: Sequence[SynthesizerFamily],
    cfg: ZooConfig,
    n_models: int,
    planned: Iterable[str],
) -> Path:
    """Rebuild ``manifest.json`` from the ``done.json`` files (the source of truth).

    ``planned``: the ids of the first ``n_models`` of the plan; the manifest lists the
    built ones among them, so that it never lists more than ``n_models`` (a rerun with a
    smaller ``--models`` selects the first ones), and counts the others it leaves out in
    ``unlisted_models`` (still on disk: a rerun with a larger ``--models`` lists them again).
    """
    done = sorted(read_done(out_dir).values(), key=lambda e: e.get("index", 0))
    keep = set(planned)
    models = [e for e in done if e.get("id") in keep]
    manifest = {
        "schema": SCHEMA,
        "families": {
            f.name: {
                "description": f.description,
                "design_space": f.design_space(),
                "n_architectures": len(f.architectures(cfg.where)),
            }
            for f in families
        },
        "config": {**asdict(cfg), "n_models": n_models, "config_sha": cfg.sha()},
        "floor": {
            "loss_floor": cfg.loss_floor,
            "max_steps": cfg.max_steps,
            "reached": sum(bool(e.get("reached_floor", _below_floor(e, cfg))) for e in models),
            "of": len(models),
        },
        "models": [{k: v for k, v in e.items() if k != "config_sha"} for e in models],
        "unlisted_models": len(done) - len(models),
    }
    path = out_dir / "manifest.json"
    # done.json files of older versions may hold NaN: written as null (strict JSON)
    atomic_write_text(path, json.dumps(json_safe(manifest), indent=1, allow_nan=False) + "\n")
    return path


def build_zoo(
    out_dir: Path,
    *,
    families: Sequence[str | SynthesizerFamily],
    n_models: int,
    images_per_model: int = 32,
    image_size: int = 64,
    real_dir: Path | None = None,
    seed: int = 0,
    workers: int = 1,
    loss_floor: float = DEFAULT_LOSS_FLOOR,
    max_steps: int = 150,
    device: str = "auto",
    progress: bool = True,
    width: int = 32,
    batch_size: int = 16,
    train_crop: int = 32,
    train_photos: int = 64,
    photo_pool: int = 512,
    where: Mapping[str, Sequence[str]] | None = None,
    siblings: int = 1,
) -> dict[str, Any]:
    """Build (or resume) a zoo of ``n_models`` trained synthetic models in ``out_dir``.

    ``siblings``: models per architecture slot, differing only in seed (:func:`iter_plan`).

    Returns a JSON-able summary: counts of models built / kept / failed, timings
    and the manifest path. A model that fails is reported, not fatal; running
    again retries it.
    """
    t_start = time.perf_counter()
    if n_models < 0 or images_per_model < 1 or workers < 1:
        raise UsageError("need n_models >= 0, images_per_model >= 1, workers >= 1")
    for option, value, least in (
        ("--size", image_size, MIN_IMAGE_SIZE),
        ("--max-steps", max_steps, 1),
        ("--width", width, 1),
        ("--batch-size", batch_size, 1),
        ("--train-crop", train_crop, 0),
        ("train_photos", train_photos, 1),
        ("--siblings", siblings, 1),
    ):
        if value < least:
            raise UsageError(f"{option} must be at least {least}, got {value}")
    if not math.isfinite(loss_floor):
        raise UsageError(f"--loss-floor must be a finite number, got {loss_floor}")
    fams = resolve_families(families)
    where_d = {k: list(v) for k, v in sorted((where or {}).items())}
    for key in where_d:
        if not any(key in f.design_space() for f in fams):
            raise UsageError(f"no selected family has a design choice named {key!r}")
    cfg = ZooConfig(
        families=tuple(f.name for f in fams),
        image_size=image_size,
        images_per_model=images_per_model,
        seed=seed,
        width=width,
        loss_floor=loss_floor,
        max_steps=max_steps,
        batch_size=batch_size,
        train_crop=min(train_crop, image_size),
        train_photos=train_photos,
        photo_pool=max(photo_pool, train_photos + images_per_model),
        real_dir=str(Path(real_dir).resolve()) if real_dir is not None else None,
        where=where_d,
        siblings=siblings,
    )
    # Fail fast, before any model is built: every architecture the plan draws must suit
    # the image size (a model that cannot be built would fail again on every rerun), and
    # the first planned model of each family is built once (it checks the width too).
    plan = plan_models(fams, n_models, seed=seed, where=cfg.where, siblings=siblings)
    check_sizes(fams, plan, width=width, image_size=image_size)
    for f in fams:
        first = next((s for s in plan if s.family == f.name), None)
        if first is not None:
            f.build(first.arch, width=width, image_size=image_size)
    if n_models:
        device = resolve_device(device)  # an unknown or absent device is a usage error
    out_dir = Path(out_dir)
    from fpattr.io.atomic import check_writable_folder

    check_writable_folder(out_dir, "zoo folder")  # a file for the folder was exit 70
    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(out_dir / LOCK, timeout=1.0))
        except FpattrError as exc:
            raise UsageError(f"another process is building {out_dir}: {exc}") from None
        return _build_locked(out_dir, fams, cfg, n_models, workers, device, progress, t_start)


def _build_locked(
    out_dir: Path,
    fams: list[SynthesizerFamily],
    cfg: ZooConfig,
    n_models: int,
    workers: int,
    device: str,
    progress: bool,
    t_start: float,
) -> dict[str, Any]:
    plan = plan_models(fams, n_models, seed=cfg.seed, where=cfg.where, siblings=cfg.siblings)
    done = read_done(out_dir)
    foreign = sorted(e["id"] for e in done.values() if e.get("config_sha") != cfg.sha())
    if foreign:
        raise UsageError(
            f"{out_dir} holds models built with other settings ({foreign[0]}, ...); "
            "use a new folder or the same settings to resume"
        )
    kept = [s for s in plan if s.id in done]
    todo = [s for s in plan if s.id not in done]
    ids = [s.id for s in plan]
    shutil.rmtree(out_dir / PARTIAL, ignore_errors=True)
    write_manifest(out_dir, fams, cfg, n_models, ids)

    built: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    if todo:
        device = resolve_device(device)
        pool = load_photos_for(cfg)
        by_name = {f.name: f for f in fams}
        perceptual = perceptual_for(out_dir, fams, pool, cfg)
        results = _run(todo, by_name, pool, cfg, out_dir, device, workers, perceptual)
        last_manifest = time.monotonic()
        try:
            with _progress(progress, len(plan), len(kept)) as advance:
                for res in results:
                    if "error" in res:
                        failed.append(res)
                        print(f"model {res['id']} failed: {res['error']}", file=sys.stderr)
                    else:
                        built.append(res)
                    advance(res)
                    if time.monotonic() - last_manifest > 30:
                        write_manifest(out_dir, fams, cfg, n_models, ids)
                        last_manifest = time.monotonic()
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM) or failed: the manifest still lists every model
            # finished so far (it listed none until a rerun when the first model finished
            # within 30 s of the last write; break-it), the pool stopped first so that no
            # model finishes after it is written (review 28)
            with suppress(BaseException):
                results.close()
            with suppress(Exception):
                write_manifest(out_dir, fams, cfg, n_models, ids)
            raise
    shutil.rmtree(out_dir / PARTIAL, ignore_errors=True)
    manifest = write_manifest(out_dir, fams, cfg, n_models, ids)
    secs = [e["seconds"] for e in built]
    cpu = [e["cpu_seconds"] for e in built]
    return {
        "out_dir": str(out_dir),
        "manifest": str(manifest),
        "n_models": n_models,
        "built": len(built),
        "kept": len(kept),
        "failed": failed,
        "families": {f.name: sum(s.family == f.name for s in plan) for f in fams},
        "seconds": round(time.perf_counter() - t_start, 2),
        "seconds_per_model": round(float(np.mean(secs)), 3) if secs else None,
        "cpu_seconds_per_model": round(float(np.mean(cpu)), 3) if cpu else None,
        "device": device if todo else None,
        "workers": workers,
    }


def load_photos_for(cfg: ZooConfig) -> np.ndarray:
    from fpattr.synthesis.photos import load_photos

    return load_photos(
        Path(cfg.real_dir) if cfg.real_dir else None,
        size=cfg.image_size,
        n_crops=cfg.photo_pool,
        seed=cfg.seed,
    )


def _run(
    todo: list[ModelSpec],
    families: dict[str, SynthesizerFamily],
    pool: np.ndarray,
    cfg: ZooConfig,
    out_dir: Path,
    device: str,
    workers: int,
    perceptual: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Build models in this process (workers=1) or in a spawn pool; yield as they finish."""
    if workers == 1 or len(todo) == 1:
        import torch

        # One core per model, as in the pool: small convolutions gain little from more
        # threads, and on a busy machine spinning OpenMP threads cost several times more.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        _W.update(families=families, pool=pool, cfg=cfg, out=out_dir, device=device)
        _use_perceptual(perceptual)
        try:
            for spec in todo:
                yield _worker_run(spec)
        finally:
            _W.clear()
            torch.set_num_threads(threads)
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(
        min(workers, len(todo)),
        initializer=_worker_init,
        initargs=(families, pool, cfg, str(out_dir), device, perceptual),
    ) as workers_pool:
        yield from workers_pool.imap_unordered(_worker_run, todo, chunksize=1)


def _fmt_loss(loss: float | None) -> str:
    return "n/a" if loss is None else f"{loss:.4f}"


class _progress:
    """A rich progress bar on stderr (or nothing); ``advance(result)`` per finished model."""

    def __init__(self, enabled: bool, total: int, completed: int) -> None:
        self.enabled, self.total, self.completed = enabled, total, completed
        self._p: Any = None

    def __enter__(self) -> Any:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(
                TextColumn("[bold]synth[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
            )
            self._p.__enter__()
            self._task = self._p.add_task("", total=self.total, completed=self.completed)

        def advance(res: dict[str, Any]) -> None:
            if self._p is not None:
                desc = (
                    res["id"]
                    if "error" in res
                    else (
                        f"{res['id']} loss {_fmt_loss(res['final_loss'])} {res['steps']} steps "
                        f"{res['seconds']:.1f}s"
                    )
                )
                self._p.update(self._task, advance=1, description=desc)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)
