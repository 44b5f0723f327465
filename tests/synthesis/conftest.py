"""Tiny settings so every synthesis test runs in seconds on a laptop core."""

from __future__ import annotations

import numpy as np
import pytest

#: 16 px images, 8 channels, 3 training steps: enough to exercise every code path.
TINY = {
    "image_size": 16,
    "images_per_model": 2,
    "max_steps": 3,
    "width": 8,
    "batch_size": 4,
    "train_crop": 16,
    "train_photos": 8,
    "photo_pool": 16,
    "progress": False,
    "device": "cpu",
}


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models on a shared 2-core machine: extra OpenMP threads only spin."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny() -> dict:
    """Keyword arguments of build_zoo for a tiny, fast zoo."""
    return dict(TINY)


@pytest.fixture(scope="session")
def families():
    """The built-in families, resolved through the plugin registry like the CLI does."""
    from fpattr.plugins import PluginHost

    reg = PluginHost(load_entry_points=False).registry("synthesizer")
    return {name: reg.get(name)() for name in ("autoencoder", "gan_decoder", "diffusion_denoiser")}


@pytest.fixture(scope="session")
def tiny_photos():
    """(8, 3, 16, 16) smooth random 'photos' as a torch tensor."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.random((8, 3, 4, 4)).astype(np.float32)
    t = torch.from_numpy(x)
    return torch.nn.functional.interpolate(t, size=16, mode="bilinear", align_corners=False)
