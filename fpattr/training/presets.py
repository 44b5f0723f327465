"""Named training configurations.

``compact`` trains v1 (64-px views) on 2 CPU cores in about 25 minutes; ``gpu`` is
the larger v1 configuration for a CUDA device. ``v2`` sees 128-px views through a
strided stem (x8/x16 periodicity fits in a view at the CNN cost of 64 px) and
trains on publication chains (up to two resize + JPEG/WebP rounds); ``v2-gpu`` is
the same network with the data and steps a GPU affords.
"""

from __future__ import annotations

import copy
from typing import Any

#: v2's network and processing, shared by the CPU and GPU presets (only data and steps differ)
V2_EXTRACTOR = {"size": 128, "stem_stride": 2, "widths": [16, 32, 64, 128], "dim": 128}
V2_AUGMENT = {
    "p_resize": 0.4,
    "scale_range": [0.5, 2.0],
    "p_blur": 0.1,
    "p_jpeg": 0.5,
    "jpeg_quality": [60, 100],
    "rounds": 2,
    "p_webp": 0.15,
}

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
    "v2": {
        "steps": 6000,
        "p": 16,
        "k": 4,
        "eval_every": 1000,
        "ckpt_every": 100,
        "warmup": 200,
        "holdout_where": [{"family": "autoencoder", "upsampling": "pixelshuffle"}],
        "extractor": V2_EXTRACTOR,
        "augment": V2_AUGMENT,
    },
    "v2-gpu": {
        "steps": 20000,
        "p": 64,
        "k": 4,
        "eval_every": 2000,
        "ckpt_every": 500,
        "warmup": 500,
        "holdout_where": [{"family": "autoencoder", "upsampling": "pixelshuffle"}],
        "extractor": V2_EXTRACTOR,
        "augment": V2_AUGMENT,
    },
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        from fpattr.errors import UsageError

        raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])  # the shared v2 parts must not be edited through one
