"""Zoo planning, building, resuming."""

from __future__ import annotations

import json
import os

import pytest

from fpattr.errors import UsageError
from fpattr.synthesis.zoo import build_zoo, plan_models


def test_plan_covers_every_architecture_before_repeating(families):
    fams = [families["autoencoder"], families["gan_decoder"]]
    n_ae, n_gan = (len(f.architectures()) for f in fams)
    plan = plan_models(fams, 2 * n_gan + 4, seed=0)
    assert [s.family for s in plan[:4]] == ["autoencoder", "gan_decoder"] * 2  # round-robin
    gan = [s.arch_id for s in plan if s.family == "gan_decoder"]
    assert len(set(gan[:n_gan])) == n_gan  # a full cycle: every architecture once
    assert set(gan[n_gan:]) <= set(gan[:n_gan])  # then repeats, in a new order
    ae = [s.arch_id for s in plan if s.family == "autoencoder"]
    assert len(set(ae)) == len(ae) <= n_ae
    first = plan_models(fams, 10, seed=0)
    assert plan[:10] == first  # extending a zoo never changes earlier models
    assert len({s.seed for s in plan}) == len(plan)
    assert plan_models(fams, 10, seed=1) != first


def test_siblings_share_an_architecture_and_differ_in_seed(families):
    fams = [families["autoencoder"], families["gan_decoder"]]
    plain = plan_models(fams, 6, seed=0)
    sib = plan_models(fams, 12, seed=0, siblings=2)
    # each slot of the plain plan, built twice in a row, with every model its own seed
    assert [s.arch_id for s in sib] == [a for s in plain for a in (s.arch_id, s.arch_id)]
    assert [s.group for s in sib] == [g for g in range(6) for _ in range(2)]
    assert len({s.seed for s in sib}) == 12 and len({s.id for s in sib}) == 12
    # the default plan is the plan before the option existed (ids, seeds)
    assert [(s.id, s.seed) for s in plain[:2]] == [
        ("00000-ae-K1L1Unearest-Arelu-Nnone-Spost", 821328062),
        ("00001-gan-G2Unearest-Arelu-Nnone-Osigmoid", 1817441348),
    ]
    with pytest.raises(UsageError, match="--siblings"):
        plan_models(fams, 2, seed=0, siblings=0)


def test_siblings_leave_the_default_settings_hash_alone():
    from fpattr.synthesis.zoo import ZooConfig

    # the hash of zoos built before --siblings existed (so they still resume)
    assert ZooConfig(families=("autoencoder", "gan_decoder")).sha() == "eee62a232b4da755"
    assert ZooConfig(families=("autoencoder", "gan_decoder"), siblings=2).sha() != (
        "eee62a232b4da755"
    )


def test_a_sibling_zoo_records_each_model_s_group(tmp_path, families, tiny):
    fams = [families["autoencoder"]]
    build_zoo(tmp_path / "zoo", families=fams, n_models=2, seed=0, siblings=2, **tiny)
    models = json.loads((tmp_path / "zoo" / "manifest.json").read_text())["models"]
    assert [m["sibling_group"] for m in models] == [0, 0]
    assert models[0]["arch_id"] == models[1]["arch_id"] and models[0]["seed"] != models[1]["seed"]
    with pytest.raises(UsageError, match="other settings"):  # siblings are a setting
        build_zoo(tmp_path / "zoo", families=fams, n_models=2, seed=0, **tiny)


def test_plan_restrictions(families):
    plan = plan_models(
        [families["autoencoder"]],
        288,
        seed=0,
        where={"upsampling": ["nearest", "bilinear", "transposed"]},
    )
    assert len({s.arch_id for s in plan}) == 288
    assert all("pixelshuffle" not in s.arch_id for s in plan)


def test_build_zoo_layout_and_manifest(tmp_path, families, tiny):
    fams = [families["autoencoder"], families["gan_decoder"], families["diffusion_denoiser"]]
    summary = build_zoo(tmp_path / "zoo", families=fams, n_models=3, seed=0, **tiny)
    assert summary["built"] == 3 and summary["kept"] == 0 and not summary["failed"]
    manifest = json.loads((tmp_path / "zoo" / "manifest.json").read_text())
    assert manifest["schema"] == "fpattr.zoo/1"
    assert set(manifest["families"]) == {"autoencoder", "gan_decoder", "diffusion_denoiser"}
    assert manifest["config"]["image_size"] == 16
    models = manifest["models"]
    assert [m["family"] for m in models] == ["autoencoder", "gan_decoder", "diffusion_denoiser"]
    for m in models:
        assert {
            "id",
            "family",
            "arch_id",
            "design",
            "seed",
            "final_loss",
            "steps",
            "seconds",
            "n_images",
        } <= set(m)
        folder = tmp_path / "zoo" / m["id"]
        assert sorted(p.name for p in folder.glob("*.png")) == ["000.png", "001.png"]
        assert families[m["family"]].arch_id(m["design"]) == m["arch_id"]
    assert not (tmp_path / "zoo" / ".partial").exists()


def test_resume_keeps_finished_models_and_rebuilds_partial_ones(tmp_path, families, tiny):
    fams = [families["autoencoder"]]
    out = tmp_path / "zoo"
    first = build_zoo(out, families=fams, n_models=2, seed=5, **tiny)
    assert first["built"] == 2
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/done.json")}
    # a model killed half-way: folder present, done.json missing
    stray_id = plan_models(fams, 3, seed=5)[2].id
    (out / stray_id).mkdir()
    (out / stray_id / "000.png").write_bytes(b"half a png")
    (out / ".partial" / "x").mkdir(parents=True)
    second = build_zoo(out, families=fams, n_models=4, seed=5, **tiny)
    assert second["kept"] == 2 and second["built"] == 2
    for model_id, mtime in done.items():
        assert (out / model_id / "done.json").stat().st_mtime_ns == mtime
    assert (out / stray_id / "done.json").is_file()
    assert (out / stray_id / "000.png").read_bytes().startswith(b"\x89PNG")
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["models"]) == 4
    assert not (out / ".partial").exists()
    again = build_zoo(out, families=fams, n_models=4, seed=5, **tiny)
    assert again["built"] == 0 and again["kept"] == 4


def test_other_settings_in_the_same_folder_are_refused(tmp_path, families, tiny):
    out = tmp_path / "zoo"
    build_zoo(out, families=[families["autoencoder"]], n_models=1, seed=0, **tiny)
    with pytest.raises(UsageError):
        build_zoo(out, families=[families["autoencoder"]], n_models=1, seed=1, **tiny)


def test_parallel_workers(tmp_path, families, tiny):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores")
    out = tmp_path / "zoo"
    summary = build_zoo(
        out, families=["autoencoder", "gan_decoder"], n_models=2, seed=0, workers=2, **tiny
    )
    assert summary["built"] == 2 and not summary["failed"]
    assert len(list(out.glob("*/done.json"))) == 2


def test_a_zoo_being_built_elsewhere_is_refused(tmp_path, families, tiny):
    from fpattr.io.atomic import file_lock

    out = tmp_path / "zoo"
    out.mkdir()
    with file_lock(out / ".zoo.lock"), pytest.raises(UsageError, match="another process"):
        build_zoo(out, families=[families["autoencoder"]], n_models=1, seed=0, **tiny)


def test_an_interrupted_build_lists_what_it_finished_and_models_selects_the_first(
    tmp_path, families, tiny, monkeypatch
):
    from fpattr.synthesis import zoo as zoo_mod

    fams = [families["autoencoder"]]
    out = tmp_path / "zoo"
    build_zoo(out, families=fams, n_models=1, seed=5, **tiny)
    real, calls = zoo_mod._worker_run, []

    def then_ctrl_c(spec):
        calls.append(spec.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(zoo_mod, "_worker_run", then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        build_zoo(out, families=fams, n_models=4, seed=5, **tiny)
    monkeypatch.undo()
    # the model finished seconds before the Ctrl-C is listed (it was not, until a rerun)
    manifest = json.loads((out / "manifest.json").read_text())
    ids = [p.id for p in plan_models(fams, 2, seed=5)]
    assert [m["id"] for m in manifest["models"]] == ids
    assert manifest["unlisted_models"] == 0
    # a rerun with a smaller --models lists the first models only, and counts the rest
    build_zoo(out, families=fams, n_models=1, seed=5, **tiny)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["id"] for m in manifest["models"]] == ids[:1]
    assert manifest["config"]["n_models"] == 1 and manifest["unlisted_models"] == 1
    assert (out / ids[1] / "done.json").is_file()  # kept on disk
    # and what reads the zoo keeps to that selection (review 28: training read them all)
    from fpattr.analysis import labelled_entries
    from fpattr.training.data import load_zoo

    assert [m["id"] for m in load_zoo(out, min_images=1).models] == ids[:1]
    assert list(labelled_entries(out)) == ids[:1]
    build_zoo(out, families=fams, n_models=2, seed=5, **tiny)
    assert [m["id"] for m in load_zoo(out, min_images=1).models] == ids
