"""Extractors side by side (issue 10's ablation table): v1, v2 and the spectrum baseline on
the project's real-generator benchmark (10 references) and the public generators (5
references; evaluation only, never trained or tuned on), clean, after JPEG 75 and after
x0.5 resizing, per generator. Optionally the held-out synthetic models of training runs.

    python benchmarks/compare_extractors.py --real runs/realbench \
        --public ../shared/data/public-generators \
        --extractor v1=models/default.json --extractor v2=models/v2.json \
        --run v1=runs/default/train --run v2=runs/v2/train --out docs/results/extractors.json

Each backbone runs its own `fpattr evaluate` (same images, same seeded pairs; accuracy,
not timing, is compared here). ``--extractor NAME=CARD`` names an
exported model card (an ONNX backbone); ``spectrum`` is always added. Writes the JSON and
prints markdown tables (overall and per generator) on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from eval_default import evaluate, held_out_benches, summary

CONDITIONS = {"clean": [], "jpeg75": ["--jpeg", "75"], "x0.5": ["--resize", "0.5"]}


def _runs(res: dict) -> list[dict]:
    """evaluate's JSON: ``runs`` with --compare, the run itself with one backbone."""
    return res.get("runs") or [res]


def run_bench(
    bench: Path,
    refs: int,
    cards: dict[str, Path],
    conditions: list[str],
    spectrum: bool = True,
    extra: tuple[str, ...] = (),
) -> dict[str, list[dict]]:
    """condition -> one summary per backbone, named as given (spectrum last, if asked);
    ``extra``: more `fpattr evaluate` arguments for every run (e.g. a fixed view count)."""
    out: dict[str, list[dict]] = {}
    for cond in conditions:
        rows = []
        for name, card in cards.items():
            res = evaluate(
                bench,
                refs,
                "onnx",
                ["--backbone-opt", f"model={card}", "--min-queries", "1"]
                + [*CONDITIONS[cond], *extra],
            )
            rows += [summary(r) | {"backbone": name} for r in _runs(res)]
        if spectrum:
            res = evaluate(
                bench, refs, "spectrum", ["--min-queries", "1", *CONDITIONS[cond], *extra]
            )
            rows += [summary(r) for r in _runs(res)]
        out[cond] = rows
    return out


def synthetic(run: Path, card: Path, refs: int) -> dict[str, dict]:
    """Held-out synthetic models of a training run (its own zoo), through an exported card
    (the run's own, or another extractor's on the same held-out models)."""
    with tempfile.TemporaryDirectory() as tmp:
        return {
            split: summary(
                _runs(evaluate(bench, refs, "onnx", ["--backbone-opt", f"model={card}"]))[0]
            )
            for split, bench in held_out_benches(run, Path(tmp)).items()
        }


def tables(results: dict) -> str:
    lines = []
    for bench, conds in results["benchmarks"].items():
        lines += [f"**{bench}**", "", "| backbone | condition | top-1 | pair ROC-AUC | EER |"]
        lines.append("|---|---|---|---|---|")
        for cond, rows in conds.items():
            for r in rows:
                lines.append(
                    f"| {r['backbone']} | {cond} | {r['top1']:.3f} | {r['roc_auc']:.3f} | "
                    f"{r['eer']:.3f} |"
                )
        clean = conds.get("clean", [])
        if clean:
            names = [r["backbone"] for r in clean]
            models = sorted(clean[0]["per_model_top1"])
            lines += ["", "| generator (clean top-1) | " + " | ".join(names) + " |"]
            lines.append("|---|" + "---|" * len(names))
            for m in models:
                cells = [f"{r['per_model_top1'].get(m, float('nan')):.2f}" for r in clean]
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    for name, splits in results.get("synthetic", {}).items():
        for split, r in splits.items():
            lines.append(
                f"- held-out synthetic ({name} run, {split}): top-1 {r['top1']:.3f}, "
                f"ROC-AUC {r['roc_auc']:.3f}"
            )
    return "\n".join(lines)


def pairs(values: list[str], what: str) -> dict[str, Path]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep:
            raise SystemExit(f"{what} expects NAME=PATH, got {v!r}")
        out[name] = Path(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--real", type=Path, help="project's real-generator benchmark")
    ap.add_argument("--public", type=Path, help="public generators (evaluation only)")
    ap.add_argument("--extractor", action="append", default=[], help="NAME=CARD.json")
    ap.add_argument("--run", action="append", default=[], help="NAME=TRAIN_RUN (synthetic)")
    ap.add_argument("--conditions", default="clean,jpeg75,x0.5")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if "public-generators" in str(args.real or ""):
        raise SystemExit("--real is the project's own benchmark, not the public generators")
    cards = pairs(args.extractor, "--extractor")
    conditions = [c for c in args.conditions.split(",") if c]
    t0 = time.perf_counter()
    results: dict = {
        "command": " ".join(sys.argv),
        "extractors": {k: str(v) for k, v in cards.items()},
    }
    results["benchmarks"] = {}
    if args.real:
        results["benchmarks"]["real (10 refs)"] = run_bench(args.real, 10, cards, conditions)
    if args.public:
        results["benchmarks"]["public (5 refs)"] = run_bench(args.public, 5, cards, conditions)
    runs = pairs(args.run, "--run")
    results["synthetic"] = {n: synthetic(p, cards[n], 5) for n, p in runs.items() if n in cards}
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print(tables(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
