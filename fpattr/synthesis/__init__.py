"""Model synthesis: families of small synthetic generative models, the zoo that
trains many of them on real photos, and the fidelity check against real generators.

Nothing here imports torch at package import time: the family modules
(:mod:`~fpattr.synthesis.autoencoder`, :mod:`~fpattr.synthesis.gan_decoder`,
:mod:`~fpattr.synthesis.diffusion`) do, and are loaded by the registry factories.
"""

from __future__ import annotations

from fpattr.synthesis.base import DEFAULT_LOSS_FLOOR, FamilyBase, SynthesizerFamily

__all__ = ["DEFAULT_LOSS_FLOOR", "FamilyBase", "SynthesizerFamily"]
