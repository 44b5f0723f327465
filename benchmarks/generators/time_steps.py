"""Projected training time of every benchmark model from a short timed run.

    python benchmarks/generators/time_steps.py --real ../shared/data/bsds500 --steps 30

On a shared machine the wall-clock times in a benchmark manifest mostly measure the other
jobs; this times a few steps of each model back to back (run it while the machine is
quiet) and projects ``default steps x seconds per step + sampling`` per model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generators.models import REGISTRY, build  # noqa: E402
from generators.train import (  # noqa: E402
    STEP_FNS,
    CropSampler,
    generate,
    make_optimizers,
    photo_set,
    resolve_device,
)


def time_model(model_id: str, real: Path | None, steps: int, device: torch.device) -> dict:
    cfg = REGISTRY[model_id]
    sampler = CropSampler(photo_set(cfg.data, real, _CACHE).photos, cfg.size, seed=0)
    nets = {k: m.to(device) for k, m in build(cfg).items()}
    opts = make_optimizers(cfg, nets)
    step = STEP_FNS[cfg.kind]
    for _ in range(3):  # warm-up: allocator, kernels, lazy init
        step(cfg, nets, opts, sampler.batch(cfg.batch).to(device))
    t0 = time.perf_counter()
    for _ in range(steps):
        step(cfg, nets, opts, sampler.batch(cfg.batch).to(device))
    per_step = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    generate(cfg, nets, 60, 0, device)
    sample = time.perf_counter() - t0
    return {
        "id": model_id,
        "s_per_step": round(per_step, 4),
        "steps": cfg.steps,
        "train_s": round(per_step * cfg.steps, 1),
        "sample_60_s": round(sample, 2),
    }


_CACHE: dict = {}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--real", type=Path, default=None)
    p.add_argument("--steps", type=int, default=30, help="timed steps per model")
    p.add_argument("--device", default="auto")
    a = p.parse_args()
    dev = resolve_device(a.device)
    rows = [time_model(i, a.real, a.steps, dev) for i in REGISTRY]
    for r in rows:
        print(json.dumps(r))
    total = sum(r["train_s"] + r["sample_60_s"] for r in rows)
    print(
        json.dumps(
            {"total_s": round(total, 1), "device": str(dev), "threads": torch.get_num_threads()}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
