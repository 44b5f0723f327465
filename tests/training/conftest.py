from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory) -> Path:
    """A 12-model zoo of fake generators (4 'architectures', distinct traces)."""
    from fpattr.testing import write_generator_images

    root = tmp_path_factory.mktemp("zoo")
    models = []
    for m in range(12):
        kind = ["nearest", "bilinear", "checker", "checker"][m % 4]
        write_generator_images(root / f"m{m:02d}", kind, n=8, size=64, seed=m, trace=m)
        models.append(
            {
                "id": f"m{m:02d}",
                "family": "fake",
                "arch_id": f"{kind}{m % 4}",
                "design": {"kind": kind},
            }
        )
    (root / "manifest.json").write_text(json.dumps({"schema": "fpattr.zoo/1", "models": models}))
    return root
