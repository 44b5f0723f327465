"""`fpattr evaluate` through the CLI: JSON contract, robustness, compare, reports, errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fpattr.testing import run_cli

REFS = 3  # as in conftest.py
# 3 generator-disjoint splits keep these runs fast; the default (10) runs in clean_json
BASE = ["--splits", "3", "--refs", REFS, "-b", "spectrum", "-q"]


def _ev(bench: Path, *args, code: int = 0) -> dict:
    r = run_cli(["evaluate", bench, *BASE, "-f", "json", *args])
    assert r.exit_code == code, r.output
    return json.loads(r.stdout)


def _unit(x) -> bool:
    return isinstance(x, float | int) and 0.0 <= x <= 1.0


def test_json_contract(clean_json: dict):
    d = clean_json
    for key in (
        "n_models",
        "refs_per_model",
        "n_queries",
        "identification",
        "verification",
        "open_set",
        "backbone",
        "extractor_sha256",
        "seconds",
        "per_model",
        "confusion",
        "skipped",
        "settings",
    ):
        assert key in d, key
    assert d["n_models"] == 4 and d["refs_per_model"] == REFS and d["n_queries"] == 4 * 5
    assert d["backbone"] == "spectrum" and len(d["extractor_sha256"]) == 64
    assert d["thresholds"] == "none fitted on queries"
    assert all(_unit(d["identification"][k]) for k in ("top1", "macro_f1"))
    v = d["verification"]
    assert all(_unit(v[k]) for k in ("roc_auc", "eer", "tar_at_far_1e-2"))
    # --pairs 10000 capped at the 20 queries' 190 distinct pairs (break-it 28b: a million
    # repeats ran out of memory)
    assert v["n_pairs"] == 190 and v["n_genuine"] == v["n_impostor"] == 95
    o = d["open_set"]
    assert _unit(o["auroc"]) and _unit(o["oscr"]) and o["n_folds"] == 4 and o["n_real"] == 6
    assert all(f["n_unknown"] == 5 + 6 and f["n_known"] == 15 for f in o["per_fold"])
    # the easy bench: fake generators are told apart
    assert d["identification"]["top1"] >= 0.9 and v["roc_auc"] >= 0.85 and o["auroc"] >= 0.8
    assert set(d["per_model"]) == {"nearest", "bilinear", "checker-a", "checker-b"}
    for m in d["per_model"].values():
        assert m["n_refs"] == REFS and m["n_queries"] == 5 and _unit(m["top1"])
        assert -1.0 <= m["mean_genuine_similarity"] <= 1.0
    conf = d["confusion"]
    assert conf["labels"] == sorted(d["per_model"])
    assert sum(map(sum, conf["matrix"])) == d["n_queries"] and len(conf["matrix"]) == 4
    assert [s["model"] for s in d["skipped"]] == ["tiny"]
    s = d["settings"]
    assert s["refs"] == REFS and s["pairs"] == 10000 and s["seed"] == 0
    assert s["transform"]["jpeg"] is None and d["seconds"] > 0 and d["failed"] == []
    assert d["ref_choice"] == "first" and s["ref_choice"] == "first"


def test_random_reference_choice_reaches_the_report(bench_master: Path):
    d = _ev(bench_master, "--ref-choice", "random", "--seed", "3", "--pairs", "500")
    assert d["ref_choice"] == "random (seed 3)" and d["settings"]["ref_choice"] == "random"
    assert all(m["n_refs"] == REFS for m in d["per_model"].values())
    r = run_cli(["evaluate", bench_master, *BASE, "--ref-choice", "random"], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and "random (seed 0)" in r.stdout
    r = run_cli(["evaluate", bench_master, *BASE, "--ref-choice", "middle"])
    assert r.exit_code == 2 and "--ref-choice" in r.output


def test_jpeg_does_not_help(bench_master: Path, clean_json: dict):
    d = _ev(bench_master, "--jpeg", "50", "--pairs", "2000")
    assert d["settings"]["transform"]["jpeg"] == 50
    clean = clean_json
    assert d["identification"]["top1"] <= clean["identification"]["top1"] + 0.1
    assert d["verification"]["roc_auc"] <= clean["verification"]["roc_auc"] + 0.05
    assert d["open_set"]["auroc"] <= clean["open_set"]["auroc"] + 0.05


def test_resize_and_crop_run(bench_master: Path):
    d = _ev(bench_master, "--resize", "0.75", "--crop", "40", "--pairs", "500")
    assert d["settings"]["transform"] == {
        "resize": 0.75,
        "crop": 40,
        "jpeg": None,
        "order": ["resize", "crop", "jpeg"],
        "applied_to": "every image",
    }
    assert d["n_models"] == 4
    assert d["processing"] == "x0.75 bicubic, center crop 40 (every image)"


def test_degrade_queries_only(bench_master: Path):
    d = _ev(bench_master, "--resize", "0.75", "--degrade-queries-only", "--pairs", "500")
    assert d["settings"]["transform"]["applied_to"] == "queries"
    assert d["n_models"] == 4
    assert d["processing"] == "x0.75 bicubic (queries only)"


def test_the_table_says_the_processing_and_how_many_pairs_are_distinct(bench_master: Path):
    # break-it: the table showed neither --jpeg / --resize nor that 10,000 pairs were drawn
    # from 4,950 possible ones (only the JSON did)
    d = _ev(bench_master, "--jpeg", "75", "--pairs", "100000")
    v = d["verification"]
    possible = v["n_possible_genuine"] + v["n_possible_impostor"]
    # 100,000 asked, capped at the distinct pairs (n (n - 1) / 2); genuine ones still repeat
    assert v["n_pairs"] == possible == 190 and v["n_distinct_pairs"] < v["n_pairs"]
    assert _ev(bench_master, "--pairs", "10")["verification"]["n_distinct_pairs"] <= 10
    r = run_cli(["evaluate", bench_master, *BASE, "--jpeg", "75", "--pairs", "100000"])
    table = " ".join(r.stdout.split())
    assert "processing JPEG 75 (every image)" in table
    assert f"distinct pairs {v['n_distinct_pairs']}" in table
    r = run_cli(["evaluate", bench_master, *BASE, "--degrade-queries-only"])
    assert r.exit_code == 2 and "needs --resize, --crop or --jpeg" in r.output


def test_degraded_queries_are_calibrated_on_processed_reference_copies(bench_master: Path):
    """As attribute with a gallery `gallery add` enrolled: a smaller query is decided with
    the references' x0.5 copies, a JPEG one with their JPEG 75 copies."""
    args = ("--degrade-queries-only", "--pairs", "500")
    d = _ev(bench_master, "--resize", "0.75", *args)
    assert d["decisions"]["processing"] == "x0.5"
    d = _ev(bench_master, "--jpeg", "90", *args)
    assert d["decisions"]["processing"] == "jpeg75"
    clean = _ev(bench_master, "--jpeg", "90", "--no-processed-copies", *args)
    assert clean["decisions"]["processing"] is None
    # other pseudo-queries; a threshold never below the clean calibration's
    assert d["decisions"]["threshold"] >= clean["decisions"]["threshold"]
    # the rule attribute applies to the queries as the transform leaves them: a crop to
    # the images' own size, a x0.9 resize and a quality-95 save are near-clean queries
    # (a break-it pass: --crop 128 on 128 px images was decided as x0.5 copies)
    for extra in (("--crop", "64"), ("--resize", "0.9"), ("--jpeg", "95")):
        assert _ev(bench_master, *extra, *args)["decisions"]["processing"] is None, extra
    assert _ev(bench_master, "--crop", "40", *args)["decisions"]["processing"] == "x0.5"
    # degrading every image: references and queries alike, nothing to adapt
    assert _ev(bench_master, "--jpeg", "90", "--pairs", "500")["decisions"]["processing"] is None
    r = run_cli(["evaluate", bench_master, *BASE, "--jpeg", "90", *args], env={"COLUMNS": "400"})
    assert "calibrated on the references' jpeg75 copies" in " ".join(r.stdout.split())


def test_compare_two_backbones(bench_master: Path):
    from fpattr.plugins import backbones

    if "example-colorres" not in backbones().names():
        pytest.skip("plugins/fpattr-example is not installed")
    d = _ev(bench_master, "--compare", "spectrum,example-colorres", "--pairs", "1000")
    assert [r["backbone"] for r in d["runs"]] == ["spectrum", "example-colorres"]
    assert d["backbones"] == ["spectrum", "example-colorres"]
    for r in d["runs"]:
        assert r["n_models"] == 4 and r["verification"]["n_pairs"] == 190  # capped
        assert _unit(r["identification"]["top1"]) and r["open_set"]["n_folds"] == 4
    assert d["runs"][0]["extractor_sha256"] != d["runs"][1]["extractor_sha256"]
    table = run_cli(["evaluate", bench_master, *BASE, "--compare", "spectrum,example-colorres"])
    assert table.exit_code == 0 and "example-colorres" in table.stdout
    # the score space the figures were taken in is a row of the table (the spectrum's
    # card is not centred, nor the example's: both raw)
    assert re.search(r"score space\s+raw\s+raw", table.stdout)


def test_html_report_and_plots(bench: Path, tmp_path: Path):
    odd = bench / '<b>odd"&model'
    shutil.move(bench / "bilinear", odd)
    html_path, plots = tmp_path / "eval.html", tmp_path / "plots"
    r = run_cli(
        ["evaluate", bench, *BASE, "--pairs", "500", "--report", html_path, "--plots", plots]
    )
    assert r.exit_code == 0, r.output
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") >= 2
    assert not re.search(r"https?://", page)
    assert "<b>odd" not in page and "&lt;b&gt;odd&quot;&amp;model" in page
    assert "none fitted on queries" in page and "checker-a" in page
    for name in ("roc.png", "confusion.png", "reliability.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.count("data:image/png;base64,") >= 3 and "Decisions" in page


def test_unreadable_images_are_reported(bench: Path):
    (bench / "nearest" / "zz_broken.png").write_bytes(b"not an image")
    r = run_cli(["evaluate", bench, *BASE[:-1], "-f", "json", "--pairs", "500"])  # not quiet
    assert r.exit_code == 1, r.output  # finished, but an input failed
    d = json.loads(r.stdout)
    assert [f["path"].rsplit("/", 1)[-1] for f in d["failed"]] == ["zz_broken.png"]
    assert d["per_model"]["nearest"]["n_queries"] == 5  # 6 query files, one unreadable
    assert "zz_broken.png" in r.stderr


def test_too_few_models_is_a_usage_error(bench: Path):
    for name in ("bilinear", "checker-a", "checker-b"):
        shutil.rmtree(bench / name)
    r = run_cli(["evaluate", bench, *BASE[:-1]])  # not quiet: notes on stderr
    assert r.exit_code == 2 and "need >= 2" in r.stderr
    assert "skipped model folder 'tiny'" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "xml"],
        ["--compare", "spectrum,spectrum"],
        ["--backbone-opt", "nosuch:size=32"],
        ["--jpeg", "0"],
    ],
)
def test_usage_errors(bench_master: Path, args: list[str]):
    r = run_cli(["evaluate", bench_master, *BASE, *args])
    assert r.exit_code == 2, r.output


def test_missing_bench_and_help(tmp_path: Path):
    assert run_cli(["evaluate", tmp_path / "nope", "-q"]).exit_code == 2
    h = run_cli(["evaluate", "--help"])
    assert h.exit_code == 0 and "Example: fpattr evaluate" in h.stdout and "--refs" in h.stdout


def test_csv_and_output_file(bench_master: Path, tmp_path: Path):
    out = tmp_path / "eval.csv"
    r = run_cli(["evaluate", bench_master, *BASE, "-f", "csv", "--pairs", "500", "-o", out])
    assert r.exit_code == 0 and r.stdout == ""
    header, row = out.read_text().splitlines()
    assert header.startswith("backbone,backbone_id,extractor_sha256,n_models")
    assert row.startswith("spectrum,") and ",4,3,first,20," in row
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells["identification_score_space_kind"] == "raw"
    # the reference gap is a column too (it was in the JSON only)
    assert -1.0 < float(cells["decisions_protocols_reference_gap_gap"]) < 1.0
    # what the decision figures were measured under: the target, the threshold in force,
    # the posterior that names a model and the splits (none were columns)
    assert cells["decisions_target_far"] == "0.01"
    assert 0.0 < float(cells["decisions_threshold"]) < 1.0
    assert cells["decisions_min_probability"] == "0.5"
    assert cells["decisions_protocols_generator_disjoint_splits"] == "3"


def test_decision_quality_under_the_attribute_policy(clean_json: dict):
    dec = clean_json["decisions"]
    assert dec["target_far"] == 0.01
    for k in ("achieved_far", "precision", "coverage", "accuracy", "ece", "real_named_rate"):
        assert dec[k] is None or _unit(dec[k]), k
    assert set(dec["sets"]) == {"3", "5"}  # 5 queries per model: no set of 10
    protocols = dec["protocols"]
    single = protocols["in_gallery"]["single"]
    assert single["n_known"] == 20 and single["n_real"] == 6
    assert single["n_unseen"] == 20  # every query once with its model left out
    assert sum(b["n"] for b in single["reliability"]) == 20 + 20 + 6
    # the easy bench: named answers are right
    assert dec["precision"] is None or dec["precision"] >= 0.9
    folds = protocols["generator_disjoint"]["folds"]
    # 10 splits asked; 4 models have 3 distinct halvings, each run once (break-it: repeats
    # weighed twice in the mean, and 1,000 splits of 4 models ran for minutes)
    assert len(folds) == 6 and all(len(f["enrolled"]) == 2 for f in folds)
    assert protocols["generator_disjoint"]["splits"] == 3
    # the settings record the splits asked for (they said null at the default)
    from fpattr.evaluation import DISJOINT_SPLITS

    assert clean_json["settings"]["splits"] == DISJOINT_SPLITS == 10
    assert len({tuple(sorted(f["enrolled"])) for f in folds}) == 6
    assert "pairs" in protocols["in_gallery"] and "calibration_transfer" in protocols


def test_splits_sets_the_generator_disjoint_folds(bench_master: Path):
    d = _ev(bench_master, "--splits", "2")  # (the last --splits given counts)
    gd = d["decisions"]["protocols"]["generator_disjoint"]
    assert gd["splits"] == 2 and len(gd["folds"]) == 4
    table = run_cli(
        ["evaluate", bench_master, *BASE, "--splits", "1000"], env={"COLUMNS": "400"}
    )  # 3 exist
    assert table.exit_code == 0 and "3 generator-disjoint splits" in " ".join(table.stdout.split())
    assert run_cli(["evaluate", bench_master, *BASE, "--splits", "0"]).exit_code == 2


def test_queries_identical_to_references_are_left_out_loudly(bench: Path):
    for model in ("nearest", "bilinear"):
        files = sorted((bench / model).glob("*.png"))
        shutil.copy(files[0], bench / model / "zz_copy_of_ref.png")
    args = ["evaluate", bench, "--refs", REFS, "-b", "spectrum", "--pairs", "200"]
    r = run_cli([*args, "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert len(d["duplicate_queries"]) == 2 and d["n_queries"] == 4 * 5
    assert "byte-identical to a reference" in r.stderr


def test_only_copies_of_references_is_refused(tmp_path: Path):
    from fpattr.testing import write_generator_images

    for k, gen in enumerate(("nearest", "checker")):
        write_generator_images(tmp_path / "b" / gen, gen, n=3, size=64, seed=k)
        for f in sorted((tmp_path / "b" / gen).glob("*.png")):
            shutil.copy(f, tmp_path / "b" / gen / f"zz_{f.name}")
    r = run_cli(["evaluate", tmp_path / "b", "-b", "spectrum", "--refs", "3", "-q"])
    assert r.exit_code == 2 and "byte-identical copy of a reference" in r.output


def test_output_paths_are_checked_before_any_work(bench_master: Path, tmp_path: Path):
    # break-it finding: evaluate ran to the end, then lost everything (exit 70) on an
    # output path that could not be written; attribute and verify refuse those first
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args in (
        ["-o", tmp_path / "missing" / "x.json"],
        ["--report", tmp_path / "missing" / "x.html"],
        ["--plots", afile],
        ["-o", tmp_path / "ev.json", "--plots", afile],
    ):
        r = run_cli(["evaluate", bench_master, *BASE, "-f", "json", *args])
        assert r.exit_code == 2 and "cannot write" in r.output, (args, r.output)
        assert r.stdout.strip() == "" and not (tmp_path / "ev.json").exists()


def test_flat_images_are_listed_and_left_out(bench: Path):
    # break-it finding: flat references were enrolled and flat real photos counted as
    # correct "unknown" answers; gallery add leaves them out, attribute says insufficient
    from PIL import Image

    Image.new("RGB", (64, 64), (90, 90, 90)).save(bench / "nearest" / "000_flat.png")  # a ref
    Image.new("RGB", (64, 64), (10, 200, 30)).save(bench / "real" / "flat.png")
    d = _ev(bench, "--pairs", "500")
    flat = {Path(x["path"]).name: x["role"] for x in d["flat_images"]}
    assert flat == {"000_flat.png": "ref", "flat.png": "real"}
    assert d["per_model"]["nearest"]["n_refs"] == REFS - 1  # the flat one is not a reference


def test_nothing_to_evaluate_says_why_the_images_failed(bench_master: Path):
    # break-it finding: with every image smaller than --crop, evaluate said only
    # "0 evaluable model folder(s)", not the images' own reason
    r = run_cli(["evaluate", bench_master, *BASE, "--crop", "1000"])
    assert r.exit_code == 2
    assert "failed, e.g." in r.output and "smaller than --crop 1000" in " ".join(r.output.split())


def test_an_image_under_two_labels_is_left_out_everywhere(bench: Path):
    # break-it finding: a file in two model folders (or a model folder and real/) was
    # counted under both labels, silently; it has no ground truth
    ref = sorted((bench / "nearest").glob("*.png"))[0]
    shutil.copy(ref, bench / "bilinear" / "zz_from_nearest.png")
    photo = sorted((bench / "real").glob("*.png"))[0]
    shutil.copy(photo, bench / "checker-a" / "zz_photo.png")
    r = run_cli(["evaluate", bench, *BASE[:-1], "--pairs", "300", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    got = sorted(
        (c["labels"], sorted(Path(p).name for p in c["paths"])) for c in d["conflicting_labels"]
    )
    assert got == [
        (["bilinear", "nearest"], [ref.name, "zz_from_nearest.png"]),
        (["checker-a", "real"], [photo.name, "zz_photo.png"]),
    ]
    assert d["per_model"]["nearest"]["n_refs"] == REFS - 1  # its copy was a reference
    assert d["per_model"]["bilinear"]["n_queries"] == 8 - REFS  # the copy is not counted
    assert d["per_model"]["checker-a"]["n_queries"] == 8 - REFS
    assert d["duplicate_queries"] == []  # a conflict, not a copy of the model's own reference
    assert "under two labels" in r.stderr


def test_folders_inside_model_folders_are_named_not_silently_skipped(bench: Path):
    (bench / "nearest" / "more").mkdir()
    shutil.copy(sorted((bench / "bilinear").glob("*.png"))[0], bench / "nearest" / "more" / "x.png")
    r = run_cli(["evaluate", bench, *BASE[:-1], "--pairs", "300", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["bench"]["ignored_subfolders"] == [str(Path("nearest") / "more")]
    assert "not read" in r.stderr and d["per_model"]["nearest"]["n_queries"] == 8 - REFS


def test_images_without_a_suffix_count_and_non_images_are_named(bench: Path):
    # break-it finding: PNGs without a suffix were not images to evaluate (the model
    # skipped as too small) and a text file was mentioned nowhere
    for f in sorted((bench / "checker-a").glob("*.png"))[2:]:
        f.rename(f.with_suffix(""))
    (bench / "nearest" / "notes.txt").write_text("analyst notes")
    r = run_cli(["evaluate", bench, *BASE[:-1], "--pairs", "300", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["per_model"]["checker-a"]["n_queries"] == 8 - REFS
    assert "checker-a" not in [s["model"] for s in d["skipped"]]
    notes = {
        "path": str(Path("nearest") / "notes.txt"),
        "reason": "not an image by its content: text",
    }
    assert d["bench"]["ignored_files"] == [notes]
    assert "notes.txt" in r.stderr and "bench.ignored_files" in r.stderr
    r = run_cli(["evaluate", bench, *BASE, "--pairs", "300"], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "1 file(s) of the bench not read" in r.stdout and "notes.txt" in r.stdout


def test_output_suffix_picks_the_format_and_a_full_disk_is_a_write_error(
    bench_master: Path, tmp_path: Path
):
    # break-it findings: -o ev.json held the text table; -o /dev/full was an internal error
    r = run_cli(["evaluate", bench_master, *BASE, "--pairs", "200", "-o", tmp_path / "ev.json"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "ev.json").read_text())["n_models"] == 4
    r = run_cli(["evaluate", bench_master, *BASE, "-o", tmp_path / "ev.html"])
    assert r.exit_code == 2 and "--report" in r.output
    if Path("/dev/full").exists():
        r = run_cli(["evaluate", bench_master, *BASE, "--pairs", "200", "-o", "/dev/full"])
        assert r.exit_code == 74 and "cannot write results to /dev/full" in r.output, r.output


def test_repeated_images_count_once_and_emptied_folders_are_named(bench: Path):
    # break-it findings: a reference or query present twice in one folder counted twice
    # (gallery add enrols it once); a folder emptied once the images were read dropped out
    # with no message; a reference left out made a model short of --refs silently
    nearest = sorted((bench / "nearest").glob("*.png"))
    shutil.copy(nearest[0], bench / "nearest" / "000b.png")  # a repeated reference
    queries = sorted((bench / "bilinear").glob("*.png"))[REFS:]
    shutil.copy(queries[0], bench / "bilinear" / "zz_again.png")  # a repeated query
    for f in sorted((bench / "checker-b").glob("*.png"))[REFS:]:  # its queries become copies
        f.unlink()
    for k, f in enumerate(sorted((bench / "checker-b").glob("*.png"))):
        shutil.copy(f, bench / "checker-b" / f"zz_{k}.png")
    r = run_cli(["evaluate", bench, *BASE[:-1], "--pairs", "200", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    rep = {(Path(x["path"]).name, x["role"]) for x in d["repeated_images"]}
    assert rep == {("000b.png", "ref"), ("zz_again.png", "query")}
    # 000b.png sorts among the first REFS names: a reference slot went to a repeat
    assert d["per_model"]["nearest"]["n_refs"] == REFS - 1
    assert d["short_of_refs"] == [{"model": "nearest", "n_refs": REFS - 1}]
    assert "fewer than --refs" in r.stderr
    assert d["per_model"]["bilinear"]["n_queries"] == 8 - REFS
    assert "checker-b" not in d["per_model"]
    assert "skipped model folder 'checker-b'" in r.stderr and "repeated image" in r.stderr


def test_the_processed_calibration_follows_attribute_per_query(tmp_path: Path):
    """Break-it cases: queries already saved as quality-95 JPEGs were decided as JPEG 75
    copies (evaluate did not read their quality), and a bench where the rule splits the
    queries gave no word of it."""
    from PIL import Image

    from fpattr.testing import write_generator_images

    b = tmp_path / "b"
    for k, (kind, size) in enumerate((("nearest", 96), ("bilinear", 96), ("checker", 96))):
        for p in write_generator_images(b / kind, kind, n=5, size=size, seed=k)[3:]:
            with Image.open(p) as im:
                im.convert("RGB").save(p.with_name("q" + p.stem + ".jpg"), quality=95)
            p.unlink()
    args = ("--degrade-queries-only", "--pairs", "200")
    d = _ev(b, *args, "--crop", "96")
    assert d["decisions"]["processing"] is None  # near-lossless JPEGs at their own size
    # a bench whose models have other sizes: a crop to 96 halves only the big one's
    write_generator_images(b / "big", "nearest", n=6, size=192, seed=9)
    d = _ev(b, *args, "--crop", "96")
    assert d["decisions"]["processing"] is None  # 6 of 9 queries: clean
    d = _ev(b, *args, "--crop", "96", "--jpeg", "75")
    assert d["decisions"]["processing"] == "jpeg75"
    note = d["decisions"]["processing_note"]
    assert "attribute would judge the queries" in note and "3 x0.5" in note, note
    r = run_cli(["evaluate", b, *BASE, "--ref-choice", "random", "--seed", "-1"])
    assert r.exit_code == 2 and "--seed" in r.output


def test_min_probability_reaches_the_decisions(bench_master: Path, clean_json: dict):
    # evaluate measures the policy attribute runs, --min-probability included (it had
    # --threshold and --target-far but not this one)
    strict = _ev(bench_master, "--min-probability", "0.99")
    a, b = clean_json["decisions"], strict["decisions"]
    assert a["min_probability"] == 0.5 and b["min_probability"] == 0.99
    assert b["coverage"] <= a["coverage"]
    assert (
        b["protocols"]["in_gallery"]["single"]["n_named"]
        <= a["protocols"]["in_gallery"]["single"]["n_named"]
    )
    table = run_cli(["evaluate", bench_master, *BASE, "--min-probability", "0.99"])
    assert table.exit_code == 0 and "named at P >= 0.99" in table.stdout
    r = run_cli(["evaluate", bench_master, *BASE, "--min-probability", "0"])
    assert r.exit_code == 2


def test_a_model_folder_named_like_a_decision_is_skipped_with_its_reason(bench: Path):
    # break-it 27c: a folder "unknown" (or "ambiguous") was a model, and its right answers
    # read as the decision "unknown": accuracy and coverage halved, without a word
    (bench / "nearest").rename(bench / "Unknown")
    r = run_cli(["evaluate", bench, *BASE, "--pairs", "300", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert "Unknown" not in d["bench"]["models"] and "Unknown" not in d["per_model"]
    why = {s["model"]: s["reason"] for s in d["skipped"]}["Unknown"]
    assert why.startswith("named like a decision") and "rename the folder" in why


def test_a_real_dir_that_is_not_there_is_refused(bench: Path):
    # break-it 28b: a mistyped --real-dir scored the real/ folder as a generator, unsaid
    r = run_cli(["evaluate", bench, *BASE, "--real-dir", "photos"])
    assert r.exit_code == 2 and "--real-dir 'photos': no such folder" in r.output, r.output


def test_options_that_would_do_nothing_or_hide_a_typo_are_refused(bench: Path, tmp_path: Path):
    # break-it 28b: each of these was accepted without a word
    for args, said in (
        (["--compare", "spectrum,,spectrum"], "--compare has an empty entry"),
        (["--no-processed-copies"], "acts with --degrade-queries-only only"),
        (["--plots", tmp_path / "missing" / "p"], "not found"),
    ):
        r = run_cli(["evaluate", bench, *BASE, *args])
        assert r.exit_code == 2 and said in " ".join(r.output.split()), (args, r.output)
    assert not (tmp_path / "missing").exists()
    from fpattr.evaluation.report import _fmt

    assert _fmt(1e-5, 4) == "1e-05" and _fmt(0.0, 3) == "0.000"  # never a rate shown as 0


def test_evaluate_says_what_the_in_gallery_calibration_could_not_do(bench_master: Path):
    # break-it 28b: target FAR 1e-6, 1e-3 and 1e-2 gave one threshold on a small bench,
    # with no word that so few impostor scores cannot fit it (gallery calibrate said so)
    d = _ev(bench_master, "--target-far", "0.000001")
    notes = d["decisions"]["protocols"]["notes"]
    assert any(n.startswith("in-gallery calibration:") and "impostor scores" in n for n in notes)
