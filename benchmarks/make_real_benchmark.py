"""Train the project's own held-out generators and write an ``fpattr evaluate`` benchmark.

    python benchmarks/make_real_benchmark.py runs/realbench --real ../shared/data/bsds500 \
        --images-per-model 60 --device auto

writes ``OUT/<model_id>/000.png ...`` (the first N sorted files are the references for
``fpattr evaluate OUT --refs N``), ``OUT/manifest.json`` with every model's design labels,
and resumable checkpoints in ``OUT/_ckpt/``. A model whose ``_ckpt/<id>.pt`` and
``<id>/done.json`` both exist is skipped, so an interrupted run is simply re-run.
``--steps N`` trains every model for N updates; ``--steps-scale F`` multiplies each model's
default (e.g. 4 on a GPU). Nothing is downloaded: without ``--real`` the photos are
scikit-image's bundled samples.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from generators.models import REGISTRY, BenchConfig
from generators.train import (
    CropSampler,
    diversity,
    generate,
    log,
    loss_summary,
    photo_set,
    resolve_device,
    save_png,
    train,
)

#: Below this fraction of the real crops' pairwise diversity a generator is flagged collapsed.
COLLAPSE_RATIO = 0.35
SAMPLE_SEED_OFFSET = 1000  # sampling noise seed = cfg.seed + offset (distinct from training)


def is_done(out: Path, model_id: str) -> bool:
    return (out / "_ckpt" / f"{model_id}.pt").exists() and (out / model_id / "done.json").exists()


def run_one(
    cfg: BenchConfig,
    out: Path,
    real: Path | None,
    n_images: int,
    device: torch.device,
    photo_cache: dict,
    ckpt_every: int,
) -> dict:
    """Train (or resume) one model, write its images and done.json; return its manifest entry."""
    photos = photo_set(cfg.data, real, photo_cache)
    sampler = CropSampler(photos.photos, cfg.size, seed=cfg.seed + 7919)
    ckpt = out / "_ckpt" / f"{cfg.id}.pt"
    log(f"[{cfg.id}] {cfg.kind}/{cfg.upsampling}/{cfg.loss} seed={cfg.seed} data={photos.source}")
    result = train(cfg, sampler, cfg.steps, device, ckpt=ckpt, ckpt_every=ckpt_every)
    t0 = time.perf_counter()
    images = generate(cfg, result.nets, n_images, cfg.seed + SAMPLE_SEED_OFFSET, device)
    sample_seconds = time.perf_counter() - t0
    folder = out / cfg.id
    width = max(3, len(str(n_images - 1)))
    for i, img in enumerate(images):
        save_png(img, folder / f"{i:0{width}d}.png")
    real_div = diversity(
        ((sampler.batch(min(n_images, 64)) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    )
    ratio = diversity(images) / max(real_div, 1e-8)
    losses = loss_summary(result.history)
    entry = {
        **cfg.labels(),
        "steps": cfg.steps,
        "seconds": round(result.seconds, 1),
        # None when the run began before CPU time was recorded (an older checkpoint).
        "cpu_seconds": round(result.cpu_seconds, 1) if math.isfinite(result.cpu_seconds) else None,
        "sample_seconds": round(sample_seconds, 2),
        "final_losses": {k: v["final"] for k, v in losses.items()},
        "loss_trend": losses,
        "diversity_ratio": round(ratio, 3),
        "collapsed": bool(cfg.kind == "gan" and ratio < COLLAPSE_RATIO),
        "data_source": photos.source,
        "size": cfg.size,
        "batch": cfg.batch,
        "lr": cfg.lr,
        "extra": cfg.extra,
        "n_images": n_images,
        "sample_seed": cfg.seed + SAMPLE_SEED_OFFSET,
        "device": str(device),
        "torch": torch.__version__,
    }
    if ratio < COLLAPSE_RATIO:
        entry["notes"] = (
            "mode collapse: samples far less diverse than real crops"
            if cfg.kind == "gan"
            else "low pixel diversity: smooth, blurry samples (not a collapse of the model)"
        )
    (folder / "done.json").write_text(json.dumps(entry, indent=2) + "\n")
    log(f"[{cfg.id}] done in {result.seconds:.0f}s, diversity ratio {ratio:.2f}")
    return entry


def write_manifest(out: Path, configs: list[BenchConfig], args: dict) -> dict:
    """Rebuild manifest.json from every finished model's done.json (so resumed runs agree)."""
    models = []
    for cfg in configs:
        done = out / cfg.id / "done.json"
        if done.exists():
            models.append(json.loads(done.read_text()))
    manifest = {
        "schema": "fpattr.realbench/1",
        "layout": "one folder per model; first N sorted files = references (fpattr evaluate)",
        "command": " ".join(sys.argv) if sys.argv else "",
        "settings": args,
        "platform": platform.platform(),
        "total_seconds": round(sum(m["seconds"] + m["sample_seconds"] for m in models), 1),
        "models": models,
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out / "manifest.json")
    return manifest


def run_benchmark(
    out: Path,
    configs: list[BenchConfig],
    real: Path | None = None,
    n_images: int = 60,
    steps: int | None = None,
    steps_scale: float = 1.0,
    device: str = "auto",
    ckpt_every: int = 200,
) -> dict:
    """Train every config not yet done, then (re)write the manifest. Returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    if steps is not None:
        configs = [replace(c, steps=steps) for c in configs]
    elif steps_scale != 1.0:
        configs = [replace(c, steps=max(1, round(c.steps * steps_scale))) for c in configs]
    cache: dict = {}
    settings = {
        "real": str(real) if real else None,
        "images_per_model": n_images,
        "steps": steps,
        "steps_scale": steps_scale,
        "device": str(dev),
    }
    for cfg in configs:
        if is_done(out, cfg.id):
            done = out / cfg.id / "done.json"  # labels follow the registry (cheap to refresh)
            entry = json.loads(done.read_text())
            if {**entry, **cfg.labels()} != entry:
                done.write_text(json.dumps({**entry, **cfg.labels()}, indent=2) + "\n")
            log(f"[{cfg.id}] already done, skipped")
            continue
        run_one(cfg, out, real, n_images, dev, cache, ckpt_every)
        write_manifest(out, configs, settings)
    return write_manifest(out, configs, settings)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("out", type=Path, help="output folder (one subfolder per model)")
    p.add_argument("--real", type=Path, default=None, help="folder of real photos (recursive)")
    p.add_argument("--images-per-model", type=int, default=60)
    p.add_argument("--steps", type=int, default=None, help="train every model for N updates")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply default steps")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, ...")
    p.add_argument("--only", nargs="+", default=None, metavar="ID", help="train only these ids")
    p.add_argument("--ckpt-every", type=int, default=200, help="checkpoint period in steps")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's, i.e. every core; set it when running shards)",
    )
    p.add_argument("--list", action="store_true", help="print the registry and exit")
    a = p.parse_args(argv)
    if a.list:
        for c in REGISTRY.values():
            print(json.dumps({**c.labels(), "steps": c.steps}))
        return 0
    if a.real is not None and not a.real.is_dir():
        p.error(f"--real {a.real} is not a folder")
    unknown = sorted(set(a.only or []) - set(REGISTRY))
    if unknown:
        p.error(f"unknown model id(s) {unknown}; see --list")
    configs = [REGISTRY[i] for i in a.only] if a.only else list(REGISTRY.values())
    if a.threads:
        torch.set_num_threads(a.threads)
    m = run_benchmark(
        a.out, configs, a.real, a.images_per_model, a.steps, a.steps_scale, a.device, a.ckpt_every
    )
    print(
        json.dumps({"out": str(a.out), "models": len(m["models"]), "seconds": m["total_seconds"]})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
