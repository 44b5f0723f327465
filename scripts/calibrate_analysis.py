"""Calibrate the design-choice heads on the project's own held-out generators.

    python scripts/calibrate_analysis.py runs/realbench --real ../shared/data/bsds500/val

Embeds the labelled benchmark (``fpattr analyze score``'s own path: labels from each
folder's done.json or the benchmark's manifest.json, mapped onto the heads' classes by
``fpattr.analysis.design_labels``), fits one temperature per head and mode (single
image / set of ``--set-size`` images), scored leave-one-generator-out, chooses the
"undetermined" thresholds the same way, and writes the result as ``calibration`` into
the heads file (JSON, next to the heads; nothing else in the file changes). With
``--real``, also measures how often the calibrated heads still answer on real photos.
Prints the figures (a markdown table for docs/methods/model-parsing.md) on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench", type=Path, help="labelled benchmark (folder per model)")
    ap.add_argument(
        "--heads", type=Path, default=ROOT / "models" / "analysis.json", help="heads file"
    )
    ap.add_argument("--out", type=Path, default=None, help="write here (default: --heads)")
    ap.add_argument("--backbone", default="auto", help="backbone the heads are bound to")
    ap.add_argument("--views", type=int, default=None)
    ap.add_argument("--set-size", type=int, default=5, help="images per set (--as-set mode)")
    ap.add_argument(
        "--target",
        type=float,
        default=0.8,
        help="accuracy a head must reach above its threshold (and at least chance)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--real", type=Path, action="append", default=[], help="folder of real photos (repeat)"
    )
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the heads file")
    return ap.parse_args(argv)


def real_photo_check(heads, bb, folders: list[Path], views, set_size: int, seed: int) -> dict:
    """How the calibrated heads answer on real photos (which they assume are generated)."""
    from fpattr.analysis import UNDETERMINED, decide, make_sets
    from fpattr.pipeline import Embedder, Settings

    embs = [
        e.embedding
        for e in Embedder(bb, Settings(views=views)).embed_paths(folders)
        if e.embedding is not None and not e.error and not e.flat
    ]
    if not embs:
        return {}
    x = np.stack(embs)
    out: dict = {"source": [str(f) for f in folders], "n_images": len(x), "modes": {}}
    sets = make_sets({"real": x}, set_size, seed).get("real")
    for mode, rows in (("image", x), ("set", sets)):
        if rows is None or not len(rows):
            continue
        decided = decide(heads, rows, mode)
        block = {"n": len(rows), "heads": {}}
        for choice in heads.heads:
            vals = [d[choice]["value"] for d in decided]
            tops = [d[choice]["top"] for d in decided]
            answered = [v for v in vals if v != UNDETERMINED]
            block["heads"][choice] = {
                "answered_rate": round(len(answered) / len(vals), 4),
                "answers": {v: answered.count(v) for v in sorted(set(answered))},
                "top_values": {v: tops.count(v) for v in sorted(set(tops))},
                "mean_probability": round(
                    float(np.mean([d[choice]["probability"] for d in decided])), 4
                ),
                "mean_raw_probability": round(
                    float(np.mean([d[choice]["raw_probability"] for d in decided])), 4
                ),
            }
        out["modes"][mode] = block
    return out


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def ci(interval) -> str:
    return "" if not interval else f"[{100 * interval[0]:.0f}-{100 * interval[1]:.0f}]"


def num(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(cal: dict) -> str:
    lines = []
    for mode, block in cal["modes"].items():
        lines += [
            "",
            f"**{mode}** ({block['unit']}; n = {block['n']} from {block['n_generators']} "
            "generators, leave-one-generator-out)",
            "",
            "| head | held-out accuracy [95 % CI] | chance (majority) | ECE before -> after | "
            "NLL before -> after | T | undetermined below | answered (held-out) | "
            "accuracy when answering [95 % CI] |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for choice, h in block["heads"].items():
            thr = h["threshold"]
            rule = {
                "chance": "always (not above chance)",
                "no_threshold": f"always (never {pct(h['target_accuracy'])})",
            }.get(h["status"], f"p < {thr:.2f}" if thr else "never (answers all)")
            a = h["answered"]
            lines.append(
                f"| {choice} | {pct(h['accuracy'])} {ci(h.get('accuracy_interval'))} | "
                f"{pct(h['chance'])} ({h['chance_value']}) | "
                f"{num(h['ece_before'])} -> {num(h['ece_after'])} | "
                f"{num(h['nll_before'])} -> {num(h['nll_after'])} | {h['temperature']:.2f} | "
                f"{rule} | {pct(a['coverage'])} | "
                f"{(pct(a['accuracy']) + ' ' + ci(a.get('accuracy_interval'))).strip()} |"
            )
        for choice, h in block["heads"].items():
            if h["status"] != "ok":
                continue
            cells = [
                f"{g} {pct(v['answered'])}"
                + (
                    f" ({pct(v['answered_accuracy'])} right)"
                    if v["answered_accuracy"] is not None
                    else ""
                )
                for g, v in (h.get("per_generator") or {}).items()
            ]
            lines += ["", f"{choice}, answered per left-out generator: " + "; ".join(cells) + "."]
            by_value = h["answered"].get("by_value") or {}
            lines += [
                "",
                f"{choice}, held-out answers by value: "
                + "; ".join(
                    f"{v} {b['n']} ({pct(b['accuracy'])} right, {b['n_generators']} generators)"
                    for v, b in by_value.items()
                )
                + ".",
            ]
    real = cal.get("real_photos")
    if real:
        modes = list(real["modes"])
        lines += [
            "",
            f"Real photos ({real['n_images']} images from {', '.join(real['source'])}; "
            f"sets of {cal['modes'].get('set', {}).get('set_size', '?')}): the raw heads' "
            "commonest answer with its mean probability, and the share still answered (not "
            "'undetermined') after calibration.",
            "",
            "| head | "
            + " | ".join(f"{m}: raw answer (mean p) | {m}: answered after" for m in modes)
            + " |",
            "|---|" + "---|---|" * len(modes),
        ]
        for choice in real["modes"][modes[0]]["heads"]:
            cells = []
            for m in modes:
                h = real["modes"][m]["heads"][choice]
                top = max(h["top_values"], key=lambda v: h["top_values"][v])
                share = h["top_values"][top] / real["modes"][m]["n"]
                cells.append(f"{top} {pct(share)} ({h['mean_raw_probability']:.2f})")
                ans = ", ".join(f"{v} {n}" for v, n in h["answers"].items())
                cells.append(f"{pct(h['answered_rate'])}" + (f" ({ans})" if ans else ""))
            lines.append(f"| {choice} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from fpattr.analysis import (
        Heads,
        calibrate,
        embed_folder_tree,
        labelled_entries,
        load_heads,
        score,
    )
    from fpattr.cli import common
    from fpattr.io.atomic import atomic_write_text

    started = time.perf_counter()
    bench = args.bench
    entries = labelled_entries(bench)
    if not entries:
        log(f"{bench}: no model labels (done.json per folder or manifest.json)")
        return 2
    bb = common.load_backbone(args.backbone, None)
    heads, heads_path = load_heads(args.heads, bb.info())
    shipped = json.loads((ROOT / "models" / "default.json").read_text()).get("sha256")
    if heads.backbone.get("sha256") != shipped:
        log(f"note: {heads_path} is bound to {heads.backbone.get('sha256')}, not the shipped one")
    log(f"embedding {bench} with {bb.id} ...")
    per_model = embed_folder_tree(bench, bb, args.views)
    res = score(heads, per_model, entries, args.seed)  # same path as `fpattr analyze score`
    log(f"{res['n_models']} labelled generators, {res['n_images']} images")
    cal = calibrate(
        heads, per_model, entries, set_size=args.set_size, target=args.target, seed=args.seed
    )
    manifest = bench / "manifest.json"
    cal["benchmark"] = {
        "path": str(bench),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()
        if manifest.is_file()
        else None,
        "n_models_labelled": res["n_models"],
        "n_models_listed": len(entries),
        "n_images": res["n_images"],
        "per_model_accuracy": {c: v["accuracy"] for c, v in res["per_model"].items()},
    }
    cal["command"] = "python scripts/calibrate_analysis.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    cal["created"] = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    if args.real:
        checked = Heads(heads.backbone, heads.heads, heads.metrics, cal)
        cal["real_photos"] = real_photo_check(
            checked, bb, args.real, args.views, args.set_size, args.seed
        )
    cal["seconds"] = round(time.perf_counter() - started, 1)

    doc = json.loads(heads_path.read_text())
    doc["calibration"] = cal
    again = Heads(doc["backbone"], doc["heads"], doc.get("metrics", {}), cal)
    assert again.calibration_status()[0] is not None, again.calibration_status()[1]
    out = args.out or heads_path
    if not args.dry_run:
        atomic_write_text(out, json.dumps(doc) + "\n")
        log(f"wrote the calibration into {out}")
    print(
        f"`{cal['command']}` ({cal['seconds']:.0f} s, {cal['created']}): heads {out} bound to "
        f"extractor sha256 {str(heads.backbone.get('sha256'))[:12]}; target accuracy "
        f"{pct(args.target)}; {res['n_models']} generators: {', '.join(cal['generators'])}."
    )
    print(markdown(cal))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
