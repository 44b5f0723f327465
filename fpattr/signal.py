"""Signal processing shared by the training-free backbones, fidelity and training.

All functions take float32 arrays in [0, 1] and are numpy-only (no torch), so
inference, the fidelity metric and the baselines agree on one definition of a
"noise residual" and a "power spectrum".

The denoiser is deliberately simple and fixed (a separable binomial low-pass):
generator fingerprints live in the high frequencies it leaves in the residual,
and the learned extractor uses the same filter inside its ONNX graph.
"""

from __future__ import annotations

import numpy as np

#: 5-tap binomial kernel (1 4 6 4 1)/16: cheap, separable, no ringing.
BINOMIAL5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32) / 16.0


def to_gray(x: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) -> (..., H, W) luma (ITU-R BT.601 weights)."""
    # copy=False: float32 input already gives a fresh float32 array (no second copy)
    return (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114).astype(
        np.float32, copy=False
    )


def lowpass(x: np.ndarray) -> np.ndarray:
    """Separable binomial blur over the last two axes (H, W), reflect padding."""
    pad = [(0, 0)] * (x.ndim - 2) + [(2, 2), (2, 2)]
    xp = np.pad(x, pad, mode="reflect")
    h, w = x.shape[-2:]
    acc = np.zeros(xp.shape[:-1] + (w,), dtype=np.float32)
    for i, k in enumerate(BINOMIAL5):
        acc += k * xp[..., i : i + w]
    out = np.zeros(x.shape, dtype=np.float32)
    for i, k in enumerate(BINOMIAL5):
        out += k * acc[..., i : i + h, :]
    return out


def residual(x: np.ndarray) -> np.ndarray:
    """Noise residual r = x - denoise(x) over the last two axes (H, W).

    For colour input pass channel-first arrays (..., 3, H, W) or call on gray.
    """
    x = np.asarray(x, dtype=np.float32)
    return x - lowpass(x)


def power_spectrum(r: np.ndarray) -> np.ndarray:
    """Centered 2-D power spectrum |FFT2(r)|^2 over the last two axes (float32)."""
    r = r - r.mean(axis=(-2, -1), keepdims=True)
    f = np.fft.fftshift(np.fft.fft2(r), axes=(-2, -1))
    return (f.real**2 + f.imag**2).astype(np.float32)


def azimuthal_average(spec: np.ndarray, n_bins: int | None = None) -> np.ndarray:
    """Average a centered 2-D spectrum over rings of equal radius.

    Returns (..., n_bins) with bin 0 = DC and the last bin = the Nyquist ring;
    corners beyond Nyquist are folded into the last bin.
    """
    h, w = spec.shape[-2:]
    n_bins = n_bins or min(h, w) // 2
    yy, xx = np.indices((h, w))
    rr = np.hypot((yy - h // 2) / (h / 2), (xx - w // 2) / (w / 2))  # 0..~1.41
    idx = np.minimum((rr * (n_bins - 1)).round().astype(int), n_bins - 1).ravel()
    counts = np.bincount(idx, minlength=n_bins).astype(np.float32)
    flat = spec.reshape(-1, h * w)
    out = np.stack([np.bincount(idx, weights=row, minlength=n_bins) for row in flat])
    out = (out / np.maximum(counts, 1)).astype(np.float32)
    return out.reshape(spec.shape[:-2] + (n_bins,))


def block_pool(spec: np.ndarray, grid: int) -> np.ndarray:
    """Average-pool the last two axes into a grid x grid map (H, W divisible by grid)."""
    h, w = spec.shape[-2:]
    if h % grid or w % grid:
        raise ValueError(f"spectrum {h}x{w} is not divisible by grid {grid}")
    s = spec.reshape(spec.shape[:-2] + (grid, h // grid, grid, w // grid))
    return s.mean(axis=(-3, -1))


def box_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Local mean over a window x window box on the last two axes (symmetric padding)."""
    from scipy.ndimage import uniform_filter

    size = (1,) * (x.ndim - 2) + (window, window)
    return uniform_filter(np.asarray(x, dtype=np.float32), size=size, mode="reflect")


def wiener_residual(x: np.ndarray, window: int = 3, sigma: float | None = None) -> np.ndarray:
    """Residual x - wiener(x) of a locally adaptive (Lee/Wiener) denoiser, last two axes.

    Unlike the fixed low-pass of :func:`residual`, the Wiener filter leaves strong
    edges alone (local variance >> noise variance), so the residual keeps the
    noise-like traces of a generator and far less of the scene: this is the role the
    PRNU denoisers play in Marra et al. 2019. With x_hat = mu + max(v - s2, 0) /
    max(v, s2) * (x - mu), the residual is (x - mu) * s2 / max(v, s2).

    ``sigma`` is the noise std in [0, 1] units; None estimates s2 per image as the
    mean local variance (as scipy.signal.wiener does).
    """
    x = np.asarray(x, dtype=np.float32)
    mu = box_mean(x, window)
    var = np.maximum(box_mean(x * x, window) - mu * mu, 0.0)
    if sigma is None:
        s2 = var.mean(axis=(-2, -1), keepdims=True)
    else:
        s2 = np.float32(sigma) ** 2
    s2 = np.maximum(s2, np.float32(1e-10))
    return ((x - mu) * (s2 / np.maximum(var, s2))).astype(np.float32)


def dct2(x: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D type-II DCT over the last two axes (as in Frank et al. 2020)."""
    from scipy.fft import dctn

    return dctn(np.asarray(x, dtype=np.float32), type=2, axes=(-2, -1), norm="ortho")
