"""A synthetic model zoo as training data: folder per model, split by model.

The zoo (``fpattr synth``) is ``ZOO/<model_id>/*.png`` plus ``manifest.json``
with each model's design labels. Images are held in memory as uint8 (a zoo of
500 models x 32 images at 128 px is ~0.8 GB). Splits are by *model* and by
*architecture* so validation measures zero-shot attribution of unseen models.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.errors import UsageError
from fpattr.io.loader import IMAGE_EXTENSIONS, load_image
from fpattr.training.augment import AugmentConfig, augment


@dataclass
class Zoo:
    """Images grouped by model, with labels from the manifest."""

    root: Path
    models: list[dict[str, Any]]  # manifest entries (id, family, arch_id, design, ...)
    images: list[np.ndarray] = field(default_factory=list)  # per model: (n, H, W, 3) uint8

    @property
    def ids(self) -> list[str]:
        return [m["id"] for m in self.models]

    def subset(self, idx: list[int]) -> Zoo:
        return Zoo(self.root, [self.models[k] for k in idx], [self.images[k] for k in idx])


def load_zoo(root: Path, *, max_per_model: int | None = None, min_images: int = 2) -> Zoo:
    root = Path(root)
    if not root.exists():
        raise UsageError(f"zoo {root} does not exist (make one with `fpattr synth`)")
    if not root.is_dir():
        raise UsageError(f"zoo {root} is not a folder (a zoo is a folder per model)")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    done = [d / "done.json" for d in dirs if (d / "done.json").is_file()]
    if done:  # a zoo: done.json is written last, so it is the truth even after a kill
        from fpattr.synthesis.zoo import manifest_selection

        entries = [_zoo_entry(_read_json(f), f) for f in done]
        chosen = manifest_selection(root)  # the first --models of a larger build
        if chosen is not None:
            entries = [e for e in entries if e["id"] in chosen]
    elif (root / "manifest.json").is_file():
        manifest = root / "manifest.json"
        listed = _read_json(manifest)
        if not isinstance(listed, dict) or not isinstance(listed.get("models"), list):
            raise UsageError(f"zoo manifest {manifest} has no 'models' list")
        entries = [_zoo_entry(e, manifest) for e in listed["models"]]
    else:  # a plain benchmark folder: one folder per model, no labels
        entries = [{"id": d.name} for d in dirs]

    def read(e: dict[str, Any]) -> list[np.ndarray]:
        folder = root / e["id"]
        if not folder.is_dir():
            return []
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        files = files[:max_per_model] if max_per_model else files
        return [(load_image(f).pixels * 255 + 0.5).astype(np.uint8) for f in files]

    models, images = [], []
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 2)) as pool:
        loaded = list(pool.map(read, entries))  # PNG decoding releases the GIL
    for e, arrs in zip(entries, loaded, strict=True):
        shapes = {a.shape for a in arrs}
        if len(arrs) < min_images or len(shapes) != 1:
            continue
        models.append(e)
        images.append(np.stack(arrs))
    return Zoo(root, models, images)


def _read_json(path: Path) -> Any:
    """A zoo's JSON file; a damaged one is a usage error naming the file (not a traceback)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(
            f"zoo file {path} cannot be read as JSON ({exc}); the zoo is damaged: "
            "repair that file or rebuild the zoo"
        ) from None


def _zoo_entry(entry: Any, source: Path) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
        raise UsageError(f"zoo file {source}: a model entry without an 'id': {entry!r:.80}")
    return entry


def matches(model: dict[str, Any], cond: dict[str, str]) -> bool:
    """True when a zoo entry has every key=value of ``cond`` (family or design choices)."""
    design = {**model.get("design", {}), "family": model.get("family")}
    return all(str(design.get(k)) == str(v) for k, v in cond.items())


def split_models(
    zoo: Zoo,
    *,
    val_frac: float,
    calib_frac: float,
    holdout_archs: int,
    seed: int,
    holdout_where: list[dict[str, str]] | None = None,
    exclude_where: list[dict[str, str]] | None = None,
    max_train_models: int | None = None,
) -> dict[str, list[int]]:
    """Indices for train / calib / val / val_arch, all disjoint by model.

    ``val_arch`` holds architectures never trained on: every model matching one of
    ``holdout_where`` (e.g. all autoencoders with pixel-shuffle up-sampling), else
    ``holdout_archs`` random architecture ids (zoos larger than their design space
    repeat architectures, so this removes every model of those ids).

    Ablations shrink only the training split, so every variant of one zoo and seed is
    validated and calibrated on the same models: ``exclude_where`` drops training models
    matching any condition (e.g. the new families, or every loss but l2);
    ``max_train_models`` then keeps a seeded random subset of that size (zoo size).
    """
    rng = np.random.default_rng(seed)
    if holdout_where:
        val_arch = [
            k for k, m in enumerate(zoo.models) if any(matches(m, c) for c in holdout_where)
        ]
    else:
        archs = sorted({m.get("arch_id", m["id"]) for m in zoo.models})
        held = set(rng.permutation(archs)[:holdout_archs].tolist()) if holdout_archs else set()
        val_arch = [k for k, m in enumerate(zoo.models) if m.get("arch_id", m["id"]) in held]
    rest = [k for k in range(len(zoo.models)) if k not in set(val_arch)]
    rest = [int(k) for k in rng.permutation(rest)]
    n_val = max(2, int(round(val_frac * len(rest)))) if val_frac > 0 else 0
    n_cal = max(2, int(round(calib_frac * len(rest))))  # calibration needs impostors
    train = rest[n_val + n_cal :]
    if exclude_where:
        train = [k for k in train if not any(matches(zoo.models[k], c) for c in exclude_where)]
    if max_train_models is not None and len(train) > max_train_models:
        # own generator: the val/calib split above must not depend on this knob
        keep = np.random.default_rng([seed, 1]).permutation(len(train))[:max_train_models]
        train = [train[i] for i in keep]
    return {
        "val": sorted(rest[:n_val]),
        "calib": sorted(rest[n_val : n_val + n_cal]),
        "train": sorted(train),
        "val_arch": sorted(val_arch),
    }


def pk_batches(
    zoo: Zoo, *, p: int, k: int, size: int, aug: AugmentConfig, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless P x K batches (P models, K augmented crops each) for batch-hard triplets.

    P is capped at the number of models: a split smaller than P must still yield
    batches (it once spun forever without yielding, hanging training).
    """
    n = len(zoo.models)
    if n < 2:
        raise ValueError(f"P x K batches need at least 2 models, got {n}")
    p = min(p, n)
    while True:
        order = rng.permutation(n)
        for s in range(0, n - p + 1, p):
            labels, views = [], []
            for m in order[s : s + p]:
                imgs = zoo.images[m]
                pick = rng.choice(len(imgs), k, replace=len(imgs) < k)
                for j in pick:
                    views.append(augment(imgs[j], size, aug, rng))
                    labels.append(m)
            yield np.stack(views), np.asarray(labels, np.int64)


def eval_views(
    zoo: Zoo, *, size: int, n_views: int, aug: AugmentConfig | None, seed: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Views for evaluation: per image, the pipeline's grid crops (after optional processing).

    Returns (per-image view stacks, model index per image, image index within model).
    """
    from fpattr.views import make_views

    rng = np.random.default_rng(seed)
    stacks, labels, which = [], [], []
    for m, imgs in enumerate(zoo.images):
        for j, img in enumerate(imgs):
            x = img
            if aug is not None:
                x = (augment(img, max(img.shape[:2]), aug, rng) * 255 + 0.5).astype(np.uint8)
            v, _ = make_views(x.astype(np.float32) / 255.0, size, n_views)
            stacks.append(v)
            labels.append(m)
            which.append(j)
    return stacks, np.asarray(labels), np.asarray(which)
