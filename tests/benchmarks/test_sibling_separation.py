"""benchmarks/sibling_separation.py: the sibling metrics and how held-out groups are found."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from fpattr._testing_gen import write_generator_images

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import sibling_separation  # noqa: E402

CARD = {"default": ROOT / "models" / "default.json"}


def test_distinct_generators_separate_and_identical_ones_do_not(tmp_path):
    a = tmp_path / "a"
    write_generator_images(a, "checker", n=8, size=64, seed=0)
    write_generator_images(tmp_path / "b", "nearest", n=8, size=64, seed=0)
    shutil.copytree(a, tmp_path / "a_copy")
    apart = sibling_separation.measure({"g": [a, tmp_path / "b"]}, CARD, refs=3)["default"]
    assert apart["queries"] == 10 and apart["groups"] == 1
    assert apart["two_way_accuracy"] == 1.0 and apart["sibling_auc"] > 0.95
    # the same images under two names: nothing tells them apart; a tie goes to the first
    same = sibling_separation.measure({"g": [a, tmp_path / "a_copy"]}, CARD, refs=3)["default"]
    assert same["two_way_accuracy"] == 0.5
    assert same["sibling_auc"] < 0.55  # identical images among the impostor pairs


def _run(tmp: Path, models: list[dict], held: dict[str, list[str]]) -> Path:
    zoo = tmp / "zoo"
    zoo.mkdir()
    (zoo / "manifest.json").write_text(json.dumps({"models": models}))
    run = tmp / "run"
    run.mkdir()
    (run / "train_result.json").write_text(
        json.dumps({"zoo": {"path": str(zoo)}, "held_out_ids": held})
    )
    return run


def test_held_out_groups_need_two_siblings_in_one_split(tmp_path):
    models = [
        {"id": "m0", "arch_id": "x", "sibling_group": 0},
        {"id": "m1", "arch_id": "x", "sibling_group": 0},
        {"id": "m2", "arch_id": "y", "sibling_group": 1},
        {"id": "m3", "arch_id": "y", "sibling_group": 1},
    ]
    run = _run(tmp_path, models, {"val_arch": ["m0", "m1"], "val": ["m2"]})
    groups = sibling_separation.groups_from_run(run)
    assert list(groups) == ["val_arch"]  # m2's sibling was trained on: no pair in "val"
    assert {k: [p.name for p in v] for k, v in groups["val_arch"].items()} == {"0:x": ["m0", "m1"]}


def test_a_run_without_siblings_is_refused(tmp_path):
    models = [{"id": "m0", "arch_id": "x"}, {"id": "m1", "arch_id": "x"}]
    run = _run(tmp_path, models, {"val_arch": ["m0", "m1"]})
    with pytest.raises(SystemExit, match="--siblings"):
        sibling_separation.groups_from_run(run)
