"""`fpattr analyze fit|predict`: design choices of a generator from its fingerprint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from fpattr.cli import common

analyze_app = typer.Typer(
    help="Infer design choices (family, up-sampling, normalisation, activation) of an "
    "unknown generator from its fingerprint.\n\nExample: fpattr analyze predict img.png",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app, name="analyze")


def _embed_folder_tree(root: Path, bb: object, views: int | None) -> dict[str, object]:
    import numpy as np

    from fpattr.pipeline import Embedder, Settings

    per_model: dict[str, list] = {}
    for e in Embedder(bb, Settings(views=views)).embed_paths([root]):
        if e.embedding is not None and not e.error:
            per_model.setdefault(Path(e.path).parent.name, []).append(e.embedding)
    return {k: np.stack(v) for k, v in per_model.items()}


def _load_heads(heads_file: Path | None, bb: object) -> object:
    """Heads bound to this backbone (same sha256), else a clear error. Without a file,
    the heads shipped next to the default extractor (models/analysis.json)."""
    from fpattr.analysis import Heads
    from fpattr.errors import GalleryError, UsageError
    from fpattr.paths import models_dir

    if heads_file is None:
        heads_file = models_dir() / "analysis.json"
        if not heads_file.is_file():
            raise UsageError(f"no shipped heads at {heads_file}: pass --heads (fpattr analyze fit)")
    heads = Heads.load(heads_file)
    if heads.backbone.get("sha256") != bb.info().get("sha256"):  # type: ignore[attr-defined]
        raise GalleryError(
            f"{heads_file} was fitted with backbone {heads.backbone.get('id')}, not {bb.id}"  # type: ignore[attr-defined]
        )
    return heads


def _labelled_entries(root: Path) -> dict[str, dict]:
    """Model labels of a zoo or benchmark: each folder's done.json, else manifest.json."""
    entries = {}
    for f in sorted(root.glob("*/done.json")):
        m = json.loads(f.read_text())
        entries[m.get("id", f.parent.name)] = m
    if not entries and (root / "manifest.json").is_file():
        doc = json.loads((root / "manifest.json").read_text())
        models = doc.get("models", []) if isinstance(doc, dict) else doc
        entries = {m["id"]: m for m in models if isinstance(m, dict) and "id" in m}
    return entries


@analyze_app.command("fit", no_args_is_help=True)
def fit(
    zoo: Path = typer.Argument(..., help="A zoo from `fpattr synth` (design labels inside)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the heads (JSON)."),
    run: Path = typer.Option(
        None, "--run", help="Training run whose held-out models are kept out of the fit."
    ),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    views: int = common.ViewsOpt,
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Fit design-choice heads on a zoo's training models; score them on held-out models.

    Example: fpattr analyze fit runs/zoo --run runs/train --out models/analysis.json
    """
    import numpy as np

    from fpattr.analysis import Heads, cluster_nmi, design_labels
    from fpattr.io.atomic import atomic_write_text

    bb = common.load_backbone(backbone, backbone_opt)
    entries = _labelled_entries(zoo)
    if not entries:
        from fpattr.errors import UsageError

        raise UsageError(f"{zoo} has no labelled models (done.json from fpattr synth)")
    held: dict[str, list[str]] = {}
    if run is not None:
        held = json.loads((run / "train_result.json").read_text())["held_out_ids"]
    else:
        ids = sorted(entries)
        rng = np.random.default_rng(seed)
        pick = list(rng.permutation(ids)[: max(2, len(ids) // 5)])
        held = {"val": sorted(pick)}
    emb = _embed_folder_tree(zoo, bb, views)
    held_ids = {i for v in held.values() for i in v}
    train_ids = [i for i in sorted(emb) if i in entries and i not in held_ids]

    def stack(ids: list[str]) -> tuple[np.ndarray, list[dict[str, str]]]:
        xs = [emb[i] for i in ids if i in emb]
        labs = [design_labels(entries[i]) for i in ids if i in emb for _ in range(len(emb[i]))]
        return np.concatenate(xs), labs

    x, labels = stack(train_ids)
    heads = Heads.fit(x, labels, bb.info())
    metrics: dict = {"n_train_models": len(train_ids), "n_train_images": len(labels)}
    for name, ids in held.items():
        ids = [i for i in ids if i in emb]
        if ids:
            xv, lv = stack(ids)
            metrics[name] = {"n_models": len(ids), "per_image": heads.accuracy(xv, lv)}
    all_ids = [i for i in sorted(emb) if i in entries]
    fp = np.stack([emb[i].mean(0) for i in all_ids])
    metrics["cluster_nmi"] = cluster_nmi(fp, [design_labels(entries[i]) for i in all_ids], seed)
    heads.metrics = metrics
    atomic_write_text(out, heads.to_json())
    print(json.dumps({"heads": str(out), "backbone": bb.id, **metrics}, indent=2))


@analyze_app.command("predict", no_args_is_help=True)
def predict(
    paths: list[Path] = typer.Argument(..., help="Images and/or folders."),
    heads_file: Path = typer.Option(
        None, "--heads", help="File written by `analyze fit` (default: the shipped heads)."
    ),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    views: int = common.ViewsOpt,
    as_set: bool = typer.Option(False, "--as-set", help="One answer for all images."),
) -> None:
    """Most likely design choices per image (or for the set), with probabilities.

    Example: fpattr analyze predict suspects/ --as-set
    """
    import numpy as np

    from fpattr.pipeline import Embedder, Settings

    bb = common.load_backbone(backbone, backbone_opt)
    heads = _load_heads(heads_file, bb)
    rows, embs, failed = [], [], 0
    for e in Embedder(bb, Settings(views=views)).embed_paths(paths):
        if e.embedding is None or e.error:
            failed += 1
            print(f"skipped {e.path}: {e.error}", file=sys.stderr)
            continue
        embs.append(e.embedding)
        rows.append(e.path)
    if not embs:
        raise typer.Exit(2)
    x = np.stack(embs)
    if as_set:
        x, rows = x.mean(0, keepdims=True), ["<set>"]
    probs = heads.predict_proba(x)
    for k, path in enumerate(rows):
        res = {"path": path}
        for choice, (classes, p) in probs.items():
            order = np.argsort(-p[k])[:3]
            res[choice] = [
                {"value": classes[j], "probability": round(float(p[k, j]), 4)} for j in order
            ]
        print(json.dumps(res))
    raise typer.Exit(1 if failed else 0)


@analyze_app.command("score", no_args_is_help=True)
def score_cmd(
    bench: Path = typer.Argument(
        ..., help="Folder per model with labels (done.json per folder, or manifest.json)."
    ),
    heads_file: Path = typer.Option(
        None, "--heads", help="File written by `analyze fit` (default: the shipped heads)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the JSON here."),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    views: int = common.ViewsOpt,
    seed: int = typer.Option(0, "--seed", help="k-means seed for the clustering NMI."),
) -> None:
    """Score fitted heads on labelled models they never saw: accuracy per image and per
    model against chance, confusion per design choice, and clustering NMI.

    Labels use the synthesizers' names (`family` plus `design`: up-sampling, norm,
    activation), as in a zoo's done.json or benchmarks/make_real_benchmark.py's manifest.

    Example: fpattr analyze score runs/realbench
    """
    from fpattr.analysis import score
    from fpattr.errors import UsageError
    from fpattr.io.atomic import atomic_write_text

    entries = _labelled_entries(bench)
    if not entries:
        raise UsageError(f"{bench} has no model labels (done.json per folder or manifest.json)")
    bb = common.load_backbone(backbone, backbone_opt)
    heads = _load_heads(heads_file, bb)
    emb = _embed_folder_tree(bench, bb, views)
    res = {"bench": str(bench), "heads": str(heads_file or "shipped"), "backbone": bb.id}
    res |= score(heads, emb, entries, seed)  # type: ignore[arg-type]
    text = json.dumps(res, indent=2)
    if out is not None:
        atomic_write_text(out, text + "\n")
    print(text)
