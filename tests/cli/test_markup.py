"""Text that contains "[...]" (extras like fpattr[train], user paths and model names) is
printed as text: rich must not parse it as markup and drop it."""

from __future__ import annotations

import io

from rich.console import Console

from fpattr.cli.common import print_policy_notes


def test_policy_notes_keep_their_brackets():
    note = "needs fpattr[train] for [this]; range [0, 1]"
    info = {"calibrations": [{"comparison": "image-vs-model", "notes": [note]}]}
    buf = io.StringIO()
    print_policy_notes(Console(file=buf, width=300, color_system=None), info)
    assert buf.getvalue().strip() == f"note: image-vs-model: {note}"


def test_doctor_keeps_the_extra_in_its_torch_row(monkeypatch):
    """It printed "only needed for synth/train/export: fpattr" ("[train]" eaten)."""
    import importlib.util

    from fpattr.cli import doctor_cmd
    from fpattr.testing import run_cli

    find_spec, version = importlib.util.find_spec, doctor_cmd._version
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "torch" else find_spec(n, *a)
    )
    monkeypatch.setattr(doctor_cmd, "_version", lambda n: None if n == "torch" else version(n))
    r = run_cli(["doctor"], env={"COLUMNS": "300"})
    row = next(x for x in r.stdout.splitlines() if "torch (training only)" in x)
    assert "not installed (only needed for synth/train/export: fpattr[train])" in row


def test_policy_notes_of_two_view_counts_say_which():
    # break-it finding: two calibrations' notes (4 views, and 1 view for small images)
    # were printed with the same "image-vs-model:" label and different card values
    cals = [
        {"comparison": "image-vs-model", "views": None, "notes": ["card's 0.8890"]},
        {"comparison": "image-vs-model", "views": 1, "notes": ["card's 0.8081"]},
    ]
    buf = io.StringIO()
    print_policy_notes(Console(file=buf, width=300, color_system=None), {"calibrations": cals})
    assert buf.getvalue().splitlines() == [
        "note: image-vs-model: card's 0.8890",
        "note: image-vs-model (1 view(s)): card's 0.8081",
    ]
