"""Design-choice analysis: what an unknown generator is made of, from its fingerprint.

ManiFPT observed that fingerprints cluster by design choices (up-sampling, loss).
Here small multinomial logistic heads, trained on the synthetic zoo's design
labels, read the family, up-sampling, normalisation and activation off an
embedding. Heads are fitted on the *training* models of a run and scored on the
held-out models (unseen models, and architectures never trained on); clustering
agreement (NMI of k-means on per-model fingerprints vs each label) is reported as
in ManiFPT. Heads are JSON (no pickle) and bound to the backbone's sha256.

Calibration (:func:`calibrate`, run by ``scripts/calibrate_analysis.py``): the heads are
trained on synthetic models only, so their raw softmax says little about real
generators. A per-head temperature is fitted on generators the project trained
itself (design labels known), scored leave-one-generator-out; below a confidence
threshold chosen the same way a head answers "undetermined", and a head no better
than always answering the commonest value answers "undetermined" always
(:func:`decide`). The calibration is stored in the heads' JSON, bound to the heads'
content (``heads_sha256``) and to the backbone's sha256. docs/methods/model-parsing.md.
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
CALIBRATION_SCHEMA = "fpattr.analysis-calibration/1"
UNDETERMINED = "undetermined"

#: Other vocabularies' names for the heads' classes (benchmarks, papers, configs), so a
#: labelled benchmark written in its own words is scored against the right class.
VALUE_ALIASES: dict[str, dict[str, str]] = {
    "family": {
        "gan": "gan_decoder",
        "gan_generator": "gan_decoder",
        "vae": "autoencoder",
        "ae": "autoencoder",
        "diffusion": "diffusion_denoiser",
        "ddpm": "diffusion_denoiser",
        "denoiser": "diffusion_denoiser",
    },
    "upsampling": {
        "tconv": "transposed",
        "transposed_conv": "transposed",
        "convtranspose": "transposed",
        "deconv": "transposed",
        "pixel_shuffle": "pixelshuffle",
        "subpixel": "pixelshuffle",
        "nn": "nearest",
        "nearest_neighbour": "nearest",
        "bilinear_interp": "bilinear",
    },
    "norm": {
        "bn": "batch",
        "batchnorm": "batch",
        "gn": "group",
        "groupnorm": "group",
        "in": "instance",
        "instancenorm": "instance",
        "identity": "none",
    },
    "activation": {
        "leaky_relu": "lrelu",
        "leakyrelu": "lrelu",
        "swish": "silu",
        "identity": "none",
    },
}


def canonical_value(choice: str, value: Any) -> str:
    """A design value in the heads' vocabulary (lower-case, aliases resolved)."""
    v = str(value).strip().lower().replace("-", "_")
    return VALUE_ALIASES.get(choice, {}).get(v, v)


def design_labels(entry: dict[str, Any]) -> dict[str, str]:
    """The analysed choices of one zoo or benchmark entry, in the heads' vocabulary.

    ``family`` (else ``kind``: gan / vae / diffusion) and ``design`` {upsampling, norm,
    activation}; missing choices are simply absent.
    """
    d = entry.get("design", {})
    out = {"family": entry.get("family") or entry.get("kind") or None}
    for key in ("upsampling", "norm", "activation"):
        if key in d:
            out[key] = d[key]
    return {k: canonical_value(k, v) for k, v in out.items() if v not in (None, "")}


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
    """One logistic head per design choice, bound to a backbone.

    ``calibration`` (optional, from :func:`calibrate`) holds per-head temperatures,
    "undetermined" thresholds and the held-out figures behind them.
    """

    backbone: dict[str, Any]
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)

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

    def logits(self, emb: np.ndarray) -> dict[str, tuple[list[str], np.ndarray]]:
        """Per head: (classes, logits (n, K)) of each row of ``emb``."""
        out = {}
        for choice, h in self.heads.items():
            x = (np.atleast_2d(emb) - np.asarray(h["mean"])) / np.asarray(h["std"])
            out[choice] = (list(h["classes"]), x @ np.asarray(h["W"]) + np.asarray(h["b"]))
        return out

    def predict_proba(
        self, emb: np.ndarray, temperatures: dict[str, float] | None = None
    ) -> dict[str, tuple[list[str], np.ndarray]]:
        """Per head: (classes, probabilities); logits divided by ``temperatures[choice]``
        when given (the raw softmax otherwise)."""
        temps = temperatures or {}
        return {
            c: (classes, softmax(z, float(temps.get(c, 1.0))))
            for c, (classes, z) in self.logits(emb).items()
        }

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
                "chance": _majority_rate(truth, classes),
                # mean per-value recall; chance is 1 / values present (fair when unbalanced)
                "balanced_accuracy": float(np.mean(recall)),
                "balanced_chance": 1.0 / len(values),
                "unseen_values": int(len(known) - sum(known)),
            }
        return res

    def heads_sha256(self) -> str:
        """sha256 of the heads' parameters (canonical JSON): what a calibration is bound to."""
        import hashlib

        text = json.dumps({"backbone": self.backbone, "heads": self.heads}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def calibration_status(self) -> tuple[dict[str, Any] | None, str | None]:
        """(the calibration, None) when it belongs to these heads, else (None, why not)."""
        cal = self.calibration
        if not cal:
            return None, (
                "uncalibrated: no held-out calibration in the heads file, so probabilities are "
                "the raw softmax of heads trained on synthetic models (typically overconfident "
                "on real generators) and there is no 'undetermined' threshold; run "
                "scripts/calibrate_analysis.py"
            )
        if cal.get("schema") != CALIBRATION_SCHEMA:
            return None, f"uncalibrated: unknown calibration schema {cal.get('schema')!r}"
        if cal.get("heads_sha256") != self.heads_sha256():
            return None, (
                "uncalibrated: the stored calibration was fitted for other heads (heads_sha256 "
                "differs; refit heads need scripts/calibrate_analysis.py again)"
            )
        if cal.get("backbone_sha256") != self.backbone.get("sha256"):
            return None, "uncalibrated: the stored calibration names another backbone sha256"
        return cal, None

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "schema": SCHEMA,
            "backbone": self.backbone,
            "heads": self.heads,
            "metrics": self.metrics,
        }
        if self.calibration:
            doc["calibration"] = self.calibration
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Heads:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise FpattrError(f"cannot read analysis heads {path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise FpattrError(f"{path}: not an fpattr analysis file")
        return cls(
            doc["backbone"], doc["heads"], doc.get("metrics", {}), doc.get("calibration", {})
        )


def softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row softmax of ``z / temperature`` (numerically stable)."""
    z = np.atleast_2d(np.asarray(z, np.float64)) / float(temperature)
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def _majority_rate(truth: Sequence[str], classes: Sequence[str]) -> float:
    """How often always answering the commonest *answerable* value is right."""
    if not len(truth):
        return 0.0
    return float(max(np.mean([t == c for t in truth]) for c in classes))


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


@dataclass
class LabelledImages:
    """The labelled models of a benchmark, flattened to images (shared by score/calibrate)."""

    ids: list[str]  # labelled models, sorted
    labels: list[dict[str, str]]  # per model, in the heads' vocabulary
    x: np.ndarray  # (n_images, D) embeddings
    image_labels: list[dict[str, str]]  # per image
    groups: np.ndarray  # (n_images,) index into ids: which generator made each image


def labelled_images(
    per_model: dict[str, np.ndarray], entries: dict[str, dict[str, Any]]
) -> LabelledImages:
    """Models of ``per_model`` with labels in ``entries`` (:func:`design_labels`)."""
    ids = [i for i in sorted(per_model) if i in entries and design_labels(entries[i])]
    if not ids:
        raise FpattrError("no labelled model among the embedded ones")
    labels = [design_labels(entries[i]) for i in ids]
    x = np.concatenate([per_model[i] for i in ids])
    image_labels = [lab for i, lab in zip(ids, labels, strict=True) for _ in per_model[i]]
    groups = np.concatenate([np.full(len(per_model[i]), k) for k, i in enumerate(ids)])
    return LabelledImages(ids, labels, x, image_labels, groups)


def set_fingerprint(emb: np.ndarray) -> np.ndarray:
    """One fingerprint for images assumed to share a source: the unit-norm mean (1, D).

    The same reduction for ``score`` (per model), ``calibrate`` (sets) and
    ``analyze predict --as-set``, so a set is judged by the calibration fitted on sets.
    """
    from fpattr.views import l2_normalize

    return l2_normalize(np.atleast_2d(emb).mean(0, keepdims=True))


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
    data = labelled_images(per_model, entries)
    ids, labels = data.ids, data.labels
    fp = np.concatenate([set_fingerprint(per_model[i]) for i in ids])
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
        "n_images": len(data.image_labels),
        "per_image": heads.accuracy(data.x, data.image_labels),
        "per_model": per_model_acc,
        "confusion": confusion,
        "predictions": {
            i: {"truth": lab, "predicted": predictions[i]}
            for i, lab in zip(ids, labels, strict=True)
        },
        "cluster_nmi": cluster_nmi(fp, labels, seed) if len(ids) >= 2 else {},
    }


# --------------------------------------------------------------------------- benchmarks


def labelled_entries(root: Path) -> dict[str, dict[str, Any]]:
    """Model labels of a zoo or benchmark: each folder's done.json, else manifest.json."""
    from fpattr.synthesis.zoo import manifest_selection

    root = Path(root)
    entries = {}
    chosen = manifest_selection(root)  # the first --models of a larger build
    for f in sorted(root.glob("*/done.json")):
        m = json.loads(f.read_text())
        # keyed by its folder, whose images are the model's: an id of another spelling
        # left the folder's images unlabelled, dropped unsaid (break-it 28)
        key = f.parent.name
        if chosen is None or key in chosen:
            entries[key] = m
    if not entries and (root / "manifest.json").is_file():
        doc = json.loads((root / "manifest.json").read_text())
        models = doc.get("models", []) if isinstance(doc, dict) else doc
        entries = {m["id"]: m for m in models if isinstance(m, dict) and "id" in m}
    return entries


def embed_folder_tree(
    root: Path,
    backbone: Any,
    views: int | None,
    ignored: list[dict[str, str]] | None = None,
) -> dict[str, np.ndarray]:
    """Embeddings of the images directly in each model folder of ``root`` (folder name =
    model id): ``{model_id: (n, D)}``.

    As ``evaluate`` reads a bench: a file at the top of ``root`` or in a folder inside a
    model folder is no model's image (it was counted as the model its own folder was
    named like, or dropped unsaid; break-it 28), and a file that fails or is flat
    contributes nothing. Each such file is appended to ``ignored`` (when given) as
    ``{"path", "reason"}``.
    """
    from fpattr.pipeline import Embedder, Settings

    root = Path(root)
    per_model: dict[str, list] = {}
    left: list[dict[str, str]] = ignored if ignored is not None else []
    embedder = Embedder(backbone, Settings(views=views), include_skipped=True)
    for e in embedder.embed_paths([root]):
        parts = Path(e.path).relative_to(root).parts if Path(e.path).is_relative_to(root) else ()
        if len(parts) != 2:
            where = (
                "at the top of the folder, in no model folder"
                if len(parts) < 2
                else f"in a folder inside model folder {parts[0]!r} (only the images directly "
                "in a model folder are read)"
            )
            left.append({"path": e.path, "reason": where})
        elif e.skipped or e.error or e.embedding is None:
            left.append({"path": e.path, "reason": e.error or "not read"})
        elif e.flat:
            left.append({"path": e.path, "reason": "insufficient signal: every view is flat"})
        else:
            per_model.setdefault(parts[0], []).append(e.embedding)
    return {k: np.stack(v) for k, v in per_model.items()}


def unlabelled(
    per_model: dict[str, np.ndarray], entries: dict[str, Any], ignored: list[dict[str, str]]
) -> None:
    """Append each model folder that has images but no labels to ``ignored``."""
    for k in sorted(set(per_model) - set(entries)):
        ignored.append(
            {
                "path": k,
                "reason": f"model folder with {len(per_model[k])} image(s) but no labels "
                "(no done.json, no manifest entry)",
            }
        )


def load_heads(heads_file: Path | None, backbone_info: dict[str, Any]) -> tuple[Heads, Path]:
    """Heads bound to this backbone (same sha256), else a clear error. Without a file,
    the heads shipped next to the default extractor (models/analysis.json)."""
    from fpattr.errors import GalleryError, UsageError
    from fpattr.paths import models_dir

    if heads_file is None:
        heads_file = models_dir() / "analysis.json"
        if not heads_file.is_file():
            raise UsageError(f"no shipped heads at {heads_file}: pass --heads (fpattr analyze fit)")
    heads = Heads.load(heads_file)
    if not heads.heads:  # every image's row was left empty (break-it 28b)
        raise UsageError(f"{heads_file} holds no heads: fit them again with `fpattr analyze fit`")
    if heads.backbone.get("sha256") != backbone_info.get("sha256"):
        raise GalleryError(
            f"{heads_file} was fitted with backbone {heads.backbone.get('id')}, "
            f"not {backbone_info.get('id')}"
        )
    return heads, Path(heads_file)


# --------------------------------------------------------------------------- calibration


def fit_temperature(
    z: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (0.05, 100.0)
) -> float:
    """Temperature T minimising the mean NLL of softmax(z / T) at labels ``y``.

    ``y`` indexes the classes; rows with ``y < 0`` (a true value the head cannot
    answer) carry no likelihood and are left out. One parameter per head: with a
    dozen or so generators, that is what the data can support (see
    docs/methods/model-parsing.md). T > 1 flattens, T < 1 sharpens; the argmax, and
    so the accuracy, never changes.
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(z, np.float64)
    y = np.asarray(y)
    keep = y >= 0
    if not keep.any():
        return 1.0
    zk, yk = z[keep], y[keep]
    rows = np.arange(len(yk))

    def nll(log_t: float) -> float:
        return float(-np.mean(np.log(softmax(zk, np.exp(log_t))[rows, yk] + 1e-12)))

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def expected_calibration_error(
    conf: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float | None:
    """Top-label ECE over equal-width bins (the evaluation's own estimator)."""
    from fpattr.evaluation.decisions import reliability

    return reliability(np.asarray(conf), np.asarray(correct, bool), bins)[0]


def choose_threshold(
    conf: np.ndarray,
    correct: np.ndarray,
    groups: np.ndarray,
    target: float,
    min_n: int,
    min_groups: int = 2,
) -> float | None:
    """The lowest confidence above which the answers reach ``target`` accuracy.

    Answered = rows with ``conf >= threshold``; the answered set must hold at least
    ``min_n`` rows from ``min_groups`` generators, so one generator cannot make the
    threshold. Returns 0.0 when answering everything already reaches the target, None
    when no threshold does.
    """
    conf = np.asarray(conf, np.float64)
    correct = np.asarray(correct, bool)
    groups = np.asarray(groups)
    order = np.argsort(-conf, kind="stable")
    c, hit, g = conf[order], correct[order], groups[order]
    n = len(c)
    cum = np.cumsum(hit)
    seen: set[Any] = set()
    n_groups = np.empty(n, int)
    for k in range(n):
        seen.add(g[k])
        n_groups[k] = len(seen)
    best = None
    for k in range(n):  # prefix 0..k answered; cut only between distinct confidences
        if k + 1 < n and c[k + 1] == c[k]:
            continue
        if k + 1 >= min_n and n_groups[k] >= min_groups and cum[k] / (k + 1) >= target:
            best = k
    if best is None:
        return None
    if best == n - 1:
        return 0.0
    return float(np.floor(0.5 * (c[best] + c[best + 1]) * 1e4) / 1e4)


def generator_interval(
    correct: np.ndarray,
    groups: np.ndarray,
    on: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[float] | None:
    """95 % interval of the accuracy (of the rows ``on``) when whole generators are
    resampled with replacement: errors come per generator, so rows are not independent."""
    correct = np.asarray(correct, bool)
    groups = np.asarray(groups)
    on = np.ones(len(correct), bool) if on is None else np.asarray(on, bool)
    ids = np.unique(groups)
    if len(ids) < 2 or not on.any():
        return None
    hits = np.array([np.sum(correct[(groups == g) & on]) for g in ids], float)
    counts = np.array([np.sum((groups == g) & on) for g in ids], float)
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, len(ids), (n_boot, len(ids)))
    num, den = hits[draw].sum(1), counts[draw].sum(1)
    acc = num[den > 0] / den[den > 0]
    lo, hi = np.percentile(acc, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def _answered(conf: np.ndarray, correct: np.ndarray, groups: np.ndarray, on: np.ndarray) -> dict:
    n = int(on.sum())
    return {
        "n": n,
        "coverage": round(n / len(conf), 4) if len(conf) else None,
        "accuracy": round(float(correct[on].mean()), 4) if n else None,
        "accuracy_interval": generator_interval(correct, groups, on) if n else None,
        "n_generators": len(set(groups[on].tolist())),
    }


def calibrate_head(
    z: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    classes: Sequence[str],
    truth: Sequence[str],
    *,
    target: float = 0.8,
    min_n: int | None = None,
) -> dict[str, Any]:
    """Temperature, threshold and their held-out figures for one head.

    Protocol: leave one generator out. For each generator, the temperature, the
    chance check and the threshold are fitted on the *other* generators and applied
    to it; accuracy, ECE and the answered rate/accuracy are measured on these
    left-out predictions only. The shipped temperature and threshold are then fitted
    on all generators with the same rules. A head whose accuracy is not above
    always answering the commonest value (chance) never answers.
    """
    z = np.asarray(z, np.float64)
    y = np.asarray(y)
    groups = np.asarray(groups)
    n = len(y)
    if min_n is None:
        min_n = max(10, int(np.ceil(0.05 * n)))
    correct = z.argmax(1) == y
    truth = list(truth)

    def rule(rows: np.ndarray) -> tuple[float, float | None, bool]:
        t = fit_temperature(z[rows], y[rows])
        chance = _majority_rate([truth[i] for i in np.flatnonzero(rows)], classes)
        better = float(correct[rows].mean()) > chance + 1e-9
        if not better:
            return t, None, False
        conf = softmax(z[rows], t).max(1)
        thr = choose_threshold(conf, correct[rows], groups[rows], max(target, chance), min_n=min_n)
        return t, thr, True

    conf_raw = softmax(z).max(1)
    conf_cv = np.empty(n)
    on_cv = np.zeros(n, bool)
    fold_t = []
    for g in np.unique(groups):
        test = groups == g
        t, thr, better = rule(~test)
        fold_t.append(t)
        conf_cv[test] = softmax(z[test], t).max(1)
        on_cv[test] = better and thr is not None and conf_cv[test] >= thr
    t_all, thr_all, better_all = rule(np.ones(n, bool))
    chance = _majority_rate(truth, classes)
    counts = {c: int(sum(t == c for t in truth)) for c in classes}
    status = "chance" if not better_all else ("ok" if thr_all is not None else "no_threshold")
    known = y >= 0
    rows = np.arange(n)

    def nll(p: np.ndarray) -> float | None:
        return (
            round(float(-np.mean(np.log(p[rows[known], y[known]] + 1e-12))), 4)
            if known.any()
            else None
        )

    p_cv = np.empty_like(z)
    for g, t in zip(np.unique(groups), fold_t, strict=True):
        p_cv[groups == g] = softmax(z[groups == g], t)
    answered = _answered(conf_cv, correct, groups, on_cv)
    pred = z.argmax(1)
    answered["by_value"] = {  # how often each answered value was right (held out)
        classes[v]: {
            "n": int(np.sum(on_cv & (pred == v))),
            "accuracy": round(float(correct[on_cv & (pred == v)].mean()), 4),
            "n_generators": len(set(groups[on_cv & (pred == v)].tolist())),
        }
        for v in range(len(classes))
        if np.any(on_cv & (pred == v))
    }
    return {
        "status": status,
        "temperature": round(t_all, 4),
        "threshold": thr_all if status == "ok" else None,
        "target_accuracy": target,
        "n": n,
        "n_generators": len(np.unique(groups)),
        "accuracy": round(float(correct.mean()), 4),
        "accuracy_interval": generator_interval(correct, groups),
        "chance": round(chance, 4),
        "chance_value": max(counts, key=lambda c: counts[c]) if counts else None,
        "unseen_values": int((~known).sum()),
        "ece_before": expected_calibration_error(conf_raw, correct),
        "ece_after": expected_calibration_error(conf_cv, correct),
        "nll_before": nll(softmax(z)),
        "nll_after": nll(p_cv),
        "mean_confidence_before": round(float(conf_raw.mean()), 4),
        "mean_confidence_after": round(float(conf_cv.mean()), 4),
        "answered": answered,
        "fold_temperatures": {
            "min": round(float(np.min(fold_t)), 4),
            "median": round(float(np.median(fold_t)), 4),
            "max": round(float(np.max(fold_t)), 4),
        },
        # per left-out generator (in order of np.unique(groups)): where the errors are
        "per_generator": [
            {
                "n": int(np.sum(groups == g)),
                "accuracy": round(float(correct[groups == g].mean()), 4),
                "answered": round(float(on_cv[groups == g].mean()), 4),
                "answered_accuracy": round(float(correct[(groups == g) & on_cv].mean()), 4)
                if np.any((groups == g) & on_cv)
                else None,
            }
            for g in np.unique(groups)
        ],
    }


def make_sets(per_model: dict[str, np.ndarray], size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Disjoint random sets of ``size`` images per model, each reduced by
    :func:`set_fingerprint` (what ``predict --as-set`` sees)."""
    rng = np.random.default_rng(seed)
    out = {}
    for mid in sorted(per_model):
        e = per_model[mid]
        perm = rng.permutation(len(e))
        sets = [perm[k : k + size] for k in range(0, len(e) - size + 1, size)]
        if sets:
            out[mid] = np.concatenate([set_fingerprint(e[s]) for s in sets])
    return out


def calibrate(
    heads: Heads,
    per_model: dict[str, np.ndarray],
    entries: dict[str, dict[str, Any]],
    *,
    set_size: int = 5,
    target: float = 0.8,
    seed: int = 0,
) -> dict[str, Any]:
    """Calibration of every head on labelled generators the heads never saw.

    Two modes, each with its own temperature and threshold: ``image`` (one image;
    ``analyze predict``) and ``set`` (the mean fingerprint of ``set_size`` images of one
    generator; ``analyze predict --as-set``). Returns the JSON block stored as
    ``calibration`` in the heads file.
    """
    modes: dict[str, Any] = {}
    units = {
        "image": (per_model, "one image"),
        "set": (
            make_sets(per_model, set_size, seed),
            f"mean fingerprint of {set_size} images of one generator",
        ),
    }
    for mode, (rows_per_model, unit) in units.items():
        if not rows_per_model:
            continue
        data = labelled_images(rows_per_model, entries)
        block: dict[str, Any] = {
            "unit": unit,
            "n": len(data.image_labels),
            "n_generators": len(data.ids),
            "heads": {},
        }
        if mode == "set":
            block["set_size"] = set_size
        for choice, (classes, z) in heads.logits(data.x).items():
            idx = np.array([i for i, lab in enumerate(data.image_labels) if choice in lab], int)
            if len(idx) == 0 or len(np.unique(data.groups[idx])) < 2:
                continue
            truth = [data.image_labels[i][choice] for i in idx]
            y = np.array([classes.index(t) if t in classes else -1 for t in truth])
            h = calibrate_head(z[idx], y, data.groups[idx], classes, truth, target=target)
            gens = [data.ids[g] for g in np.unique(data.groups[idx])]
            h["per_generator"] = dict(zip(gens, h["per_generator"], strict=True))
            block["heads"][choice] = h
        modes[mode] = block
    ids = labelled_images(per_model, entries).ids
    return {
        "schema": CALIBRATION_SCHEMA,
        "method": "temperature scaling per head (softmax(logits / T)), NLL-fitted",
        "protocol": (
            "leave one generator out: temperature, chance check and threshold fitted on the "
            "other generators, figures measured on the left-out one; shipped values fitted on all"
        ),
        "heads_sha256": heads.heads_sha256(),
        "backbone_sha256": heads.backbone.get("sha256"),
        "target_accuracy": target,
        "seed": seed,
        "generators": ids,
        "modes": modes,
    }


# --------------------------------------------------------------------------- decisions


REAL_PHOTO_CAVEAT = (
    "The heads assume every image is generated: they were never trained on real photos, "
    "and fpattr cannot tell a real photo from a generated one here, so a real photo still "
    "gets design choices. Do not read an answer as evidence that an image is generated."
)


def real_photo_caveat(heads: Heads, mode: str = "image") -> str:
    """The caveat, with what the calibrated heads measurably did on real photos if known."""
    cal, _ = heads.calibration_status()
    real = (cal or {}).get("real_photos") or {}
    block = (real.get("modes") or {}).get(mode)
    if not block:
        return REAL_PHOTO_CAVEAT
    rates = ", ".join(f"{c} {pct(h['answered_rate'])}" for c, h in block["heads"].items())
    unit = "images" if mode == "image" else "sets"
    return (
        f"{REAL_PHOTO_CAVEAT} On {block['n']} real-photo {unit} the calibrated heads still "
        f"answered (not 'undetermined'): {rates}."
    )


def head_info(heads: Heads, mode: str = "image") -> dict[str, dict[str, Any]]:
    """Per head, what a prediction is shown with: calibration, threshold, held-out figures."""
    cal, why = heads.calibration_status()
    block = ((cal or {}).get("modes") or {}).get(mode)
    out = {}
    for choice in heads.heads:
        h = (block or {}).get("heads", {}).get(choice)
        if h is None:
            reason = why or f"uncalibrated: no {mode} calibration for this head"
            out[choice] = {"calibrated": False, "note": reason}
            continue
        out[choice] = {
            "calibrated": True,
            "status": h["status"],
            "temperature": h["temperature"],
            "threshold": h.get("threshold"),
            "heldout_accuracy": h["accuracy"],
            "chance": h["chance"],
            "chance_value": h.get("chance_value"),
            "heldout_answered_accuracy": h["answered"]["accuracy"],
            "heldout_coverage": h["answered"]["coverage"],
            "heldout_by_value": h["answered"].get("by_value") or {},
            "n": h["n"],
            "n_generators": h["n_generators"],
            "ece_before": h.get("ece_before"),
            "ece_after": h.get("ece_after"),
        }
    return out


def decide(
    heads: Heads, emb: np.ndarray, mode: str = "image", top: int = 3
) -> list[dict[str, Any]]:
    """Per row of ``emb``: per head, the answer (a value or "undetermined") and why.

    Calibrated heads: probabilities at the head's temperature; "undetermined" below
    its threshold, and always for a head no better than chance or without a threshold
    reaching the target accuracy. Uncalibrated heads answer their argmax (raw
    softmax) and say they are uncalibrated.
    """
    info = head_info(heads, mode)
    temps = {c: i["temperature"] for c, i in info.items() if i["calibrated"]}
    raw = heads.predict_proba(emb)
    cal = heads.predict_proba(emb, temps)
    rows: list[dict[str, Any]] = []
    for k in range(np.atleast_2d(emb).shape[0]):
        row = {}
        for choice, (classes, p) in cal.items():
            i = info[choice]
            j = int(p[k].argmax())
            prob = float(p[k, j])
            order = np.argsort(-p[k])[:top]
            ans: dict[str, Any] = {
                "value": classes[j],
                "top": classes[j],
                "probability": round(prob, 4),
                "raw_probability": round(float(raw[choice][1][k, j]), 4),
                "calibrated": i["calibrated"],
                "reason": None,
                "alternatives": [
                    {"value": classes[m], "probability": round(float(p[k, m]), 4)} for m in order
                ],
            }
            if not i["calibrated"]:
                ans["reason"] = "uncalibrated"
            else:
                thr = i["threshold"]
                ans["threshold"] = thr
                ans["heldout_accuracy"] = i["heldout_accuracy"]
                ans["heldout_answered_accuracy"] = i["heldout_answered_accuracy"]
                ans["chance"] = i["chance"]
                if i["status"] == "chance":
                    ans["value"], ans["reason"] = UNDETERMINED, "head not better than chance"
                elif i["status"] != "ok" or thr is None:
                    ans["value"], ans["reason"] = UNDETERMINED, "no threshold reaches the target"
                elif prob < thr:
                    ans["value"], ans["reason"] = UNDETERMINED, "below threshold"
                else:
                    by_value = i.get("heldout_by_value", {}).get(ans["value"]) or {}
                    ans["heldout_value_accuracy"] = by_value.get("accuracy")
                    ans["heldout_value_n"] = by_value.get("n", 0)
            ans["text"] = answer_text(ans, i)
            row[choice] = ans
        rows.append(row)
    return rows


def pct(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.0f} %"


def head_sentence(choice_info: dict[str, Any]) -> str:
    """How far to trust a head, in words (shown with every prediction)."""
    i = choice_info
    if not i.get("calibrated"):
        return "uncalibrated"
    acc = (
        f"this head is right {pct(i['heldout_accuracy'])} of the time on held-out "
        "project generators"
    )
    if i["status"] == "chance":
        return (
            f"{acc}, not better than chance ({pct(i['chance'])} always answering "
            f"{i.get('chance_value')}): always undetermined"
        )
    if i["status"] != "ok" or i.get("threshold") is None:
        return f"{acc}; no confidence reached the target accuracy: always undetermined"
    above = i.get("heldout_answered_accuracy")
    tail = (
        f", {pct(above)} when it answers (p >= {i['threshold']:.2f})" if above is not None else ""
    )
    return acc + tail


def answer_text(ans: dict[str, Any], choice_info: dict[str, Any]) -> str:
    """One prediction in words, e.g. "bilinear (p 0.71; this head is right 64 % ...)"."""
    p = ans["probability"]
    sentence = head_sentence(choice_info)
    if ans["value"] != UNDETERMINED:
        if not choice_info.get("calibrated"):
            return f"{ans['value']} (p {p:.2f}, uncalibrated: not checked on held-out generators)"
        if "heldout_value_n" not in ans:
            return f"{ans['value']} (p {p:.2f}; {sentence})"
        if ans["heldout_value_n"]:
            value = (
                f"{pct(ans['heldout_value_accuracy'])} of its {ans['value']!r} answers there "
                f"were right (n {ans['heldout_value_n']})"
            )
        else:
            value = f"it never answered {ans['value']!r} there, so that is unchecked"
        return f"{ans['value']} (p {p:.2f}; {sentence}; {value})"
    if ans.get("reason") == "below threshold":
        return f"undetermined (best {ans['top']}, p {p:.2f} < {ans['threshold']:.2f}; {sentence})"
    return f"undetermined ({sentence})"


@dataclass
class Predictions:
    """What :func:`predict_paths` made of its inputs.

    ``rows``: one record per input (``path``, ``sha256``, ``status`` ok | error | skipped,
    ``error``, ``flat`` when the image carries no fingerprint, ``predictions`` per design
    choice), or with ``as_set`` one ``<set>`` record followed by the record of each input
    that failed or was skipped; ``n_inputs`` counts the inputs tried
    (skipped non-images are records, not inputs), ``n_ok`` those embedded, ``n_usable``
    those with a fingerprint (not flat).
    """

    rows: list[dict[str, Any]]
    n_inputs: int
    n_ok: int
    n_usable: int
    n_skipped: int


def _flat_predictions(heads: Heads) -> dict[str, dict[str, Any]]:
    why = "flat image: no fingerprint evidence"
    return {
        c: {
            "value": UNDETERMINED,
            "top": None,
            "probability": None,
            "reason": why,
            "text": f"undetermined ({why})",
        }
        for c in heads.heads
    }


def predict_paths(
    paths: Sequence[Any],
    backbone: Any,
    heads: Heads,
    *,
    views: int | None = None,
    as_set: bool = False,
    on_record: Any = None,
) -> Predictions:
    """Model parsing of files and folders: every input embedded once through
    :class:`fpattr.pipeline.Embedder` (the attribute loop: views, flat check, errors per
    file), then :func:`decide` per image, or once on the :func:`set_fingerprint` of the
    usable images with ``as_set``. A flat image answers "undetermined" for every choice
    and is left out of a set. ``on_record(record)`` is called as each input is read (the
    CLI's progress and per-file messages).
    """
    from fpattr.pipeline import Embedder, Settings

    mode = "set" if as_set else "image"
    results: list[dict[str, Any]] = []
    ok: list[tuple[dict[str, Any], np.ndarray]] = []
    n_inputs = n_skipped = 0
    for e in Embedder(backbone, Settings(views=views), include_skipped=True).embed_paths(paths):
        sha = getattr(e.image, "sha256", None)
        if e.skipped:  # not an image by its content: a record, not a failure
            res: dict[str, Any] = {
                "path": e.path,
                "sha256": None,
                "status": "skipped",
                "error": e.error,
            }
            n_skipped += 1
        elif e.embedding is None or e.error:
            res = {"path": e.path, "sha256": sha, "status": "error", "error": e.error}
        else:
            res = {"path": e.path, "sha256": sha, "status": "ok", "error": None}
            if e.flat:
                res["flat"] = True
            ok.append((res, e.embedding))
        n_inputs += not e.skipped
        results.append(res)
        if on_record is not None:
            on_record(res)
    usable = [(r, v) for r, v in ok if not r.get("flat")]
    if as_set:
        # as attribute --as-set: a file whose content (sha256) is already in the set is one
        # piece of evidence, and a set of flat images answers "undetermined", not an error
        seen: set[Any] = set()
        pooled = []
        for r, v in usable:
            if r["sha256"] is None or r["sha256"] not in seen:
                seen.add(r["sha256"])
                pooled.append(v)
        set_res: dict[str, Any] = {
            "path": "<set>",
            "status": "ok" if ok else "error",
            "n_images": len(pooled),
            "n_duplicates": len(usable) - len(pooled),
            "n_flat": len(ok) - len(usable),
            "error": None if ok else "no image could be read",
        }
        if pooled:
            # a set smaller than the sets its calibration was fitted on is decided with
            # the single-image calibration: one image answered 0.98 as a "set" and 0.96
            # on its own (break-it 28). Weaker evidence is never stated more strongly.
            cal, _ = heads.calibration_status()
            k = ((cal or {}).get("modes") or {}).get("set", {}).get("set_size")
            used = "image" if k and len(pooled) < int(k) else mode
            set_res["calibration_mode"] = used
            if used != mode:
                set_res["note"] = (
                    f"{len(pooled)} distinct usable image(s), fewer than the {k} the set "
                    "calibration was fitted on: decided with the single-image calibration"
                )
            x = set_fingerprint(np.stack(pooled))
            set_res["predictions"] = decide(heads, x, used)[0]
        elif ok:
            set_res["predictions"] = _flat_predictions(heads)
        # the inputs that could not join the set keep their record (break-it: a failed
        # file was named on stderr only, no output file said it had been given)
        rows = [set_res, *(r for r in results if r["status"] != "ok")]
    else:
        if usable:
            preds = decide(heads, np.stack([v for _, v in usable]), mode)
            for (r, _), pr in zip(usable, preds, strict=True):
                r["predictions"] = pr
        for r, _ in ok:
            if r.get("flat"):
                r["predictions"] = _flat_predictions(heads)
        rows = results
    return Predictions(rows, n_inputs, len(ok), len(usable), n_skipped)
