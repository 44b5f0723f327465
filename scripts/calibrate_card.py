"""Fit a shipped extractor's gallery-centred card calibration on held-out synthetic models.

    python scripts/calibrate_card.py default runs/v2pilot/zoo --refs 5

Embeds every model folder of ZOO (synthetic models the extractor never trained on) with
the ONNX backbone at the card's view count and at one view, fits the calibration in the
gallery-centred space (fpattr.calibration.fit_card, fpattr.scorespace) and writes it to
models/NAME.json under calibration.centred (atomically). The raw calibration the card was
exported with is left as it is. Never point ZOO at ../shared/data/public-generators.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fpattr.backbones.resolve import create_backbone
from fpattr.calibration import fit_card
from fpattr.evaluation.protocol import EvalConfig, embed_images
from fpattr.io.atomic import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", help="shipped model name (models/NAME.onnx + NAME.json)")
    ap.add_argument("zoo", type=Path, help="folder of held-out synthetic model folders")
    ap.add_argument("--refs", type=int, default=5, help="references per model")
    ap.add_argument("--target-far", type=float, default=0.01)
    args = ap.parse_args()
    if "public-generators" in str(args.zoo.resolve()):
        raise SystemExit("never calibrate on the evaluation generators")
    bb = create_backbone(args.name)
    card_path = Path(bb.info()["model_card"])
    card = json.loads(card_path.read_text())
    n_views = int(card["calibration"]["n_views"])
    paths, labels, which = [], [], []
    for d in sorted(p for p in args.zoo.iterdir() if p.is_dir()):
        ims = sorted(d.glob("*.png"))
        paths += ims
        labels += [d.name] * len(ims)
        which += list(range(len(ims)))

    def embed(views: int) -> np.ndarray:
        es = embed_images(paths, [bb], EvalConfig(views=views))[0][0]
        if not es.ok.all():
            raise SystemExit(f"{int((~es.ok).sum())} images of {args.zoo} failed to load")
        return es.emb

    source = (
        f"held-out synthetic models: {args.zoo} ({len(set(labels))} models, "
        f"{args.refs} references each), none seen in training"
    )
    cal = fit_card(
        embed,
        np.asarray(labels),
        np.asarray(which),
        refs=args.refs,
        n_views=n_views,
        target_far=args.target_far,
        source=source,
    )
    card["calibration"]["centred"] = cal["centred"]
    atomic_write_text(card_path, json.dumps(card, indent=2) + "\n")
    # a quantized copy keeps its source's calibration (fpattr.training.quantize)
    for other in sorted(card_path.parent.glob("*.json")):
        q = json.loads(other.read_text())
        if (q.get("quantization") or {}).get("source", {}).get("sha256") == card["sha256"]:
            q["calibration"] = card["calibration"]
            atomic_write_text(other, json.dumps(q, indent=2) + "\n")
    c = cal["centred"]
    print(
        json.dumps(
            {
                k: {f: c[k][f] for f in ("threshold", "achieved_tar", "n_genuine")}
                for k in ("centroid", "pair")
            }
            | {"raw": {k: cal[k]["achieved_tar"] for k in ("centroid", "pair")}}
        )
    )


if __name__ == "__main__":
    main()
