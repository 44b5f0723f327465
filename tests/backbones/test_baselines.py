"""Classic baselines (marra, corvi, dct): contract, identity, the property each paper uses."""

from __future__ import annotations

import numpy as np
import pytest

from fpattr import signal
from fpattr.backbones.baselines import CorviBackbone, DctBackbone, MarraBackbone, log_dct
from fpattr.evaluation.metrics import roc_auc
from fpattr.plugins import PluginHost
from fpattr.testing import generator_image

FACTORIES = {"marra": MarraBackbone, "corvi": CorviBackbone, "dct": DctBackbone}
VARIANTS = [
    ("marra", {}),
    ("marra", {"channels": "rgb", "denoiser": "binomial"}),
    ("marra", {"sigma": 0.02, "window": 5}),
    ("corvi", {}),
    ("corvi", {"scale": "log", "band": "high", "channels": "luma"}),
    ("corvi", {"band": "low", "denoiser": "wiener"}),
    ("dct", {}),
    ("dct", {"features": "azimuthal"}),
]
KINDS = ("nearest", "bilinear", "checker")
N_PER_KIND = 8


@pytest.fixture(scope="module")
def fake_images() -> dict[str, np.ndarray]:
    """Views of three fake generators, (N_PER_KIND, 64, 64, 3) float32 each.

    Seeds differ across kinds: the same seed gives the same scene, whose residual
    would correlate across generators and blur what is being measured.
    """
    return {k: _fake(k, range(100 * i, 100 * i + N_PER_KIND)) for i, k in enumerate(KINDS)}


def _fake(kind: str, seeds, trace: int = 1234) -> np.ndarray:
    return np.stack([generator_image(kind, 64, s, trace) for s in seeds]).astype(np.float32) / 255


def _smooth(seed: int, n: int, size: int = 64) -> np.ndarray:
    """Scene-like content with no generator trace: bilinear-upscaled random colours."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = (rng.random((size // 8, size // 8, 3)) * 255).astype(np.uint8)
        big = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
        out.append(np.asarray(big, np.float32) / 255)
    return np.stack(out)


def _unit(e: np.ndarray) -> np.ndarray:
    return e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)


def _separation(bb, images: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """(mean within-generator cosine, mean across-generator cosine, pair ROC-AUC)."""
    emb = {k: _unit(bb.embed(v)) for k, v in images.items()}
    kinds = list(emb)
    iu = np.triu_indices(N_PER_KIND, 1)
    within = np.concatenate([(emb[k] @ emb[k].T)[iu] for k in kinds])
    across = np.concatenate(
        [(emb[a] @ emb[b].T).ravel() for i, a in enumerate(kinds) for b in kinds[i + 1 :]]
    )
    return float(within.mean()), float(across.mean()), roc_auc(within, across)


@pytest.mark.parametrize(("name", "options"), VARIANTS)
def test_shape_dtype_determinism(name, options):
    bb = FACTORIES[name](size=32, **options)
    v = np.random.default_rng(0).random((5, 32, 32, 3), dtype=np.float32)
    e1, e2 = bb.embed(v), bb.embed(v.copy())
    assert e1.dtype == np.float32 and e1.shape == (5, bb.embedding_dim)
    assert np.array_equal(e1, e2) and np.isfinite(e1).all()
    assert np.array_equal(bb.embed(v[2:3]), e1[2:3])  # a view does not depend on its batch
    flat = bb.embed(np.full((2, 32, 32, 3), 0.5, np.float32))  # no NaN on a flat view
    assert np.isfinite(flat).all()


@pytest.mark.parametrize("name", list(FACTORIES))
def test_identity_depends_on_config(name):
    make = FACTORIES[name]
    assert make().id == f"{name}-v1-s64" and make().default_views == 4
    assert make().sha256 == make().sha256
    assert make(size=32).sha256 != make().sha256 and make(size=32).id == f"{name}-v1-s32"
    assert make(views=9).default_views == 9
    info = make().info()
    assert info["config"]["name"] == name and info["sha256"] == make().sha256
    with pytest.raises(ValueError):
        make(size=15)


@pytest.mark.parametrize(
    ("name", "options", "tag"),
    [
        ("marra", {"channels": "rgb"}, "rgb"),
        ("marra", {"sigma": 0.02}, "sigma0.02"),
        ("corvi", {"scale": "log"}, "log"),
        ("corvi", {"band": "high"}, "high"),
        ("dct", {"features": "azimuthal"}, "azimuthal"),
        ("dct", {"eps": 1e-3}, "eps0.001"),
    ],
)
def test_options_change_identity(name, options, tag):
    bb, ref = FACTORIES[name](**options), FACTORIES[name]()
    assert bb.sha256 != ref.sha256 and bb.id == f"{name}-v1-s64-{tag}"


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("marra", {"denoiser": "bm3d"}),
        ("marra", {"window": 4}),
        ("marra", {"sigma": 0}),
        ("corvi", {"band": "mid"}),
        ("corvi", {"scale": "db"}),
        ("dct", {"features": "fft"}),
        ("dct", {"eps": 0}),
    ],
)
def test_bad_options_rejected(name, bad):
    with pytest.raises(ValueError):
        FACTORIES[name](**bad)


# Measured on these 3 x 8 images (within / across / AUC): marra 0.22/-0.00/0.62,
# corvi 0.77/0.20/0.94, dct 0.52/0.26/0.89. marra only sees a deterministic additive
# pattern (checker); nearest/bilinear leave second-order traces that average out of a
# mean residual, so its pair AUC is capped near 1/3 * 1 + 2/3 * 0.5 = 0.67 here.
@pytest.mark.parametrize(
    ("name", "margin", "min_auc"), [("marra", 0.1, 0.58), ("corvi", 0.3, 0.85), ("dct", 0.15, 0.8)]
)
def test_same_generator_closer_than_other_generator(name, margin, min_auc, fake_images):
    within, across, auc = _separation(FACTORIES[name](), fake_images)
    assert within > across + margin
    assert auc > min_auc


def test_marra_separates_two_models_of_one_architecture():
    """Marra's point: the fingerprint is per model, not per architecture."""
    imgs = {t: _fake("checker", range(10 * t, 10 * t + N_PER_KIND), trace=t) for t in (1, 2)}
    within, across, auc = _separation(MarraBackbone(), imgs)
    assert within > 0.4 and across < 0.05 and auc > 0.99


def test_marra_centroid_converges_to_planted_fingerprint():
    """A fixed additive pattern under per-image noise: averaging N residuals recovers it."""
    n, size = 20, 64
    pattern = np.random.default_rng(7).normal(0, 0.02, (size, size)).astype(np.float32)
    noise = np.random.default_rng(3).normal(0, 0.04, (n, size, size, 3))
    images = np.clip(_smooth(1, n) + pattern[None, :, :, None] + noise, 0, 1)
    emb = _unit(MarraBackbone().embed(images))

    def corr(k: int) -> float:
        return float(np.corrcoef(emb[:k].mean(axis=0), pattern.ravel())[0, 1])

    assert corr(1) < 0.65 < corr(5) < corr(n) and corr(n) > 0.8  # measured .54, .79, .89
    clean = _unit(MarraBackbone().embed(_smooth(2, n))).mean(axis=0)  # no pattern planted
    assert abs(np.corrcoef(clean, pattern.ravel())[0, 1]) < 0.1


def test_corvi_peak_at_the_period_of_a_planted_pattern():
    size, period = 64, 4
    xx = np.arange(size)
    wave = 0.02 * np.cos(2 * np.pi * xx / period)[None, :, None]  # vertical stripes
    images = np.clip(_smooth(3, 8) + wave, 0, 1).astype(np.float32)
    bb = CorviBackbone()
    spec = bb.spectrum_image(_unit(bb.embed(images)).mean(axis=0))
    assert np.isnan(spec[size // 2, size // 2])  # DC is not part of the embedding
    peak = np.unravel_index(np.nanargmax(spec), spec.shape)
    assert peak[0] == size // 2 and abs(peak[1] - size // 2) == size // period


def test_dct_of_a_constant_image_is_pure_dc():
    x = np.full((2, 16, 16), 0.25, np.float32)
    c = signal.dct2(x)
    assert c[:, 0, 0] == pytest.approx(0.25 * 16)  # orthonormal: DC = mean * sqrt(H * W)
    c[:, 0, 0] = 0
    assert np.abs(c).max() < 1e-6
    feats = log_dct(x, eps=1e-4)
    assert feats[0, 0, 0] == pytest.approx(np.log(4 + 1e-4))
    assert np.allclose(feats[0].ravel()[1:], np.log(1e-4), atol=1e-3)
    # orthonormal: energy is preserved
    r = np.random.default_rng(0).random((16, 16), dtype=np.float32)
    assert np.sum(signal.dct2(r) ** 2) == pytest.approx(np.sum(r**2), rel=1e-4)


def test_baselines_registered_as_builtins():
    reg = PluginHost(load_entry_points=False).registry("backbone")
    for name, cls in FACTORIES.items():
        entry = reg.entry(name)
        assert entry.plugin == "fpattr.backbones.builtin" and entry.description
        bb = entry.obj(size=32, views=1)
        assert isinstance(bb, cls) and bb.name == name and bb.input_size == 32
