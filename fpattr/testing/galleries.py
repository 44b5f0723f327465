"""Temporary galleries for tests: enrol fake-generator images with any backbone."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["make_gallery"]


def make_gallery(
    folder: str | os.PathLike[str],
    *,
    backbone: Any = "spectrum",
    models: Iterable[str] = ("checker", "nearest"),
    n: int = 3,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Enrol ``n`` images of each fake generator in ``models`` into a gallery at
    ``folder/gallery`` and return that path; images go to ``folder/images/<model>``.

    ``backbone``: a registered name or a Backbone object. The gallery is written by
    fpattr's own code, so it is bound to the backbone exactly as ``fpattr gallery add``
    would bind it. Model names are the generator kinds (see ``GENERATOR_KINDS``).
    """
    from fpattr._testing_gen import write_generator_images
    from fpattr.backbones.resolve import create_backbone
    from fpattr.gallery import editing
    from fpattr.session import Session

    folder = Path(folder)
    bb = create_backbone(backbone) if isinstance(backbone, str) else backbone
    session = Session(bb)
    path = folder / "gallery"
    with editing(path, bb.info()) as g:
        for k, kind in enumerate(models):
            images = folder / "images" / kind
            write_generator_images(images, kind, n=n, size=size, seed=seed + 1000 * k)
            emb, refs, left_out = session.embed_references([images])
            if emb is None or left_out:
                raise RuntimeError(f"cannot enrol {kind!r} with {bb.name}: {left_out}")
            g.add(kind, emb, refs)
    return path
