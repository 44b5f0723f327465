"""No fingerprint, no match; metadata never changes a verdict; duplicates are one reference."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpattr.testing import run_cli, write_generator_images


def _solid(path, rgb, size=64):
    Image.new("RGB", (size, size), rgb).save(path)
    return path


def _res(r):
    assert r.stdout.strip(), r.output
    return json.loads(r.stdout)


def test_verify_solid_black_vs_white_is_insufficient_signal(enrolled, tmp_path):
    a = _solid(tmp_path / "black.png", (0, 0, 0))
    b = _solid(tmp_path / "white.png", (255, 255, 255))
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q"]
    rep = _res(run_cli(["verify", a, b, *opts]))
    res = rep["results"][0]
    assert res["decision"] == "insufficient signal"
    assert res["probability"] is None
    # both files were read: accounted for as inputs, not lost (the summary said 0 inputs)
    assert (res["a_flat"], res["b_flat"]) == (1, 1)
    s = rep["summary"]
    assert (s["n_inputs"], s["n_ok"], s["n_failed"]) == (2, 2, 0)


def test_verify_folder_accounts_for_flat_images_and_repeats(enrolled, tmp_path):
    d = tmp_path / "side"
    d.mkdir()
    _solid(d / "flat.png", (9, 9, 9))
    first, src = sorted(enrolled["queries"].glob("nearest_*.png"))[:2]  # B: another image
    (d / "a.png").write_bytes(first.read_bytes())
    (d / "b.png").write_bytes(first.read_bytes())  # the same content: one piece of evidence
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q"]
    rep = _res(run_cli(["verify", d, src, *opts]))
    res = rep["results"][0]
    assert (res["a_images"], res["a_flat"], res["a_duplicates"], res["b_images"]) == (1, 1, 1, 1)
    s = rep["summary"]
    assert (s["n_inputs"], s["n_ok"], s["n_failed"]) == (4, 4, 0)
    # a broken image fails, a text file is skipped: each said as what it is
    (d / "broken.png").write_bytes(b"xx")
    (d / "notes.txt").write_text("hi", encoding="utf-8")
    r = run_cli(["verify", d, src, *opts[:-1]])
    assert r.exit_code == 1, r.output
    s = _res(r)["summary"]
    assert (s["n_inputs"], s["n_ok"], s["n_failed"], s["n_skipped"]) == (5, 4, 1, 1)
    assert "failed " in r.stderr and "broken.png" in r.stderr
    assert "skipped " in r.stderr and "notes.txt" in r.stderr
    # the table says the same under the pair (it called the broken image 'skipped' and
    # never named the text file), and what was read but left out of the fingerprint
    t = run_cli(["verify", d, src, *opts[:-3], "-q"]).stdout
    assert re.search(r"failed \S*broken\.png", t) and re.search(r"skipped \S*notes\.txt", t)
    assert "A: 1 flat (no signal) and 1 repeated (same sha256) left out" in t
    # and the CSV has the columns (it had none: the flat image and the repeat were lost)
    c = run_cli(["verify", d, src, *opts[:-3], "-f", "csv", "-q"]).stdout
    row = dict(zip(*[line.split(",") for line in c.splitlines()[:2]], strict=True))
    keys = ("images", "flat", "duplicates", "shared", "failed")
    got = [row[f"{s}_{k}"] for k in keys for s in "ab"]
    assert got == ["1", "1", "1", "0", "1", "0", "0", "0", "1", "0"]  # broken.png failed on A


def test_verify_leaves_out_images_on_both_sides(enrolled, tmp_path):
    # break-it: a file against the folder holding it answered 0.873 "inconclusive (same)",
    # a folder against itself "same" at 0.975: content on both sides is no evidence that
    # they share a source. It stays on the smaller side and leaves the other
    folder = tmp_path / "f"
    folder.mkdir()
    for p in sorted(enrolled["queries"].glob("checker_*.png")):
        (folder / p.name).write_bytes(p.read_bytes())
    one = sorted(folder.iterdir())[0]
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q"]
    res = _res(run_cli(["verify", one, folder, *opts]))["results"][0]
    assert (res["a_images"], res["b_images"], res["a_shared"], res["b_shared"]) == (1, 2, 0, 1)
    alone = tmp_path / "rest"
    alone.mkdir()
    for p in sorted(folder.iterdir())[1:]:
        (alone / p.name).write_bytes(p.read_bytes())
    ref = _res(run_cli(["verify", one, alone, *opts]))["results"][0]
    assert res["similarity"] == pytest.approx(ref["similarity"], abs=1e-6)  # the same test
    r = run_cli(["verify", folder, folder, *opts[:-1]])
    assert r.exit_code == 2, r.output  # as a side with no usable image: nothing compared
    rep = _res(r)
    res = rep["results"][0]
    assert res["status"] == "error" and res["decision"] is None
    assert "every image of A is also in B" in res["error"]
    # as many images on each side: the shared ones leave both (either order agrees); the
    # six files were all read: no input failed, the pair did (it said 8 inputs, 2 failed)
    assert (res["a_shared"], res["b_shared"], res["a_failed"], res["b_failed"]) == (3, 3, 0, 0)
    s = rep["summary"]
    assert (s["n_inputs"], s["n_ok"], s["n_failed"]) == (6, 6, 0)
    two = tmp_path / "two"
    two.mkdir()
    x, s, y = sorted(folder.iterdir())[:3]
    other = tmp_path / "other"
    other.mkdir()
    for src, dst in ((x, two), (s, two), (s, other), (y, other)):
        (dst / src.name).write_bytes(src.read_bytes())
    ab = _res(run_cli(["verify", two, other, *opts]))["results"][0]
    ba = _res(run_cli(["verify", other, two, *opts]))["results"][0]
    assert (ab["a_shared"], ab["b_shared"], ab["a_images"], ab["b_images"]) == (1, 1, 1, 1)
    assert ab["similarity"] == pytest.approx(ba["similarity"], abs=1e-9)
    assert (ab["decision"], ab["probability"]) == (ba["decision"], ba["probability"])
    t = run_cli(["verify", one, folder, *opts[:-3], "-q"]).stdout
    assert "B: 1 also in A (same sha256) left out of the fingerprint" in " ".join(t.split())


def test_verify_a_side_with_nothing_read_is_an_error_beside_any_other(enrolled, tmp_path):
    # break-it pass: a flat side hid an empty one ('insufficient signal', exit 0, the empty
    # side not counted). The inputs are the files: an empty side is the pair's error, said
    # as such, never a failed input (it counted as one: "4 inputs, 1 failed" for 3 files)
    flat, empty, texts = (tmp_path / n for n in ("flat", "empty", "texts"))
    for d in (flat, empty, texts):
        d.mkdir()
    _solid(flat / "grey.png", (128, 128, 128))
    (texts / "notes.txt").write_text("hi", encoding="utf-8")
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q"]
    for a, b, want, why in (
        (flat, empty, (1, 1, 0, 0), "B has no usable image: it is an empty folder"),
        (empty, flat, (1, 1, 0, 0), "A has no usable image: it is an empty folder"),
        (flat, texts, (1, 1, 0, 1), "B has no usable image: it holds no image (1 file(s)"),
        (empty, empty, (0, 0, 0, 0), "A has no usable image: it is an empty folder"),
        (flat, tmp_path / "gone", (2, 1, 1, 0), "B has no usable image (no such file"),
    ):
        r = run_cli(["verify", a, b, *opts])
        assert r.exit_code == 2, (a.name, b.name, r.output)
        rep = _res(r)
        res, s = rep["results"][0], rep["summary"]
        assert res["status"] == "error" and res["error"].startswith(why), res["error"]
        got = (s["n_inputs"], s["n_ok"], s["n_failed"], s["n_skipped"])
        assert got == want, (a.name, b.name)
        assert s["images_per_second"] is None or s["n_ok"]
    # a flat side beside a usable one is still 'insufficient signal', never an error
    src = next(enrolled["queries"].glob("nearest_*.png"))
    r = run_cli(["verify", flat, src, *opts])
    assert r.exit_code == 0 and _res(r)["results"][0]["decision"] == "insufficient signal"


def test_flat_and_one_pixel_images_are_never_attributed(enrolled, tmp_path):
    d = tmp_path / "flat"
    d.mkdir()
    _solid(d / "grey.png", (128, 128, 128))
    _solid(d / "one_pixel.png", (200, 10, 10), size=1)  # reflect-padded up to the view size
    r = run_cli(["attribute", d, "-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q"])
    rep = _res(r)
    assert {x["decision"] for x in rep["results"]} == {"insufficient signal"}
    assert all(x["probability"] is None for x in rep["results"])
    assert rep["summary"]["decisions"] == {"insufficient signal": 2}


def test_exif_orientation_alone_changes_no_decision(enrolled, tmp_path):
    """Byte-identical pixels with and without an Orientation=6 tag: same fingerprint."""
    src = sorted(enrolled["queries"].glob("*.png"))
    d = tmp_path / "tagged"
    d.mkdir()
    for f in src:
        with Image.open(f) as im:
            exif = Image.Exif()
            exif[0x0112] = 6
            im.save(d / f.name, exif=exif)
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q"]
    plain = {
        x["path"].rsplit("/", 1)[1]: x for x in _res(run_cli(["attribute", *src, *opts]))["results"]
    }
    tagged = {
        x["path"].rsplit("/", 1)[1]: x for x in _res(run_cli(["attribute", d, *opts]))["results"]
    }
    assert plain.keys() == tagged.keys() and len(plain) == 9
    for name, p in plain.items():
        t = tagged[name]
        assert t["image"]["orientation"] == 6
        assert t["decision"] == p["decision"]
        assert [x["similarity"] for x in t["top"]] == [x["similarity"] for x in p["top"]]
    res = _res(run_cli(["verify", src[0], d / src[0].name, *opts]))["results"][0]
    assert abs(res["similarity"] - 1.0) < 1e-6 and res["decision"] == "same"
    assert res["similarity"] <= 1.0  # a cosine, never 1.0000001 from float32 rounding


def test_duplicate_references_are_enrolled_once(world, tmp_path):
    refs = tmp_path / "twice"
    refs.mkdir()
    for f in sorted((world["refs"] / "checker").glob("*.png")):
        shutil.copy(f, refs / f.name)
        shutil.copy(f, refs / f"copy_{f.name}")
    g = tmp_path / "g"
    r = run_cli(["gallery", "add", "checker", refs, "-g", g, "-b", "spectrum", "-f", "json", "-q"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["n_refs"] == 5 and len(res["duplicates_dropped"]) == 5
    # appending the same files again adds nothing
    r = run_cli(
        [
            "gallery",
            "add",
            "checker",
            refs,
            "-g",
            g,
            "-b",
            "spectrum",
            "--append",
            "-f",
            "json",
            "-q",
        ]
    )
    assert json.loads(r.stdout)["n_refs"] == 5


def test_attributing_an_enrolled_reference_says_so(enrolled, tmp_path):
    # break-it: a reference given as a query was named with no word that it is scored
    # against a centroid it is part of (evaluate leaves such queries out)
    ref = sorted((enrolled["refs"] / "checker").glob("*.png"))[0]
    copy = tmp_path / "renamed.png"
    shutil.copy(ref, copy)  # the same content under another name is the same reference
    query = sorted(enrolled["queries"].glob("checker_*.png"))[0]
    r = run_cli(
        ["attribute", ref, copy, query, "-g", enrolled["gallery"], "-b", "spectrum", "-f", "json"]
    )
    assert r.exit_code == 0, r.output
    rows = {Path(x["path"]).name: x for x in json.loads(r.stdout)["results"]}
    for name in (ref.name, "renamed.png"):
        (text,) = [c for c in rows[name].get("caveats") or [] if "enrolled reference" in c]
        assert "model 'checker'" in text and "not independent evidence" in text
    assert not any("enrolled reference" in c for c in rows[query.name].get("caveats") or [])
    r = run_cli(["attribute", ref, "-g", enrolled["gallery"], "-b", "spectrum"])
    assert "enrolled reference of model 'checker'" in " ".join(r.stdout.split())
    # a set of them says so too (second break-it pass: only the images did)
    r = run_cli(
        ["attribute", ref, copy, query, "-g", enrolled["gallery"], "-b", "spectrum", "--as-set"]
        + ["-f", "json"]
    )
    note = json.loads(r.stdout)["summary"]["as_set"]["note"]
    assert "1 of the pooled images are enrolled references of model 'checker'" in note


def test_one_file_under_two_models_is_not_an_impostor_pair_for_verify(enrolled):
    # break-it: the same references enrolled as a second model scored 1.0 against
    # themselves as "impostors": the verify threshold went to 1.0 and no pair was "same"
    def pair_calibration() -> dict:
        r = run_cli(["gallery", "calibrate", "-g", enrolled["gallery"], "-b", "spectrum"] + J)
        assert r.exit_code == 0, r.output
        (c,) = [c for c in json.loads(r.stdout)["calibrations"] if c["comparison"] == CMP]
        return c

    J, CMP = ["-f", "json"], "image-vs-image"
    before = pair_calibration()
    r = run_cli(
        ["gallery", "add", "checker2", enrolled["refs"] / "checker"]
        + ["-g", enrolled["gallery"], "-b", "spectrum", "-q"]
    )
    assert r.exit_code == 0, r.output
    after = pair_calibration()
    assert after["threshold"] < 0.999
    # checker2 against nearest and bilinear only: none of its pairs with checker
    assert after["n_impostor"] == before["n_impostor"] + 2 * 25
    assert any("enrolled under two models" in n for n in after["notes"])


def test_copies_of_one_file_get_the_same_numbers_in_one_report(tmp_path):
    # break-it: two copies of one file in a report showed probabilities 0.53755872 and
    # 0.53755866: ONNX Runtime's float32 results move with a view's place in its batch.
    # This layout (shipped extractor, the copies sorted among 20 others) gave two values
    # before the fix
    for gen in ("nearest", "bilinear", "checker"):
        write_generator_images(tmp_path / "refs" / gen, gen, n=3, size=64, seed=0)
        r = run_cli(["gallery", "add", gen, tmp_path / "refs" / gen, "-g", tmp_path / "g", "-q"])
        assert r.exit_code == 0, r.output
    q = tmp_path / "q"
    ps = write_generator_images(q, "checker", n=20, size=64, seed=5, prefix="x")
    for k in range(1, 8):
        shutil.copy(ps[0], q / f"x{k:02d}_copy.png")
    r = run_cli(["attribute", q, "-g", tmp_path / "g", "-f", "json"])
    assert r.exit_code == 0, r.output
    rows = [x for x in _res(r)["results"] if x["sha256"] == _res(r)["results"][0]["sha256"]]
    assert len(rows) == 8
    assert len({json.dumps(x["top"]) for x in rows}) == 1
    assert len({(x["decision"], x["probability"], x["p_unknown"]) for x in rows}) == 1


def test_gallery_add_reports_leave_one_out_recognition(enrolled):
    r = run_cli(["gallery", "calibrate", "-g", enrolled["gallery"], "-b", "spectrum", "-f", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["score_space"]["kind"] == "raw"  # the spectrum card has no centred calibration
    check = rep["enrolment_check"]
    assert set(check) == {"nearest", "bilinear", "checker"}
    assert all(v["n_refs"] == 5 for v in check.values())
    assert sum(v["recognised"] for v in check.values()) >= 12  # distinct fake generators
    cal = rep["calibrations"][0]
    assert cal["comparison"] == "image-vs-model" and cal["source"] == "gallery"
    assert cal["n_genuine"] == 15 and cal["n_impostor"] == 30
    # the look-alike rate of generators not enrolled (rule of succession over the 3
    # left-out models) and the per-model chance it gives, shared among the 2 others
    look = cal["look_alike"]
    assert 1 / 5 <= look["unseen_named_rate"] <= 4 / 5
    assert cal["resemblance"] == pytest.approx(look["unseen_named_rate"] / 2, abs=1e-4)


def test_target_far_and_threshold_act_and_are_reported(enrolled):
    base = ["attribute", enrolled["queries"], "-g", enrolled["gallery"], "-b", "spectrum"]
    base += ["-f", "json", "-q"]
    loose = _res(run_cli([*base, "--target-far", "0.3"]))
    strict = _res(run_cli([*base, "--target-far", "0.001"]))
    lt, st = loose["results"][0]["threshold"], strict["results"][0]["threshold"]
    assert lt < st
    assert loose["results"][0]["target_far"] == 0.3
    user = _res(run_cli([*base, "--threshold", "0.99"]))
    r0 = user["results"][0]
    assert r0["threshold"] == 0.99 and r0["target_far"] is None
    assert r0["calibration"]["source"] == "user-threshold"
    np.testing.assert_allclose(
        [x["top"][0]["similarity"] for x in user["results"]],
        [x["top"][0]["similarity"] for x in loose["results"]],
    )


def test_threshold_and_its_far_are_printed_in_table_json_and_html(enrolled, tmp_path):
    base = ["attribute", enrolled["queries"], "-g", enrolled["gallery"], "-b", "spectrum", "-q"]
    table = run_cli([*base, "-f", "table", "--report", tmp_path / "r.html"])
    assert table.exit_code == 0, table.output
    assert "Threshold" in table.stdout and "fitted for FAR 1.00%" in table.stdout
    assert "P(decision)" in table.stdout
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "fitted for FAR 1.00%" in html and "P(" in html
    rows = run_cli([*base, "-f", "csv"]).stdout.splitlines()
    header = rows[0].split(",")
    assert {"probability", "threshold", "target_far", "p_unknown", "calibration"} <= set(header)


def test_as_set_of_only_flat_images_is_insufficient_signal(enrolled, tmp_path):
    d = tmp_path / "allflat"
    d.mkdir()
    for k, rgb in enumerate([(0, 0, 0), (255, 255, 255), (10, 200, 30)]):
        _solid(d / f"f{k}.png", rgb)
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q", "--as-set"]
    rep = _res(run_cli(["attribute", d, *opts]))
    assert rep["summary"]["as_set"]["decision"] == "insufficient signal"
    assert rep["summary"]["as_set"]["probability"] is None


def test_as_set_of_mixed_sources_says_so(enrolled):
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q", "--as-set"]
    rep = _res(run_cli(["attribute", enrolled["queries"], *opts]))
    named = {x["decision"] for x in rep["results"]} - {"unknown", "ambiguous", "inconclusive"}
    assert len(named) >= 2
    assert "may not share one source" in rep["summary"]["as_set"]["note"]


def test_enrolment_warns_about_near_identical_and_single_references(world, tmp_path):
    g = tmp_path / "g"
    src = sorted((world["refs"] / "checker").glob("*.png"))[0]
    near = tmp_path / "near"
    near.mkdir()
    pixels = np.asarray(Image.open(src).convert("RGB")).copy()
    for k in range(4):  # four copies, one pixel apart: not independent evidence
        p = pixels.copy()
        p[k, k, 0] = (int(p[k, k, 0]) + 1) % 256
        Image.fromarray(p).save(near / f"{k}.png")
    base = ["-g", g, "-b", "spectrum", "-f", "json"]
    assert run_cli(["gallery", "add", "nearest", world["refs"] / "nearest", *base]).exit_code == 0
    r = run_cli(["gallery", "add", "copies", near, *base])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert any("near-identical" in w for w in res["warnings"])
    one = sorted((world["refs"] / "bilinear").glob("*.png"))[0]
    r = run_cli(["gallery", "add", "single", one, *base])
    res = json.loads(r.stdout)
    assert res["enrolment_check"]["checkable"] is False
    assert "leave-one-out cannot check it" in r.stderr


def test_as_set_and_folder_verify_pool_each_content_once(enrolled, tmp_path):
    d = tmp_path / "same"
    d.mkdir()
    src = sorted(enrolled["queries"].glob("checker_*.png"))[0]
    for k in range(5):  # five copies of one file are one image of evidence
        shutil.copy(src, d / f"c{k}.png")
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q"]
    rep = _res(run_cli(["attribute", d, *opts, "--as-set"]))
    s = rep["summary"]["as_set"]
    assert s["n_images"] == 1 and s["n_duplicates"] == 4
    assert s["calibration"]["set_size"] == 1 and "pooled once" in s["note"]
    res = _res(run_cli(["verify", d, enrolled["refs"] / "checker", *opts]))["results"][0]
    assert res["a_images"] == 1


def test_gallery_tables_never_cut_long_model_names(world, tmp_path):
    import re

    g = tmp_path / "g"
    names = [f"Generator_{'0' * 49}{k}" for k in (1, 2)]
    for name, gen in zip(names, ("checker", "nearest"), strict=True):
        r = run_cli(["gallery", "add", name, world["refs"] / gen, "-g", g, "-b", "spectrum", "-q"])
        assert r.exit_code == 0, r.output
    for cmd in (["gallery", "list"], ["gallery", "calibrate"]):
        out = run_cli([*cmd, "-g", g, "-b", "spectrum"], env={"COLUMNS": "60"}).stdout
        # the model column: the first cell of every table row, wrapped lines joined
        first = "".join(
            line.split("\u2502")[1].strip()
            for line in out.splitlines()
            if line.startswith("\u2502") and line.count("\u2502") >= 3
        )
        flat = re.sub(r"[^A-Za-z0-9_]", "", first)
        for name in names:
            assert name in flat, (cmd, out)


def test_verify_keeps_each_files_sha256_whatever_becomes_of_it(enrolled, tmp_path):
    # break-it 27b: `verify a.png a.png` (or a copy) reported a_sha256 and b_sha256 null,
    # and so did a flat file: the files were read and hashed, and chain of custody needs it
    import hashlib

    q = sorted(enrolled["queries"].glob("checker*"))[0]
    copy = tmp_path / "copy.png"
    shutil.copy(q, copy)
    flat = _solid(tmp_path / "flat.png", (9, 9, 9))
    opts = ["-g", enrolled["gallery"], "-b", "spectrum", "-f", "json", "-q"]
    sha = hashlib.sha256(q.read_bytes()).hexdigest()
    for a, b in ((q, q), (q, copy)):
        res = _res(run_cli(["verify", a, b, *opts]))["results"][0]
        assert (res["a_sha256"], res["b_sha256"]) == (sha, sha), res
    res = _res(run_cli(["verify", q, flat, *opts]))["results"][0]
    assert res["b_sha256"] == hashlib.sha256(flat.read_bytes()).hexdigest()
    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(q, folder / "a.png")
    shutil.copy(flat, folder / "b.png")
    res = _res(run_cli(["verify", q, folder, *opts]))["results"][0]
    assert res["a_sha256"] == sha and res["b_sha256"] is None  # a side of two files
