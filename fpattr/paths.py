"""Where fpattr finds shipped models and keeps user data.

``FPATTR_HOME`` (default ``$XDG_DATA_HOME/fpattr`` or ``~/.local/share/fpattr``)
holds user galleries; ``FPATTR_MODELS`` overrides the folder of shipped models.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("FPATTR_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "fpattr"


def models_dir() -> Path:
    """The shipped models: wheel installs carry them as ``fpattr/_models``; an
    editable install or a source checkout uses the repository's ``models/``."""
    env = os.environ.get("FPATTR_MODELS")
    if env:
        return Path(env).expanduser()
    pkg = Path(__file__).resolve().parent
    for cand in (pkg / "_models", pkg.parent / "models"):
        if cand.is_dir():
            return cand
    return pkg / "_models"


def default_gallery_dir(backbone_name: str) -> Path:
    return home() / "galleries" / backbone_name


def data_dir() -> Path:
    """Bundled package data (demo images)."""
    return Path(__file__).resolve().parent / "data"


#: What a release ships in ``models/`` (``NAME.onnx`` + ``NAME.json`` each), and the
#: analysis heads: ``fpattr doctor`` fails when one is missing (it used to check only the
#: cards it found, so a removed card passed). tests/docs keep this list equal to models/.
SHIPPED_EXTRACTORS = ("default", "default-int8", "v2")
SHIPPED_HEADS = "analysis.json"


def shipped_models() -> list[str]:
    """Names of the extra extractors shipped in ``models/`` (``NAME.onnx`` + ``NAME.json``),
    other than ``default`` and ``default-int8``: e.g. ``v1`` kept for comparison when a newer
    extractor becomes the default. Reads file names only, so registering them keeps
    ``fpattr --help`` fast."""
    folder = models_dir()
    if not folder.is_dir():
        return []
    return sorted(
        p.stem
        for p in folder.glob("*.onnx")
        if p.with_suffix(".json").is_file() and p.stem not in ("default", "default-int8")
    )
