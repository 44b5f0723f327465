"""The synthesizer-family protocol, and a base class that does the common work.

A *family* is a parametric kind of generative model (a shallow autoencoder, a
GAN-like decoder, a one-step denoiser ...). Its ``design_space()`` lists named,
ordered, discrete design choices; every combination is one *architecture*.
Model synthesis trains many small instances (architecture x seed) on real
photos; the extractor then learns to tell those instances apart, which is what
makes it attribute real generators it never saw.

Plugin authors implement :class:`SynthesizerFamily` (subclassing
:class:`FamilyBase` is the easy way) and register a zero-argument factory::

    from fpattr import hookimpl

    @hookimpl
    def fpattr_register_synthesizers(register):
        def factory():
            from my_plugin.family import MyFamily  # torch is imported here, not before

            return MyFamily()

        register("my_family", factory, description="what it imitates")

Conventions every family follows (the zoo builder and the fidelity check rely on them):

* images are float32 in [0, 1]; torch tensors are (N, 3, H, W), numpy arrays (N, H, W, 3);
* ``architectures()`` is the cartesian product of ``design_space()`` in a
  deterministic order (first choice varies slowest), so indices are stable;
* ``arch_id(arch)`` is short, stable and unique within the family (it names folders);
* ``train`` zeroes the gradients every step and stops at ``loss_floor`` (the paper
  uses 0.005 MSE) or ``max_steps``, whichever comes first; it is deterministic
  given ``seed`` on one device;
* ``generate`` returns uint8 (n, H, W, 3); families that transform photos
  (autoencoders, denoisers) take held-out photos, families that sample from
  noise ignore them (``needs_photos = False``);
* a family object is picklable (the zoo sends it to worker processes) and
  holds no trained state: everything trained lives in the ``torch.nn.Module``.

This module does not import torch at import time (only inside methods), so the
protocol can be imported by light code such as the CLI or a plugin's tests.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fpattr.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import torch

Arch = dict[str, str]

#: The paper's reconstruction-loss floor (MSE on [0, 1] images).
DEFAULT_LOSS_FLOOR = 0.005


@runtime_checkable
class SynthesizerFamily(Protocol):
    """What the zoo builder needs from a family of synthetic generative models."""

    #: Registry name, e.g. ``"autoencoder"``.
    name: str
    #: One line: which real generators this family imitates.
    description: str
    #: True when ``generate`` transforms photos (then the zoo passes held-out photos).
    needs_photos: bool

    def design_space(self) -> dict[str, list[str]]:
        """Ordered design choices -> ordered values, e.g. ``{"upsampling": ["nearest", ...]}``."""
        ...

    def architectures(self, where: Mapping[str, Iterable[str]] | None = None) -> list[Arch]:
        """Every architecture (cartesian product), optionally restricted to some values."""
        ...

    def arch_id(self, arch: Mapping[str, str]) -> str:
        """Short stable id, e.g. ``"ae-K2L1Ubilinear-Arelu-Nbn-Spost"``."""
        ...

    def build(self, arch: Mapping[str, str], *, width: int, image_size: int) -> torch.nn.Module:
        """An untrained model of this architecture (``width`` channels in hidden layers)."""
        ...

    def train(
        self,
        model: torch.nn.Module,
        photos: torch.Tensor,
        *,
        seed: int,
        loss_floor: float,
        max_steps: int,
        batch_size: int,
        device: str,
        crop: int | None = None,
    ) -> dict[str, Any]:
        """Fit ``model`` to ``photos`` (N, 3, S, S); returns ``{"final_loss", "steps", ...}``.

        ``crop`` trains on random crops of that size (fully convolutional models
        do not care, and it is several times faster); ``None`` = whole photos.
        """
        ...

    def generate(
        self,
        model: torch.nn.Module,
        photos: torch.Tensor | None,
        n: int,
        *,
        seed: int,
        device: str,
    ) -> np.ndarray:
        """``n`` generated images, uint8 (n, H, W, 3)."""
        ...


class FamilyBase:
    """Shared implementation: design space bookkeeping, the training loop, generation.

    Subclasses set :attr:`name`, :attr:`description`, :attr:`DESIGN_SPACE`,
    :attr:`ID_PREFIX`, :attr:`ID_CODES` and implement :meth:`build`,
    :meth:`training_loss` and :meth:`sample`; they may override :meth:`setup_training`
    when training needs extra parameters (e.g. per-image latents).
    """

    name: str = ""
    description: str = ""
    needs_photos: bool = True
    #: choice -> values, in order (first choice varies slowest in ``architectures()``).
    DESIGN_SPACE: dict[str, list[str]] = {}
    #: prefix of every arch id of this family, e.g. ``"ae"``.
    ID_PREFIX: str = ""
    #: choice -> one-letter code used in arch ids; choices sharing a group are written
    #: together, groups are separated by ``-`` (see :attr:`ID_GROUPS`).
    ID_CODES: dict[str, str] = {}
    #: groups of choices written without separator, e.g. ``[["K", "L", "U"], ["A"]]``.
    ID_GROUPS: list[list[str]] = []
    #: value abbreviations in arch ids (``batch`` -> ``bn``); other values are written as-is.
    VALUE_CODES: dict[str, str] = {"batch": "bn", "instance": "in", "group": "gn"}
    #: Adam learning rate of the default training loop.
    lr: float = 2e-3

    # -- design space --------------------------------------------------------------------------

    def design_space(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.DESIGN_SPACE.items()}

    def architectures(self, where: Mapping[str, Iterable[str]] | None = None) -> list[Arch]:
        """Cartesian product of the design space, restricted by ``where`` (choice -> values).

        ``where`` keys this family does not have are ignored (one filter can serve
        several families); values it does not have are an error.
        """
        space = self.design_space()
        for key, values in (where or {}).items():
            if key not in space:
                continue
            keep = list(values)
            unknown = [v for v in keep if v not in space[key]]
            if unknown:
                raise UsageError(
                    f"{self.name}: unknown value(s) {unknown} for {key!r}; choose from {space[key]}"
                )
            space[key] = [v for v in space[key] if v in keep]
        keys = list(space)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*space.values())]

    def check_arch(self, arch: Mapping[str, str]) -> None:
        space = self.DESIGN_SPACE
        missing = [k for k in space if k not in arch]
        bad = {k: v for k, v in arch.items() if k not in space or v not in space[k]}
        if missing or bad:
            raise UsageError(f"{self.name}: invalid architecture {dict(arch)} (missing {missing})")

    def check_buildable(self, arch: Mapping[str, str], image_size: int) -> None:
        """:meth:`check_arch`, then the family's ``size_problem(arch, image_size)`` (when it
        has one: the reason ``arch`` cannot be built at that size, None when it can) as a
        :class:`UsageError`; the first lines of a built-in ``build``."""
        self.check_arch(arch)
        size_problem = getattr(self, "size_problem", None)
        problem = size_problem(arch, image_size) if size_problem is not None else None
        if problem:
            raise UsageError(problem)

    def arch_id(self, arch: Mapping[str, str]) -> str:
        self.check_arch(arch)
        by_code = {code: choice for choice, code in self.ID_CODES.items()}
        groups = self.ID_GROUPS or [[self.ID_CODES[c]] for c in self.DESIGN_SPACE]
        parts = [self.ID_PREFIX] if self.ID_PREFIX else []
        for group in groups:
            text = ""
            for code in group:
                value = arch[by_code[code]]
                text += code + self.VALUE_CODES.get(value, value)
            parts.append(text)
        return "-".join(parts)

    # -- model ---------------------------------------------------------------------------------

    def build(self, arch: Mapping[str, str], *, width: int, image_size: int) -> torch.nn.Module:
        raise NotImplementedError

    def setup_training(
        self, model: torch.nn.Module, photos: torch.Tensor, gen: torch.Generator
    ) -> list[dict[str, Any]]:
        """Hook before the first step (e.g. to attach per-photo latents to ``model``).

        Returns optimiser parameter groups with their own settings, e.g.
        ``[{"params": [model.latents], "lr": 2e-2}]``; every other parameter of
        ``model`` is trained with :attr:`lr`.
        """
        return []

    def forward_pair(
        self,
        model: torch.nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One training batch through the model: ``(output, target)``, both float
        (B, 3, h, w) on the [0, 1] scale on ``device``, ``output`` with gradients.

        Families that implement this (instead of :meth:`training_loss`) get the
        ``loss`` design choice of :mod:`fpattr.synthesis.losses` for free: the
        objective is chosen by ``model.loss_kind`` (set it in :meth:`build`, default
        ``"l2"``), and ``*_adv`` adds the adversarial phase to :meth:`train`.
        """
        raise NotImplementedError

    def training_loss(
        self,
        model: torch.nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Loss for one batch: the MSE on the [0, 1] image scale (what the floor is about),
        or ``(objective, mse)`` when the family optimises something else besides.

        The default runs :meth:`forward_pair` and the objective ``model.loss_kind`` names
        (extra terms a family adds, e.g. a KL or commitment loss, are read from
        ``model.aux_loss`` when the forward pass sets it).
        """
        import torch.nn.functional as F

        from fpattr.synthesis.losses import pixel_objective

        out, target = self.forward_pair(model, photos, idx, crop, gen, device)
        mse = F.mse_loss(out, target)
        kind = getattr(model, "loss_kind", "l2")
        objective = mse if kind == "l2" else pixel_objective(kind, out, target)
        aux = getattr(model, "aux_loss", None)
        if aux is not None:
            objective = objective + aux
            model.aux_loss = None
        return (objective, mse) if objective is not mse else mse

    def sample(
        self,
        model: torch.nn.Module,
        photos: torch.Tensor | None,
        n: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor:
        """``n`` images as a float tensor (n, 3, H, W), roughly in [0, 1]."""
        raise NotImplementedError

    # -- shared loop ---------------------------------------------------------------------------

    def train(
        self,
        model: torch.nn.Module,
        photos: torch.Tensor,
        *,
        seed: int,
        loss_floor: float = DEFAULT_LOSS_FLOOR,
        max_steps: int = 150,
        batch_size: int = 16,
        device: str = "cpu",
        crop: int | None = None,
    ) -> dict[str, Any]:
        """Adam on ``training_loss`` until its running mean is under ``loss_floor``.

        The running mean (EMA, 0.8) keeps one lucky batch from stopping training.
        Gradients are zeroed every step: the paper's public code forgot to, which
        silently turns Adam into a run-away accumulator.
        """
        import torch

        if photos.ndim != 4 or photos.shape[1] != 3:
            raise UsageError(f"photos must be (N, 3, H, W), got {tuple(photos.shape)}")
        size = int(photos.shape[-1])
        crop = min(int(crop or size), size)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model.to(device).train()
        groups = self.setup_training(model, photos, gen)
        special = {id(p) for g in groups for p in g["params"]}
        main = [p for p in model.parameters() if id(p) not in special]
        opt = torch.optim.Adam([{"params": main}, *groups], lr=self.lr)
        ema: float | None = None
        step = 0
        for step in range(1, max_steps + 1):
            idx = torch.randint(len(photos), (batch_size,), generator=gen)
            opt.zero_grad(set_to_none=True)
            loss = self.training_loss(model, photos, idx, crop, gen, device)
            if isinstance(loss, tuple):  # (objective, reconstruction MSE for the floor)
                loss, reported = loss
            else:
                reported = loss
            value = float(reported.detach())
            if not math.isfinite(value):
                raise RuntimeError(f"{self.name}: training diverged at step {step} (loss {value})")
            loss.backward()
            opt.step()
            ema = value if ema is None else 0.8 * ema + 0.2 * value
            if step >= 5 and ema < loss_floor:
                break
        reached = ema is not None and ema < loss_floor
        adv = 0
        if str(getattr(model, "loss_kind", "")).endswith("_adv") and self.adv_steps > 0:
            adv = self._adversarial_phase(model, photos, opt, gen, crop, batch_size, device)
        model.eval()
        return {
            "final_loss": float(ema if ema is not None else float("nan")),
            "steps": step,
            "reached_floor": bool(reached),
            "adv_steps": adv,
        }

    #: steps of the adversarial phase that ``*_adv`` losses add after the floor (or budget).
    adv_steps: int = 60

    def _adversarial_phase(
        self,
        model: torch.nn.Module,
        photos: torch.Tensor,
        opt: torch.optim.Optimizer,
        gen: torch.Generator,
        crop: int,
        batch_size: int,
        device: str,
    ) -> int:
        """Patch-GAN fine-tuning after reconstruction, as LDM/VQGAN autoencoders start their
        discriminator late (Esser et al. 2021): hinge loss, the reconstruction objective kept."""
        import torch

        from fpattr.synthesis.losses import (
            ADV_WEIGHT,
            PatchDiscriminator,
            hinge_d_loss,
            hinge_g_loss,
        )

        disc = PatchDiscriminator().to(device)
        d_opt = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.9))
        for step in range(1, self.adv_steps + 1):
            idx = torch.randint(len(photos), (batch_size,), generator=gen)
            out, target = self.forward_pair(model, photos, idx, crop, gen, device)
            d_opt.zero_grad(set_to_none=True)
            hinge_d_loss(disc(target), disc(out.detach())).backward()
            d_opt.step()
            opt.zero_grad(set_to_none=True)
            loss = self.training_loss_from(model, out, target) + ADV_WEIGHT * hinge_g_loss(
                disc(out)
            )
            if not math.isfinite(float(loss.detach())):
                raise RuntimeError(f"{self.name}: adversarial phase diverged at step {step}")
            loss.backward()
            opt.step()
        return self.adv_steps

    def training_loss_from(
        self, model: torch.nn.Module, out: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """The reconstruction objective of ``model.loss_kind`` for a computed pair."""
        from fpattr.synthesis.losses import pixel_objective

        obj = pixel_objective(str(getattr(model, "loss_kind", "l2")), out, target)
        aux = getattr(model, "aux_loss", None)
        if aux is not None:
            obj = obj + aux
            model.aux_loss = None
        return obj

    def generate(
        self,
        model: torch.nn.Module,
        photos: torch.Tensor | None,
        n: int,
        *,
        seed: int,
        device: str = "cpu",
        batch_size: int = 16,
    ) -> np.ndarray:
        """Generate in batches without gradients, in eval mode, quantised to uint8."""
        import torch

        if self.needs_photos and (photos is None or len(photos) == 0):
            raise UsageError(f"{self.name}: generate() needs photos to transform")
        gen = torch.Generator().manual_seed(seed)
        model.to(device).eval()
        import numpy as np

        out: list[np.ndarray] = []
        done = 0
        with torch.no_grad():
            while done < n:
                k = min(batch_size, n - done)
                chunk = None
                if photos is not None and len(photos):
                    sel = torch.arange(done, done + k) % len(photos)
                    chunk = photos[sel]
                imgs = self.sample(model, chunk, k, gen, device)
                arr = imgs.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
                out.append(arr.permute(0, 2, 3, 1).cpu().numpy())
                done += k
        return np.concatenate(out) if out else np.zeros((0, 1, 1, 3), np.uint8)


def random_crops(
    photos: torch.Tensor, idx: torch.Tensor, crop: int, gen: torch.Generator, align: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ``crop`` x ``crop`` windows of ``photos[idx]`` at offsets that are multiples
    of ``align``; returns (crops, y0, x0) so latent maps can be cropped in step."""
    import torch

    size = photos.shape[-1]
    n_pos = (size - crop) // align + 1
    y0 = torch.randint(n_pos, (len(idx),), generator=gen) * align
    x0 = torch.randint(n_pos, (len(idx),), generator=gen) * align
    if crop == size:
        return photos[idx], y0, x0
    crops = torch.stack(
        [
            photos[i, :, y : y + crop, x : x + crop]
            for i, y, x in zip(idx.tolist(), y0.tolist(), x0.tolist(), strict=True)
        ]
    )
    return crops, y0, x0
