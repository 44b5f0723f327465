"""Benchmark generators: every kind trains and samples; registry pairs; resumable runs.

Everything runs at 16x16 with a few steps on synthetic photos written to tmp_path, so the
tests take seconds and read nothing outside the repository.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import make_real_benchmark as mrb  # noqa: E402
from generators import models as gm  # noqa: E402
from generators import train as gt  # noqa: E402

CPU = torch.device("cpu")


def tiny(cfg: gm.BenchConfig, steps: int = 1) -> gm.BenchConfig:
    return replace(cfg, size=16, width=8, z_dim=8, batch=4, steps=steps)


def fake_photos(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8) for i in range(n)]


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for i, p in enumerate(fake_photos(4)):
        Image.fromarray(p).save(d / f"{i:02d}.png")
    return d


KIND_CASES = [
    gm.BenchConfig("t_gan", "gan", up, loss, 0, "photos", 1)
    for up in gm.UPSAMPLINGS
    for loss in gm.GAN_LOSSES
] + [
    gm.BenchConfig("t_vae", "vae", "bilinear", "elbo", 0, "photos", 1),
    gm.BenchConfig("t_ddpm", "diffusion", "nearest", "eps-mse", 0, "photos", 1,
                   extra={"sample_steps": 3}),
]  # fmt: skip


@pytest.mark.parametrize("cfg", KIND_CASES, ids=lambda c: f"{c.kind}-{c.upsampling}-{c.loss}")
def test_kind_trains_one_step_and_generates(cfg: gm.BenchConfig) -> None:
    cfg = tiny(cfg)
    sampler = gt.CropSampler(fake_photos(), cfg.size, seed=0)
    res = gt.train(cfg, sampler, cfg.steps, CPU, log_every=1)
    assert res.steps == 1
    assert all(np.isfinite(v) for pts in res.history.values() for _, v in pts)
    imgs = gt.generate(cfg, res.nets, 3, seed=5, device=CPU)
    assert imgs.shape == (3, 16, 16, 3) and imgs.dtype == np.uint8
    # Sampling is a pure function of the seed.
    np.testing.assert_array_equal(imgs, gt.generate(cfg, res.nets, 3, seed=5, device=CPU))


def test_vae_samples_from_fitted_aggregate_posterior() -> None:
    vae = gm.VAE(z_dim=4, size=16, width=8, upsampling="bilinear")
    eps = torch.randn(4000, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(vae.latent(eps), eps)  # before fitting: the N(0, I) prior
    mu = 3.0 * torch.randn(5000, 4, generator=torch.Generator().manual_seed(1)) + 2.0
    vae.fit_latent(mu)
    z = vae.latent(eps)
    assert torch.allclose(z.mean(0), torch.full((4,), 2.0), atol=0.2)
    assert torch.allclose(z.std(0), torch.full((4,), 3.0), atol=0.2)
    assert "z_chol" in vae.state_dict()  # saved with the checkpoint


def test_crop_sampler_shape_range_and_reproducible() -> None:
    a = gt.CropSampler(fake_photos(), 16, seed=3).batch(5)
    b = gt.CropSampler(fake_photos(), 16, seed=3).batch(5)
    assert a.shape == (5, 3, 16, 16) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)


def test_registry_size_and_labels() -> None:
    reg = gm.REGISTRY
    assert 12 <= len(reg) <= 16
    assert {c.kind for c in reg.values()} == {"gan", "vae", "diffusion"}
    gans = [c for c in reg.values() if c.kind == "gan"]
    assert {c.upsampling for c in gans} == set(gm.UPSAMPLINGS)
    assert {c.loss for c in gans} == set(gm.GAN_LOSSES)
    assert all(c.data in gm.DATA_SPECS for c in reg.values())
    assert all(k == c.id for k, c in reg.items())


def test_registry_has_seed_only_and_data_only_pairs() -> None:
    seed_pairs, data_pairs = gm.seed_pairs(), gm.data_pairs()
    assert ("gan_tconv_ns_s0", "gan_tconv_ns_s1") in seed_pairs
    assert ("gan_bilinear_lsgan_a", "gan_bilinear_lsgan_b") in data_pairs
    for pairs, key in ((seed_pairs, "seed"), (data_pairs, "data")):
        for a, b in pairs:
            da, db = gm.REGISTRY[a].to_dict(), gm.REGISTRY[b].to_dict()
            assert {k for k in da if da[k] != db[k]} == {"id", key}


def test_photo_halves_are_disjoint(photo_dir: Path) -> None:
    cache: dict = {}
    full = gt.photo_set("photos", photo_dir, cache).photos
    a = gt.photo_set("photos-a", photo_dir, cache).photos
    b = gt.photo_set("photos-b", photo_dir, cache).photos
    assert len(a) + len(b) == len(full) == 4
    assert not any(x.shape == y.shape and np.array_equal(x, y) for x in a for y in b)


def test_diversity_flags_identical_images() -> None:
    same = np.zeros((4, 8, 8, 3), np.uint8)
    assert gt.diversity(same) == 0.0
    assert gt.diversity(np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), np.uint8)) > 0.2


def test_training_resumes_from_partial_checkpoint(tmp_path: Path) -> None:
    cfg = tiny(gm.REGISTRY["gan_tconv_ns_s0"], steps=4)
    ckpt = tmp_path / "m.pt"
    gt.train(cfg, gt.CropSampler(fake_photos(), 16, 0), 2, CPU, ckpt=ckpt, log_every=1)
    assert torch.load(ckpt, weights_only=True)["step"] == 2
    res = gt.train(cfg, gt.CropSampler(fake_photos(), 16, 0), 4, CPU, ckpt=ckpt, log_every=1)
    assert [s for s, _ in res.history["G"]] == [1, 2, 3, 4]
    assert torch.load(ckpt, weights_only=True)["step"] == 4


def test_benchmark_writes_layout_and_skips_done_models(
    tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = [
        tiny(gm.REGISTRY["gan_tconv_ns_s0"]),
        tiny(gm.REGISTRY["vae_bilinear_s0"]),
    ]
    out = tmp_path / "bench"
    m = mrb.run_benchmark(out, configs, real=photo_dir, n_images=3, steps=2, device="cpu")
    assert [e["id"] for e in m["models"]] == [c.id for c in configs]
    for cfg in configs:
        assert sorted(p.name for p in (out / cfg.id).glob("*.png")) == [
            "000.png",
            "001.png",
            "002.png",
        ]
        entry = json.loads((out / cfg.id / "done.json").read_text())
        assert entry["steps"] == 2 and entry["kind"] == cfg.kind and entry["final_losses"]
        assert (out / "_ckpt" / f"{cfg.id}.pt").exists()

    # A second run must skip both finished models: training now would fail loudly.
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished model was retrained")

    monkeypatch.setattr(mrb, "train", boom)
    m2 = mrb.run_benchmark(out, configs, real=photo_dir, n_images=3, steps=2, device="cpu")
    assert [e["id"] for e in m2["models"]] == [c.id for c in configs]

    # Without done.json the model is not finished: it is trained again.
    (out / configs[1].id / "done.json").unlink()
    with pytest.raises(AssertionError, match="retrained"):
        mrb.run_benchmark(out, configs, real=photo_dir, n_images=3, steps=2, device="cpu")


def test_cli_list_prints_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert mrb.main(["unused", "--list"]) == 0
    ids = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert ids == list(gm.REGISTRY)
