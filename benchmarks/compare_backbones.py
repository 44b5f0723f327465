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
import subprocess
import sys
from pathlib import Path

BACKBONES = "default,manifpt,spectrum,marra,corvi,dct"
CONDITIONS = {"clean": [], "jpeg75": ["--jpeg", "75"], "resize0.5": ["--resize", "0.5"]}


def run(bench: Path, refs: int, backbones: str, extra: list[str]) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "fpattr",
        "evaluate",
        str(bench),
        "--refs",
        str(refs),
        "--compare",
        backbones,
        "--format",
        "json",
        "-q",
        *extra,
    ]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode not in (0, 1):
        raise SystemExit(f"evaluate failed ({r.returncode}): {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def row(run_: dict) -> dict:
    return {
        "backbone": run_["backbone"],
        "n_models": run_["n_models"],
        "top1": run_["identification"]["top1"],
        "roc_auc": run_["verification"]["roc_auc"],
        "eer": run_["verification"]["eer"],
        "open_set_auroc": run_["open_set"]["auroc"],
    }


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
    results: dict = {"backbones": backbones, "benchmarks": {}}
    for name, path, refs in benches:
        for cond in args.conditions.split(","):
            out = run(path, refs, backbones, extra + CONDITIONS[cond])
            results["benchmarks"].setdefault(name, {})[cond] = [row(r) for r in out["runs"]]
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
