"""Render docs/model-card.md from a model card JSON (models/default.json).

    python scripts/model_card_md.py models/default.json docs/model-card.md \
        --int8 models/default-int8.json

The JSONs are the source of truth (written by `fpattr export` and `fpattr quantize`);
this page only presents them, so the two cannot drift apart (tests/docs/test_model_card_page.py
renders the page again and compares).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * float(x):.1f}"


def _f(x: Any, nd: int = 3) -> str:
    return "–" if x is None else f"{float(x):.{nd}f}"


def int8_section(q: dict[str, Any]) -> list[str]:
    """The INT8 variant, from its card (``fpattr quantize``'s recipe, screening, parity)."""
    rec = q.get("quantization") or {}
    src = rec.get("source") or {}
    cal = rec.get("calibration_images") or {}
    nodes = (rec.get("screening") or {}).get("nodes") or []
    kept = [n for n in nodes if not n.get("int8")]
    par = q.get("parity") or {}
    held, demo = par.get("held_out") or {}, par.get("parity_images") or {}
    return [
        "",
        f"## INT8 variant (`--backbone {q['name']}`)",
        "",
        f"`models/{q['file']}` ({q.get('size_bytes', 0) / 1e6:.2f} MB) is "
        f"`models/{src.get('file')}` quantized by {rec.get('tool')}: {rec.get('format')}, "
        f"weights {rec.get('weights')}, activations {rec.get('activations')}, ranges from "
        f"{cal.get('n_views')} views of {cal.get('n_images')} photos of "
        f"`{cal.get('folder')}` ({cal.get('split')}):",
        "",
        f"    {rec.get('command')}",
        "",
        "Each weight-carrying node of type "
        f"{', '.join((rec.get('screening') or {}).get('op_types') or [])} is "
        "quantized alone and kept FP32 if that alone moves a screening view below cosine "
        f"0.999: {sum(1 for n in nodes if n.get('int8'))} of {len(nodes)} are INT8; FP32: "
        + ", ".join(f"`{n['node']}` (min cosine {n['min_cosine']:.3f} alone)" for n in kept)
        + ". The residual filter, the DFT matrix products, the log spectrum, the embedding "
        "head and the normalisations stay FP32 (8-bit activations erase the sub-LSB "
        "residual; see `fpattr/training/quantize.py`). Cosine to FP32: min "
        f"{held.get('min_cosine')} / mean {held.get('mean_cosine')} on {held.get('n_views')} "
        f"held-out photo views, min {demo.get('min_cosine')} on {demo.get('n_views')} views "
        f"of the demo images. The card carries the FP32 model's score calibration.",
        "",
        "Speed against FP32 (ONNX Runtime alone, as the pipeline runs it, and end to end) is "
        "measured in [docs/performance.md](performance.md); accuracy against FP32 on both "
        "benchmarks in `docs/results/int8.json` (`python benchmarks/int8.py`).",
    ]


def render(
    card: dict[str, Any],
    extra: dict[str, Any] | None = None,
    int8: dict[str, Any] | None = None,
) -> str:
    tr = card.get("training") or {}
    cfg = tr.get("config") or {}
    zoo = tr.get("zoo") or {}
    arch = card.get("architecture", {})
    par = card.get("parity", {})
    lines = [
        f"# Model card: `{card['name']}` ({card['id']})",
        "",
        "The fingerprint extractor fpattr uses by default (`--backbone default`). Generated "
        "from `models/" + card["name"] + ".json` by `scripts/model_card_md.py`; the JSON is "
        "the source of truth.",
        "",
        "## What it is",
        "",
        f"- File: `models/{card['file']}`, {card.get('size_bytes', 0) / 1e6:.2f} MB, "
        f"sha256 `{card['sha256']}`; ONNX opset {card.get('opset')}.",
        f"- Input: `{card['input']['name']}` NHWC float32 in [0, 1], "
        f"{card['input']['size']}x{card['input']['size']} views; "
        f"{card.get('default_views')} native-resolution crops per image by default, more "
        "on larger images (the whole view tiles along each side, up to 4 x 4: "
        "`fpattr.views.view_grid`).",
        f"- Output: {card['output']['dim']}-d L2-normalised embedding.",
        f"- In-graph preprocessing: {card.get('preprocessing_in_graph')}.",
        f"- Network: ResNet-style, widths {arch.get('widths')}, blocks {arch.get('blocks')}, "
        f"{card.get('parameters', 0):,} parameters.",
        "",
        "## How it was trained",
        "",
        "- Reproduce everything (zoo, training, fusion, export, evaluation, this page): "
        "`bash scripts/train_default.sh ../shared/data/bsds500/train "
        "../shared/data/public-generators`.",
        f"- Training command: `{tr.get('command') or '(see scripts/train_default.sh)'}`",
        f"- Data: a zoo of {zoo.get('n_models')} synthetic generative models "
        f"(families: {', '.join(zoo.get('families') or [])}) trained on real photos "
        "(BSDS500 train split); no image of any real generator was used.",
        f"- Split by model: {tr.get('split_sizes')} (val_arch = whole architectures never "
        "trained on; calib = models used only for calibration).",
        f"- Steps: {tr.get('steps')}, {_f(tr.get('seconds'), 0)} s on 2 CPU cores; "
        f"loss = cross-entropy (cosine classifier) + batch-hard triplet; AdamW lr "
        f"{cfg.get('lr')}; P x K = {cfg.get('p')} x {cfg.get('k')}; augmentation "
        f"{cfg.get('augment')}.",
        "",
        *(
            [
                f"- Fusion with the spectral fingerprint: theta = "
                f"{card['fusion']['theta']:.3f} rad (embedding = [cos(theta) learned, "
                "sin(theta) spectral]), chosen on the calibration split; see "
                "[docs/methods/model-synthesis.md](methods/model-synthesis.md).",
            ]
            if card.get("fusion")
            else []
        ),
        "",
        "## Zero-shot validation on held-out synthetic models",
        "",
        "| split | models | top-1 | macro-F1 | ROC-AUC | EER | TAR@FAR=1e-2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in (card.get("validation") or {}).items():
        lines.append(
            f"| {name} | {m.get('n_models')} | {_pct(m.get('top1'))} | "
            f"{_pct(m.get('macro_f1'))} | {_f(m.get('roc_auc'))} | {_f(m.get('eer'))} | "
            f"{_f(m.get('tar_at_far_1e-2'))} |"
        )
    lines += [
        "",
        "## Calibration (held-out synthetic models, never the queries)",
        "",
        "These figures hold on synthetic models. On real generators they do not: on the "
        "public generators the `centroid` threshold below accepted 2.9 % of impostor "
        "comparisons, not 1 % (`fpattr evaluate ../shared/data/public-generators --refs 5 "
        "--threshold 0.8890`: achieved FAR 0.0287). fpattr therefore uses this calibration "
        "only as the prior of its decision policy, which refits on the user's gallery "
        "([docs/methods/decision-policy.md](methods/decision-policy.md)).",
        "",
    ]
    cal = card.get("calibration") or {}
    entries = [(k, c) for k, c in cal.items() if k in ("centroid", "pair")]
    for views, sub in sorted((cal.get("by_views") or {}).items()):
        entries += [(f"{k}, {views} view", c) for k, c in sub.items()]
    for kind, c in entries:
        lines.append(
            f"- `{kind}`: P(same) = sigmoid({_f(c.get('a'), 2)} * cos + {_f(c.get('b'), 2)}); "
            f"threshold {_f(c.get('threshold'), 4)} at target FAR {c.get('target_far')} "
            f"(achieved FAR {_f(c.get('achieved_far'))}, TAR {_f(c.get('achieved_tar'))}; "
            f"{c.get('n_genuine')} genuine / {c.get('n_impostor')} impostor scores)."
        )
    lines += [
        "",
        "## Export parity (torch vs ONNX Runtime, real images)",
        "",
        f"min cosine {par.get('min_cosine')} over {par.get('n_views')} views (threshold "
        f"{par.get('threshold')}); max |diff| {par.get('max_abs_diff')}; onnxruntime "
        f"{par.get('onnxruntime')}, torch {par.get('torch')}.",
    ]
    ev = card.get("evaluation")
    if ev:
        lines += [
            "",
            "## Zero-shot evaluation against the training-free baseline (one run)",
            "",
            f"`{ev.get('command', '')}`",
            "",
            "| benchmark | backbone | models | queries | top-1 | macro-F1 | ROC-AUC | EER | "
            "TAR@FAR=1e-2 | open-set AUROC | OSCR |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for bench, runs in ev.get("benchmarks", {}).items():
            for r in runs:
                lines.append(
                    f"| {bench} | {r['backbone']} | {r['n_models']} | {r['n_queries']} | "
                    f"{_pct(r['top1'])} | {_pct(r['macro_f1'])} | {_f(r['roc_auc'])} | "
                    f"{_f(r['eer'])} | {_f(r['tar_at_far_1e-2'])} | "
                    f"{_f(r['open_set_auroc'])} | {_f(r['oscr'])} |"
                )
    for title, body in (extra or {}).items():
        lines += ["", f"## {title}", "", body]
    lines += [
        "",
        "## Intended use and limits",
        "",
        "- Attributing images to generators enrolled from a few references, and verifying "
        "whether two images share a source. Scores are evidence, not proof: report them with "
        "the calibration source and threshold (the HTML report does).",
        "- Trained on small synthetic models at low resolution; large modern generators whose "
        "images are heavily processed (resized, re-encoded) leave weaker traces — see "
        "[docs/benchmarks.md](benchmarks.md) for where it fails.",
        "- Images smaller than the view size are reflect-padded (the report says so); an "
        "image that yields one view (up to ~1.5x the view size) is decided with the one-view "
        "calibration above.",
        "- On the project's real-generator benchmark it identifies best among every backbone "
        "on clean images, but strong JPEG (q50) costs it more top-1 than the classic residual "
        "fingerprints ([docs/benchmarks.md](benchmarks.md)).",
    ]
    if int8:
        lines += int8_section(int8)
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("card", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("extra", type=Path, nargs="?", help="JSON {section title: markdown}")
    ap.add_argument("--int8", type=Path, help="the INT8 variant's card")
    a = ap.parse_args()
    read = lambda p: json.loads(p.read_text(encoding="utf-8")) if p else None  # noqa: E731
    a.out.write_text(render(read(a.card), read(a.extra), read(a.int8)), encoding="utf-8")


if __name__ == "__main__":
    main()
