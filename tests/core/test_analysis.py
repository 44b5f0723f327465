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
