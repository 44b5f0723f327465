"""Named training configurations.

``compact`` trains on 2 CPU cores in about an hour; ``gpu`` is the larger
configuration for a CUDA device (wider network, bigger batches, more steps).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {  # tests and smoke runs: seconds
        "steps": 20,
        "p": 4,
        "k": 4,
        "eval_every": 10,
        "ckpt_every": 10,
        "warmup": 5,
        "holdout_archs": 1,
        "extractor": {"widths": [8, 16, 16, 16], "dim": 32},
    },
    "compact": {
        "steps": 2500,
        "p": 16,
        "k": 4,
        "eval_every": 250,
        "ckpt_every": 100,
        "warmup": 100,
        # unseen architectures: every autoencoder with pixel-shuffle up-sampling
        "holdout_where": [{"family": "autoencoder", "upsampling": "pixelshuffle"}],
        "extractor": {"widths": [16, 32, 64, 128], "dim": 128},
    },
    "gpu": {
        "steps": 12000,
        "p": 64,
        "k": 4,
        "eval_every": 1000,
        "ckpt_every": 500,
        "warmup": 300,
        "lr": 2e-3,
        "holdout_where": [{"family": "autoencoder", "upsampling": "pixelshuffle"}],
        # same network as compact (CPU inference speed is the product); more data and steps
        "extractor": {"widths": [16, 32, 64, 128], "dim": 128},
    },
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        from fpattr.errors import UsageError

        raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[name].items()}
