"""The fingerprint extractor: residual -> FFT amplitude -> CNN -> embedding.

Everything, preprocessing included, is one ``torch.nn.Module`` whose input is
what the inference pipeline hands to every backbone: NHWC float32 views in
[0, 1]. So the exported ONNX graph *is* the whole method, and nothing has to be
re-implemented (and drift) in numpy at inference time:

* residual: x - binomial5x5(x), the same fixed filter as :mod:`fpattr.signal`;
* spectrum: the 2-D DFT written as two real matrix products per axis (cos/sin
  matrices with the fft-shift folded in), so the graph needs only MatMul and
  exports to any opset, no FFT operator; log power, instance-normalised;
* CNN: a compact ResNet over [residual, log-spectrum] channels, global average
  pooling, a linear embedding, L2-normalised.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ExtractorConfig:
    size: int = 64  #: view side
    widths: list[int] = field(default_factory=lambda: [24, 48, 96, 192])
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    dim: int = 128  #: embedding size
    spectrum: bool = True  #: feed the log power spectrum of the residual
    spatial: bool = True  #: feed the residual itself
    #: stride of the stem convolution: 2 lets 128-px views (8 periods of an x16 pattern,
    #: 16 of an x8 one) cost the CNN what 64-px views cost
    stem_stride: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dft_mats(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary DFT matrices with fftshift applied to the output index."""
    k = torch.arange(n, dtype=torch.float64)
    shifted = (k - n // 2) % n  # row i of the shifted spectrum = frequency (i - n/2) mod n
    ang = -2 * math.pi * shifted[:, None] * k[None, :] / n
    return torch.cos(ang).float(), torch.sin(ang).float()


class Preprocess(nn.Module):
    """NHWC [0,1] -> NCHW stack of residual and/or normalised log power spectrum."""

    def __init__(self, size: int, spectrum: bool = True, spatial: bool = True) -> None:
        super().__init__()
        b = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
        k2 = torch.outer(b, b)
        self.register_buffer("blur", k2.expand(3, 1, 5, 5).clone())
        c, s = _dft_mats(size)
        self.register_buffer("dft_c", c)
        self.register_buffer("dft_s", s)
        self.spectrum, self.spatial = spectrum, spatial
        self.out_channels = 3 * (int(spectrum) + int(spatial))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        xp = F.pad(x, (2, 2, 2, 2), mode="reflect")
        return x - F.conv2d(xp, self.blur, groups=3)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        x = views.permute(0, 3, 1, 2)
        r = self.residual(x)
        parts = []
        if self.spatial:
            parts.append(r * 20.0)  # residuals are ~0.01-0.05: bring them to unit scale
        if self.spectrum:
            rc = r - r.mean(dim=(2, 3), keepdim=True)
            c, s = self.dft_c, self.dft_s
            # X = W r W^T with W = C + iS  ->  Re = C r C^T - S r S^T, Im = C r S^T + S r C^T
            rcT, rsT = rc @ c.t(), rc @ s.t()
            re = c @ rcT - s @ rsT
            im = c @ rsT + s @ rcT
            logp = torch.log(re * re + im * im + 1e-6)
            mu = logp.mean(dim=(2, 3), keepdim=True)
            sd = logp.std(dim=(2, 3), keepdim=True) + 1e-5
            parts.append((logp - mu) / sd)
        return torch.cat(parts, dim=1)


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + self.skip(x))


class Extractor(nn.Module):
    """views (N, S, S, 3) in [0, 1] -> L2-normalised embeddings (N, dim)."""

    def __init__(self, cfg: ExtractorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pre = Preprocess(cfg.size, cfg.spectrum, cfg.spatial)
        w = cfg.widths
        self.stem = nn.Sequential(
            nn.Conv2d(self.pre.out_channels, w[0], 3, cfg.stem_stride, 1, bias=False),
            nn.BatchNorm2d(w[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        cin = w[0]
        for i, (cout, n) in enumerate(zip(w, cfg.blocks, strict=True)):
            for j in range(n):
                layers.append(Block(cin, cout, 2 if (j == 0 and i > 0) else 1))
                cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, cfg.dim)

    def features(self, views: torch.Tensor) -> torch.Tensor:
        h = self.body(self.stem(self.pre(views)))
        return self.head(h.mean(dim=(2, 3)))

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(views), dim=1)


class CosineClassifier(nn.Module):
    """Normalised-softmax head over training models (better-spread embeddings)."""

    def __init__(self, dim: int, n_classes: int, scale: float = 16.0, margin: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = emb @ F.normalize(self.weight, dim=1).t()
        if labels is not None and self.margin:
            logits = logits - self.margin * F.one_hot(labels, logits.shape[1])
        return self.scale * logits


def batch_hard_triplet(
    emb: torch.Tensor, labels: torch.Tensor, margin: float = 0.2
) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017) on L2-normalised embeddings."""
    d = torch.cdist(emb, emb).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos = (d * (same & ~eye)).max(dim=1).values
    neg = d.masked_fill(same, float("inf")).min(dim=1).values
    valid = (same & ~eye).any(dim=1) & torch.isfinite(neg)
    if not valid.any():
        return emb.sum() * 0.0
    return F.relu(pos - neg + margin)[valid].mean()


def count_macs(model: Extractor) -> int:
    """Multiply-accumulates of one view (convs + linear + DFT), for speed budgeting."""
    size = model.cfg.size
    macs = 0
    hooks = []

    def conv_hook(m: nn.Conv2d, inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        macs += int(out.numel() // out.shape[0]) * k

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
    with torch.no_grad():
        model.eval()(torch.rand(1, size, size, 3))
    for h in hooks:
        h.remove()
    if model.cfg.spectrum:
        macs += 3 * 4 * 2 * size**3
    return macs + model.head.in_features * model.head.out_features
