"""Issue-4 acceptance run: the shipped extractor vs the training-free spectrum backbone,
measured side by side in one `fpattr evaluate --compare` per benchmark:

1. synthetic models held out from training (``val``: unseen models of trained
   architectures; ``val_arch``: whole architectures never trained on), from the
   training run's ``train_result.json``;
2. the public generators (evaluation only, never trained on), 5 references each.

    python benchmarks/eval_default.py runs/default/train ../shared/data/public-generators \
        --out docs/results/default_eval.json

Each benchmark folder is made of symlinks to the zoo's model folders (nothing copied).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def evaluate(
    bench: Path, refs: int, backbones: str, extra: list[str], env: dict | None = None
) -> dict:
    """One `fpattr evaluate --compare` run in a subprocess; its JSON."""
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
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode not in (0, 1):
        raise SystemExit(f"evaluate failed ({r.returncode}): {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def emit_json(result: dict, out: Path | None) -> None:
    """A benchmark's result as indented JSON: written atomically to ``out``, else stdout."""
    from fpattr.io.atomic import atomic_write_text

    text = json.dumps(result, indent=1) + "\n"
    if out:
        atomic_write_text(out, text)
    else:
        sys.stdout.write(text)


def zoo_path(recorded: str) -> Path:
    """A training run's zoo: the path it recorded is relative to where training ran (the
    repository root by the scripts' convention), not to where a benchmark runs from."""
    p = Path(recorded)
    for cand in (p, Path(__file__).resolve().parents[1] / p):
        if cand.is_dir():
            return cand
    raise SystemExit(f"zoo {recorded} not found (relative to here or to the repository)")


def held_out_benches(run: Path, tmp: Path) -> dict[str, Path]:
    """split -> a benchmark folder of symlinks to a training run's held-out zoo models
    (``val``: unseen models, ``val_arch``: unseen architectures; splits under 2 skipped)."""
    tr = json.loads((run / "train_result.json").read_text())
    zoo = zoo_path(tr["zoo"]["path"])
    out = {}
    for split in ("val", "val_arch"):
        ids = tr["held_out_ids"].get(split, [])
        if len(ids) < 2:
            continue
        bench = tmp / split
        bench.mkdir()
        for i in ids:
            (bench / i).symlink_to((zoo / i).resolve(), target_is_directory=True)
        out[split] = bench
    return out


def summary(run: dict) -> dict:
    return {
        "backbone": run["backbone"],
        "n_models": run["n_models"],
        "n_queries": run["n_queries"],
        "top1": run["identification"]["top1"],
        "macro_f1": run["identification"]["macro_f1"],
        "roc_auc": run["verification"]["roc_auc"],
        "eer": run["verification"]["eer"],
        "tar_at_far_1e-2": run["verification"]["tar_at_far_1e-2"],
        "open_set_auroc": run["open_set"]["auroc"],
        "oscr": run["open_set"]["oscr"],
        "seconds": run.get("seconds"),
        "per_model_top1": {m: v["top1"] for m, v in (run.get("per_model") or {}).items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("run", type=Path, help="training run folder (train_result.json)")
    ap.add_argument("public", type=Path, help="public generators (folder per model)")
    ap.add_argument("--backbones", default="default,spectrum")
    ap.add_argument("--refs-synthetic", type=int, default=5)
    ap.add_argument("--refs-public", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--card",
        type=Path,
        default=None,
        help="also store the figures in this model card (key 'evaluation')",
    )
    args = ap.parse_args()
    results: dict = {"backbones": args.backbones, "benchmarks": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for split, bench in held_out_benches(args.run, Path(tmp)).items():
            out = evaluate(bench, args.refs_synthetic, args.backbones, [])
            results["benchmarks"][f"synthetic-{split}"] = [summary(r) for r in out["runs"]]
    out = evaluate(args.public, args.refs_public, args.backbones, ["--min-queries", "1"])
    results["benchmarks"]["public-generators"] = [summary(r) for r in out["runs"]]
    results["public_skipped"] = out.get("skipped")
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.card:
        from fpattr.io.atomic import atomic_write_text

        card = json.loads(args.card.read_text())
        card["evaluation"] = {**results, "command": " ".join(sys.argv)}
        atomic_write_text(args.card, json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
