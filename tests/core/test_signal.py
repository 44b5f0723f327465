import numpy as np

from fpattr import signal


def test_residual_removes_constant_and_keeps_noise():
    x = np.full((32, 32), 0.5, np.float32)
    assert np.abs(signal.residual(x)).max() < 1e-6
    n = np.random.default_rng(0).normal(0, 0.1, (64, 64)).astype(np.float32)
    assert signal.residual(n).std() > 0.5 * n.std()


def test_power_spectrum_finds_a_periodic_pattern():
    x = np.zeros((64, 64), np.float32)
    x[:, ::2] = 1.0  # period-2 columns -> peak at horizontal Nyquist
    p = signal.power_spectrum(x)
    assert np.unravel_index(np.argmax(p), p.shape) == (32, 0)


def test_azimuthal_average_shapes_and_flat_spectrum():
    flat = np.ones((3, 32, 32), np.float32)
    a = signal.azimuthal_average(flat, 16)
    assert a.shape == (3, 16) and np.allclose(a, 1.0)


def test_block_pool():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert signal.block_pool(x, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
