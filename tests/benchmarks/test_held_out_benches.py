"""benchmarks/eval_default.held_out_benches finds a run's zoo from any working directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import eval_default  # noqa: E402


def _run(tmp: Path, zoo_recorded: str, ids: list[str]) -> Path:
    run = tmp / "run"
    run.mkdir()
    (run / "train_result.json").write_text(
        json.dumps({"zoo": {"path": zoo_recorded}, "held_out_ids": {"val": ids, "val_arch": []}})
    )
    return run


def test_zoo_recorded_relative_to_the_repository_is_found_from_elsewhere(tmp_path, monkeypatch):
    zoo = ROOT / "runs" / "_test_zoo_path"  # runs/ is git-ignored
    for i in ("m0", "m1"):
        (zoo / i).mkdir(parents=True, exist_ok=True)
    try:
        run = _run(tmp_path, "runs/_test_zoo_path", ["m0", "m1"])
        monkeypatch.chdir(tmp_path)  # not the repository root: the recorded path is relative
        out = tmp_path / "out"
        out.mkdir()
        benches = eval_default.held_out_benches(run, out)
        assert set(benches) == {"val"}
        assert sorted(p.name for p in benches["val"].iterdir()) == ["m0", "m1"]
        assert (benches["val"] / "m0").resolve() == (zoo / "m0").resolve()
    finally:
        for i in ("m0", "m1"):
            (zoo / i).rmdir()
        zoo.rmdir()


def test_missing_zoo_is_a_clear_error(tmp_path, monkeypatch):
    run = _run(tmp_path, "runs/no_such_zoo_here", ["a", "b"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no_such_zoo_here"):
        eval_default.held_out_benches(run, tmp_path)
