"""Throughput of the trained extractor in torch on a CUDA device (or CPU), per view and per image.

Used on the lent GPU machine, where onnxruntime-gpu is not installed: it measures
the torch CUDA path (fp32 and bf16 autocast) at several batch sizes and prints JSON.

    python benchmarks/bench_torch_cuda.py runs/gpu/train/extractor.pt --views 4
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from fpattr.training.export import load_extractor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batches", default="256,1024,4096", help="comma-separated batch sizes")
    args = ap.parse_args()
    dev = torch.device(args.device)
    model = load_extractor(args.checkpoint).to(dev)
    size = model.cfg.size
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for amp in (False, True):
            if amp and dev.type != "cuda":
                continue
            x = torch.rand(batch, size, size, 3, device=dev)
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                for _ in range(3):
                    model(x)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t, n = time.perf_counter(), 0
                while time.perf_counter() - t < args.seconds:
                    model(x)
                    n += batch
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                vps = n / (time.perf_counter() - t)
            rows.append(
                {
                    "batch_views": batch,
                    "bf16": amp,
                    "views_per_s": round(vps),
                    "images_per_s": round(vps / args.views),
                }
            )
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(
        json.dumps(
            {"device": name, "torch": torch.__version__, "views": args.views, "rows": rows},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
