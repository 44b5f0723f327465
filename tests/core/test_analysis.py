"""Design-choice heads, k-means/NMI and `fpattr analyze` on a tiny labelled zoo."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fpattr.analysis import (
    CALIBRATION_SCHEMA,
    UNDETERMINED,
    Heads,
    calibrate,
    calibrate_head,
    canonical_value,
    choose_threshold,
    cluster_nmi,
    decide,
    design_labels,
    expected_calibration_error,
    fit_softmax,
    fit_temperature,
    generator_interval,
    head_info,
    kmeans,
    nmi,
    softmax,
)
from fpattr.testing import run_cli, write_generator_images
from fpattr.views import l2_normalize


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
        "family": "autoencoder",
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
    predict = ["analyze", "predict", zoo / "m2", "--heads", heads, "-b", "spectrum"]
    r = run_cli([*predict, "--as-set", "-f", "json"])
    assert r.exit_code == 0, r.output
    pred = json.loads(r.stdout)["results"][0]
    assert pred["path"] == "<set>" and pred["predictions"]["upsampling"]["top"] == "transposed"
    # heads from `analyze fit` carry no calibration: they answer, and say they are uncalibrated
    assert pred["predictions"]["upsampling"]["value"] == "transposed"
    assert pred["predictions"]["upsampling"]["reason"] == "uncalibrated"
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
    r = run_cli(["analyze", "predict", zoo / "m1", "-b", "spectrum", "--as-set", "-f", "jsonl"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.strip().splitlines()]
    # the set, then the folder's done.json: read, not an image (skipped), still accounted
    assert [line["type"] for line in lines] == ["manifest", "result", "result", "summary"]
    assert lines[1]["predictions"]["upsampling"]["top"] == "transposed"
    assert lines[2]["status"] == "skipped" and lines[2]["path"].endswith("done.json")


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


# --------------------------------------------------------------------------- label vocabulary


def test_design_labels_map_other_vocabularies_onto_the_heads_classes():
    entry = {"id": "x", "kind": "vae", "design": {"upsampling": "TConv", "norm": "BN"}}
    assert design_labels(entry) == {
        "family": "autoencoder",
        "upsampling": "transposed",
        "norm": "batch",
    }
    assert canonical_value("upsampling", "pixel_shuffle") == "pixelshuffle"
    assert canonical_value("family", "ddpm") == "diffusion_denoiser"
    assert canonical_value("activation", "swish") == "silu"
    # the family wins over the kind; unknown values pass through (scored as unseen)
    assert design_labels({"family": "gan_decoder", "kind": "vae"}) == {"family": "gan_decoder"}
    assert canonical_value("norm", "weird") == "weird"


# --------------------------------------------------------------------------- calibration math


def _logits(rng, n, k, right, scale):
    """n rows of k-class logits whose argmax is the label on a fraction ``right``."""
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < right, y, (y + 1 + rng.integers(0, k - 1, n)) % k)
    z = rng.normal(0, 0.3, (n, k))
    z[np.arange(n), pred] += 2.0
    return z * scale, y


def test_temperature_flattens_an_overconfident_head():
    rng = np.random.default_rng(0)
    z, y = _logits(rng, 2000, 4, right=0.6, scale=5.0)  # ~99 % confident, right 60 %
    acc = np.mean(z.argmax(1) == y)
    t = fit_temperature(z, y)
    assert t > 1.5
    conf = softmax(z, t).max(1)
    assert softmax(z).max(1).mean() > 0.95
    assert abs(conf.mean() - acc) < 0.05  # calibrated: confidence ~ accuracy
    assert np.array_equal(softmax(z, t).argmax(1), z.argmax(1))  # accuracy unchanged
    raw_ece = expected_calibration_error(softmax(z).max(1), z.argmax(1) == y)
    assert expected_calibration_error(conf, z.argmax(1) == y) < raw_ece / 3


def test_temperature_sharpens_an_underconfident_head():
    rng = np.random.default_rng(1)
    z, y = _logits(rng, 2000, 4, right=0.98, scale=0.3)  # right 98 %, ~35 % confident
    t = fit_temperature(z, y)
    assert t < 0.5
    assert softmax(z, t).max(1).mean() > 0.8 > softmax(z).max(1).mean()
    # rows whose truth the head cannot answer carry no likelihood
    assert fit_temperature(z, np.full(len(y), -1)) == 1.0
    assert fit_temperature(z, np.r_[y[:-5], np.full(5, -1)]) == pytest.approx(t, rel=0.05)


def test_threshold_is_the_lowest_confidence_reaching_the_target():
    conf = np.array([0.95, 0.9, 0.85, 0.8, 0.6, 0.55, 0.5, 0.45])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 0], bool)
    groups = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    # top 4 all right, top 5: 80 %, top 6: 83 %, top 7: 71 %
    assert choose_threshold(conf, correct, groups, target=0.9, min_n=2) == pytest.approx(0.7)
    thr = choose_threshold(conf, correct, groups, target=0.8, min_n=2)
    assert thr == pytest.approx(0.525) and np.mean(correct[conf >= thr]) >= 0.8
    assert choose_threshold(conf, correct, groups, target=0.9, min_n=5) is None
    assert choose_threshold(conf, correct, groups, target=0.5, min_n=2) == 0.0  # all: 62 %
    assert choose_threshold(conf, ~correct, groups, target=0.8, min_n=2) is None
    # one generator alone cannot make the threshold
    assert choose_threshold(conf[:1], correct[:1], groups[:1], target=0.8, min_n=1) is None


def _generator_logits(rng, n_gen, per, k, good):
    """Logits of ``n_gen`` generators (``per`` rows each); ``good`` generators' rows are
    confidently right, the others confidently wrong."""
    zs, ys, gs = [], [], []
    for g in range(n_gen):
        y = np.full(per, g % k)
        pred = y if g < good else (y + 1) % k
        z = rng.normal(0, 0.5, (per, k))
        z[np.arange(per), pred] += 4.0
        zs.append(z)
        ys.append(y)
        gs.append(np.full(per, g))
    return np.concatenate(zs), np.concatenate(ys), np.concatenate(gs)


def test_calibrate_head_is_leave_one_generator_out():
    rng = np.random.default_rng(2)
    z, y, g = _generator_logits(rng, 8, 20, 3, good=6)
    classes = ["a", "b", "c"]
    truth = [classes[i] for i in y]
    h = calibrate_head(z, y, g, classes, truth, target=0.8)
    # the held-out NLL is that of temperatures fitted without each generator
    nll = 0.0
    for k in range(8):
        t = fit_temperature(z[g != k], y[g != k])
        p = softmax(z[g == k], t)
        nll -= np.sum(np.log(p[np.arange(20), y[g == k]] + 1e-12))
    assert h["nll_after"] == pytest.approx(nll / len(y), abs=1e-3)
    assert h["n"] == 160 and h["n_generators"] == 8
    assert h["accuracy"] == pytest.approx(0.75)
    assert h["temperature"] > 1  # confidently wrong on a quarter: flattened
    assert h["mean_confidence_after"] < h["mean_confidence_before"]
    assert [gen["accuracy"] for gen in h["per_generator"]] == [1.0] * 6 + [0.0] * 2
    lo, hi = h["accuracy_interval"]
    assert lo < 0.75 < hi
    assert h["status"] in ("ok", "no_threshold")


def test_generator_interval_resamples_whole_generators():
    # two generators always right, two always wrong: per-image the accuracy is 50 % with
    # a tight binomial interval; by generator it can be anything from 0 to 100 %
    correct = np.repeat([True, True, False, False], 50)
    groups = np.repeat([0, 1, 2, 3], 50)
    lo, hi = generator_interval(correct, groups)
    assert lo <= 0.25 and hi >= 0.75
    assert generator_interval(np.ones(100, bool), np.repeat([0, 1], 50)) == [1.0, 1.0]
    assert generator_interval(correct, np.zeros(200, int)) is None  # one generator


def test_a_head_no_better_than_chance_never_answers():
    rng = np.random.default_rng(3)
    # 6 generators, 5 of value "a": always answering "a" is right 83 %; the head 50 %
    z, _, g = _generator_logits(rng, 6, 10, 2, good=3)
    y = np.where(g < 5, 0, 1)
    z[:, :] = rng.normal(0, 0.5, z.shape)
    z[np.arange(len(y)), np.where(g < 3, y, 1 - y)] += 4.0
    truth = ["a" if v == 0 else "b" for v in y]
    h = calibrate_head(z, y, g, ["a", "b"], truth, target=0.5)
    assert h["chance"] == pytest.approx(5 / 6, abs=1e-3) and h["chance_value"] == "a"
    assert h["accuracy"] == pytest.approx(0.5)
    assert h["status"] == "chance" and h["threshold"] is None
    assert h["answered"]["n"] == 0


def _calibrated_heads(status="ok", threshold=0.7, temperature=1.0):
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(0, 1, (20, 4)) + 2, rng.normal(0, 1, (20, 4)) - 2])
    labels = [{"upsampling": "nearest"}] * 20 + [{"upsampling": "transposed"}] * 20
    heads = Heads.fit(x, labels, {"name": "n", "id": "i", "sha256": "s"})
    head = {
        "status": status,
        "temperature": temperature,
        "threshold": threshold if status == "ok" else None,
        "accuracy": 0.64,
        "chance": 0.4,
        "chance_value": "nearest",
        "n": 900,
        "n_generators": 15,
        "answered": {
            "n": 300,
            "coverage": 0.33,
            "accuracy": 0.81,
            "n_generators": 9,
            "by_value": {"nearest": {"n": 100, "accuracy": 0.9, "n_generators": 3}},
        },
    }
    heads.calibration = {
        "schema": CALIBRATION_SCHEMA,
        "heads_sha256": heads.heads_sha256(),
        "backbone_sha256": "s",
        "modes": {"image": {"n": 900, "n_generators": 15, "heads": {"upsampling": head}}},
    }
    return heads, x


def test_decide_answers_above_the_threshold_and_is_undetermined_below():
    heads, x = _calibrated_heads(threshold=0.7)
    probs = heads.predict_proba(x)["upsampling"][1].max(1)
    rows = decide(heads, x)
    for p, row in zip(probs, rows, strict=True):
        ans = row["upsampling"]
        assert ans["probability"] == pytest.approx(p, abs=1e-4)
        if p >= 0.7:
            assert ans["value"] == ans["top"] and ans["reason"] is None
            assert "right 64 % of the time on held-out project generators" in ans["text"]
            if ans["value"] == "nearest":  # how often this very answer was right there
                assert "90 % of its 'nearest' answers there were right (n 100)" in ans["text"]
            else:
                assert "never answered 'transposed' there" in ans["text"]
        else:
            assert ans["value"] == UNDETERMINED and ans["reason"] == "below threshold"
            assert ans["text"].startswith(f"undetermined (best {ans['top']}")
    # a point between the blobs is not confident, so undetermined
    assert {r["upsampling"]["value"] for r in rows} >= {"nearest", "transposed"}
    mid = decide(heads, np.zeros((1, 4)))[0]["upsampling"]
    assert mid["probability"] < 0.7 and mid["value"] == UNDETERMINED
    assert sum(r["upsampling"]["value"] == UNDETERMINED for r in rows) < len(rows)


def test_decide_chance_level_head_is_always_undetermined():
    heads, x = _calibrated_heads(status="chance", temperature=0.5)  # sharpened, still silent
    rows = decide(heads, x)
    assert max(r["upsampling"]["probability"] for r in rows) > 0.99
    assert all(r["upsampling"]["value"] == UNDETERMINED for r in rows)
    assert {r["upsampling"]["reason"] for r in rows} == {"head not better than chance"}
    assert "not better than chance" in rows[0]["upsampling"]["text"]
    heads, x = _calibrated_heads(status="no_threshold")
    assert {r["upsampling"]["value"] for r in decide(heads, x)} == {UNDETERMINED}


def test_temperature_changes_the_probability_not_the_answer():
    sharp, x = _calibrated_heads(threshold=0.0, temperature=0.5)
    flat, _ = _calibrated_heads(threshold=0.0, temperature=5.0)
    a, b = decide(sharp, x), decide(flat, x)
    for ra, rb in zip(a, b, strict=True):
        assert ra["upsampling"]["top"] == rb["upsampling"]["top"]
        assert ra["upsampling"]["probability"] >= rb["upsampling"]["probability"]
        assert ra["upsampling"]["raw_probability"] == rb["upsampling"]["raw_probability"]


def test_uncalibrated_heads_still_answer_and_say_so(tmp_path):
    heads, x = _calibrated_heads()
    heads.calibration = {}
    cal, why = heads.calibration_status()
    assert cal is None and why.startswith("uncalibrated")
    ans = decide(heads, x)[0]["upsampling"]
    assert ans["value"] == ans["top"] and ans["reason"] == "uncalibrated"
    assert "uncalibrated" in ans["text"]
    # a calibration fitted for other heads is not used
    heads, x = _calibrated_heads()
    heads.heads["upsampling"]["b"] = [9.0, -9.0]
    assert heads.calibration_status()[0] is None
    assert "other heads" in heads.calibration_status()[1]
    assert decide(heads, x)[0]["upsampling"]["reason"] == "uncalibrated"


def test_calibrate_end_to_end_and_roundtrip(tmp_path):
    rng = np.random.default_rng(5)
    train_x, train_lab = [], []
    for up, c in {"nearest": 2.0, "transposed": -2.0}.items():
        train_x.append(rng.normal(c, 1.0, (40, 4)))
        train_lab += [{"family": "gan_decoder", "upsampling": up}] * 40
    heads = Heads.fit(np.concatenate(train_x), train_lab, {"sha256": "s"})
    per_model, entries = {}, {}
    for m in range(6):
        up = ("nearest", "transposed")[m % 2]
        per_model[f"g{m}"] = l2_normalize(rng.normal(2.0 if m % 2 == 0 else -2.0, 1.5, (12, 4)))
        entries[f"g{m}"] = {"id": f"g{m}", "kind": "gan", "design": {"upsampling": up}}
    cal = calibrate(heads, per_model, entries, set_size=4, target=0.7)
    assert cal["schema"] == CALIBRATION_SCHEMA and cal["generators"] == sorted(per_model)
    assert set(cal["modes"]) == {"image", "set"}
    assert cal["modes"]["image"]["n"] == 72 and cal["modes"]["set"]["n"] == 18
    up = cal["modes"]["image"]["heads"]["upsampling"]
    assert up["n_generators"] == 6 and up["chance"] == pytest.approx(0.5)
    assert up["accuracy"] > 0.8 and up["status"] == "ok"
    assert "family" not in cal["modes"]["image"]["heads"]  # one head class only: no head
    heads.calibration = cal
    (tmp_path / "h.json").write_text(heads.to_json())
    again = Heads.load(tmp_path / "h.json")
    assert again.calibration_status() == (cal, None)
    info = head_info(again, "set")["upsampling"]
    assert info["calibrated"] and info["n"] == 18
