"""fpattr-taesd: the ``taesd`` synthesizer family and the ``taesd`` reference gallery.

Import-light on purpose (``fpattr --help`` imports every plugin module): torch is
imported by the family factory only, numpy by nothing here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fpattr
from fpattr.synthesis.spaces import LOSSES

__version__ = "0.1.0"

#: The shipped gallery: built by ``python -m fpattr_taesd.build_gallery`` (see README).
GALLERY_DIR = Path(__file__).resolve().parent / "gallery"
#: The backbone the shipped gallery is bound to (training-free, so the binding is stable).
GALLERY_BACKBONE = "spectrum"
#: The family's design choices, here (torch-free) rather than in family.py so that
#: ``fpattr synth --list`` can show them without torch: registered as ``design_space=``
#: and used as ``TaesdFamily.DESIGN_SPACE``.
DESIGN_SPACE: dict[str, list[str]] = {
    "latent_channels": ["4", "16"],
    "blocks": ["3", "1"],
    "upsampling": ["nearest", "bilinear"],
    "latent_clamp": ["tanh", "none"],
    "loss": list(LOSSES),
}


def make_family() -> Any:
    """The family object (imports torch)."""
    from fpattr_taesd.family import TaesdFamily

    return TaesdFamily()


@fpattr.hookimpl
def fpattr_register_synthesizers(register: Any) -> None:
    register(
        "taesd",
        make_family,
        description="TAESD tiny decoders of real-time / one-step pipelines (fpattr-taesd)",
        design_space=DESIGN_SPACE,
    )


@fpattr.hookimpl
def fpattr_register_galleries(register: Any) -> None:
    if (GALLERY_DIR / "gallery.json").is_file():  # a source checkout before the build
        register(
            "taesd",
            GALLERY_DIR,
            description="references of three TAESD-like decoders (fpattr-taesd)",
            backbone=GALLERY_BACKBONE,
        )
