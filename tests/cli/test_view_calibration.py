"""Small images (one view) are decided with the model card's one-view calibration."""

from __future__ import annotations

import json

import pytest

from fpattr.testing import run_cli, write_generator_images

pytest.importorskip("onnx")
from fpattr._testing_onnx import write_tiny_onnx_model  # noqa: E402


def _cal(threshold: float) -> dict:
    return {"a": 10.0, "b": -5.0, "threshold": threshold, "target_far": 0.01}


@pytest.fixture
def small_world(tmp_path, monkeypatch):
    """A tiny 'default' extractor (32-px views) whose 4-view thresholds can never be met
    and whose 1-view thresholds always are: which one decided is then unambiguous."""
    models = tmp_path / "models"
    card = {
        "centroid": _cal(1.01),
        "pair": _cal(1.01),
        "n_views": 4,
        "by_views": {"1": {"centroid": _cal(-1.0), "pair": _cal(-1.0)}},
    }
    write_tiny_onnx_model(models, name="default", size=32, calibration=card)
    monkeypatch.setenv("FPATTR_MODELS", str(models))
    for gen in ("nearest", "checker"):
        write_generator_images(tmp_path / "refs" / gen, gen, n=3, size=64, seed=0)
    write_generator_images(tmp_path / "q", "checker", n=1, size=32, seed=5, prefix="small_")
    write_generator_images(tmp_path / "q", "checker", n=1, size=64, seed=6, prefix="large_")
    g = tmp_path / "gallery"
    for gen in ("nearest", "checker"):
        r = run_cli(["gallery", "add", gen, tmp_path / "refs" / gen, "-g", g, "-b", "default"])
        assert r.exit_code == 0, r.output
    return tmp_path


def test_attribute_uses_the_one_view_calibration_for_small_images(small_world):
    w = small_world
    r = run_cli(["attribute", w / "q", "-g", w / "gallery", "-b", "default", "-f", "json", "-q"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    by_name = {x["path"].rsplit("/", 1)[1]: x for x in rep["results"]}
    small, large = by_name["small_000.png"], by_name["large_000.png"]
    assert small["effective_views"] == 1 and small["calibration"]["views"] == 1
    assert small["decision"] != "unknown"
    assert large["effective_views"] == 4 and large["calibration"]["views"] == 4
    assert large["decision"] in ("unknown", "inconclusive")  # never named: below 1.01
    fitted = {c["views"]: c for c in rep["summary"]["policy"]["calibrations"]}
    assert fitted[1]["card_views"] == 1 and fitted[4]["card_views"] == 4
    assert fitted[1]["source"] == fitted[4]["source"] == "gallery+model-card"
    # a user threshold applies to every input: no per-view calibration
    r = run_cli(
        ["attribute", w / "q", "-g", w / "gallery", "-b", "default", "-f", "json", "-q"]
        + ["--threshold", "1.0"]
    )
    rep = json.loads(r.stdout)
    assert {x["calibration"]["source"] for x in rep["results"]} == {"user-threshold"}
    assert {x["threshold"] for x in rep["results"]} == {1.0}
    assert {x["decision"] for x in rep["results"]} <= {"unknown", "inconclusive"}
    for bad in ("2", "-1.5", "nan", "inf"):  # a cosine threshold lies in [-1, 1]
        r = run_cli(["attribute", w / "q", "-g", w / "gallery", "--threshold", bad, "-q"])
        assert r.exit_code == 2 and "[-1, 1]" in r.output, (bad, r.output)


def test_verify_pairs_of_small_images_use_the_one_view_calibration(small_world):
    w = small_world
    write_generator_images(w / "q2", "checker", n=2, size=32, seed=9)
    a, b = sorted((w / "q2").iterdir())
    r = run_cli(["verify", a, b, "-b", "default", "-f", "json", "-q"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    res = rep["results"][0]
    assert res["calibration"]["views"] == 1 and res["calibration"]["source"] == "model-card"
    assert res["threshold"] == -1.0 and res["decision"] == "same"
    big = sorted((w / "refs" / "checker").iterdir())
    r = run_cli(["verify", big[0], big[1], "-b", "default", "-f", "json", "-q"])
    rep = json.loads(r.stdout)
    res = rep["results"][0]
    assert res["calibration"]["views"] == 4 and res["threshold"] == 1.01
    assert res["decision"] != "same"


def test_gallery_calibrate_shows_the_one_view_calibration(small_world):
    w = small_world
    r = run_cli(["gallery", "calibrate", "-g", w / "gallery", "-b", "default", "-f", "json"])
    assert r.exit_code == 0, r.output
    cals = json.loads(r.stdout)["calibrations"]
    by = {(c["comparison"], c["views"]): c for c in cals}
    one = by[("image-vs-model", 1)]
    assert one["card_views"] == 1
    # the one-view card threshold (-1.0) pulls the blended threshold far below the
    # default-view one (1.01): the two are shown apart
    assert one["threshold"] < by[("image-vs-model", None)]["threshold"]
    r = run_cli(["gallery", "calibrate", "-g", w / "gallery", "-b", "default"])
    assert "view(s)" in r.output  # the table wraps its cells: "image-vs-model, 1 view(s)"
