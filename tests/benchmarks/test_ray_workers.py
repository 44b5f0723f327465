"""benchmarks/ray_workers.timed_run on a local run: arrival times, counts, and a failing run's
stderr in the error (stderr goes to a file, so a chatty run cannot block on a full pipe)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fpattr.testing import make_gallery

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import ray_workers  # noqa: E402


def test_timed_run_counts_a_local_run(tmp_path):
    gallery = make_gallery(tmp_path, backbone="spectrum", n=3)
    out = ray_workers.timed_run(tmp_path / "images", gallery, ["--backbone", "spectrum"])
    assert out["n"] == 6
    assert 0 < out["manifest_s"] <= out["first_result_s"] <= out["wall_s"]
    assert out["running_images_per_s"] > 0


def test_timed_run_failure_carries_stderr(tmp_path):
    gallery = make_gallery(tmp_path, backbone="spectrum", n=2)
    with pytest.raises(SystemExit, match="no_such_backbone"):
        ray_workers.timed_run(tmp_path / "images", gallery, ["--backbone", "no_such_backbone"])
