"""INT8 vs FP32 extractor, side by side in one run (issue 12 item 3), written to docs/.

- ONNX Runtime views/s of both models on the same batches (64 and 256 views, --threads);
- embedding cosine parity on views of held-out real photos (never calibration images);
- with --bench: top-1 / pair ROC-AUC of both backbones from one
  `fpattr evaluate BENCH --refs N --compare default,default-int8` per benchmark.

    python benchmarks/int8.py --bench runs/realbench --refs 10 \\
        --bench ../shared/data/public-generators --refs 5 --out docs/results/int8.json

Run it on a quiet machine: views/s measured next to another job mean nothing.
Writes the JSON and a markdown table (same path, .md).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_default import evaluate, summary  # noqa: E402
from speed import rate  # noqa: E402


def _session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def speed(models: dict[str, Path], batches: list[int], threads: int, seconds: float) -> list:
    sessions = {k: _session(p, threads) for k, p in models.items()}
    rows = []
    for b in batches:
        x = np.random.default_rng(0).random((b, 64, 64, 3), dtype=np.float32)
        feed = {"views": x}  # the same x for every model, alternated
        rates = {k: rate(partial(s.run, None, feed), len(x), seconds) for k, s in sessions.items()}
        rows.append({"batch_views": b, "threads": threads, "views_per_s": rates})
    return rows


def parity(models: dict[str, Path], photos: Path, n_views: int) -> dict:
    from fpattr.training.quantize import embed, find_images, parity_figures, views_of

    views = views_of(find_images(photos), 64, n_views)
    fp32, int8 = (embed(_session(p, 2), views) for p in models.values())
    return {"photos": str(photos), **parity_figures(fp32, int8)}


def table(res: dict) -> str:
    lines = [
        "| batch | threads | FP32 views/s | INT8 views/s | INT8 / FP32 |",
        "|---|---|---|---|---|",
    ]
    for r in res["speed"]:
        f, q = r["views_per_s"]["default"], r["views_per_s"]["default-int8"]
        lines.append(f"| {r['batch_views']} | {r['threads']} | {f:.0f} | {q:.0f} | {q / f:.2f} |")
    p = res["parity"]
    lines += [
        "",
        f"Cosine INT8 vs FP32 on {p['n_views']} held-out photo views: "
        f"min {p['min_cosine']:.4f}, mean {p['mean_cosine']:.5f}",
        "",
    ]
    if res.get("benchmarks"):
        lines += ["| benchmark | backbone | top-1 | pair ROC-AUC |", "|---|---|---|---|"]
        for name, runs in res["benchmarks"].items():
            for r in runs:
                lines.append(f"| {name} | {r['backbone']} | {r['top1']:.4f} | {r['roc_auc']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--fp32", type=Path, default=Path("models/default.onnx"))
    ap.add_argument("--int8", type=Path, default=Path("models/default-int8.onnx"))
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--threads", default="1,2", help="ONNX Runtime thread counts, e.g. 1,2")
    ap.add_argument("--seconds", type=float, default=10.0, help="per model and batch size")
    ap.add_argument(
        "--photos",
        type=Path,
        default=Path("../shared/data/bsds500/val"),
        help="held-out real photos for the parity (not the calibration set)",
    )
    ap.add_argument("--parity-views", type=int, default=4)
    ap.add_argument("--bench", type=Path, action="append", default=[])
    ap.add_argument("--refs", type=int, action="append", default=[], help="one per --bench")
    ap.add_argument("--out", type=Path, default=Path("docs/results/int8.json"))
    args = ap.parse_args()
    if len(args.refs) != len(args.bench):
        ap.error("give one --refs per --bench")
    models = {"default": args.fp32, "default-int8": args.int8}
    batches = [int(b) for b in args.batches.split(",")]
    res: dict = {
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "sizes_bytes": {k: p.stat().st_size for k, p in models.items()},
        "speed": [
            row
            for t in args.threads.split(",")
            for row in speed(models, batches, int(t), args.seconds)
        ],
        "parity": parity(models, args.photos, args.parity_views),
        "benchmarks": {},
    }
    for bench, refs in zip(args.bench, args.refs, strict=True):
        out = evaluate(bench, refs, "default,default-int8", ["--min-queries", "1"])
        res["benchmarks"][f"{bench.name} (refs {refs})"] = [summary(r) for r in out["runs"]]
    res["command"] = " ".join(sys.argv)
    print(table(res))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(res))


if __name__ == "__main__":
    main()
