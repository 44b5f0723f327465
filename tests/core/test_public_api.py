"""The package's public names, and that importing it (or `fpattr --help`) stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("numpy", "onnxruntime", "torch")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_session_is_a_lazy_export():
    import fpattr
    from fpattr import Session
    from fpattr.session import Session as FromModule

    assert Session is FromModule
    assert "Session" in fpattr.__all__
    with pytest.raises(AttributeError):
        _ = fpattr.NoSuchName  # type: ignore[attr-defined]
    r = _run(
        "-c",
        "import sys, fpattr; "
        "assert 'fpattr.session' not in sys.modules and 'numpy' not in sys.modules; "
        "from fpattr import Session; "
        "assert Session.__module__ == 'fpattr.session' and 'numpy' in sys.modules",
    )
    assert r.returncode == 0, r.stderr


def test_help_imports_no_numpy_onnxruntime_or_torch():
    r = _run("-X", "importtime", "-m", "fpattr", "--help")
    assert r.returncode == 0, r.stderr
    assert "attribute" in r.stdout
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in r.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "fpattr" in imported  # the trace was read
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_backbone_resolution_still_importable_from_base():
    """Moved to fpattr.backbones.resolve; the old import path re-exports the same objects."""
    from fpattr.backbones import resolve
    from fpattr.backbones.base import create_backbone, resolve_backbone_name

    assert create_backbone is resolve.create_backbone
    assert resolve_backbone_name is resolve.resolve_backbone_name
    assert resolve_backbone_name("spectrum") == "spectrum"
