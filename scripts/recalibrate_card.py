"""Refit a model card's calibration from its training run, without re-exporting the ONNX.

Used when the calibration schema grows (here: ``by_views``, the calibration at one
view per image) so the shipped extractor keeps its bytes, sha256 and every gallery
bound to it. The default entries must come out identical to the card's, which
checks that RUN really is the run the card was exported from.

    python scripts/recalibrate_card.py runs/default/train5k models/default.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from fpattr.io.atomic import atomic_write_text
from fpattr.training.data import load_zoo
from fpattr.training.hybrid import build
from fpattr.training.train import fit_calibration


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path, help="training run (train_result.json, fused.pt)")
    ap.add_argument("card", type=Path, help="model card JSON to update")
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--views", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(2)
    tr = json.loads((args.run / "train_result.json").read_text())
    ckpt = args.run / "fused.pt" if (args.run / "fused.pt").is_file() else args.run / "extractor.pt"
    model = build(torch.load(ckpt, map_location="cpu", weights_only=False))
    zoo = load_zoo(Path(tr["zoo"]["path"]))
    index = {m: k for k, m in enumerate(zoo.ids)}
    calib = zoo.subset([index[i] for i in tr["held_out_ids"]["calib"] if i in index])
    new = fit_calibration(
        model, calib, refs=args.refs, n_views=args.views, device=torch.device("cpu")
    )
    card = json.loads(args.card.read_text())
    old = card.get("calibration") or {}
    for kind in ("centroid", "pair"):
        if kind in old and abs(old[kind]["threshold"] - new[kind]["threshold"]) > 1e-6:
            raise SystemExit(
                f"{kind} threshold {new[kind]['threshold']:.6f} != card's "
                f"{old[kind]['threshold']:.6f}: {args.run} is not the run behind {args.card}"
            )
    card["calibration"] = new
    atomic_write_text(args.card, json.dumps(card, indent=2) + "\n")
    print(json.dumps({k: v for k, v in new.items()}, indent=1))


if __name__ == "__main__":
    main()
