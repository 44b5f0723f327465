"""Every backbone side by side, in one `fpattr evaluate --compare` run per benchmark,
clean and under processing (JPEG, down-scaling), written to docs/results/.

    python benchmarks/compare_backbones.py --public ../shared/data/public-generators \
        --real-bench runs/realbench --manifpt-ref runs/manifpt_ref.npz \
        --out docs/results/compare_backbones.json

The real-generator benchmark (benchmarks/make_real_benchmark.py) is used with 10
references per model, the public generators with 5. ``--manifpt-ref`` is a real-patch
reference made by `fpattr artifacts index ../shared/data/bsds500/val --out REF`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from eval_default import evaluate, summary  # same folder: run as a script from the repo

BACKBONES = "default,manifpt,spectrum,marra,corvi,dct"
CONDITIONS = {"clean": [], "jpeg75": ["--jpeg", "75"], "resize0.5": ["--resize", "0.5"]}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--public", type=Path)
    ap.add_argument("--real-bench", type=Path)
    ap.add_argument("--manifpt-ref", type=Path)
    ap.add_argument("--backbones", default=BACKBONES)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    backbones = args.backbones
    extra: list[str] = []
    if "manifpt" in backbones.split(","):
        if not args.manifpt_ref:
            backbones = ",".join(b for b in backbones.split(",") if b != "manifpt")
        else:
            extra = ["--backbone-opt", f"manifpt:ref={args.manifpt_ref}"]
    benches = [
        (name, path, refs)
        for name, path, refs in (
            ("real-generators (10 refs)", args.real_bench, 10),
            ("public-generators (5 refs)", args.public, 5),
        )
        if path is not None and Path(path).is_dir()
    ]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # manifpt's many small matmuls
    results: dict = {"backbones": backbones, "benchmarks": {}}
    for name, path, refs in benches:
        for cond in args.conditions.split(","):
            out = evaluate(path, refs, backbones, extra + CONDITIONS[cond], env=env)
            results["benchmarks"].setdefault(name, {})[cond] = [summary(r) for r in out["runs"]]
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
