"""How much the decision figures depend on which files are the references.

    python benchmarks/reference_choice.py --bench ../shared/data/public-generators \
        --refs 5 --seeds 0 1 2 3 4 --out docs/results/reference_choice.json

Runs `fpattr evaluate` (the attribute policy; nothing fitted on the queries) once with
the first N files of each model folder as its references (``--ref-choice first``, the
default) and once per seed with N files drawn at random (``--ref-choice random
--seed S``). Where a folder's first files come from one batch (one prompt, one figure)
the references resemble each other more than the queries resemble them (evaluate's
``reference_gap``) and the calibration fitted on them is optimistic; drawn references
show what enrolling from several sources gives. Writes the generator-disjoint figures
of single images, sets and verify pairs to JSON and prints them as markdown tables.
The public generators are for evaluation only: nothing here is chosen from them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SET_SIZES = ("3", "5", "10")


def _evaluate(bench: Path, refs: int, extra: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ev.json"
        cmd = [sys.executable, "-m", "fpattr", "evaluate", str(bench), "--refs", str(refs)]
        cmd += [*extra, "-f", "json", "-q", "-o", str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if r.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
        return json.loads(out.read_text())


def _ece(unit: dict[str, Any]) -> float:
    return unit.get("ece_pooled", unit["ece"])


def summarise(d: dict[str, Any]) -> dict[str, Any]:
    """The generator-disjoint headline figures of one evaluate run."""
    dec = d["decisions"]
    gd = dec["generator_disjoint"]
    s, p = gd["single"], gd["pairs"]
    return {
        "ref_choice": d.get("ref_choice"),
        "top1": d["identification"]["top1"],
        "pair_auc": d["verification"]["roc_auc"],
        "reference_gap": dec["protocols"]["reference_gap"]["gap"],
        "single": {k: s[k] for k in ("achieved_far", "precision", "coverage")} | {"ece": _ece(s)},
        "sets": {
            n: {k: gd["sets"][n][k] for k in ("achieved_far", "precision", "coverage")}
            | {"ece": _ece(gd["sets"][n])}
            for n in SET_SIZES
            if n in gd["sets"]
        },
        "pairs": {k: p[k] for k in ("achieved_far", "precision", "coverage")} | {"ece": _ece(p)},
    }


def _f(x: Any, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| references | gap | top-1 | pair AUC | FAR | precision | coverage | ECE "
        "| sets ECE 3 / 5 / 10 | sets FAR 3 / 5 / 10 | pairs FAR | pairs ECE |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, p, sets = r["single"], r["pairs"], r["sets"]
        set_far = " / ".join(f"{sets[n]['achieved_far']:.2%}" for n in SET_SIZES if n in sets)
        lines.append(
            f"| {r['ref_choice']} | {r['reference_gap']:+.3f} | {_f(r['top1'])} "
            f"| {_f(r['pair_auc'])} | {s['achieved_far']:.2%} | {_f(s['precision'])} "
            f"| {_f(s['coverage'])} | {_f(s['ece'])} "
            f"| {' / '.join(_f(sets[n]['ece']) for n in SET_SIZES if n in sets)} "
            f"| {set_far} "
            f"| {p['achieved_far']:.2%} | {_f(p['ece'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    runs = [("first", [])] + [
        (f"random {s}", ["--ref-choice", "random", "--seed", str(s)]) for s in a.seeds
    ]
    rows = []
    for name, extra in runs:
        rows.append(summarise(_evaluate(a.bench, a.refs, extra)))
        print(f"{name}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    doc = {
        "command": "python benchmarks/reference_choice.py --bench "
        f"{a.bench} --refs {a.refs} --seeds {' '.join(map(str, a.seeds))}",
        "protocol": "generator-disjoint (fpattr evaluate), ECE pooled over folds",
        "seconds": round(time.perf_counter() - t0, 1),
        "runs": rows,
    }
    if a.out:
        from fpattr.io.atomic import atomic_write_text

        atomic_write_text(a.out, json.dumps(doc, indent=1) + "\n")
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
