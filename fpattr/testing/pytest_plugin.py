"""pytest fixtures for plugin authors; enable them in your root ``conftest.py``::

    pytest_plugins = ["fpattr.testing.pytest_plugin"]

Every test then runs with its own ``FPATTR_HOME`` (your real galleries are never
touched) and a fresh process-wide plugin host. Fixtures:

* ``plugin_host`` - a :class:`fpattr.plugins.PluginHost` with the built-ins only: register
  your module in it (``plugin_host.register(my_plugin, name="mine")``);
* ``tiny_images(kind="checker", n=3, size=64)`` - a folder of fake-generator PNGs;
* ``tiny_gallery(backbone="spectrum", models=("checker", "nearest"), n=3)`` - a gallery
  folder enrolled with that backbone;
* ``tiny_photos`` - (8, 3, 32, 32) torch photos for synthesizer families (skips without
  torch);
* ``cli`` - :func:`fpattr.testing.run_cli`, the whole CLI through Typer's runner.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def fpattr_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any) -> Iterator[Path]:
    """An empty ``FPATTR_HOME`` per test, and a fresh plugin host before and after."""
    from fpattr import plugins

    home = tmp_path_factory.mktemp("fpattr-home")
    monkeypatch.setenv("FPATTR_HOME", str(home))
    plugins.set_host(None)
    yield home
    plugins.set_host(None)


@pytest.fixture
def plugin_host() -> Any:
    """A plugin host with fpattr's built-ins and no installed plugin."""
    from fpattr.plugins import PluginHost

    return PluginHost(load_entry_points=False)


@pytest.fixture
def tiny_images(tmp_path: Path) -> Callable[..., Path]:
    """``tiny_images(kind="checker", n=3, size=64, seed=0) -> folder`` of fake-generator PNGs
    (kinds: ``fpattr.testing.GENERATOR_KINDS``); each call gets a new folder."""
    from fpattr.testing import write_generator_images

    counter = itertools.count()

    def make(kind: str = "checker", n: int = 3, size: int = 64, seed: int = 0) -> Path:
        folder = tmp_path / f"images-{next(counter)}-{kind}"
        write_generator_images(folder, kind, n=n, size=size, seed=seed)
        return folder

    return make


@pytest.fixture
def tiny_gallery(tmp_path: Path) -> Callable[..., Path]:
    """``tiny_gallery(backbone="spectrum", models=("checker", "nearest"), n=3) -> folder``."""
    from fpattr.testing import make_gallery

    counter = itertools.count()

    def make(
        backbone: Any = "spectrum", models: Sequence[str] = ("checker", "nearest"), n: int = 3
    ) -> Path:
        return make_gallery(
            tmp_path / f"gallery-{next(counter)}", backbone=backbone, models=models, n=n
        )

    return make


@pytest.fixture(scope="session")
def tiny_photos() -> Any:
    """(8, 3, 32, 32) float32 torch 'photos' in [0, 1] for synthesizer families."""
    pytest.importorskip("torch")
    from fpattr.testing import tiny_photos as make

    return make()


@pytest.fixture
def cli() -> Callable[..., Any]:
    """``cli(["attribute", folder, "-f", "json"]) -> Result`` (exit_code, stdout, stderr)."""
    from fpattr.testing import run_cli

    return run_cli
