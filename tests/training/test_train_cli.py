"""`fpattr train` refuses user errors up front (exit 2), keeps its work and its command."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from fpattr.errors import FpattrError, UsageError
from fpattr.io.atomic import file_lock
from fpattr.testing import run_cli, write_generator_images
from fpattr.training import train as train_mod
from fpattr.training.presets import preset
from fpattr.training.train import TRAIN_LOCK, TrainConfig, train


def _cfg(zoo, out, **kw):
    return TrainConfig.from_dict(preset("tiny") | {"zoo": str(zoo), "out": str(out)} | kw)


def _train_cli(zoo, out, *extra):
    return run_cli(
        ["train", zoo, "--out", out, "--preset", "tiny", "--device", "cpu", "-q", *extra]
    )


def _zoo_with_done_json(src, dst):
    """A copy of ``src`` laid out as `fpattr synth` writes it: done.json per model."""
    shutil.copytree(src, dst)
    for m in json.loads((dst / "manifest.json").read_text())["models"]:
        (dst / m["id"] / "done.json").write_text(json.dumps(m))
    return dst


@pytest.mark.parametrize(
    "case, extra, message",
    [
        ("missing", [], "does not exist"),
        ("file", [], "is not a folder"),
        ("done.json", [], "done.json cannot be read as JSON"),
        ("manifest.json", [], "manifest.json cannot be read as JSON"),
        ("ok", ["--set", "lr=abc"], "training setting lr must be a number, not 'abc'"),
        ("ok", ["--set", "extractor.dim=abc"], "extractor.dim must be an integer, not 'abc'"),
        ("ok", ["--set", "steps.x=1"], "--set steps.x: steps is a single setting"),
        ("ok", ["--set", "extractor=3"], "extractor is a group of settings"),
        ("ok", ["--device", "foo"], "--device must be auto, cpu, cuda or cuda:N, not 'foo'"),
        ("nocuda", ["--device", "cuda"], "--device cuda: CUDA is not available"),
    ],
)
def test_user_errors_exit_2_naming_the_file_or_option(
    tiny_zoo, tmp_path, monkeypatch, case, extra, message
):
    zoo = tiny_zoo
    if case == "missing":
        zoo = tmp_path / "nope"
    elif case == "file":
        zoo = tmp_path / "afile"
        zoo.write_text("")
    elif case == "done.json":
        zoo = _zoo_with_done_json(tiny_zoo, tmp_path / "zoo")
        (zoo / "m03" / "done.json").write_text('{"id": broken')
    elif case == "manifest.json":
        zoo = tmp_path / "zoo"
        shutil.copytree(tiny_zoo, zoo)
        (zoo / "manifest.json").write_text("{broken")
    elif case == "nocuda":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    r = _train_cli(zoo, out, *extra)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output
    assert "internal error" not in r.output
    assert not out.exists()  # refused before any training work


def _zoo_of(tmp_path, n_images):
    root = tmp_path / f"zoo{n_images}"
    models = []
    for m in range(10):
        kind = ["nearest", "bilinear", "checker"][m % 3]
        write_generator_images(root / f"m{m:02d}", kind, n=n_images, size=64, seed=m, trace=m)
        models.append({"id": f"m{m:02d}", "family": "fake", "arch_id": f"{kind}{m % 3}"})
    (root / "manifest.json").write_text(json.dumps({"schema": "fpattr.zoo/1", "models": models}))
    return root


def test_too_few_images_for_evaluation_is_refused_before_training(tmp_path):
    zoo = _zoo_of(tmp_path, 4)
    with pytest.raises(UsageError, match=r"has 4 image\(s\).*refs=5.*at least 6 images"):
        train(_cfg(zoo, tmp_path / "run", steps=2), log=lambda s: None)
    assert not (tmp_path / "run").exists()
    r = _train_cli(zoo, tmp_path / "run2")
    assert r.exit_code == 2 and "--images-per-model 6" in " ".join(r.output.split()), r.output


def test_a_failing_evaluation_keeps_the_trained_steps(tiny_zoo, tmp_path, monkeypatch):
    class Boom(Exception):
        pass

    def boom(*a, **k):
        raise Boom

    monkeypatch.setattr(train_mod, "zero_shot_metrics", boom)
    out = tmp_path / "run"
    with pytest.raises(Boom):
        train(_cfg(tiny_zoo, out, steps=20, eval_every=3, ckpt_every=100), log=lambda s: None)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["state"]["step"] == 3  # saved before the evaluation that failed


def test_refused_run_keeps_the_command_of_the_checkpoint(tiny_zoo, tmp_path, monkeypatch):
    from fpattr.training import checkpoint

    out = tmp_path / "run"
    out.mkdir()
    keys = ("model", "head", "opt", "sched", "np_rng", "torch_rng", "state")
    checkpoint.save({"config": {"seed": 0}, **dict.fromkeys(keys, {})}, out / "checkpoint.pt")
    (out / "command.txt").write_text("fpattr train zoo --out run\n")  # made the checkpoint
    monkeypatch.setattr(sys, "argv", ["fpattr", "train", "zoo", "--out", "run", "--seed", "7"])
    r = _train_cli(tiny_zoo, out, "--seed", "7")
    assert r.exit_code == 2 and "another configuration" in r.output, r.output
    assert (out / "command.txt").read_text() == "fpattr train zoo --out run\n"


def test_a_run_folder_in_use_is_refused_and_the_run_is_accepted_under_the_lock(tiny_zoo, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    started = []
    with file_lock(out / TRAIN_LOCK):  # another `fpattr train` on the same --out
        with pytest.raises(UsageError, match="cannot take the run folder"):
            train(
                _cfg(tiny_zoo, out, steps=2), log=lambda s: None, on_start=lambda: started.append(1)
            )
    assert not started and sorted(p.name for p in out.iterdir()) == [TRAIN_LOCK]

    class Accepted(Exception):
        pass

    def on_start():
        with pytest.raises(FpattrError, match="timed out"):  # the run holds the lock
            with file_lock(out / TRAIN_LOCK, timeout=0.05):
                pass
        raise Accepted

    with pytest.raises(Accepted):
        train(_cfg(tiny_zoo, out, steps=2), log=lambda s: None, on_start=on_start)


def test_fuse_finds_the_zoo_from_any_folder(tmp_path, monkeypatch):
    # break-it 27d: train_result.json kept the zoo as typed ("zoo"), so export
    # --fuse-spectrum from another folder was exit 70 (FileNotFoundError 'zoo')
    from fpattr.training.hybrid import _zoo_of

    zoo = tmp_path / "work" / "zoo"
    zoo.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # not the folder training ran in
    info = {"path": "zoo", "absolute_path": str(zoo)}
    assert _zoo_of(info, tmp_path / "run") == zoo
    monkeypatch.chdir(tmp_path / "work")  # a run made before the absolute path was kept
    assert _zoo_of({"path": "zoo"}, tmp_path / "run") == Path("zoo")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="run from the folder training ran in"):
        _zoo_of({"path": "zoo"}, tmp_path / "run")
