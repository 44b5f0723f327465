"""How much of `fpattr attribute`'s per-image CPU is PNG decoding, whatever the decoder.

    python benchmarks/png_decoders.py --out docs/results/png_decoders.json

Issue 12 asks `attribute` to run within 15 % of pure inference on 2 cores. On saturated
cores that leaves (1 / 0.85 - 1) x the inference CPU per image for everything else; this
measures the floor under "everything else": decoding the same 128 px PNGs the
performance benchmark uses (benchmarks/ray_workers.py's world, which benchmarks/performance.py uses:
960 files) with fpattr's whole `load_image` (read, sha256, checks, decode, float) on its
libpng path (imagecodecs, in the [cpu]/[gpu] extras: plain 8-bit PNGs) and with that path
off (Pillow for every PNG, as without imagecodecs), a bare Pillow `Image.open(...).load()`,
and libpng / libspng through imagecodecs and pyspng when installed (pyspng is not an fpattr
dependency: `pip install pyspng` to include it). CPU time per image, best of ``--rounds``,
one thread, decoded arrays checked equal to Pillow's.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ray_workers  # noqa: E402
from eval_default import emit_json  # noqa: E402

from fpattr.io.loader import load_image  # noqa: E402


def cpu_ms_per_item(fn: Callable[[], object], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return 1e3 * best / n


def decoders() -> dict[str, Callable[[bytes], np.ndarray]]:
    def pil(data: bytes) -> np.ndarray:
        im = Image.open(io.BytesIO(data))
        im.load()
        return np.asarray(im)

    out: dict[str, Callable[[bytes], np.ndarray]] = {"Pillow Image.open + load": pil}
    try:
        ic = importlib.import_module("imagecodecs")
        out["imagecodecs.png_decode (libpng)"] = ic.png_decode
        if hasattr(ic, "spng_decode"):
            out["imagecodecs.spng_decode (libspng)"] = ic.spng_decode
    except ImportError:
        pass
    try:
        out["pyspng.load (libspng)"] = importlib.import_module("pyspng").load
    except ImportError:
        pass
    return out


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", "installed"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=960)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder, _ = ray_workers.make_world(Path(tmp), a.images, 128)
        paths = sorted(folder.iterdir())
        data = [p.read_bytes() for p in paths]
        n = len(data)
        ref = [np.asarray(Image.open(io.BytesIO(d)).convert("RGB")) for d in data[:20]]
        from fpattr.io import loader

        rows = {
            "fpattr load_image (whole: read, sha256, checks, decode, float)": cpu_ms_per_item(
                lambda: [load_image(p) for p in paths], n, a.rounds
            )
        }
        saved = list(loader._LIBPNG)
        loader._LIBPNG[:] = [None]  # as without imagecodecs: Pillow decodes every PNG
        try:
            rows["fpattr load_image, Pillow only (libpng path off)"] = cpu_ms_per_item(
                lambda: [load_image(p) for p in paths], n, a.rounds
            )
        finally:
            loader._LIBPNG[:] = saved
        for name, dec in decoders().items():
            for d, r in zip(data[:20], ref, strict=True):
                if not np.array_equal(np.asarray(dec(d))[..., :3], r):
                    raise SystemExit(f"{name} decodes differently from Pillow")
            rows[name] = cpu_ms_per_item(lambda dec=dec: [dec(d) for d in data], n, a.rounds)
    res = {
        "command": "python benchmarks/png_decoders.py " + " ".join(argv or sys.argv[1:]),
        "images": n,
        "mean_png_bytes": round(float(np.mean([len(d) for d in data])), 1),
        "cpu_ms_per_image": {k: round(v, 4) for k, v in rows.items()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "versions": {m: _version(m) for m in ("PIL", "imagecodecs", "pyspng")},
    }
    for k, v in res["cpu_ms_per_image"].items():
        print(f"{v:7.3f} ms  {k}", file=sys.stderr)
    emit_json(res, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
