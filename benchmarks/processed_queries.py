"""Decisions on processed queries against clean references (the analyst's usual case).

    python benchmarks/processed_queries.py --bench ../shared/data/public-generators \
        --refs 5 --out docs/results/processed_queries.json

Runs `fpattr evaluate` (the attribute policy; nothing fitted on the queries) on one
benchmark, clean and under each degradation twice: applied to every image (references
too, as the robustness rows of docs/benchmarks.md) and to the queries only
(``--degrade-queries-only``: references enrolled clean, queries met as processed copies).
Writes the single-image decision figures of the in-gallery and generator-disjoint
protocols to JSON and prints them as a markdown table. The public generators are for
evaluation only: nothing here is chosen from them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS: dict[str, list[str]] = {
    "clean": [],
    "x0.5, every image": ["--resize", "0.5"],
    "x0.5, queries only": ["--resize", "0.5", "--degrade-queries-only"],
    "JPEG 75, every image": ["--jpeg", "75"],
    "JPEG 75, queries only": ["--jpeg", "75", "--degrade-queries-only"],
}
KEYS = (
    ("FAR", "achieved_far", 4),
    ("precision", "precision", 3),
    ("coverage", "coverage", 3),
    ("inconclusive", "inconclusive_rate", 3),
    ("unseen named", "unseen_named_rate", 3),
    ("ECE", "ece_pooled", 3),
)


def run(bench: Path, refs: int, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "fpattr", "evaluate", str(bench), "--refs", str(refs)]
    cmd += ["-b", "default", "-f", "json", "-q", *extra]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"evaluate failed ({r.returncode}): {r.stderr[-2000:]}")
    d = json.loads(r.stdout)
    protocols = d["decisions"]["protocols"]
    rows = {"in-gallery": protocols["in_gallery"]["single"]}
    if "generator_disjoint" in protocols:  # >= 4 models
        rows["generator-disjoint"] = protocols["generator_disjoint"]["mean"]["single"]
    return {
        "args": extra,
        "top1": d["identification"]["top1"],
        "pair_roc_auc": d["verification"]["roc_auc"],
        "single": {p: {k: r.get(k) for _, k, _ in KEYS} for p, r in rows.items()},
    }


def fmt(v: Any, nd: int) -> str:
    return "—" if v is None else f"{float(v):.{nd}f}"


def table(res: dict[str, Any]) -> str:
    head = "| queries | protocol | top-1 | pair AUC | " + " | ".join(c for c, _, _ in KEYS) + " |"
    lines = [head, "|" + "---|" * (len(KEYS) + 4)]
    for name, r in res["conditions"].items():
        for proto, row in r["single"].items():
            cells = " | ".join(fmt(row[k], nd) for _, k, nd in KEYS)
            lines.append(
                f"| {name} | {proto} | {r['top1']:.3f} | {r['pair_roc_auc']:.3f} | {cells} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared/data/public-generators")
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    res: dict[str, Any] = {
        "command": "python benchmarks/processed_queries.py " + " ".join(argv or sys.argv[1:]),
        "bench": a.bench.name,
        "refs": a.refs,
        "unit": "single images; generator-disjoint: mean over folds (ECE pooled)",
        "conditions": {name: run(a.bench, a.refs, extra) for name, extra in CONDITIONS.items()},
    }
    res["seconds"] = round(time.perf_counter() - t0, 1)
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
