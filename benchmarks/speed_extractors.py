"""End-to-end `fpattr attribute` speed of several extractors side by side, in one run.

    python benchmarks/speed_extractors.py --backbones default,v2,default-int8 \
        --images 400 --size 256 --out docs/results/speed_extractors.json

For each backbone, on the same folder of PNGs (interleaved rounds, so drift of a shared
machine hits every backbone alike): a gallery of 3 models is enrolled with that backbone,
then `fpattr attribute` runs in a subprocess with default settings (images/s from its own
summary), and ONNX Runtime alone runs the same number of views per second at batch 64 with
the threads attribute gives it. Also the cost of the provenance read (metadata of every
file) through the Python API: Session.attribute with and without it, default backbone.
Run on a quiet machine; ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import rate  # noqa: E402


def fpattr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fpattr", *args], capture_output=True, text=True, check=False
    )


def attribute(folder: Path, gallery: Path, backbone: str) -> float:
    r = fpattr("attribute", str(folder), "-g", str(gallery), "-b", backbone, "-f", "jsonl", "-q")
    if r.returncode != 0:
        raise SystemExit(f"attribute -b {backbone} failed: {r.stderr[-1500:]}")
    return float(json.loads(r.stdout.splitlines()[-1])["images_per_second"])


def ort_views_per_s(
    backbone: str,
    n_views: int,
    seconds: float,
    *,
    threads: int = 1,
    views: np.ndarray | None = None,
) -> float:
    """Views/s of the backbone alone on batches of ``n_views`` (of ``views``, cycled, else
    one random batch) with ``threads`` ONNX Runtime threads (1: the attribute default)."""
    from fpattr.backbones.resolve import create_backbone

    bb = create_backbone(backbone, threads=threads)
    if views is None:
        size = bb.input_size
        views = np.random.default_rng(0).random((n_views, size, size, 3), np.float32)
    batches = [views[i : i + n_views] for i in range(0, len(views) - n_views + 1, n_views)]
    return rate(lambda: [bb.embed(x) for x in batches], sum(len(x) for x in batches), seconds)


def provenance_cost(folder: Path, gallery: Path, rounds: int) -> dict:
    from fpattr.session import Session

    out: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(rounds):
        for key, prov in (("with", True), ("without", False)):
            s = Session.open("default", gallery)
            s.provenance = prov
            t = time.perf_counter()
            n = sum(1 for _ in s.attribute([folder]))
            out[key].append(n / (time.perf_counter() - t))
    w, wo = float(np.median(out["with"])), float(np.median(out["without"]))
    return {"images_per_s_with": w, "images_per_s_without": wo, "ratio": w / wo}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbones", default="default,v2")
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from fpattr.testing import write_generator_images

    names = [b for b in args.backbones.split(",") if b]
    res: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "images": args.images,
        "size": args.size,
        "command": " ".join(sys.argv),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        q = tmp / "q"
        write_generator_images(q, "checker", n=args.images, size=args.size, seed=1)
        galleries = {}
        for b in names:
            g = tmp / f"g-{b}"
            for k, kind in enumerate(("nearest", "bilinear", "checker")):
                refs = tmp / f"refs{k}"
                if not refs.exists():
                    write_generator_images(refs, kind, n=5, size=args.size, seed=10 + k)
                r = fpattr("gallery", "add", kind, str(refs), "-g", str(g), "-b", b, "-q")
                if r.returncode != 0:
                    raise SystemExit(f"gallery add -b {b}: {r.stderr[-1000:]}")
            galleries[b] = g
        rates: dict[str, list[float]] = {b: [] for b in names}
        for _ in range(args.rounds):
            for b in names:
                rates[b].append(attribute(q, galleries[b], b))
        rows = []
        for b in names:
            from fpattr.backbones.resolve import create_backbone

            views = create_backbone(b).default_views
            ort = ort_views_per_s(b, 64, args.seconds)
            e2e = float(np.median(rates[b]))
            rows.append(
                {
                    "backbone": b,
                    "attribute_images_per_s": e2e,
                    "rounds": rates[b],
                    "ort_views_per_s": ort,
                    "views_per_image": views,
                    "pure_inference_images_per_s": ort / views,
                    "end_to_end_over_inference": e2e / (ort / views),
                }
            )
        res["extractors"] = rows
        if "default" in galleries:
            res["provenance"] = provenance_cost(q, galleries["default"], args.rounds)
    print("| backbone | attribute images/s | ORT views/s | views/image | e2e / inference |")
    print("|---|---|---|---|---|")
    for r in res["extractors"]:
        print(
            f"| {r['backbone']} | {r['attribute_images_per_s']:.0f} | {r['ort_views_per_s']:.0f} "
            f"| {r['views_per_image']} | {r['end_to_end_over_inference']:.2f} |"
        )
    if "provenance" in res:
        p = res["provenance"]
        print(
            f"\nprovenance read: {p['images_per_s_with']:.0f} vs {p['images_per_s_without']:.0f} "
            f"images/s without (ratio {p['ratio']:.2f})"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
