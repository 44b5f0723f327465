"""No unsafe deserialisation anywhere in fpattr/: no pickle-family module, no
``allow_pickle=True``, no ``weights_only=False``; every ``torch.load`` passes
``weights_only=True`` and every ``np.load`` ``allow_pickle=False``.

The word "pickle" itself may appear in prose ("no pickle"); what is refused is using it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "fpattr"
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve"}
UNSAFE_TEXT = [
    re.compile(r"allow_pickle\s*=\s*True"),
    re.compile(r"weights_only\s*=\s*False"),
    re.compile(r"\bread_pickle\s*\("),
    re.compile(r"\bmarshal\.loads?\s*\("),
]


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return "<missing>"


def violations(source: str, where: str = "<src>") -> list[str]:
    """Unsafe loading in one Python source text, one line per finding."""
    found = []
    for k, line in enumerate(source.splitlines(), 1):
        for pat in UNSAFE_TEXT:
            if pat.search(line):
                found.append(f"{where}:{k}: {pat.pattern}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(f"{where}:{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in UNSAFE_MODULES:
                found.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else None
            if node.func.attr == "load" and owner_name == "torch":
                if _keyword(node, "weights_only") is not True:
                    found.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
            if node.func.attr == "load" and owner_name in ("np", "numpy"):
                if _keyword(node, "allow_pickle") is not False:
                    found.append(f"{where}:{node.lineno}: np.load without allow_pickle=False")
    return found


def test_no_unsafe_loading_in_fpattr_source():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    found = [v for f in files for v in violations(f.read_text(encoding="utf-8"), str(f))]
    assert found == [], "unsafe loading in fpattr/:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "code",
    [
        "import pickle",
        "import pickle as p",
        "from pickle import loads",
        "import cloudpickle",
        "import joblib",
        "x = pickle.loads(b)",
        "np.load(f, allow_pickle=True)",
        "np.load(f)",
        "numpy.load(f, allow_pickle=flag)",
        "torch.load(f)",
        "torch.load(f, map_location='cpu', weights_only=False)",
        "torch.load(f, weights_only=ok)",
        "df = pd.read_pickle(p)",
    ],
)
def test_the_check_catches_unsafe_code(code):
    assert violations(code)


@pytest.mark.parametrize(
    "code",
    [
        '"""No pickle: np.load(..., allow_pickle=False)."""',
        "np.load(f, allow_pickle=False)",
        "torch.load(f, map_location='cpu', weights_only=True)",
        "json.loads(s)",
    ],
)
def test_the_check_allows_safe_code(code):
    assert violations(code) == []
