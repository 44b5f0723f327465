"""ONNX export with a parity check and a model card.

The whole extractor, residual filter and DFT included, is exported: the DFT is
written with matrix products (see :mod:`fpattr.training.model`), so no FFT
operator is needed and nothing is skipped. The export is accepted only if ONNX
Runtime reproduces torch's embeddings on real images (cosine >= ``min_cosine``
for every image); the figures go into the model card.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fpattr import __version__
from fpattr.errors import FpattrError
from fpattr.io.atomic import atomic_write_bytes, atomic_write_text
from fpattr.io.loader import IMAGE_EXTENSIONS, load_image
from fpattr.views import make_views

OPSET = 18


def load_extractor(path: Path) -> torch.nn.Module:
    """A plain or fused (learned + spectral) extractor from a checkpoint file."""
    from fpattr.training import checkpoint
    from fpattr.training.hybrid import build

    blob = checkpoint.load(path)  # weights_only=True: a checkpoint that runs code is refused
    if "model" not in blob or not isinstance(blob.get("config"), dict):
        raise FpattrError(f"{path} is not an fpattr extractor checkpoint")
    if "extractor" in blob["config"]:  # a training checkpoint.pt: the config is nested
        blob = {**blob, "config": blob["config"]["extractor"]}
    try:
        return build(blob)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise FpattrError(f"{path} is not a usable fpattr extractor checkpoint: {exc}") from exc


EXPORTER = "torch.onnx.export(dynamo=True)"


def exporter_info() -> dict[str, Any]:
    """The ONNX exporter this project uses, with the versions it runs with.

    Only the dynamo (torch.export) exporter is used; it needs onnxscript, which the
    ``[train]`` extra installs. There is no silent fallback to the TorchScript exporter:
    a missing dependency or a failed export is an error.
    """
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "onnxscript", "onnx"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"name": EXPORTER, "opset": OPSET, **versions}


def _onnx_bytes(model: torch.nn.Module, tmp: Path) -> bytes:
    """The model as one self-contained ONNX file, by the dynamo exporter; raises
    :class:`FpattrError` when it cannot export (no fallback to another exporter)."""
    import importlib.util

    info = exporter_info()
    if importlib.util.find_spec("onnxscript") is None:
        raise FpattrError(
            f"ONNX export needs onnxscript ({EXPORTER}); install the training extra: "
            "pip install 'fpattr[train]'"
        )
    x = torch.rand(2, model.cfg.size, model.cfg.size, 3)
    try:
        torch.onnx.export(
            model,
            (x,),
            str(tmp),
            dynamo=True,
            external_data=False,  # one self-contained file
            verbose=False,
            dynamic_shapes={"views": {0: torch.export.Dim("N", min=1, max=65536)}},
            input_names=["views"],
            output_names=["embedding"],
            opset_version=OPSET,
        )
        import onnx

        m = onnx.load(str(tmp))
        onnx.checker.check_model(m)
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed
        versions = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("name", "opset"))
        raise FpattrError(
            f"ONNX export failed ({EXPORTER}, opset {OPSET}; {versions}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return m.SerializeToString()


def parity_views(images: list[Path], size: int, n_views: int, limit: int = 64) -> np.ndarray:
    """Views of real images for the parity check (pipeline crops, no synthetic tensors)."""
    views = []
    for p in images[:limit]:
        v, _ = make_views(load_image(p).pixels, size, n_views)
        views.append(v)
    if not views:
        raise FpattrError("no images for the parity check")
    return np.concatenate(views)


def find_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def parity(model: torch.nn.Module, onnx_path: Path, views: np.ndarray) -> dict[str, Any]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out_ort = np.concatenate(
        [sess.run(None, {"views": views[s : s + 64]})[0] for s in range(0, len(views), 64)]
    )
    with torch.no_grad():
        out_t = model(torch.from_numpy(views)).numpy()
    cos = np.sum(out_ort * out_t, axis=1) / (
        np.linalg.norm(out_ort, axis=1) * np.linalg.norm(out_t, axis=1)
    )
    return {
        "n_views": int(len(views)),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "max_abs_diff": float(np.abs(out_ort - out_t).max()),
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
    }


def export(
    checkpoint: Path,
    out_dir: Path,
    *,
    name: str,
    parity_images: list[Path],
    train_result: dict[str, Any] | None = None,
    min_cosine: float = 0.9999,
    default_views: int = 4,
    command: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export ``checkpoint`` to ``out_dir/name.onnx`` + ``name.json``; returns the card.

    Nothing is written unless the export succeeds and ONNX Runtime reproduces torch's
    embeddings (parity); otherwise :class:`FpattrError` is raised.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", name or ""):
        raise FpattrError(
            f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_', '+', '-'"
        )
    model = load_extractor(checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.export-tmp.onnx"
    t0 = time.monotonic()
    try:
        blob = _onnx_bytes(model, tmp)
        tmp.write_bytes(blob)
        par = parity(model, tmp, parity_views(parity_images, model.cfg.size, default_views))
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".data")):  # dynamo may write weights aside
            leftover.unlink(missing_ok=True)
    if not par["min_cosine"] >= min_cosine:
        raise FpattrError(
            f"ONNX parity failed: min cosine {par['min_cosine']:.6f} < {min_cosine} between "
            f"ONNX Runtime and torch on {par['n_views']} views; nothing was written"
        )
    sha = hashlib.sha256(blob).hexdigest()
    with torch.no_grad():
        dim = int(model(torch.rand(1, model.cfg.size, model.cfg.size, 3)).shape[1])
    tr = train_result or {}
    card = {
        "schema": "fpattr.model/1",
        "name": name,
        "id": f"{name}-{sha[:12]}",
        "file": f"{name}.onnx",
        "sha256": sha,
        "size_bytes": len(blob),
        "input": {
            "name": "views",
            "layout": "NHWC",
            "size": model.cfg.size,
            "dtype": "float32",
            "range": [0, 1],
            "views": "native-resolution crops (fpattr.views grid), no resizing",
        },
        "output": {"name": "embedding", "dim": dim, "normalised": True},
        "preprocessing_in_graph": "residual x - binomial5x5(x); log power spectrum of the "
        "residual via DFT matrix products (fft-shifted), instance-normalised; CNN input = "
        "[20 * residual, log-spectrum]",
        "architecture": model.cfg.to_dict(),
        "fusion": (train_result or {}).get("fusion"),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "default_views": default_views,
        "batch_size": 64,
        "opset": OPSET,
        "exporter": exporter_info(),
        "parity": {**par, "threshold": min_cosine},
        "calibration": tr.get("calibration"),
        "validation": tr.get("validation"),
        "training": {
            "command": command,
            "config": tr.get("config"),
            "steps": tr.get("steps"),
            "seconds": tr.get("seconds"),
            "zoo": tr.get("zoo"),
            "split_sizes": tr.get("split_sizes"),
            "history": tr.get("history"),
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exported_with": {
            "fpattr": __version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "seconds": round(time.monotonic() - t0, 1),
        },
        **(extra or {}),
    }
    atomic_write_bytes(out_dir / f"{name}.onnx", blob)
    atomic_write_text(out_dir / f"{name}.json", json.dumps(card, indent=2) + "\n")
    return card
