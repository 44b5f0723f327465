"""Build the shipped ``taesd`` gallery: ``python -m fpattr_taesd.build_gallery [--out DIR]``.

Trains one small model per reference decoder below on crops of the photos bundled with
scikit-image / scikit-learn (fpattr's own photo pool, nothing downloaded), generates
``--refs`` images per model from held-out crops with a fixed seed, embeds them with the
training-free ``spectrum`` backbone and writes the gallery with fpattr's own gallery
code. Deterministic on one CPU thread; about a minute at the defaults. Needs torch
(``pip install 'fpattr[train]'``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

#: gallery model name -> architecture; names say what each imitates.
REFERENCES: dict[str, dict[str, str]] = {
    # TAESD / TAESDXL: 4-channel latent, 3 blocks per level, nearest, latent clamp
    "taesd-sd": {
        "latent_channels": "4",
        "blocks": "3",
        "upsampling": "nearest",
        "latent_clamp": "tanh",
        "loss": "l1",
    },
    # TAESD3 / TAEF1: the same decoder from a 16-channel latent
    "taesd-flux": {
        "latent_channels": "16",
        "blocks": "3",
        "upsampling": "nearest",
        "latent_clamp": "tanh",
        "loss": "l1",
    },
    # a lighter, smoother variant: one block per level, bilinear, no clamp
    "taesd-lite": {
        "latent_channels": "4",
        "blocks": "1",
        "upsampling": "bilinear",
        "latent_clamp": "none",
        "loss": "l1",
    },
}


def build(
    out: Path,
    *,
    size: int = 64,
    width: int = 16,
    steps: int = 150,
    refs: int = 6,
    seed: int = 0,
    backbone: str = "spectrum",
) -> Path:
    """Write the gallery to ``out`` (replacing it) and return ``out``."""
    import numpy as np
    import torch
    from PIL import Image

    from fpattr.backbones.resolve import create_backbone
    from fpattr.gallery import Gallery
    from fpattr.session import Session
    from fpattr.synthesis.photos import load_photos
    from fpattr_taesd.family import TaesdFamily

    torch.set_num_threads(1)  # bit-for-bit reproducible (and polite on shared machines)
    fam = TaesdFamily()
    pool = load_photos(None, size=size, n_crops=32 + refs, seed=seed, warn=False)
    photos = torch.from_numpy(pool).permute(0, 3, 1, 2).contiguous()
    train, held_out = photos[:32], photos[32:]
    bb = create_backbone(backbone)
    session = Session(bb)
    gallery = Gallery(backbone={k: bb.info()[k] for k in ("name", "id", "sha256")})
    gallery.description = (
        f"fpattr-taesd: {len(REFERENCES)} TAESD-like decoders, {refs} references each "
        f"({size} px, width {width}, {steps} steps, seed {seed}); "
        "rebuild: python -m fpattr_taesd.build_gallery"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, arch) in enumerate(REFERENCES.items()):
            torch.manual_seed(seed + k)
            model = fam.build(arch, width=width, image_size=size)
            stats = fam.train(
                model, train, seed=seed + k, loss_floor=0.0, max_steps=steps, batch_size=8
            )
            images = fam.generate(model, held_out, refs, seed=seed + k)
            folder = Path(tmp) / name
            folder.mkdir()
            for i, img in enumerate(images):
                Image.fromarray(np.ascontiguousarray(img)).save(folder / f"{i:03d}.png")
            emb, found, left_out = session.embed_references([folder])
            if emb is None or left_out:
                raise RuntimeError(f"{name}: cannot embed its references: {left_out}")
            # record where each reference came from, not the temporary folder
            found = [
                {"path": f"{name}/{Path(r['path']).name}", "sha256": r["sha256"]} for r in found
            ]
            meta: dict[str, Any] = {
                "family": fam.name,
                "arch": arch,
                "arch_id": fam.arch_id(arch),
                "final_loss": round(float(stats["final_loss"]), 6),
            }
            gallery.add(name, emb, found, meta=meta)
            gallery.models[name].created = ""  # reproducible gallery.json
    return gallery.save(Path(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fpattr_taesd.build_gallery", description=__doc__
    )
    default = Path(__file__).resolve().parent / "gallery"
    parser.add_argument("--out", type=Path, default=default, help=f"folder (default {default})")
    parser.add_argument("--steps", type=int, default=150, help="training steps per model")
    parser.add_argument("--width", type=int, default=16, help="channels of the models")
    parser.add_argument("--refs", type=int, default=6, help="reference images per model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build(args.out, steps=args.steps, width=args.width, refs=args.refs, seed=args.seed)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
