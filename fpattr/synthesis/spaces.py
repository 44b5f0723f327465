"""Design spaces of the built-in families and the loss names, without torch.

The family classes take their ``DESIGN_SPACE`` from here, and
:mod:`fpattr.synthesis.builtin` registers the same dicts as ``design_space=`` metadata,
so ``fpattr synth --list`` (and any tool that only needs the labels) works without
torch, from one source of truth. This module imports nothing heavy; keep it that way.

Third-party families do the same: keep the design space in a light module of the
plugin, set the family's ``DESIGN_SPACE`` from it and pass it when registering::

    register("my_family", factory, description="...", design_space=DESIGN_SPACE)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: The loss design choice, in order of increasing machinery
#: (re-exported by :mod:`fpattr.synthesis.losses`, which implements them with torch).
LOSSES: tuple[str, ...] = ("l2", "l1", "l1_perceptual", "l1_perceptual_adv")

#: Up-sampling choices of the LDM decoder (``ldm_vae``): nearest / bilinear x2 + 3x3 conv,
#: or transposed conv.
LDM_DECODER_UPSAMPLING: tuple[str, ...] = ("nearest", "bilinear", "transposed")

#: family name -> choice -> values, in order (first choice varies slowest).
BUILTIN_DESIGN_SPACES: dict[str, dict[str, list[str]]] = {
    "autoencoder": {
        "down_blocks": ["1", "2"],
        "convs_per_up": ["1", "2"],
        "upsampling": ["nearest", "bilinear", "transposed", "pixelshuffle"],
        "activation": ["relu", "sigmoid", "tanh", "none"],
        "norm": ["batch", "instance", "none"],
        "order": ["pre", "post"],
    },
    "gan_decoder": {
        "stages": ["2", "3"],
        "upsampling": ["nearest", "bilinear", "transposed", "pixelshuffle"],
        "activation": ["relu", "lrelu", "silu"],
        "norm": ["none", "batch", "instance", "adain"],
        "output": ["tanh", "sigmoid", "clamp"],
    },
    "diffusion_denoiser": {
        "skip": ["none", "add", "concat"],
        "upsampling": ["nearest", "bilinear", "transposed", "pixelshuffle"],
        "norm": ["group", "batch", "none"],
        "time_embedding": ["yes", "no"],
        "steps": ["1", "2", "4"],
        "prediction": ["x0", "eps"],
    },
    "ldm_vae": {
        "factor": ["4", "8", "16"],
        "blocks": ["1", "2"],
        "upsampling": list(LDM_DECODER_UPSAMPLING),
        "mid_attention": ["no", "yes"],
        "loss": list(LOSSES),
    },
    "vqgan": {
        "factor": ["8", "16"],
        "codebook": ["64", "512"],
        "blocks": ["1", "2"],
        "upsampling": ["nearest", "transposed"],
        "loss": list(LOSSES),
    },
    "dit_patch": {
        "patch": ["1", "2", "4"],
        "mixer": ["mlp", "attention"],
        "upsampling": ["nearest", "transposed"],
        "loss": list(LOSSES),
    },
    "stylegan2": {
        "stages": ["2", "3"],
        "upsampling": ["transposed_fir", "bilinear"],
        "output_skips": ["yes", "no"],
        "noise": ["yes", "no"],
        "loss": list(LOSSES),
    },
    "stylegan3": {
        "stages": ["2", "3"],
        "filter": ["kaiser", "box"],
        "loss": list(LOSSES),
    },
    "biggan": {
        "stages": ["2", "3"],
        "attention": ["no", "yes"],
        "truncation": ["0.5", "1.0"],
        "loss": list(LOSSES),
    },
    "sr_cascade": {
        "factor": ["2", "4"],
        "kernel": ["bilinear", "bicubic", "nearest"],
        "norm": ["group", "none"],
        "steps": ["1", "2"],
        "loss": list(LOSSES),
    },
}


def space_problem(space: Any) -> str | None:
    """Why ``space`` is not a valid design space (``None`` when it is).

    Valid: a non-empty mapping of non-empty string choices to non-empty lists of
    distinct non-empty strings (what ``FamilyBase.DESIGN_SPACE`` holds).
    """
    if not isinstance(space, Mapping) or not space:
        return "must be a non-empty dict of choice -> list of values"
    for key, values in space.items():
        if not (isinstance(key, str) and key and isinstance(values, (list, tuple)) and values):
            return f"design choice {key!r} needs a non-empty list of values"
        if not all(isinstance(v, str) and v for v in values) or len(set(values)) != len(values):
            return f"values of {key!r} must be distinct non-empty strings"
    return None


def n_architectures(space: Mapping[str, list[str]]) -> int:
    """Architectures of a design space: the size of its cartesian product."""
    return math.prod(len(v) for v in space.values())
