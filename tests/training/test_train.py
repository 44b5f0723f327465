"""Extractor training, resume, calibration and export on a tiny zoo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fpattr.errors import UsageError
from fpattr.training.data import Zoo, load_zoo, pk_batches, split_models
from fpattr.training.model import Extractor, ExtractorConfig, Preprocess, batch_hard_triplet
from fpattr.training.presets import preset
from fpattr.training.train import TrainConfig, train


def _cfg(zoo, out, **kw):
    d = preset("tiny") | {"zoo": str(zoo), "out": str(out)} | kw
    return TrainConfig.from_dict(d)


def test_in_graph_dft_matches_torch_fft():
    pre = Preprocess(32)
    x = torch.rand(2, 3, 32, 32)
    rc = x - x.mean(dim=(2, 3), keepdim=True)
    ref = torch.fft.fftshift(torch.fft.fft2(rc), dim=(-2, -1)).abs() ** 2
    c, s = pre.dft_c, pre.dft_s
    re = c @ (rc @ c.t()) - s @ (rc @ s.t())
    im = c @ (rc @ s.t()) + s @ (rc @ c.t())
    assert torch.allclose(re * re + im * im, ref, rtol=1e-3, atol=1e-2)


def test_residual_matches_numpy_signal():
    from fpattr import signal

    x = torch.rand(2, 16, 16, 3)
    r = Preprocess(16).residual(x.permute(0, 3, 1, 2)).numpy()
    assert np.allclose(r, signal.residual(x.permute(0, 3, 1, 2).numpy()), atol=1e-6)


def test_triplet_loss_is_zero_for_separated_classes():
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.01], [0, 1], [0.01, 1]]))
    labels = torch.tensor([0, 0, 1, 1])
    assert batch_hard_triplet(emb, labels, margin=0.2).item() == 0.0
    assert batch_hard_triplet(emb, torch.tensor([0, 1, 0, 1]), margin=0.2).item() > 0.5


def test_pk_batches_cap_p_at_the_number_of_models(tmp_path):
    # a train split smaller than P (a small zoo with the gpu preset's P=64) used to spin forever
    from fpattr.training.augment import AugmentConfig

    imgs = [np.full((3, 16, 16, 3), i * 40, np.uint8) for i in range(5)]
    zoo = Zoo(tmp_path, [{"id": f"m{i}"} for i in range(5)], imgs)
    rng = np.random.default_rng(0)
    views, labels = next(pk_batches(zoo, p=64, k=2, size=16, aug=AugmentConfig(), rng=rng))
    assert views.shape[0] == 10 and sorted(set(labels.tolist())) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="at least 2 models"):
        next(
            pk_batches(
                Zoo(tmp_path, [{"id": "m"}], imgs[:1]),
                p=4,
                k=2,
                size=16,
                aug=AugmentConfig(),
                rng=rng,
            )
        )


def test_unknown_settings_are_usage_errors():
    with pytest.raises(UsageError, match="unknown training setting nope; known top-level"):
        TrainConfig.from_dict(preset("tiny") | {"zoo": "z", "out": "o", "nope": 1})
    with pytest.raises(UsageError, match="augment.bogus; known augment settings: p_resize"):
        TrainConfig.from_dict(preset("tiny") | {"zoo": "z", "out": "o", "augment": {"bogus": 1}})
    cfg = TrainConfig.from_dict(
        preset("tiny") | {"zoo": "z", "out": "o", "augment": {"jpeg_quality": [40, 100]}}
    )
    assert cfg.augment.jpeg_quality == (40, 100)


def test_splits_are_disjoint_and_hold_out_architectures(tiny_zoo):
    zoo = load_zoo(tiny_zoo)
    s = split_models(zoo, val_frac=0.2, calib_frac=0.2, holdout_archs=1, seed=0)
    sets = [set(v) for v in s.values()]
    assert sum(len(x) for x in sets) == len(zoo.models) == len(set().union(*sets))
    held = {zoo.models[k]["arch_id"] for k in s["val_arch"]}
    trained = {zoo.models[k]["arch_id"] for k in s["train"]}
    assert held and not held & trained


def test_train_one_run_resume_and_calibration(tiny_zoo, tmp_path):
    out = tmp_path / "run"
    r1 = train(_cfg(tiny_zoo, out, steps=10), log=lambda s: None)
    assert r1["steps"] == 10 and (out / "checkpoint.pt").is_file()
    # continuing the same run with more steps resumes at step 10, it does not restart
    logs: list[str] = []
    cfg = _cfg(tiny_zoo, out, steps=10)
    cfg.steps = 20
    with pytest.raises(UsageError, match="another configuration"):
        train(cfg, log=logs.append)  # a different config must not silently mix runs
    r = train(_cfg(tiny_zoo, out, steps=10), log=logs.append)
    assert any("resumed from" in s for s in logs) and r["steps"] == 10
    assert len(r["history"]) == len(r1["history"])
    # calibration comes from the held-out calib split, and is monotonic
    from fpattr.calibration import Calibration

    for kind in ("centroid", "pair"):
        cal = Calibration.from_dict(r["calibration"][kind])
        assert cal.source == "held-out synthetic models"
        assert cal.a >= 0 and cal.probability(0.9) >= cal.probability(0.1)
        # one view per image (small inputs) is calibrated separately on the same models
        one = Calibration.from_dict(r["calibration"]["by_views"]["1"][kind])
        assert one.n_genuine == cal.n_genuine and one.n_impostor == cal.n_impostor
    assert r["calibration"]["n_views"] == 4
    assert {"val", "val_arch"} & set(r["validation"])
    saved = json.loads((out / "train_result.json").read_text())
    assert saved["split_sizes"]["calib"] >= 2


def test_interrupted_run_resumes_from_checkpoint(tiny_zoo, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(tiny_zoo, out, steps=20, ckpt_every=5, eval_every=100)

    class Kill(Exception):
        pass

    def die_at_12(step, total, losses):
        if step == 12:
            raise Kill

    with pytest.raises(Kill):
        train(cfg, log=lambda s: None, progress=die_at_12)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["state"]["step"] == 10  # last checkpoint before the kill
    seen = []
    train(cfg, log=lambda s: None, progress=lambda st, t, lo: seen.append(st))
    assert seen[0] == 11 and seen[-1] == 20


def test_export_parity_and_card(tiny_zoo, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from fpattr.backbones.onnx import OnnxBackbone
    from fpattr.training.export import export, find_images

    model = Extractor(ExtractorConfig(size=32, widths=[8, 8, 8, 8], dim=16)).eval()
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict()}, tmp_path / "x.pt")
    card = export(
        tmp_path / "x.pt", tmp_path / "models", name="t", parity_images=find_images(tiny_zoo)[:8]
    )
    assert card["parity"]["min_cosine"] >= 0.9999
    bb = OnnxBackbone(tmp_path / "models" / "t.json")
    x = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.allclose(bb.embed(x), ref, atol=1e-4)


def test_holdout_where_removes_a_design_value_from_training(tiny_zoo):
    zoo = load_zoo(tiny_zoo)
    s = split_models(
        zoo,
        val_frac=0.2,
        calib_frac=0.2,
        holdout_archs=0,
        seed=0,
        holdout_where=[{"family": "fake", "kind": "checker"}],
    )
    assert {zoo.models[k]["design"]["kind"] for k in s["val_arch"]} == {"checker"}
    assert all(zoo.models[k]["design"]["kind"] != "checker" for k in s["train"])


def test_spectral_branch_equals_the_spectrum_backbone():
    from fpattr.backbones.spectrum import SpectrumBackbone
    from fpattr.training.hybrid import FusedExtractor

    fused = FusedExtractor(Extractor(ExtractorConfig(widths=[8, 8, 8, 8], dim=16)).eval(), 0.3)
    x = np.random.default_rng(1).random((4, 64, 64, 3), dtype=np.float32)
    with torch.no_grad():
        e, s = fused.parts(torch.from_numpy(x))
        out = fused(torch.from_numpy(x)).numpy()
    ref = SpectrumBackbone(size=64).embed(x)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.allclose(s.numpy(), ref, atol=1e-5)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.allclose(out[:, :16], np.cos(0.3) * e.numpy(), atol=1e-6)


def test_fuse_run_fits_on_calibration_split_and_exports(tiny_zoo, tmp_path):
    pytest.importorskip("onnxruntime")
    from fpattr.backbones.onnx import OnnxBackbone
    from fpattr.training.export import export, find_images
    from fpattr.training.hybrid import fuse_run

    out = tmp_path / "run"
    train(_cfg(tiny_zoo, out, steps=6), log=lambda s: None)
    _, result = fuse_run(out, n_views=1, log=lambda s: None)
    sel = result["fusion"]["selection"]
    assert sel["selected_on"] == "calibration split" and len(sel["grid"]) == 11
    assert result["calibration"]["centroid"]["source"] == "held-out synthetic models"
    card = export(
        out / "fused.pt",
        tmp_path / "m",
        name="f",
        train_result=result,
        parity_images=find_images(tiny_zoo)[:4],
    )
    assert (
        card["parity"]["min_cosine"] >= 0.9999
        and card["fusion"]["theta"]
        == sel["grid"][[r["theta"] for r in sel["grid"]].index(card["fusion"]["theta"])]["theta"]
    )
    # perfectly flat views (zero residual) must give finite embeddings, not log(0) NaNs
    flat = np.stack([np.zeros((64, 64, 3)), np.full((64, 64, 3), 0.5)]).astype(np.float32)
    emb = OnnxBackbone(tmp_path / "m" / "f.json").embed(flat)
    assert emb.shape[1] == card["output"]["dim"] and np.isfinite(emb).all()


def test_worker_processes_feed_training(tiny_zoo, tmp_path):
    r = train(_cfg(tiny_zoo, tmp_path / "w", steps=4, workers=2), log=lambda s: None)
    assert r["steps"] == 4


def test_torchrun_ddp_on_cpu(tiny_zoo, tmp_path):
    """Two processes (gloo on loopback): one report, one checkpoint, same step count."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    out = tmp_path / "ddp"
    r = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "fpattr",
            "train",
            str(tiny_zoo),
            "--out",
            str(out),
            "--preset",
            "tiny",
            "--steps",
            "6",
            "--device",
            "cpu",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count('"steps": 6') == 1
    assert torch.load(out / "checkpoint.pt", weights_only=True)["state"]["step"] == 6


def test_pooled_eval_outputs_pool_each_caller_its_own_way(tmp_path):
    from fpattr.training.hybrid import FusedExtractor, _pooled_parts
    from fpattr.training.train import embed_zoo, pooled_eval_outputs

    rng = np.random.default_rng(0)
    sizes = [32, 48, 32]  # 1, 4 and 1 views of 32 px per image
    imgs = [rng.integers(0, 256, (3, s, s, 3), dtype=np.uint8) for s in sizes]
    zoo = Zoo(tmp_path, [{"id": f"m{i}"} for i in range(3)], imgs)
    torch.manual_seed(0)
    model = Extractor(ExtractorConfig(size=32, widths=[8, 8, 8, 8], dim=16)).eval()
    cpu = torch.device("cpu")

    (per_call,), labels, which = pooled_eval_outputs(model, zoo, size=32, n_views=4, batch=None)
    (batched,), labels2, _ = pooled_eval_outputs(model, zoo, size=32, n_views=4, batch=3)
    assert per_call.shape == (9, 16) and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert which.tolist() == [0, 1, 2] * 3 and labels2.tolist() == labels.tolist()
    assert np.allclose(per_call, batched, atol=1e-6)
    assert not np.allclose(np.linalg.norm(per_call[3:6], axis=1), 1.0)  # a mean, not normalised

    emb, _, _ = embed_zoo(model, zoo, n_views=4, device=cpu, batch=3)
    assert np.allclose(emb, per_call / np.linalg.norm(per_call, axis=1, keepdims=True), atol=1e-6)

    fused = FusedExtractor(model, 0.3)
    e, s, lab, _ = _pooled_parts(fused, zoo, 4)
    (e2, s2), _, _ = pooled_eval_outputs(fused.parts, zoo, size=32, n_views=4, batch=None)
    assert np.array_equal(e, e2) and np.array_equal(s, s2) and lab.tolist() == labels.tolist()
    assert np.allclose(np.linalg.norm(s[:3], axis=1), 1.0, atol=1e-5)  # one view: unit part
    assert not np.allclose(np.linalg.norm(s[3:6], axis=1), 1.0)  # four views: plain mean


def test_ablation_knobs_shrink_only_the_training_split(tiny_zoo):
    zoo = load_zoo(tiny_zoo)
    kw = dict(val_frac=0.2, calib_frac=0.2, holdout_archs=0, seed=0)
    base = split_models(zoo, **kw)
    kinds = {zoo.models[k]["design"]["kind"] for k in base["train"]}
    drop = sorted(kinds)[0]
    ex = split_models(zoo, **kw, exclude_where=[{"family": "fake", "kind": drop}])
    assert ex["val"] == base["val"] and ex["calib"] == base["calib"]
    assert all(zoo.models[k]["design"]["kind"] != drop for k in ex["train"])
    assert set(ex["train"]) < set(base["train"])
    small = split_models(zoo, **kw, max_train_models=3)
    assert small["val"] == base["val"] and small["calib"] == base["calib"]
    assert len(small["train"]) == 3 and set(small["train"]) <= set(base["train"])
    assert small == split_models(zoo, **kw, max_train_models=3)  # seeded


def test_too_few_training_models_names_the_knob_that_left_them(tiny_zoo, tmp_path):
    cfg = _cfg(tiny_zoo, tmp_path / "run", steps=1, max_train_models=1)
    with pytest.raises(UsageError, match=r"1 training model\(s\) left .* max_train_models"):
        train(cfg, log=lambda s: None)


def test_a_run_resumes_on_another_machine_but_not_on_another_zoo(tiny_zoo, tmp_path):
    import json
    import shutil

    out = tmp_path / "run"
    train(_cfg(tiny_zoo, out, steps=6, device="auto"), log=lambda s: None)
    # the same zoo under another spelling, another device name and thread count: the run
    # moved machines (stop 27 found these refused as "another configuration")
    link = tmp_path / "zoo-link"
    link.symlink_to(tiny_zoo, target_is_directory=True)
    logs: list[str] = []
    r = train(_cfg(f"{link}/", out, steps=6, device="cpu", threads=1), log=logs.append)
    assert any("resumed from" in s for s in logs) and r["steps"] == 6
    moved = next(s for s in logs if s.startswith("resuming with"))
    assert "device 'auto' -> 'cpu'" in moved and "threads" in moved and "zoo" in moved
    # another zoo (one model replaced) is refused, whatever its path
    other = tmp_path / "other-zoo"
    shutil.copytree(tiny_zoo, other)
    (other / "m11").rename(other / "x11")
    man = json.loads((other / "manifest.json").read_text())
    man["models"][-1]["id"] = "x11"
    (other / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(UsageError, match="another zoo"):
        train(_cfg(other, out, steps=6), log=lambda s: None)
    # the same names, other images (review 28: the ids alone let it through)
    same_ids = tmp_path / "same-ids"
    shutil.copytree(tiny_zoo, same_ids)
    sorted((same_ids / "m03").glob("*.png"))[-1].unlink()
    with pytest.raises(UsageError, match="same models' names, built with other settings"):
        train(_cfg(same_ids, out, steps=6), log=lambda s: None)
    # a setting that changes what is trained is still refused, and named
    with pytest.raises(UsageError, match=r"another configuration \(lr"):
        train(_cfg(tiny_zoo, out, steps=6, lr=1e-3), log=lambda s: None)
