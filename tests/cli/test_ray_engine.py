"""`fpattr attribute --engine ray`: the same records as the local engine, record for record.

Starts a local 2-CPU Ray cluster (2 actors, one Session each); skipped only when the
``[ray]`` extra is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fpattr.testing import run_cli, write_generator_images

pytest.importorskip("ray.data", reason="Ray Data not installed: pip install 'fpattr[ray]'")


def _records(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    manifest = [x for x in lines if x.get("type") == "manifest"]
    summary = [x for x in lines if x.get("type") == "summary"]
    assert len(manifest) == 1 and len(summary) == 1
    return manifest[0], [x for x in lines if x.get("type") == "result"], summary[0]


def _rounded(x: Any) -> Any:
    """Probabilities and scores compared to 1e-6 (floats only; structure exactly)."""
    if isinstance(x, float):
        return round(x, 6)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def _key(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": rec["path"],
        "status": rec["status"],
        "error": rec["error"],
        "decision": rec["decision"],
        "probability": _rounded(rec["probability"]),
        "top": _rounded(rec["top"]),
        "sha256": rec["sha256"],
        "n_views": rec["n_views"],
    }


def test_ray_engine_matches_local(enrolled, tmp_path, monkeypatch):
    world = enrolled
    q = world["queries"]  # 9 generator images; add more, a non-image and a broken file
    write_generator_images(q, "checker", n=2, size=64, seed=300, prefix="extra_")
    (q / "notes.txt").write_text("not an image\n", encoding="utf-8")  # skipped in a folder
    (q / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # fails to decode
    monkeypatch.chdir(world["root"])  # relative input paths, as a user types them
    common = ["queries", "-g", world["gallery"], "-b", "spectrum", "-f", "jsonl", "-q"]

    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    r = run_cli(["attribute", *common, "-o", local_out, "--as-set"])
    assert r.exit_code == 1, r.output  # broken.png failed
    r = run_cli(
        ["attribute", *common, "-o", ray_out, "--as-set", "--engine", "ray", "--ray-workers", 2]
    )
    assert r.exit_code == 1, r.output

    lm, local, ls = _records(local_out)
    rm, remote, rs = _records(ray_out)
    assert len(local) == 13
    assert [_key(x) for x in remote] == [_key(x) for x in local]
    statuses = [x["status"] for x in local]
    assert statuses.count("ok") == 11 and "skipped" in statuses and "error" in statuses
    # the manifest says which engine ran; everything else in it is the same run
    assert rm.pop("engine") == {"name": "ray", "address": None, "workers": 2}
    assert "engine" not in lm
    for m in (lm, rm):
        for k in ("created", "started", "timing", "host"):
            m.pop(k, None)
    assert rm["settings"] == lm["settings"] and rm["gallery"] == lm["gallery"]
    for s in (ls, rs):
        s.pop("seconds"), s.pop("images_per_second"), s.pop("finished", None)
    assert _rounded(rs) == _rounded(ls)  # counts, decisions and the --as-set decision


def test_ray_engine_flags_need_ray_engine(enrolled):
    r = run_cli(["attribute", enrolled["queries"], "-g", enrolled["gallery"], "--ray-workers", 2])
    assert r.exit_code == 2
    assert "--engine ray" in r.output
