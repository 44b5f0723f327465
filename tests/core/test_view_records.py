"""Galleries record how each reference was cropped; runs that crop queries otherwise say so."""

from __future__ import annotations

import json

import numpy as np

from fpattr.backbones.resolve import create_backbone
from fpattr.gallery import Gallery
from fpattr.pipeline import Settings
from fpattr.session import Session
from fpattr.testing import run_cli, write_generator_images
from fpattr.views import BY_SIZE_RULE, view_rule


def _gallery(rules: dict[str, list[str | None]]) -> Gallery:
    g = Gallery(backbone=create_backbone("spectrum").info())
    rng = np.random.default_rng(0)
    for name, per_ref in rules.items():
        refs = [
            {"path": f"{name}/{k}", "sha256": f"{name}{k}"} | ({"views": r} if r else {})
            for k, r in enumerate(per_ref)
        ]
        g.add(name, rng.normal(size=(len(per_ref), 8)), refs)
    return g


def test_view_rule_labels():
    assert view_rule(None) == BY_SIZE_RULE and view_rule(4) == "4"


def test_view_notes_name_the_models_cropped_otherwise():
    bb = create_backbone("spectrum")
    g = _gallery(
        {
            "alike": [BY_SIZE_RULE, BY_SIZE_RULE],
            "fixed": ["4", "4"],
            "old": [None, None],
            "half": [BY_SIZE_RULE, None],
        }
    )
    notes = Session(bb, g).view_notes()
    assert len(notes) == 2
    assert "'fixed' enrolled with views 4" in notes[0]
    assert "models 'old', 'half' enrolled before galleries recorded" in notes[1]
    # the same gallery read by a run with --views 4: now 'alike' differs and 'fixed' not
    notes4 = Session(bb, g, settings=Settings(views=4)).view_notes()
    assert f"'alike', 'half' enrolled with views {BY_SIZE_RULE}" in notes4[0]
    assert "'fixed'" not in " ".join(notes4)
    assert Session(bb, _gallery({"a": [BY_SIZE_RULE]})).view_notes() == []


def test_gallery_add_records_the_rule_and_attribute_notes_a_mismatch(tmp_path):
    write_generator_images(tmp_path / "refs" / "a", "nearest", n=3, size=64, seed=0)
    write_generator_images(tmp_path / "refs" / "b", "checker", n=3, size=64, seed=0)
    write_generator_images(tmp_path / "q", "checker", n=1, size=64, seed=9)
    g = tmp_path / "g"
    for name, extra in (("a", []), ("b", ["--views", "4"])):
        r = run_cli(
            ["gallery", "add", name, tmp_path / "refs" / name, "-g", g, "-b", "spectrum"] + extra
        )
        assert r.exit_code == 0, r.output
    doc = json.loads((g / "gallery.json").read_text())
    assert {r["views"] for r in doc["models"]["a"]["refs"]} == {BY_SIZE_RULE}
    assert {r["views"] for r in doc["models"]["b"]["refs"]} == {"4"}
    r = run_cli(["attribute", tmp_path / "q", "-g", g, "-b", "spectrum", "-f", "json"])
    assert r.exit_code == 0 and "'b' enrolled with views 4" in r.stderr
    r = run_cli(
        ["attribute", tmp_path / "q", "-g", g, "-b", "spectrum", "-f", "json", "--views", "4"]
    )
    assert f"'a' enrolled with views {BY_SIZE_RULE}" in r.stderr and "'b'" not in r.stderr
    # appending references cropped otherwise is a warning at enrolment
    r = run_cli(
        [
            "gallery",
            "add",
            "a",
            tmp_path / "refs" / "b",
            "-g",
            g,
            "-b",
            "spectrum",
            "--append",
            "--views",
            "9",
        ]
    )
    assert r.exit_code == 0 and "enrolled with views 9 and by-size" in r.output
