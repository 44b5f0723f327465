"""A tiny, easy bench: four fake generators, one too-small folder, a few real photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fpattr.testing import run_cli, write_generator_images, write_image

MODELS = {
    "nearest": ("nearest", 1234),
    "bilinear": ("bilinear", 1234),
    "checker-a": ("checker", 11),
    "checker-b": ("checker", 22),
}
REFS = 3
PER_MODEL = 8


def make_bench(root: Path) -> Path:
    for k, (name, (kind, trace)) in enumerate(MODELS.items()):
        write_generator_images(root / name, kind, n=PER_MODEL, size=64, seed=k + 1, trace=trace)
    write_generator_images(root / "tiny", "nearest", n=REFS, size=64, seed=9)  # no query left
    for k in range(6):
        write_image(root / "real" / f"photo{k}.png", (64, 64), seed=100 + k)
    return root


@pytest.fixture(scope="session")
def bench_master(tmp_path_factory) -> Path:
    return make_bench(tmp_path_factory.mktemp("bench"))


@pytest.fixture
def bench(bench_master: Path, tmp_path: Path) -> Path:
    """A private copy, so a test may add or rename files."""
    return Path(shutil.copytree(bench_master, tmp_path / "bench"))


@pytest.fixture(scope="session")
def _runs_cache() -> dict:
    return {}


@pytest.fixture
def clean_json(bench_master: Path, _runs_cache: dict) -> dict:
    """The default JSON run on the clean bench, computed once (inside a test, so the
    isolated FPATTR_HOME and plugin host fixtures apply)."""
    if "clean" not in _runs_cache:
        args = ["evaluate", bench_master, "--refs", REFS, "-b", "spectrum", "-f", "json", "-q"]
        r = run_cli(args)
        assert r.exit_code == 0, r.output
        _runs_cache["clean"] = json.loads(r.stdout)
    return _runs_cache["clean"]
