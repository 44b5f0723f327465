"""Fusion of the learned embedding with the classic spectral fingerprint, in one graph.

The learned extractor generalises (verification, processed images, real generators);
the training-free residual spectrum (:mod:`fpattr.backbones.spectrum`) keeps the
exact positions of up-sampling peaks, which identifies individual clean models
well. The fused embedding is ``[cos(t) * learned, sin(t) * spectral]`` (each part
unit-norm), so a cosine between two fused embeddings is
``cos(t)^2 * cos_learned + sin(t)^2 * cos_spectral``. The weight ``t`` is chosen on
the *calibration* split of held-out synthetic models (never on validation models
or on real generators), and the calibration is then fitted on that same split.

The spectral branch is the numpy spectrum backbone re-written with fixed tensors
(average pooling, ring-averaging matrices, an index gather), so the export stays
one ONNX graph; a test checks it equals :class:`SpectrumBackbone` numerically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fpattr.training.model import Extractor, ExtractorConfig
from fpattr.views import l2_normalize


class SpectralFingerprint(nn.Module):
    """Torch twin of ``SpectrumBackbone.embed`` on the residual power spectrum."""

    def __init__(self, size: int, pool: int = 2, radial_weight: float = 1.0) -> None:
        super().__init__()
        n = size // pool
        yy, xx = np.indices((n, n))
        ring = np.hypot(yy + 0.5 - n / 2, xx + 0.5 - n / 2).round().astype(int)
        _, ring = np.unique(ring, return_inverse=True)
        ring = ring.ravel()
        count = np.bincount(ring).astype(np.float64)
        onehot = np.zeros((n * n, count.size), np.float32)
        onehot[np.arange(n * n), ring] = 1.0
        self.register_buffer("ring_mean", torch.from_numpy(onehot / count[None, :]).float())
        self.register_buffer("ring_expand", torch.from_numpy(onehot.T.copy()))
        half = np.arange((n // 2 + 1) * n)  # rows 0..n/2 of the (n, n) grid, row-major
        self.register_buffer("half_idx", torch.from_numpy(half).long())
        self.pool, self.n, self.radial_weight = pool, n, radial_weight

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        p = power.mean(dim=1, keepdim=True)  # channel-averaged periodogram
        if self.pool > 1:
            p = F.avg_pool2d(p, self.pool)
        # clamp, not "+ 1e-8": the exported graph of the first shipped model had no add
        # before its Log, so flat views (zero power) gave log(0) = -inf and NaN in ORT
        logp = torch.log(p.clamp_min(1e-8)).flatten(1)
        radial = logp @ self.ring_mean
        aniso = torch.index_select(logp - radial @ self.ring_expand, 1, self.half_idx)
        return torch.cat([_l2(aniso), self.radial_weight * _l2(radial)], dim=1)


def _l2(x: torch.Tensor) -> torch.Tensor:
    x = x - x.mean(dim=1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


class FusedExtractor(nn.Module):
    """views -> normalised ``[cos(t) e_learned, sin(t) e_spectral]``."""

    def __init__(
        self, extractor: Extractor, theta: float, pool: int = 2, radial_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.cfg = extractor.cfg
        self.spectral = SpectralFingerprint(extractor.cfg.size, pool, radial_weight)
        self.theta = float(theta)

    def parts(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.extractor(views)
        x = views.permute(0, 3, 1, 2)
        r = self.extractor.pre.residual(x)
        rc = r - r.mean(dim=(2, 3), keepdim=True)
        c, s = self.extractor.pre.dft_c, self.extractor.pre.dft_s
        rcT, rsT = rc @ c.t(), rc @ s.t()
        re, im = c @ rcT - s @ rsT, c @ rsT + s @ rcT
        spec = self.spectral(re * re + im * im)
        return e, F.normalize(spec, dim=1)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        e, s = self.parts(views)
        return torch.cat([math.cos(self.theta) * e, math.sin(self.theta) * s], dim=1)


def build(blob: dict[str, Any]) -> nn.Module:
    """A plain or fused extractor from a saved checkpoint dict."""
    model = Extractor(ExtractorConfig(**blob["config"]))
    model.load_state_dict(blob["model"])
    fusion = blob.get("fusion")
    if fusion:
        return FusedExtractor(
            model, fusion["theta"], fusion.get("pool", 2), fusion.get("radial_weight", 1.0)
        ).eval()
    return model.eval()


def _pooled_parts(model: FusedExtractor, zoo: Any, n_views: int) -> tuple[np.ndarray, ...]:
    """Per-image mean of each part's per-view embeddings, not normalised: ``fit_theta``
    weights the parts first. One ``parts`` call per image (what theta was fitted with)."""
    from fpattr.training.train import pooled_eval_outputs

    (e, s), labels, which = pooled_eval_outputs(
        model.parts, zoo, size=model.cfg.size, n_views=n_views, aug=None, seed=0, batch=None
    )
    return e, s, labels, which


def fit_theta(
    model: FusedExtractor, calib_zoo: Any, *, refs: int, n_views: int, grid: int = 11
) -> dict[str, Any]:
    """Pick the fusion weight on held-out *calibration* models: max top-1 + ROC-AUC."""
    from fpattr.evaluation.metrics import attribution_metrics

    e, s, labels, which = _pooled_parts(model, calib_zoo, n_views)
    is_ref = which < refs
    rows = []
    for t in np.linspace(0.0, math.pi / 2, grid):
        f = np.concatenate([math.cos(t) * e, math.sin(t) * s], axis=1)
        l2_normalize(f, out=f)
        m = attribution_metrics(f[is_ref], labels[is_ref], f[~is_ref], labels[~is_ref])
        rows.append({"theta": float(t), "top1": m["top1"], "roc_auc": m["roc_auc"]})
    best = max(rows, key=lambda r: r["top1"] + r["roc_auc"])
    return {"theta": best["theta"], "selected_on": "calibration split", "grid": rows}


def _zoo_of(info: dict[str, Any], run: Path) -> Path:
    """The zoo a training run used (``train_result.json``'s ``zoo``): its absolute path
    when recorded and present, else the path as typed (relative to the current folder).
    Raises :class:`~fpattr.errors.UsageError` naming both when neither is there."""
    from fpattr.errors import UsageError

    tried = [p for p in (info.get("absolute_path"), info.get("path")) if p]
    for p in tried:
        if Path(p).is_dir():
            return Path(p)
    raise UsageError(
        f"the zoo of training run {run} is not at {' nor at '.join(map(repr, tried))} (a "
        "relative path is from the current folder): run from the folder training ran in, "
        "or put the zoo back there"
    )


def fuse_run(run: Any, *, n_views: int = 4, refs: int = 5, log: Any = print) -> tuple[Any, dict]:
    """Fit the fusion weight and the calibration on a run's calibration split, measure the
    fused extractor on the validation splits, save ``RUN/fused.pt`` and its result JSON."""
    import json
    from pathlib import Path

    from fpattr.io.atomic import atomic_write_text
    from fpattr.training import checkpoint
    from fpattr.training.augment import AugmentConfig
    from fpattr.training.data import load_zoo
    from fpattr.training.train import fit_calibration, zero_shot_metrics

    run = Path(run)
    tr = json.loads((run / "train_result.json").read_text())
    blob = checkpoint.load(run / "extractor.pt")
    zoo = load_zoo(_zoo_of(tr["zoo"], run))
    index = {m: k for k, m in enumerate(zoo.ids)}
    split = {k: [index[i] for i in v if i in index] for k, v in tr["held_out_ids"].items()}
    extractor = build(blob)
    # the spectral branch on a 32 x 32 grid whatever the view size (v1: 64 px / 2), so
    # 128-px views keep v1's embedding size and cost
    pool = max(2, extractor.cfg.size // 32)
    fused = FusedExtractor(extractor, 0.0, pool=pool)
    choice = fit_theta(fused, zoo.subset(split["calib"]), refs=refs, n_views=n_views)
    fused.theta = choice["theta"]
    log(
        f"fusion weight theta = {fused.theta:.3f} (chosen on {len(split['calib'])} calibration "
        "models)"
    )
    dev = torch.device("cpu")
    calibration = fit_calibration(
        fused, zoo.subset(split["calib"]), refs=refs, n_views=n_views, device=dev
    )
    processed = AugmentConfig(p_resize=0.0, p_blur=0.0, p_jpeg=1.0, jpeg_quality=(75, 90))
    validation = {}
    for name in ("val", "val_arch"):
        if len(split.get(name, [])) >= 2:
            sub = zoo.subset(split[name])
            validation[name] = zero_shot_metrics(fused, sub, refs=refs, n_views=n_views, device=dev)
            validation[f"{name}_jpeg75-90"] = zero_shot_metrics(
                fused, sub, refs=refs, n_views=n_views, device=dev, aug=processed
            )
    fusion = {
        "theta": fused.theta,
        "pool": pool,
        "radial_weight": 1.0,
        "selection": choice,
        "learned_only_validation": tr["validation"],
    }
    checkpoint.save({**blob, "fusion": fusion}, run / "fused.pt")
    result = {**tr, "calibration": calibration, "validation": validation, "fusion": fusion}
    atomic_write_text(run / "fused_result.json", json.dumps(result, indent=2))
    return fused, result
