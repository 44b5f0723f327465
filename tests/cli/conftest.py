"""A small world for CLI tests: three fake 'generators' with distinct traces."""

from __future__ import annotations

from pathlib import Path

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
