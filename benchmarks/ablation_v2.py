"""Extractor v2 ablation table (issue 10, item 5): the v2 run against variants that each
remove one change (trained by ``scripts/ablate_v2.sh`` on the same zoo, seed, steps and
validation/calibration models), plus v1 and the spectrum baseline, on

- the v2 run's held-out synthetic models (``val``: unseen models of the v2 zoo),
- the project's real-generator benchmark (10 references),
- the public generators (5 references; evaluation only, never trained or tuned on),

clean, after JPEG 75 and after x0.5 resizing.

    bash scripts/ablate_v2.sh
    python benchmarks/ablation_v2.py --run runs/v2pilot --v1 models/default.json \\
        --real runs/realbench --public ../shared/data/public-generators \\
        --out docs/results/ablation_v2.json

Writes the JSON and prints the markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from compare_extractors import CONDITIONS, _runs, run_bench
from eval_default import evaluate, held_out_benches, summary

#: variant -> what it removes from v2 (scripts/ablate_v2.sh trains them)
#: every variant is evaluated at 4 views an image, as the table's first rows were (before
#: views followed the image size): a 64 px-view variant would otherwise get 16 views of a
#: 256 px image where the 128 px ones get 4, and the view size would not be all it changes
VIEWS = ("--views", "4")

REMOVED = {
    "v2": "nothing (the v2 run)",
    "no_new_families": "the 7 real-decoder families (v1's 3 families only)",
    "l2_only": "loss diversity (every model trained with L2, as v1)",
    "v1_processing": "publication chains (v1's augmentation)",
    "views64": "128-px views (v1's 64-px views)",
    "half_zoo": "half the training models (100 of 199)",
    "size60": "all but 60 training models (size control for no_new_families)",
    "v1": "everything: the shipped v1 extractor (its own zoo and training)",
}


def train_models(run: Path) -> int | None:
    f = run / "train_result.json"
    return json.loads(f.read_text())["split_sizes"]["train"] if f.is_file() else None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", type=Path, required=True, help="the v2 run (zoo/, train/)")
    ap.add_argument("--v2", type=Path, help="v2's card (default models/v2.json)")
    ap.add_argument("--v1", type=Path, help="v1's card")
    ap.add_argument("--real", type=Path)
    ap.add_argument("--public", type=Path)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep the figures of cards already in --out (same card file) and evaluate only "
        "the new variants (the images, references and seeded pairs are the same)",
    )
    args = ap.parse_args()
    if "public-generators" in str(args.real or ""):
        raise SystemExit("--real is the project's own benchmark, not the public generators")
    t0 = time.perf_counter()
    abl = args.run / "ablation"
    cards = {"v2": args.v2 or Path("models/v2.json")}
    runs = {"v2": args.run / "train"}
    for name in REMOVED:
        if (abl / "models" / f"{name}.json").is_file():
            cards[name] = abl / "models" / f"{name}.json"
            runs[name] = abl / name
    if args.v1:
        cards["v1"] = args.v1
    conditions = [c for c in args.conditions.split(",") if c]
    prev: dict = {}
    if args.reuse and args.out and args.out.is_file():
        prev = json.loads(args.out.read_text())
    kept = {k for k, v in prev.get("cards", {}).items() if cards.get(k) == Path(v)}
    todo = {k: v for k, v in cards.items() if k not in kept}
    res: dict = {"command": " ".join(sys.argv), "cards": {k: str(v) for k, v in cards.items()}}
    res["train_models"] = {k: train_models(r) for k, r in runs.items()}
    with tempfile.TemporaryDirectory() as tmp:
        benches = held_out_benches(args.run / "train", Path(tmp))
        res["synthetic"] = {k: prev["synthetic"][k] for k in kept} | {
            name: {
                split: summary(
                    _runs(evaluate(b, 5, "onnx", [f"--backbone-opt=model={card}", *VIEWS]))[0]
                )
                for split, b in benches.items()
            }
            for name, card in todo.items()
        }
    res["benchmarks"] = {}
    for label, bench, refs in (("real", args.real, 10), ("public", args.public, 5)):
        if not bench:
            continue
        old = prev.get("benchmarks", {}).get(label, {})
        new = (
            run_bench(bench, refs, todo, conditions, spectrum=not old, extra=VIEWS) if todo else {}
        )
        res["benchmarks"][label] = {
            c: [r for r in old.get(c, []) if r["backbone"] in kept | {"spectrum"}] + new.get(c, [])
            for c in conditions
        }
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(table(res))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")


def table(res: dict) -> str:
    """One row per variant: top-1 / ROC-AUC per benchmark and condition, and the change
    against v2 in clean top-1 (negative: removing that change hurt)."""
    cols = [("synthetic", "val", None)] + [
        (b, None, c) for b, conds in res["benchmarks"].items() for c in conds
    ]
    head = (
        ["variant", "removed", "train models"]
        + [f"{b} {s or c}" for b, s, c in cols]
        + [f"Δ {b} clean top-1" for b in res["benchmarks"]]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(name: str, b: str, split: str | None, cond: str | None) -> dict | None:
        if b == "synthetic":
            return res["synthetic"].get(name, {}).get(split)
        rows = res["benchmarks"][b][cond]
        return next((r for r in rows if r["backbone"] == name), None)

    for name in res["cards"]:
        row = [name, REMOVED.get(name, ""), str(res["train_models"].get(name) or "")]
        for b, split, cond in cols:
            r = cell(name, b, split, cond)
            row.append(f"{r['top1']:.3f} / {r['roc_auc']:.3f}" if r else "")
        for b in res["benchmarks"]:
            r, ref = cell(name, b, None, "clean"), cell("v2", b, None, "clean")
            row.append(f"{r['top1'] - ref['top1']:+.3f}" if r and ref else "")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
