"""Produce the bundled demo set ``fpattr/data/demo/`` from four benchmark generators.

    python scripts/make_demo_data.py --bench-dir runs/realbench

Layout: ``refs/<model_id>/00.png..04.png`` (enrolment references), ``queries/<model_id>_NN.png``
(4 per generator) and ``queries/real_NN.png`` (real photo crops that should come out
"unknown"), plus ``MANIFEST.json`` saying which generator made which file. Generators are
loaded from the finished checkpoints of ``benchmarks/make_real_benchmark.py`` when
``--bench-dir`` holds them, else trained here (same registry configs, scaled by
``--steps-scale``). Sampling uses seeds distinct from the benchmark's, so the demo images are
not the benchmark images.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from generators.models import REGISTRY  # noqa: E402
from generators.train import (  # noqa: E402
    CropSampler,
    generate,
    load_trained,
    log,
    loss_summary,
    photo_set,
    resolve_device,
    save_png,
    skimage_photos,
    train,
)

#: Clearly different fingerprints: transposed-conv GAN, bilinear GAN, VAE, diffusion.
DEMO_MODELS = ("gan_tconv_ns_s0", "gan_bilinear_ns", "vae_bilinear_s0", "ddpm_nearest")
N_REFS, N_QUERIES, N_REAL = 5, 4, 2
DEMO_SEED = 20240601  # sampling seed base; model i samples with DEMO_SEED + i
#: Real photos for the "unknown" queries: scikit-image samples (BSD licence, ship with the
#: package) rather than the training photos, so the demo never redistributes BSDS500.
REAL_SOURCES = ("astronaut", "coffee")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def real_crops(size: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """One random square crop (side 2-4x the demo size) per REAL_SOURCES photo, resized."""
    from generators.train import SKIMAGE_PHOTOS

    photos = dict(zip(SKIMAGE_PHOTOS, skimage_photos(), strict=True))
    rng = np.random.default_rng(seed)
    out = []
    for name in REAL_SOURCES:
        im = photos[name]
        s = int(rng.integers(2 * size, 4 * size + 1))
        y = int(rng.integers(0, im.shape[0] - s + 1))
        x = int(rng.integers(0, im.shape[1] - s + 1))
        crop = Image.fromarray(im[y : y + s, x : x + s]).resize((size, size), Image.LANCZOS)
        out.append((f"skimage.data.{name} crop x={x} y={y} side={s}", np.asarray(crop)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "fpattr" / "data" / "demo")
    p.add_argument("--bench-dir", type=Path, default=None, help="make_real_benchmark output")
    p.add_argument("--real", type=Path, default=None, help="photos to train on if no bench-dir")
    p.add_argument("--steps-scale", type=float, default=1.0, help="when training here")
    p.add_argument("--ckpt-dir", type=Path, default=ROOT / "runs" / "demo_ckpt")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--models",
        nargs="+",
        default=list(DEMO_MODELS),
        help="benchmark model ids to sample from (default: %(default)s)",
    )
    a = p.parse_args(argv)
    dev = resolve_device(a.device)

    if a.out.exists():
        shutil.rmtree(a.out)
    files: dict[str, dict] = {}
    generators: dict[str, dict] = {}
    cache: dict = {}
    for i, model_id in enumerate(a.models):
        cfg = REGISTRY[model_id]
        bench_ckpt = a.bench_dir / "_ckpt" / f"{model_id}.pt" if a.bench_dir else None
        done = a.bench_dir / model_id / "done.json" if a.bench_dir else None
        if bench_ckpt is not None and bench_ckpt.exists() and done.exists():
            nets = load_trained(cfg, bench_ckpt, dev)
            info = json.loads(done.read_text())
            origin = f"benchmark checkpoint {bench_ckpt.name} (make_real_benchmark.py)"
        else:
            cfg = replace(cfg, steps=max(1, round(cfg.steps * a.steps_scale)))
            photos = photo_set(cfg.data, a.real, cache)
            sampler = CropSampler(photos.photos, cfg.size, seed=cfg.seed + 7919)
            ckpt = a.ckpt_dir / f"{model_id}_{cfg.steps}steps.pt"  # a new length never resumes
            res = train(cfg, sampler, cfg.steps, dev, ckpt=ckpt)
            nets = res.nets
            info = {
                **cfg.labels(),
                "steps": cfg.steps,
                "data_source": photos.source,
                "device": str(dev),
                "seconds": round(res.seconds, 1),
                "final_losses": {k: v["final"] for k, v in loss_summary(res.history).items()},
            }
            origin = "trained by make_demo_data.py"
        seed = DEMO_SEED + i
        images = generate(cfg, nets, N_REFS + N_QUERIES, seed, dev)
        generators[model_id] = {
            **cfg.labels(),
            "steps": info.get("steps", cfg.steps),
            "data_source": info.get("data_source"),
            "origin": origin,
            "trained_on_device": info.get("device"),
            "training_seconds": info.get("seconds"),
            "final_losses": info.get("final_losses"),
            "sample_seed": seed,
        }
        for j, img in enumerate(images):
            role = "reference" if j < N_REFS else "query"
            rel = (
                f"refs/{model_id}/{j:02d}.png"
                if j < N_REFS
                else f"queries/{model_id}_{j - N_REFS:02d}.png"
            )
            save_png(img, a.out / rel)
            files[rel] = {"generator": model_id, "role": role}
        log(f"[demo] {model_id}: {len(images)} images ({origin})")
    for j, (source, img) in enumerate(real_crops(REGISTRY[a.models[0]].size, DEMO_SEED)):
        rel = f"queries/real_{j:02d}.png"
        save_png(img, a.out / rel)
        files[rel] = {"generator": None, "role": "query", "expected": "unknown", "source": source}

    for rel, meta in files.items():
        meta["sha256"] = sha256(a.out / rel)
    total = sum((a.out / rel).stat().st_size for rel in files)
    manifest = {
        "schema": "fpattr.demo/1",
        "description": "Demo images from the project's own small generators (64x64 PNG): "
        "enrol refs/<model_id>/ as gallery entries, attribute queries/; real_* should be "
        "'unknown'.",
        "command": "python scripts/make_demo_data.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": DEMO_SEED,
        "refs_per_model": N_REFS,
        "generators": generators,
        "files": dict(sorted(files.items())),
        "total_bytes": total,
    }
    (a.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps({"out": str(a.out), "files": len(files), "bytes": total}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
