"""A small world for CLI tests: three fake 'generators' with distinct traces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fpattr.testing import run_cli, write_generator_images


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def world(tmp_path) -> dict[str, Path]:
    """refs/<gen>/ (5 each), queries/<gen>_k.png (3 each), gallery enrolled by the tests."""
    out: dict[str, Path] = {"root": tmp_path}
    for gen in ("nearest", "bilinear", "checker"):
        write_generator_images(tmp_path / "refs" / gen, gen, n=5, size=64, seed=0)
        write_generator_images(tmp_path / "queries", gen, n=3, size=64, seed=100, prefix=f"{gen}_")
    out["refs"] = tmp_path / "refs"
    out["queries"] = tmp_path / "queries"
    out["gallery"] = tmp_path / "gallery"
    return out


@pytest.fixture
def enrolled(world: dict[str, Path]) -> dict[str, Path]:
    """The world with its three generators enrolled (spectrum backbone)."""
    for gen in ("nearest", "bilinear", "checker"):
        r = run_cli(
            [
                "gallery",
                "add",
                gen,
                world["refs"] / gen,
                "--gallery",
                world["gallery"],
                "--backbone",
                "spectrum",
                "-q",
            ]
        )
        assert r.exit_code == 0, r.output
    return world


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    """A 2-CPU local Ray cluster for one test module (start-up takes seconds); its GCS address.

    Ray replaces the SIGINT/SIGTERM handlers when it starts: the CLI tests need fpattr's.
    """
    import logging
    import signal

    ray = pytest.importorskip("ray", reason="Ray Data not installed: pip install 'fpattr[ray]'")
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    for s, h in saved.items():
        signal.signal(s, h)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
