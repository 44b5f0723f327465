"""Built-in synthesizer families, registered through the public plugin hook.

This module is loaded like any third-party plugin (see
``fpattr.plugins.DEFAULT_PLUGINS``) and must stay import-light: the factories
import torch and the family modules only when a family is actually used. Each family
is registered with its ``design_space=`` (from the torch-free
:mod:`fpattr.synthesis.spaces`), so listing families never builds one.
"""

from __future__ import annotations

from typing import Any

from fpattr import hookimpl
from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES


def _autoencoder() -> Any:
    from fpattr.synthesis.autoencoder import AutoencoderFamily

    return AutoencoderFamily()


def _gan_decoder() -> Any:
    from fpattr.synthesis.gan_decoder import GanDecoderFamily

    return GanDecoderFamily()


def _diffusion_denoiser() -> Any:
    from fpattr.synthesis.diffusion import DiffusionDenoiserFamily

    return DiffusionDenoiserFamily()


def _ldm_vae() -> Any:
    from fpattr.synthesis.ldm import LdmVaeFamily

    return LdmVaeFamily()


def _vqgan() -> Any:
    from fpattr.synthesis.ldm import VqganFamily

    return VqganFamily()


def _dit_patch() -> Any:
    from fpattr.synthesis.ldm import PatchTokenFamily

    return PatchTokenFamily()


def _stylegan2() -> Any:
    from fpattr.synthesis.stylegan import StyleGan2Family

    return StyleGan2Family()


def _stylegan3() -> Any:
    from fpattr.synthesis.stylegan import StyleGan3Family

    return StyleGan3Family()


def _biggan() -> Any:
    from fpattr.synthesis.biggan import BigGanFamily

    return BigGanFamily()


def _sr_cascade() -> Any:
    from fpattr.synthesis.sr_cascade import SrCascadeFamily

    return SrCascadeFamily()


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
    # imitations of real generators' output paths (../shared/real-decoders.md)
    "ldm_vae": (
        _ldm_vae,
        "Stable Diffusion / LDM KL-autoencoder decoders (4-channel latent, x4-x16, "
        "GroupNorm+SiLU ResNet blocks)",
    ),
    "vqgan": (
        _vqgan,
        "VQGAN decoders from a quantised codebook latent (x8/x16, straight-through)",
    ),
    "dit_patch": (
        _dit_patch,
        "DiT / PixArt / MAR output path: latent patch tokens -> mixer -> unpatchify -> "
        "x8 LDM decoder",
    ),
    "stylegan2": (
        _stylegan2,
        "StyleGAN2-like synthesis (demodulated convs, noise, FIR-filtered up-sampling, "
        "skip ToRGB), GLO-style",
    ),
    "stylegan3": (
        _stylegan3,
        "StyleGAN3-like alias-free synthesis (Fourier features, filtered nonlinearities)",
    ),
    "biggan": (
        _biggan,
        "BigGAN-like conditional-BN residual up blocks (nearest x2), truncation at sampling",
    ),
    "sr_cascade": (
        _sr_cascade,
        "Cascade super-resolution stages (GLIDE/Imagen/Karlo): fixed-kernel up-sampling "
        "+ U-Net residual",
    ),
}


@hookimpl
def fpattr_register_synthesizers(register: Any) -> None:
    for name, (factory, description) in BUILTIN_FAMILIES.items():
        register(name, factory, description=description, design_space=BUILTIN_DESIGN_SPACES[name])
