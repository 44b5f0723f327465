"""Without torch (no [train] extra): listing families works, commands that need torch say
so with a usage error (exit 2), never an internal error (exit 70).

torch is hidden by ``sys.modules["torch"] = None`` in one child process that runs every
command through Typer's runner: an import of torch then raises ModuleNotFoundError as if
it were not installed, and the whole check costs one interpreter start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES, n_architectures

_CHILD = textwrap.dedent(
    """
    import json, sys
    sys.modules["torch"] = None  # import torch -> ModuleNotFoundError
    from fpattr.testing import run_cli
    out = []
    for args in json.loads(sys.argv[1]):
        r = run_cli(args)
        out.append({"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr})
    out.append(sorted(m for m in sys.modules if m.split(".")[0] == "torch" and sys.modules[m]))
    print(json.dumps(out))
    """
)


def _run_without_torch(commands: list[list[str]], cwd: Path) -> list:
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={
            **os.environ,
            "FPATTR_LOAD_PLUGINS": "",
            "FPATTR_HOME": str(cwd),
            "COLUMNS": "300",  # rich tables: one line per row, so the text is searchable
        },
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_commands_without_torch(tmp_path):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    results = _run_without_torch(
        [
            ["synth", "--list"],
            ["synth", str(tmp_path / "new-zoo"), "--family", "autoencoder", "-n", "1"],
            ["synth", str(tmp_path / "new-zoo"), "--family", "no-such-family", "-n", "1"],
            ["train", str(zoo), "--out", str(tmp_path / "run")],
            ["export", str(tmp_path / "run")],
        ],
        tmp_path,
    )
    listing, synth, unknown, train, export, torch_loaded = results

    assert listing["code"] == 0, listing["stderr"]
    rows = {row["name"]: row for row in json.loads(listing["stdout"])}
    assert set(rows) == set(BUILTIN_DESIGN_SPACES)
    assert rows["autoencoder"]["n_architectures"] == 384
    assert rows["autoencoder"]["design_space"]["norm"] == ["batch", "instance", "none"]
    assert rows["stylegan3"]["n_architectures"] == 16
    assert all("error" not in row for row in rows.values())

    assert synth["code"] == 2, synth
    assert "needs fpattr[train] (torch)" in synth["stderr"]
    assert "internal error" not in synth["stderr"]
    assert not (tmp_path / "new-zoo").exists()  # refused before any work
    assert unknown["code"] == 2 and "unknown synthesizer 'no-such-family'" in unknown["stderr"]
    for name, r in (("train", train), ("export", export)):
        assert r["code"] == 2, (name, r)
        assert f"fpattr {name} needs fpattr[train] (torch)" in r["stderr"]
    assert torch_loaded == []


def test_declared_design_spaces_count_their_architectures():
    assert n_architectures(BUILTIN_DESIGN_SPACES["autoencoder"]) == 2 * 2 * 4 * 4 * 3 * 2
    assert n_architectures(BUILTIN_DESIGN_SPACES["ldm_vae"]) == 3 * 2 * 3 * 2 * 4
