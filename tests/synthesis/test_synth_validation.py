"""`fpattr synth` refuses bad options up front (exit 2), before any model is built, and
never writes NaN into its JSON files."""

from __future__ import annotations

import json
import math

import pytest

from fpattr.errors import UsageError
from fpattr.testing import run_cli


def _strict(text: str):
    """json.loads that rejects NaN / Infinity, as strict JSON parsers do."""

    def no_constants(name: str):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constants)


# -- F6: --size is checked against every architecture the run draws ---------------------------


def test_size_that_some_drawn_architectures_cannot_use_is_refused_up_front(tmp_path):
    """At 36 px, gan_decoder's 3-stage and ldm_vae's x8/x16 models cannot be built; the
    run is refused (exit 2) with sizes that suit them all, and builds nothing."""
    zoo = tmp_path / "z"
    args = ["synth", zoo, "--family", "gan_decoder", "--family", "ldm_vae", "--models", "6"]
    args += ["--images-per-model", "2", "--size", "36", "--max-steps", "1", "--width", "8"]
    r = run_cli([*args, "--device", "cpu", "-q"])
    assert r.exit_code == 2, r.output
    assert "--size 36" in r.stderr and "nearest 32 or 40" in r.stderr
    assert "smallest 16" in r.stderr
    assert not zoo.exists()


def test_check_sizes_covers_every_planned_architecture_not_only_the_first(families):
    from fpattr.synthesis.ldm import LdmVaeFamily
    from fpattr.synthesis.zoo import check_sizes, plan_models

    fams = [families["gan_decoder"], LdmVaeFamily()]
    plan = plan_models(fams, 6, seed=0)
    check_sizes(fams, plan, width=8, image_size=32)  # every drawn design suits 32 px
    with pytest.raises(UsageError, match="does not suit 4 of the 6"):
        check_sizes(fams, plan, width=8, image_size=36)


def test_valid_runs_keep_their_settings_hash(tmp_path, tiny):
    """The up-front check changes neither the settings hash nor the plan of a valid zoo."""
    from fpattr.synthesis.zoo import ZooConfig, build_zoo

    assert ZooConfig(families=("autoencoder",)).sha() == "55a95ace4b4d5f3b"  # as before
    r = build_zoo(tmp_path / "z", families=["autoencoder"], n_models=0, **tiny)
    assert r["failed"] == [] and r["n_models"] == 0


# -- F7: numeric options and the device are range-checked up front ------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--device", "foo"],
        ["--batch-size", "0"],
        ["--width", "0"],
        ["--train-crop", "-5"],
        ["--max-steps", "0"],
        ["--max-steps", "-5"],
        ["--size", "4"],
    ],
)
def test_bad_numeric_options_and_devices_exit_2_before_any_work(tmp_path, option):
    zoo = tmp_path / "z"
    args = ["synth", zoo, "--family", "autoencoder", "--models", "1", "--size", "32"]
    args += ["--images-per-model", "2", "--max-steps", "1", "-q"]
    if option[0] != "--device":
        args += ["--device", "cpu"]
    r = run_cli([*args, *option])
    assert r.exit_code == 2, r.output
    assert not (zoo / "manifest.json").exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [("device", "foo"), ("max_steps", 0), ("width", 0), ("batch_size", 0), ("train_crop", -5)],
)
def test_build_zoo_refuses_bad_settings(tmp_path, tiny, key, value):
    from fpattr.synthesis.zoo import build_zoo

    with pytest.raises(UsageError):
        build_zoo(tmp_path / "z", families=["autoencoder"], n_models=1, **{**tiny, key: value})
    assert not (tmp_path / "z" / "manifest.json").exists()


def test_a_missing_loss_is_written_as_null_never_nan(tmp_path, tiny, monkeypatch):
    """A model whose training reports no finite loss gets ``"final_loss": null`` in
    done.json and manifest.json (both strict JSON), and does not count as at the floor."""
    from fpattr.synthesis.autoencoder import AutoencoderFamily
    from fpattr.synthesis.zoo import build_zoo

    fam = AutoencoderFamily()
    real_train = fam.train

    def nan_train(*args, **kwargs):
        stats = real_train(*args, **kwargs)
        return {"final_loss": float("nan"), "steps": stats["steps"]}

    monkeypatch.setattr(fam, "train", nan_train)
    out = tmp_path / "z"
    summary = build_zoo(out, families=[fam], n_models=1, **tiny)
    assert summary["failed"] == [] and summary["built"] == 1
    manifest = _strict((out / "manifest.json").read_text())
    (entry,) = manifest["models"]
    assert entry["final_loss"] is None and entry["reached_floor"] is False
    done = _strict((out / entry["id"] / "done.json").read_text())
    assert done["final_loss"] is None


def test_manifest_of_an_older_zoo_with_nan_is_strict_json(tmp_path, tiny, families):
    """done.json files written by older versions may hold NaN; the manifest says null."""
    from fpattr.synthesis.zoo import build_zoo

    out = tmp_path / "z"
    build_zoo(out, families=[families["autoencoder"]], n_models=1, **tiny)
    (done,) = out.glob("*/done.json")
    entry = json.loads(done.read_text())
    entry["final_loss"] = math.nan
    done.write_text(json.dumps(entry))
    r = build_zoo(out, families=[families["autoencoder"]], n_models=1, **tiny)
    assert r["kept"] == 1
    manifest = _strict((out / "manifest.json").read_text())
    assert manifest["models"][0]["final_loss"] is None


def test_a_file_given_as_the_zoo_folder_is_a_usage_error(tmp_path):
    # break-it 27d: FileExistsError, exit 70
    from fpattr.testing import run_cli

    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    r = run_cli(
        ["synth", afile, "--family", "autoencoder", "--models", "1", "--images-per-model", "2"]
        + ["--size", "32", "--max-steps", "2", "--device", "cpu", "-q"]
    )
    assert r.exit_code == 2 and "internal error" not in r.stderr, r.output
    assert afile.read_text(encoding="utf-8") == "x"
