"""The package's public names, and that importing it (or `fpattr --help`) stays light."""

from __future__ import annotations

import os
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


def test_one_path_given_as_a_string_is_one_input(tmp_path):
    # break-it finding: Session.attribute("one.png") took each character as a path and
    # walked "/" once ("/" is one of them): one input per character
    from fpattr.io.walk import iter_inputs
    from fpattr.testing import write_generator_images

    (img,) = write_generator_images(tmp_path / "q", "nearest", n=1, size=32, seed=0)
    for given in (str(img), img, bytes(str(img), "utf-8")):
        items = list(iter_inputs(given))
        assert [str(i.path) for i in items] == [str(img)], given
    assert [str(i.path) for i in iter_inputs([tmp_path / "q"], exclude=str(img))] == []


@pytest.mark.parametrize(
    "bad",
    [
        {"views": -3},
        {"views": 0},
        {"batch_size": -1},
        {"batch_size": 0},
        {"top_k": -1},
        {"top_k": 0},
        {"workers": -1},
        {"max_pixels": 0},
        {"views": 2.5},
        {"top_k": True},
    ],
)
def test_settings_refuse_values_that_would_decide_nothing(bad):
    # break-it finding: Settings(views=-3) ran, gave every image 0 views and no decision
    from fpattr.pipeline import Settings

    with pytest.raises(ValueError, match=f"Settings.{next(iter(bad))} must be"):
        Settings(**bad)
    Settings(views=1, batch_size=1, top_k=1, workers=0)  # the least of each is fine


def test_decide_refuses_an_embedding_that_is_not_a_finite_vector():
    # break-it finding: Session.decide(NaN vector) answered "inconclusive" at probability NaN
    import numpy as np

    from fpattr.backbones.resolve import create_backbone
    from fpattr.gallery import Gallery
    from fpattr.session import Session

    bb = create_backbone("spectrum")
    g = Gallery(backbone=bb.info())
    rng = np.random.default_rng(0)
    for m in ("a", "b"):
        e = rng.normal(size=(3, 16)).astype(np.float32)
        refs = [{"path": f"{m}{k}.png", "sha256": f"{m}{k}"} for k in range(3)]
        g.add(m, e / np.linalg.norm(e, axis=1, keepdims=True), refs)
    s = Session(bb, g)
    for bad in (np.full(16, np.nan), np.zeros(16), np.ones((2, 16)), np.full(16, np.inf)):
        with pytest.raises(ValueError, match="finite, non-zero"):
            s.decide(bad)
    # only the direction counts, whatever the scale (break-it passes: 1e39 became inf in
    # float32, probability NaN; 1e-50 and 1e-15 became (near) zero, answered 'unknown')
    q = rng.normal(size=16)
    want = s.decide(q)
    for k in (1e39, 1e19, 1e-15, 1e-50, 1e-300):
        got = s.decide(q * k)
        assert got["decision"] == want["decision"]
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-6)
    with pytest.raises(ValueError, match=r"\(16,\) embedding"):
        s.decide(np.ones(15))
    for kw, match in (
        ({"set_size": 0}, "set_size"),
        ({"set_size": -1}, "set_size"),
        ({"set_size": 1.5}, "set_size"),
        ({"views": -3}, "views"),
        ({"views": 0}, "views"),
        ({"views": float("inf")}, "views"),
        ({"set_size": float("inf")}, "set_size"),
        ({"set_size": float("nan")}, "set_size"),
        # break-it 27b: True was a set size of 1 and flat="no" (truthy) answered
        # "insufficient signal"
        ({"set_size": True}, "set_size"),
        ({"views": True}, "views"),
        ({"flat": "no"}, "flat must be True or False"),
        ({"flat": 1}, "flat must be True or False"),
    ):
        with pytest.raises(ValueError, match=match):
            s.decide(np.ones(16), **kw)
    assert s.decide(np.ones(16), set_size=3, views=2)["decision"] is not None
    assert s.decide(np.ones(16), flat=np.bool_(True))["decision"] == "insufficient signal"
    from fpattr.errors import UsageError

    with pytest.raises(UsageError, match="needs a gallery"):
        Session(bb, None).decide(np.ones(16))


def test_an_empty_path_is_an_error_of_its_own_and_bytes_paths_read_as_paths(tmp_path):
    # break-it 28: "" failed as "no such file or directory" under the name ".", which
    # exists; verify() of bytes paths returned "b'q/x.png'" as the path
    from fpattr.io.walk import EMPTY_PATH, iter_inputs
    from fpattr.session import Session
    from fpattr.testing import write_generator_images

    assert [i.error for i in iter_inputs([""])] == [EMPTY_PATH]
    a, b = write_generator_images(tmp_path / "q", "nearest", n=2, size=64, seed=0)
    s = Session.open("spectrum")
    r = s.verify(os.fsencode(a), os.fsencode(b))
    assert (r["a"], r["b"], r["status"]) == (str(a), str(b), "ok")
    r = s.verify("", str(b))
    assert r["status"] == "error" and EMPTY_PATH in r["error"] and r["a"] == ""


@pytest.mark.parametrize(
    "args",
    [
        ["gallery", "add", "m", ""],
        ["attribute", "", "-f", "csv"],
        ["verify", "", "x.png"],
        ["provenance", ""],
        ["analyze", "predict", ""],
        ["attribute", "q", "-o", ""],
        ["gallery", "add", "m", "x.png", "--gallery="],  # glued: review 28
        ["attribute", "q", "--output="],
    ],
)
def test_an_empty_argument_is_a_usage_error_before_any_work(tmp_path, monkeypatch, args):
    # break-it 28: `gallery add m "$REFS"` with REFS unset enrolled every image under the
    # working folder (Path("") is "."), exit 0
    from fpattr.testing import run_cli, write_generator_images

    write_generator_images(tmp_path / "here", "nearest", n=2, size=64, seed=0)
    monkeypatch.chdir(tmp_path / "here")
    r = run_cli([*args, "-g", tmp_path / "g"] if args[0] == "gallery" else args)
    assert r.exit_code == 2 and ("is empty" in r.output or "empty value" in r.output), r.output
    assert not (tmp_path / "g").exists() and not (tmp_path / "here" / "gallery.json").exists()


def test_session_enrol_in_memory_and_to_a_folder(tmp_path):
    # issue 9 item 7: Session(backbone, gallery, policy) with enrol, attribute, verify;
    # `gallery add` enrolled through CLI code of its own
    from fpattr.errors import NoReferenceError
    from fpattr.gallery import Gallery
    from fpattr.session import Session
    from fpattr.testing import write_generator_images

    s = Session.open("spectrum")
    for gen in ("nearest", "checker"):
        refs = write_generator_images(tmp_path / gen, gen, n=4, size=64, seed=1)
        res = s.enrol(gen, refs + refs[:1], processed_copies=False)  # one exact duplicate
        assert (res["model"], res["n_refs"], res["gallery"]) == (gen, 4, None)
        assert res["duplicates_dropped"] == [str(refs[0])] and res["notes"]
    assert sorted(s.gallery.models) == ["checker", "nearest"] and s.gallery.path is None
    assert res["enrolment_check"]["n_refs"] == 4
    (q,) = write_generator_images(tmp_path / "q", "checker", n=1, size=64, seed=9)
    assert next(iter(s.attribute([q])))["top"][0]["model"] == "checker"
    # to a folder: saved under its lock, and the session decides with the saved gallery
    saved = Session.open("spectrum")
    out = saved.enrol("checker", [tmp_path / "checker"], save_to=tmp_path / "g")
    assert out["gallery"] == str(tmp_path / "g") and out["processed_copies"]["enrolled"]
    assert Gallery.load(tmp_path / "g").sha256 == saved.gallery.sha256
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(NoReferenceError, match="no usable reference") as err:
        saved.enrol("bad", [tmp_path / "bad"], save_to=tmp_path / "g")
    assert [x["path"] for x in err.value.left_out] == [str(tmp_path / "bad" / "x.png")]
    assert "bad" not in Gallery.load(tmp_path / "g").models


def test_session_enrol_reports_on_the_edited_gallery_with_a_callers_policy(tmp_path):
    # review 28: with a policy the caller supplied, the report described the old gallery
    from fpattr.backbones.resolve import create_backbone
    from fpattr.decision import DecisionPolicy
    from fpattr.gallery import Gallery
    from fpattr.session import Session
    from fpattr.testing import write_generator_images

    bb = create_backbone("spectrum")
    first = Session(bb)
    first.enrol("nearest", write_generator_images(tmp_path / "n", "nearest", n=3, size=64))
    g = first.gallery
    s = Session(bb, g, policy=DecisionPolicy(bb.calibration(), g))
    res = s.enrol("checker", write_generator_images(tmp_path / "c", "checker", n=3, size=64))
    assert res["n_models"] == 2 and res["enrolment_check"]["n_refs"] == 3
    assert isinstance(s.gallery, Gallery) and "checker" in s.gallery.models
