"""Built-in synthesizer families, registered through the public plugin hook.

This module is loaded like any third-party plugin (see
``fpattr.plugins.DEFAULT_PLUGINS``) and must stay import-light: the factories
import torch and the family modules only when a family is actually used.
"""

from __future__ import annotations

from typing import Any

from fpattr import hookimpl


def _autoencoder() -> Any:
    from fpattr.synthesis.autoencoder import AutoencoderFamily

    return AutoencoderFamily()


def _gan_decoder() -> Any:
    from fpattr.synthesis.gan_decoder import GanDecoderFamily

    return GanDecoderFamily()


def _diffusion_denoiser() -> Any:
    from fpattr.synthesis.diffusion import DiffusionDenoiserFamily

    return DiffusionDenoiserFamily()


#: name -> (factory, description); descriptions are repeated here so listing the
#: families does not import torch.
BUILTIN_FAMILIES = {
    "autoencoder": (
        _autoencoder,
        "Shallow conv autoencoders reconstructing photos (the paper's model synthesis)",
    ),
    "gan_decoder": (
        _gan_decoder,
        "GAN-generator-like decoders from latent maps, trained GLO-style",
    ),
    "diffusion_denoiser": (
        _diffusion_denoiser,
        "Diffusion-like U-Net denoisers sampled SDEdit-style in 1-4 steps",
    ),
}


@hookimpl
def fpattr_register_synthesizers(register: Any) -> None:
    for name, (factory, description) in BUILTIN_FAMILIES.items():
        register(name, factory, description=description)
