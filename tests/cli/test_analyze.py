"""`fpattr analyze predict`: calibrated answers, "undetermined", caveats and formats.

A tiny world: fake generators (nearest / bilinear / checker traces) as a training zoo
for the heads and as a labelled benchmark of other generators for the calibration,
run through scripts/calibrate_analysis.py like the shipped heads are.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import pytest

from fpattr.analysis import CALIBRATION_SCHEMA, UNDETERMINED, Heads
from fpattr.testing import run_cli, write_generator_images

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"nearest": "nearest", "bilinear": "bilinear", "checker": "transposed"}


def _script():
    spec = importlib.util.spec_from_file_location(
        "calibrate_analysis", ROOT / "scripts" / "calibrate_analysis.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("analyze")
    zoo, bench = root / "zoo", root / "bench"
    for m in range(9):
        kind = list(KINDS)[m % 3]
        d = zoo / f"m{m}"
        write_generator_images(d, kind, n=6, size=64, seed=m, trace=m)
        entry = {"id": f"m{m}", "family": "gan_decoder", "design": {"upsampling": KINDS[kind]}}
        (d / "done.json").write_text(json.dumps(entry))
    models = []
    for m in range(6):  # other generators, labelled in a manifest in the benchmark's words
        kind = list(KINDS)[m % 3]
        write_generator_images(bench / f"b{m}", kind, n=6, size=64, seed=50 + m, trace=50 + m)
        up = {"transposed": "tconv"}.get(KINDS[kind], KINDS[kind])
        models.append({"id": f"b{m}", "kind": "gan", "design": {"upsampling": up}})
    (bench / "manifest.json").write_text(json.dumps({"models": models}))
    heads = root / "heads.json"
    r = run_cli(["analyze", "fit", zoo, "--out", heads, "-b", "spectrum"])
    assert r.exit_code == 0, r.output
    calibrated = root / "heads-calibrated.json"
    args = [str(bench), "--heads", str(heads), "--out", str(calibrated)]
    assert _script().main([*args, "--backbone", "spectrum", "--set-size", "3"]) == 0
    queries = root / "queries"
    write_generator_images(queries, "checker", n=2, size=64, seed=99, trace=99, prefix="c")
    write_generator_images(queries, "nearest", n=2, size=64, seed=98, prefix="n")
    return {
        "root": root,
        "zoo": zoo,
        "bench": bench,
        "heads": heads,
        "calibrated": calibrated,
        "queries": queries,
    }


def _predict(world, *args, heads=None):
    return run_cli(
        [
            "analyze",
            "predict",
            world["queries"],
            "--heads",
            heads or world["calibrated"],
            "-b",
            "spectrum",
            *args,
        ]
    )


def test_the_script_stores_a_calibration_bound_to_the_heads(world, capsys):
    doc = json.loads(world["calibrated"].read_text())
    before = json.loads(world["heads"].read_text())
    assert doc["heads"] == before["heads"] and doc["backbone"] == before["backbone"]
    cal = doc["calibration"]
    assert cal["schema"] == CALIBRATION_SCHEMA
    assert cal["backbone_sha256"] == before["backbone"]["sha256"]
    assert cal["generators"] == [f"b{m}" for m in range(6)]
    assert cal["benchmark"]["n_models_labelled"] == 6 and cal["benchmark"]["n_images"] == 36
    up = cal["modes"]["image"]["heads"]["upsampling"]
    for key in ("accuracy", "chance", "ece_before", "ece_after", "temperature", "n"):
        assert key in up
    assert up["n"] == 36 and up["n_generators"] == 6
    assert cal["modes"]["set"]["set_size"] == 3 and cal["modes"]["set"]["n"] == 12
    assert Heads.load(world["calibrated"]).calibration_status()[0] is not None


def test_predict_table_shows_accuracy_threshold_and_the_real_photo_caveat(world):
    r = _predict(world)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "fpattr analyze predict" in out and "upsampling" in out
    assert "right on held-out generators" in " ".join(out.split())
    assert "answers)" in out or "chance" in out  # per answered value, or the head vs chance
    assert "upsampling: this head is right" in " ".join(out.split())
    assert "assume every image is generated" in " ".join(out.split())
    assert "warning" not in r.stderr


def test_predict_json_answers_or_undetermined_with_held_out_accuracy(world):
    r = _predict(world, "-f", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["command"] == "analyze predict" and doc["calibration"]["calibrated"]
    assert any("never trained on real photos" in c for c in doc["caveats"])
    info = doc["head_info"]["upsampling"]
    assert len(doc["results"]) == 4 and doc["summary"]["n_ok"] == 4
    for res in doc["results"]:
        ans = res["predictions"]["upsampling"]
        assert ans["calibrated"] and ans["heldout_accuracy"] == info["heldout_accuracy"]
        assert "held-out project generators" in ans["text"]
        if info["status"] != "ok":
            assert ans["value"] == UNDETERMINED
        elif ans["probability"] < info["threshold"]:
            assert ans["value"] == UNDETERMINED and ans["reason"] == "below threshold"
        else:
            assert ans["value"] == ans["top"]
            # with how often that very answer was right on the held-out generators
            by_value = info["heldout_by_value"].get(ans["value"])
            assert ans["heldout_value_n"] == (by_value["n"] if by_value else 0)
            assert ("answers there were right" in ans["text"]) == bool(by_value)


def _with_calibration(world, tmp_path, name, **head) -> Path:
    """The calibrated heads with the upsampling head's calibration overridden."""
    doc = json.loads(world["calibrated"].read_text())
    for mode in doc["calibration"]["modes"].values():
        mode["heads"]["upsampling"].update(head)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_predict_is_undetermined_below_the_threshold(world, tmp_path):
    strict = _with_calibration(  # flattened to ~1/3: below any useful threshold
        world, tmp_path, "strict.json", status="ok", threshold=0.9, temperature=100.0
    )
    r = _predict(world, "-f", "json", heads=strict)
    assert r.exit_code == 0, r.output
    answers = [res["predictions"]["upsampling"] for res in json.loads(r.stdout)["results"]]
    assert {a["value"] for a in answers} == {UNDETERMINED}
    assert {a["reason"] for a in answers} == {"below threshold"}
    lax = _with_calibration(world, tmp_path, "lax.json", status="ok", threshold=0.0)
    r = _predict(world, "-f", "json", heads=lax)
    answers = [res["predictions"]["upsampling"] for res in json.loads(r.stdout)["results"]]
    assert all(a["value"] == a["top"] != UNDETERMINED for a in answers)
    r = _predict(world, heads=strict)
    assert "undetermined" in r.stdout and "p<0.90" in " ".join(r.stdout.split())


def test_predict_chance_level_head_is_always_undetermined(world, tmp_path):
    path = _with_calibration(
        world, tmp_path, "chance.json", status="chance", threshold=None, temperature=0.01
    )
    r = _predict(world, "-f", "json", heads=path)
    assert r.exit_code == 0, r.output
    answers = [res["predictions"]["upsampling"] for res in json.loads(r.stdout)["results"]]
    assert max(a["probability"] for a in answers) > 0.99  # confident, yet silent
    assert {a["value"] for a in answers} == {UNDETERMINED}
    assert all("not better than chance" in a["text"] for a in answers)
    r = _predict(world, heads=path)
    assert "chance-level" in " ".join(r.stdout.split())
    assert "always undetermined" in " ".join(r.stdout.split())


def test_predict_without_calibration_still_works_and_says_uncalibrated(world):
    r = _predict(world, "-f", "json", heads=world["heads"])
    assert r.exit_code == 0, r.output
    assert "uncalibrated" in r.stderr
    doc = json.loads(r.stdout)
    assert doc["calibration"]["calibrated"] is False
    assert any(c.startswith("uncalibrated") for c in doc["caveats"])
    ans = doc["results"][0]["predictions"]["upsampling"]
    assert ans["value"] == ans["top"] and ans["reason"] == "uncalibrated"
    r = _predict(world, heads=world["heads"])
    assert r.exit_code == 0 and "uncalibrated" in r.stdout


def test_predict_jsonl_csv_and_output_files(world, tmp_path):
    r = _predict(world, "-f", "jsonl")
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert [x["type"] for x in lines] == ["manifest"] + ["result"] * 4 + ["summary"]
    assert "caveats" in lines[0] and "predictions" in lines[1]

    r = _predict(world, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 4
    assert {"path", "upsampling", "upsampling_top", "upsampling_probability"} <= set(rows[0])
    assert all(row["upsampling_heldout_accuracy"] for row in rows)

    out = tmp_path / "pred.csv"  # the suffix picks the format; stdout stays empty
    r = _predict(world, "--output", out)
    assert r.exit_code == 0 and r.stdout == ""
    assert out.read_text().startswith("path,sha256,status,")
    out = tmp_path / "pred.txt"
    r = _predict(world, "-f", "json", "-o", out)
    assert json.loads(out.read_text())["summary"]["n_inputs"] == 4
    r = _predict(world, "-f", "yaml")
    assert r.exit_code == 2 and "unknown format" in r.output


def test_predict_as_set_uses_the_set_calibration(world):
    r = _predict(world, "--as-set", "-f", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["calibration"]["mode"] == "set" and doc["calibration"]["n"] == 12
    (res,) = doc["results"]
    assert res["path"] == "<set>" and res["n_images"] == 4
    assert any("sets of 3 images" in c for c in doc["caveats"])


def test_a_set_smaller_than_its_calibrations_sets_is_decided_as_images(world, tmp_path):
    # break-it 28: one image as a "set" got the 3-image set calibration (p 0.98 against
    # 0.96 on its own): weaker evidence stated more strongly
    one = sorted(world["queries"].glob("c*.png"))[:1]
    base = ["analyze", "predict", *one, "--heads", world["calibrated"], "-b", "spectrum"]
    alone = json.loads(run_cli([*base, "-f", "json"]).stdout)["results"][0]
    r = run_cli([*base, "--as-set", "-f", "json"])
    (res,) = json.loads(r.stdout)["results"]
    assert res["n_images"] == 1 and res["calibration_mode"] == "image"
    assert "fewer than the 3 the set calibration was fitted on" in res["note"]
    for choice, ans in res["predictions"].items():
        assert ans["probability"] == alone["predictions"][choice]["probability"], choice
    full = json.loads(_predict(world, "--as-set", "-f", "json").stdout)["results"][0]
    assert full["calibration_mode"] == "set" and "note" not in full


def test_score_reads_model_folders_as_evaluate_does_and_lists_what_it_leaves(world, tmp_path):
    # break-it 28: images in a folder inside a model folder were scored as the model that
    # folder was named like; unlabelled folders and failed files were dropped unsaid
    import shutil

    bench = tmp_path / "bench"
    shutil.copytree(world["bench"], bench)
    base = ["analyze", "score", bench, "--heads", world["calibrated"], "-b", "spectrum"]
    before = json.loads(run_cli(base).stdout)
    write_generator_images(bench / "b1" / "b2", "nearest", n=3, size=64, seed=7)
    write_generator_images(bench / "nolabel", "checker", n=2, size=64, seed=8)
    (bench / "b0" / "bad.png").write_bytes(b"not a png")
    r = run_cli(base)
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert (got["n_images"], got["n_models"]) == (before["n_images"], before["n_models"])
    assert got["per_image"] == before["per_image"]
    reasons = {Path(x["path"]).name: x["reason"] for x in got["ignored_files"]}
    assert "in a folder inside model folder 'b1'" in reasons["000.png"]
    assert "no labels" in reasons["nolabel"] and "bad.png" in reasons
    assert "not used" in r.stderr


def test_fit_refuses_to_write_heads_it_cannot_fit_and_predict_refuses_empty_heads(tmp_path):
    # break-it 28b: 3 one-design models wrote {"heads": {}} with exit 0 (predict then left
    # every image out of the table); labelled folders without images were exit 70
    zoo = tmp_path / "zoo"
    for m in range(3):
        d = zoo / f"m{m}"
        write_generator_images(d, "nearest", n=3, size=64, seed=m)
        (d / "done.json").write_text(
            json.dumps({"id": f"m{m}", "family": "gan_decoder", "design": {"upsampling": "nn"}})
        )
    r = run_cli(["analyze", "fit", zoo, "-o", tmp_path / "h.json", "-b", "spectrum"])
    assert r.exit_code == 2 and "no head can be fitted" in r.output, r.output
    assert not (tmp_path / "h.json").exists()
    empty = tmp_path / "empty"
    for m in range(5):
        (empty / f"m{m}").mkdir(parents=True)
        (empty / f"m{m}" / "done.json").write_text(json.dumps({"id": f"m{m}", "family": "x"}))
    r = run_cli(["analyze", "fit", empty, "-o", tmp_path / "h.json", "-b", "spectrum"])
    assert r.exit_code == 2 and "no image of its labelled training models" in r.output
    from fpattr.analysis import Heads

    (tmp_path / "none.json").write_text(
        Heads(heads={}, backbone={"id": "x", "sha256": "y"}).to_json(), encoding="utf-8"
    )
    r = run_cli(["analyze", "predict", zoo, "--heads", tmp_path / "none.json", "-b", "spectrum"])
    assert r.exit_code == 2 and "holds no heads" in r.output, r.output


def test_predict_reports_failed_inputs(world, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    r = run_cli(
        [
            "analyze",
            "predict",
            world["queries"] / "c000.png",
            bad,
            "--heads",
            world["calibrated"],
            "-b",
            "spectrum",
            "-f",
            "csv",
        ]
    )
    assert r.exit_code == 1, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["status"] for row in rows] == ["ok", "error"] and rows[1]["error"]
    assert "failed" in r.stderr


def test_predict_flat_image_is_undetermined(world, tmp_path):
    from PIL import Image

    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 64), (120, 120, 120)).save(flat)
    args = ["analyze", "predict", flat, "--heads", world["calibrated"], "-b", "spectrum"]
    r = run_cli([*args, "-f", "json"])
    assert r.exit_code == 0, r.output
    (res,) = json.loads(r.stdout)["results"]
    assert res["flat"] and res["predictions"]["upsampling"]["value"] == UNDETERMINED
    assert "flat image" in " ".join(run_cli(args).stdout.split())


def test_predict_summary_counts_skipped_non_images(world, tmp_path):
    # break-it pass: a text file in a folder was a record but the summary had no n_skipped
    import shutil

    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(world["queries"] / "c000.png", d / "c000.png")
    (d / "notes.txt").write_text("hi", encoding="utf-8")
    r = run_cli(
        ["analyze", "predict", d, "--heads", world["calibrated"], "-b", "spectrum", "-f", "json"]
    )
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["summary"]
    assert (s["n_inputs"], s["n_ok"], s["n_failed"], s["n_skipped"]) == (1, 1, 0, 1)


def test_predict_paths_is_the_api_the_cli_calls(world, tmp_path):
    # the loop lives in fpattr.analysis (the CLI parses, calls it and reports)
    import shutil

    from PIL import Image

    from fpattr.analysis import Heads, predict_paths
    from fpattr.backbones.resolve import create_backbone

    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(world["queries"] / "c000.png", d / "c000.png")
    Image.new("RGB", (64, 64), (9, 9, 9)).save(d / "flat.png")
    (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (d / "notes.txt").write_text("hi", encoding="utf-8")
    heads = Heads.load(world["calibrated"])
    seen: list[str] = []
    p = predict_paths(
        [d], create_backbone("spectrum"), heads, on_record=lambda r: seen.append(r["status"])
    )
    by = {Path(r["path"]).name: r for r in p.rows}
    assert (p.n_inputs, p.n_ok, p.n_usable, p.n_skipped) == (3, 2, 1, 1)
    assert sorted(seen) == ["error", "ok", "ok", "skipped"]
    assert by["flat.png"]["predictions"]["upsampling"]["value"] == UNDETERMINED
    assert by["c000.png"]["predictions"]["upsampling"]["value"]
    assert by["bad.png"]["status"] == "error" and "predictions" not in by["bad.png"]
    shutil.copy(d / "c000.png", d / "c000-copy.png")  # the same content twice: one piece
    s = predict_paths([d], create_backbone("spectrum"), heads, as_set=True)
    head, *rest = s.rows
    assert (head["path"], head["n_images"], head["n_duplicates"], head["n_flat"]) == (
        "<set>",
        1,
        1,
        1,
    )
    # the inputs that could not join the set keep their records (break-it: a failed file
    # was named on stderr only)
    assert sorted((Path(r["path"]).name, r["status"]) for r in rest) == [
        ("bad.png", "error"),
        ("notes.txt", "skipped"),
    ]
    flat_only = tmp_path / "flat"
    flat_only.mkdir()
    shutil.copy(d / "flat.png", flat_only / "flat.png")
    (row,) = predict_paths([flat_only], create_backbone("spectrum"), heads, as_set=True).rows
    assert row["status"] == "ok" and row["predictions"]["upsampling"]["value"] == UNDETERMINED
    r = run_cli(
        [
            "analyze",
            "predict",
            flat_only,
            "--heads",
            world["calibrated"],
            "-b",
            "spectrum",
            "--as-set",
            "-f",
            "json",
        ]
    )
    assert r.exit_code == 0, r.output  # answered undetermined, as attribute's insufficient signal


def test_fit_refuses_what_it_cannot_fit_before_the_work(world, tmp_path):
    # break-it 27d: a 2-model zoo (both drawn as held out), a --run without
    # train_result.json and a missing output folder were exit 70 "internal error"
    small = tmp_path / "zoo2"
    for m in range(2):
        d = small / f"m{m}"
        write_generator_images(d, "nearest", n=3, size=64, seed=m)
        entry = {"id": f"m{m}", "family": "gan_decoder", "design": {"upsampling": "nearest"}}
        (d / "done.json").write_text(json.dumps(entry))
    heads = tmp_path / "h.json"
    r = run_cli(["analyze", "fit", small, "--out", heads, "-b", "spectrum"])
    assert r.exit_code == 2 and "none is left to fit the heads on" in r.stderr, r.output
    zoo = world["zoo"]
    r = run_cli(["analyze", "fit", zoo, "--out", heads, "-b", "spectrum", "--run", tmp_path / "no"])
    assert r.exit_code == 2 and "cannot read its held-out models" in r.stderr, r.output
    r = run_cli(["analyze", "fit", zoo, "--out", tmp_path / "missing" / "h.json", "-b", "spectrum"])
    assert r.exit_code == 2 and "not found" in r.stderr and not heads.exists(), r.output


def test_predict_names_only_the_suffixes_it_writes(world, tmp_path):
    # break-it 28b: "-o x.weird" offered ".html (html)", which "-o x.html" then refused
    for name in ("x.weird", "x.html"):
        r = _predict(world, "-o", tmp_path / name)
        said = " ".join(r.output.split())
        assert r.exit_code == 2 and "cannot tell a format" in said, r.output
        assert ".csv (csv)" in said and ".html" not in said.split("use one of")[1]
