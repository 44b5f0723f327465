"""How well extractors tell *siblings* apart: generators of one design that differ only in
seed or training photos, the pairs that give most of the project's false accepts
(docs/benchmarks.md, "Where the false accepts come from").

    python benchmarks/sibling_separation.py --run runs/sib/train \
        --extractor v1=models/default.json --extractor sib=runs/sib/export/sib.json
    python benchmarks/sibling_separation.py --bench runs/realbench \
        --pair vae_bilinear_s0:vae_bilinear_s1 --pair gan_bilinear_lsgan_a:gan_bilinear_lsgan_b \
        --extractor v1=models/default.json

``--run``: the held-out models of a training run on a ``--siblings`` zoo (``val_arch``:
architectures never trained on; ``val``: unseen models of trained architectures), grouped
by their ``sibling_group``; ``--bench`` + ``--pair A:B``: named model folders of a benchmark.
Per sibling group and extractor, on the images of the two (or more) siblings:

* sibling AUC: ROC-AUC of cosine similarity, pairs of images of one model (genuine)
  against pairs of an image of one sibling and one of another (impostor), pooled;
* 2-way accuracy: the first ``--refs`` images of each sibling are its references (their
  mean embedding, L2-normalised), every other image is assigned to the nearest sibling's
  centroid (chance: 1 / siblings).

Writes JSON (``--out``) and prints a table. Every extractor embeds the same images with
the same loader, views and pooling as ``fpattr evaluate``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from eval_default import zoo_path

from fpattr.backbones.resolve import create_backbone
from fpattr.evaluation.metrics import roc_auc
from fpattr.evaluation.protocol import EvalConfig, embed_images


def groups_from_run(run: Path) -> dict[str, dict[str, list[Path]]]:
    """split -> group name -> the image folders of its models (groups of 2+ held-out models)."""
    tr = json.loads((run / "train_result.json").read_text())
    zoo = zoo_path(tr["zoo"]["path"])
    manifest = json.loads((zoo / "manifest.json").read_text())
    by_id = {m["id"]: m for m in manifest["models"]}
    out: dict[str, dict[str, list[Path]]] = {}
    for split in ("val_arch", "val"):
        groups: dict[str, list[Path]] = defaultdict(list)
        for i in tr["held_out_ids"].get(split, []):
            g = by_id[i].get("sibling_group")
            if g is not None:
                groups[f"{g}:{by_id[i]['arch_id']}"].append(zoo / i)
        kept = {k: sorted(v) for k, v in groups.items() if len(v) >= 2}
        if kept:
            out[split] = kept
    if not out:
        raise SystemExit(f"{run}: no held-out sibling group (was the zoo built with --siblings?)")
    return out


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})


def measure(
    groups: dict[str, list[Path]], cards: dict[str, Path], refs: int
) -> dict[str, dict[str, float]]:
    """extractor -> {sibling_auc, two_way_accuracy, groups, queries}, pooled over groups."""
    paths: list[Path] = []
    label: list[tuple[str, int]] = []  # (group, sibling index)
    for g, folders in groups.items():
        for s, f in enumerate(folders):
            imgs = _images(f)
            paths += imgs
            label += [(g, s)] * len(imgs)
    backbones = [create_backbone("onnx", model=str(c), threads=2) for c in cards.values()]
    sets, _ = embed_images(paths, backbones, EvalConfig())
    out: dict[str, dict[str, float]] = {}
    for name, es in zip(cards, sets, strict=True):
        gen, imp = [], []
        right = total = 0
        for g, folders in groups.items():
            idx = [[k for k, lab in enumerate(label) if lab == (g, s)] for s in range(len(folders))]
            if any(not es.ok[i].all() for i in idx):
                raise SystemExit(f"{g}: an image failed to embed: {es.errors}")
            emb = [es.emb[i] for i in idx]
            for a in range(len(emb)):
                sim = emb[a] @ emb[a].T
                gen += sim[np.triu_indices(len(sim), 1)].tolist()
                for b in range(a + 1, len(emb)):
                    imp += (emb[a] @ emb[b].T).ravel().tolist()
            cents = np.stack([e[:refs].mean(0) for e in emb])
            cents /= np.linalg.norm(cents, axis=1, keepdims=True)
            for s, e in enumerate(emb):
                pred = (e[refs:] @ cents.T).argmax(1)
                right += int((pred == s).sum())
                total += len(pred)
        out[name] = {
            "sibling_auc": round(float(roc_auc(np.asarray(gen), np.asarray(imp))), 4),
            "two_way_accuracy": round(right / total, 4),
            "groups": len(groups),
            "queries": total,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", type=Path, help="training run on a --siblings zoo")
    ap.add_argument("--bench", type=Path, help="benchmark folder (with --pair)")
    ap.add_argument("--pair", action="append", default=[], help="A:B model folders of --bench")
    ap.add_argument("--extractor", action="append", default=[], help="NAME=CARD.json")
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cards = {}
    for item in args.extractor:
        name, _, card = item.partition("=")
        cards[name] = Path(card)
    if not cards or not (args.run or args.bench):
        raise SystemExit("need --extractor NAME=CARD and --run or --bench")
    t0 = time.perf_counter()
    benches: dict[str, dict[str, list[Path]]] = {}
    if args.run:
        benches.update(groups_from_run(args.run))
    if args.bench:
        pairs = {p: [args.bench / m for m in p.split(":")] for p in args.pair}
        if not pairs:
            raise SystemExit("--bench needs at least one --pair A:B")
        benches[str(args.bench)] = pairs
    results = {
        "command": " ".join(sys.argv),
        "refs": args.refs,
        "splits": {k: measure(v, cards, args.refs) for k, v in benches.items()},
    }
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print("| held-out | extractor | groups | queries | sibling AUC | 2-way accuracy |")
    print("|---|---|---|---|---|---|")
    for split, res in results["splits"].items():
        for name, r in res.items():
            print(
                f"| {split} | {name} | {r['groups']} | {r['queries']} | {r['sibling_auc']:.3f} "
                f"| {r['two_way_accuracy']:.3f} |"
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
