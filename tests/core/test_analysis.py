"""Design-choice heads, k-means/NMI and `fpattr analyze` on a tiny labelled zoo."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fpattr.analysis import Heads, cluster_nmi, design_labels, fit_softmax, kmeans, nmi
from fpattr.testing import run_cli, write_generator_images


def test_nmi_bounds():
    assert nmi([0, 0, 1, 1], ["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert nmi([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0)


def test_kmeans_and_softmax_separate_blobs():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (20, 3)), rng.normal(3, 0.1, (20, 3))])
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    assert nmi(y, kmeans(x, 2)) == pytest.approx(1.0)
    w, b = fit_softmax(x, y, 2)
    assert np.mean((x @ w + b).argmax(1) == y) == 1.0


def test_heads_roundtrip_and_labels(tmp_path):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (10, 4)) + 3, rng.normal(0, 1, (10, 4)) - 3])
    labels = [{"family": "a", "upsampling": "nearest"}] * 10 + [{"family": "b"}] * 10
    heads = Heads.fit(x, labels, {"name": "n", "id": "i", "sha256": "s"})
    assert set(heads.heads) == {"family"}  # one upsampling value only: no head
    (tmp_path / "h.json").write_text(heads.to_json())
    again = Heads.load(tmp_path / "h.json")
    assert again.accuracy(x, labels)["family"]["accuracy"] == 1.0
    assert design_labels({"family": "ae", "design": {"upsampling": "bilinear", "K": "1"}}) == {
        "family": "ae",
        "upsampling": "bilinear",
    }
    assert set(cluster_nmi(x, labels)) == {"family"}


def test_analyze_fit_and_predict_cli(tmp_path):
    zoo = tmp_path / "zoo"
    kinds = {"nearest": "nearest", "bilinear": "bilinear", "checker": "transposed"}
    for m in range(9):
        kind = list(kinds)[m % 3]
        d = zoo / f"m{m}"
        write_generator_images(d, kind, n=4, size=64, seed=m, trace=m)
        (d / "done.json").write_text(
            json.dumps(
                {
                    "id": f"m{m}",
                    "family": "fake" if m % 2 else "toy",
                    "design": {"upsampling": kinds[kind]},
                }
            )
        )
    heads = tmp_path / "heads.json"
    r = run_cli(["analyze", "fit", zoo, "--out", heads, "-b", "spectrum"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["val"]["per_image"]["upsampling"]["n"] > 0 and "upsampling" in out["cluster_nmi"]
    r = run_cli(["analyze", "predict", zoo / "m2", "--heads", heads, "-b", "spectrum", "--as-set"])
    assert r.exit_code == 0, r.output
    pred = json.loads(r.stdout.strip().splitlines()[-1])
    assert pred["path"] == "<set>" and pred["upsampling"][0]["value"] == "transposed"
    r = run_cli(["analyze", "predict", zoo / "m2", "--heads", heads, "-b", "dct"])
    assert r.exit_code == 2 and "fitted with backbone" in r.output


def test_analyze_defaults_to_the_shipped_heads(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    kinds = {"nearest": "nearest", "checker": "transposed"}
    for m in range(6):
        kind = list(kinds)[m % 2]
        write_generator_images(zoo / f"m{m}", kind, n=4, size=64, seed=m, trace=m)
        entry = {"id": f"m{m}", "family": "toy", "design": {"upsampling": kinds[kind]}}
        (zoo / f"m{m}" / "done.json").write_text(json.dumps(entry))
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("FPATTR_MODELS", str(models))
    r = run_cli(["analyze", "predict", zoo / "m1", "-b", "spectrum"])
    assert r.exit_code == 2 and "no shipped heads" in r.output
    fit = ["analyze", "fit", zoo, "--out", models / "analysis.json", "-b", "spectrum"]
    assert run_cli(fit).exit_code == 0
    r = run_cli(["analyze", "predict", zoo / "m1", "-b", "spectrum", "--as-set"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["upsampling"][0]["value"] == "transposed"


def test_score_reports_per_model_confusion_and_balanced_accuracy():
    from fpattr.analysis import score

    rng = np.random.default_rng(2)
    centres = {"nearest": 3.0, "transposed": -3.0}
    train_x, train_lab = [], []
    for up, c in centres.items():
        train_x.append(rng.normal(c, 0.3, (20, 4)))
        train_lab += [{"family": "gan", "upsampling": up}, {"family": "ae", "upsampling": up}] * 10
    heads = Heads.fit(np.concatenate(train_x), train_lab, {"sha256": "s"})
    # 3 "nearest" models and one "transposed" model whose fingerprint looks "nearest"
    per_model = {f"n{i}": rng.normal(3.0, 0.3, (5, 4)) for i in range(3)}
    per_model["t0"] = rng.normal(3.0, 0.3, (5, 4))
    entries = {
        i: {"id": i, "family": "gan", "design": {"upsampling": "nearest"}} for i in per_model
    }
    entries["t0"]["design"]["upsampling"] = "transposed"
    entries["unlabelled"] = {"id": "unlabelled"}
    res = score(heads, per_model, entries)
    up = res["per_model"]["upsampling"]
    assert res["n_models"] == 4 and res["n_images"] == 20
    assert up["accuracy"] == pytest.approx(0.75) and up["chance"] == pytest.approx(0.75)
    assert up["balanced_accuracy"] == pytest.approx(0.5) and up["balanced_chance"] == 0.5
    assert res["confusion"]["upsampling"] == {
        "nearest": {"nearest": 3},
        "transposed": {"nearest": 1},
    }
    assert res["predictions"]["t0"]["predicted"]["upsampling"] == "nearest"
    with pytest.raises(Exception, match="no labelled model"):
        score(heads, {"x": per_model["n0"]}, {})


def test_analyze_score_cli_reads_a_labelled_benchmark(tmp_path):
    zoo, bench = tmp_path / "zoo", tmp_path / "bench"
    kinds = {"nearest": "nearest", "checker": "transposed"}
    for m in range(8):
        kind = list(kinds)[m % 2]
        d = (zoo if m < 6 else bench) / f"m{m}"
        write_generator_images(d, kind, n=4, size=64, seed=m, trace=m)
        entry = {"id": f"m{m}", "family": "toy", "design": {"upsampling": kinds[kind]}}
        if m < 6:
            (d / "done.json").write_text(json.dumps(entry))
        else:
            models = json.loads((bench / "manifest.json").read_text())["models"] if m == 7 else []
            (bench / "manifest.json").write_text(json.dumps({"models": [*models, entry]}))
    heads = tmp_path / "heads.json"
    assert run_cli(["analyze", "fit", zoo, "--out", heads, "-b", "spectrum"]).exit_code == 0
    out = tmp_path / "score.json"
    r = run_cli(["analyze", "score", bench, "--heads", heads, "-b", "spectrum", "-o", out])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["n_models"] == 2 and res["per_model"]["upsampling"]["n"] == 2
    assert set(res["predictions"]) == {"m6", "m7"}
    r = run_cli(["analyze", "score", tmp_path / "zoo" / "m0", "--heads", heads, "-b", "spectrum"])
    assert r.exit_code == 2 and "no model labels" in r.output
