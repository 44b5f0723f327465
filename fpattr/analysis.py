"""Design-choice analysis: what an unknown generator is made of, from its fingerprint.

ManiFPT observed that fingerprints cluster by design choices (up-sampling, loss).
Here small multinomial logistic heads, trained on the synthetic zoo's design
labels, read the family, up-sampling, normalisation and activation off an
embedding. Heads are fitted on the *training* models of a run and scored on the
held-out models (unseen models, and architectures never trained on); clustering
agreement (NMI of k-means on per-model fingerprints vs each label) is reported as
in ManiFPT. Heads are JSON (no pickle) and bound to the backbone's sha256.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.errors import FpattrError

CHOICES = ("family", "upsampling", "norm", "activation")
SCHEMA = "fpattr.analysis/1"


def design_labels(entry: dict[str, Any]) -> dict[str, str]:
    """The analysed choices of one zoo entry (missing choices are simply absent)."""
    d = entry.get("design", {})
    out = {"family": str(entry.get("family", "")) or None}
    for key in ("upsampling", "norm", "activation"):
        if key in d:
            out[key] = str(d[key])
    return {k: v for k, v in out.items() if v}


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), x.std(0) + 1e-6


def fit_softmax(
    x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-2
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (L-BFGS, L2-regularised); returns (W, b)."""
    from scipy.optimize import minimize

    n, d = x.shape
    onehot = np.eye(n_classes)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: d * n_classes].reshape(d, n_classes)
        b = theta[d * n_classes :]
        z = x @ w + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        val = -np.mean(np.sum(onehot * np.log(p + 1e-12), 1)) + 0.5 * l2 * np.sum(w * w)
        g = (p - onehot) / n
        return val, np.concatenate([(x.T @ g + l2 * w).ravel(), g.sum(0)])

    res = minimize(
        loss,
        np.zeros(d * n_classes + n_classes),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 500},
    )
    return res.x[: d * n_classes].reshape(d, n_classes), res.x[d * n_classes :]


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Plain k-means (k-means++ init) on rows of x; returns labels."""
    rng = np.random.default_rng(seed)
    cent = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(cent)[None]) ** 2).sum(-1), axis=1)
        cent.append(x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0 else x[0])
    c = np.asarray(cent)
    lab = np.zeros(len(x), int)
    for _ in range(iters):
        lab = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([x[lab == j].mean(0) if np.any(lab == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return lab


def nmi(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Normalised mutual information (arithmetic mean normalisation)."""
    _, ai = np.unique(np.asarray(a, dtype=object).astype(str), return_inverse=True)
    _, bi = np.unique(np.asarray(b, dtype=object).astype(str), return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1)
    p = joint / joint.sum()
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float(np.sum(p[nz] * np.log(p[nz] / (pa[:, None] * pb[None, :])[nz])))
    ha = -float(np.sum(pa[pa > 0] * np.log(pa[pa > 0])))
    hb = -float(np.sum(pb[pb > 0] * np.log(pb[pb > 0])))
    return 0.0 if ha + hb == 0 else 2 * mi / (ha + hb)


@dataclass
class Heads:
    """One logistic head per design choice, bound to a backbone."""

    backbone: dict[str, Any]
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, emb: np.ndarray, labels: list[dict[str, str]], backbone: dict[str, Any]) -> Heads:
        out = cls(backbone={k: backbone.get(k) for k in ("name", "id", "sha256")})
        mean, std = _standardise(emb)
        xs = (emb - mean) / std
        for choice in CHOICES:
            keep = [i for i, lab in enumerate(labels) if choice in lab]
            classes = sorted({labels[i][choice] for i in keep})
            if len(classes) < 2:
                continue
            y = np.array([classes.index(labels[i][choice]) for i in keep])
            w, b = fit_softmax(xs[keep], y, len(classes))
            out.heads[choice] = {
                "classes": classes,
                "W": w.tolist(),
                "b": b.tolist(),
                "mean": mean.tolist(),
                "std": std.tolist(),
                "n_train": len(keep),
            }
        return out

    def predict_proba(self, emb: np.ndarray) -> dict[str, tuple[list[str], np.ndarray]]:
        out = {}
        for choice, h in self.heads.items():
            x = (np.atleast_2d(emb) - np.asarray(h["mean"])) / np.asarray(h["std"])
            z = x @ np.asarray(h["W"]) + np.asarray(h["b"])
            z -= z.max(1, keepdims=True)
            p = np.exp(z)
            out[choice] = (h["classes"], p / p.sum(1, keepdims=True))
        return out

    def accuracy(self, emb: np.ndarray, labels: list[dict[str, str]]) -> dict[str, Any]:
        res = {}
        for choice, (classes, p) in self.predict_proba(emb).items():
            idx = [i for i, lab in enumerate(labels) if choice in lab]
            if not idx:
                continue
            pred = [classes[j] for j in p[idx].argmax(1)]
            truth = [labels[i][choice] for i in idx]
            known = [t in classes for t in truth]
            hit = np.array([a == b for a, b in zip(pred, truth, strict=True)])
            values = sorted(set(truth))
            recall = [float(hit[[t == v for t in truth]].mean()) for v in values]
            res[choice] = {
                "accuracy": float(hit.mean()),
                "n": len(idx),
                # majority-class rate: what always answering the commonest value scores
                "chance": float(max(np.mean([t == c for t in truth]) for c in classes)),
                # mean per-value recall; chance is 1 / values present (fair when unbalanced)
                "balanced_accuracy": float(np.mean(recall)),
                "balanced_chance": 1.0 / len(values),
                "unseen_values": int(len(known) - sum(known)),
            }
        return res

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": SCHEMA,
                "backbone": self.backbone,
                "heads": self.heads,
                "metrics": self.metrics,
            }
        )

    @classmethod
    def load(cls, path: Path) -> Heads:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise FpattrError(f"cannot read analysis heads {path}: {exc}") from exc
        if doc.get("schema") != SCHEMA:
            raise FpattrError(f"{path}: not an fpattr analysis file")
        return cls(doc["backbone"], doc["heads"], doc.get("metrics", {}))


def cluster_nmi(
    model_emb: np.ndarray, labels: list[dict[str, str]], seed: int = 0
) -> dict[str, float]:
    """NMI between k-means clusters of per-model fingerprints and each design label."""
    out = {}
    for choice in CHOICES:
        idx = [i for i, lab in enumerate(labels) if choice in lab]
        values = [labels[i][choice] for i in idx]
        k = len(set(values))
        if k < 2:
            continue
        x = model_emb[idx]
        out[choice] = nmi(values, kmeans(x / np.linalg.norm(x, axis=1, keepdims=True), k, seed))
    return out


def score(
    heads: Heads,
    per_model: dict[str, np.ndarray],
    entries: dict[str, dict[str, Any]],
    seed: int = 0,
) -> dict[str, Any]:
    """Heads against known labels: per image, per model (mean fingerprint) and clustering.

    ``per_model`` maps a model id to its images' embeddings (n, D); ``entries`` maps it
    to a labelled entry (``family`` + ``design``, as in a zoo's done.json). Models
    without labels are ignored. Per-model confusion (truth -> prediction counts) shows
    *what* is mistaken for what, which accuracy alone hides on a 15-model benchmark.
    """
    ids = [i for i in sorted(per_model) if i in entries and design_labels(entries[i])]
    if not ids:
        raise FpattrError("no labelled model among the embedded ones")
    labels = [design_labels(entries[i]) for i in ids]
    x = np.concatenate([per_model[i] for i in ids])
    per_image_labels = [lab for i, lab in zip(ids, labels, strict=True) for _ in per_model[i]]
    fp = np.stack([per_model[i].mean(0) for i in ids])
    fp /= np.maximum(np.linalg.norm(fp, axis=1, keepdims=True), 1e-12)
    per_model_acc = heads.accuracy(fp, labels)
    probs = heads.predict_proba(fp)
    confusion: dict[str, dict[str, dict[str, int]]] = {}
    predictions: dict[str, dict[str, str]] = {i: {} for i in ids}
    for choice, (classes, p) in probs.items():
        for k, i in enumerate(ids):
            pred = classes[int(p[k].argmax())]
            predictions[i][choice] = pred
            truth = labels[k].get(choice)
            if truth is not None:
                row = confusion.setdefault(choice, {}).setdefault(truth, {})
                row[pred] = row.get(pred, 0) + 1
    return {
        "n_models": len(ids),
        "n_images": len(per_image_labels),
        "per_image": heads.accuracy(x, per_image_labels),
        "per_model": per_model_acc,
        "confusion": confusion,
        "predictions": {
            i: {"truth": lab, "predicted": predictions[i]}
            for i, lab in zip(ids, labels, strict=True)
        },
        "cluster_nmi": cluster_nmi(fp, labels, seed) if len(ids) >= 2 else {},
    }
