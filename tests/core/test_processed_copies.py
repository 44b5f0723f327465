"""Processed copies of the references: enrolled beside them, stored, and used to decide a
query stored unlike the references (a JPEG query against PNG references, a smaller one)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpattr.backbones.resolve import create_backbone
from fpattr.errors import GalleryError
from fpattr.gallery import Gallery, export_npz, import_npz
from fpattr.pipeline import RunStats
from fpattr.processing import (
    PROCESSINGS,
    Processing,
    estimate_jpeg_quality,
    query_processing,
)
from fpattr.session import Session, reference_caveat
from fpattr.testing import run_cli, write_generator_images

# -- fpattr.processing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "size", "formats", "sides", "want"),
    [
        ("JPEG", (64, 64), {"PNG"}, (64, 64), "jpeg75"),  # re-encoded
        ("MPO", (64, 64), {"PNG"}, (64, 64), "jpeg75"),  # a camera's JPEG
        ("JPEG", (64, 64), {"PNG", "JPEG"}, (64, 64), None),  # JPEG references too
        ("PNG", (32, 32), {"PNG"}, (64, 64), "x0.5"),  # halved
        ("JPEG", (32, 32), {"PNG"}, (64, 64), "x0.5"),  # both: the stronger change
        ("PNG", (64, 64), {"PNG"}, (64, 64), None),  # stored like them
        ("WEBP", (64, 64), {"PNG"}, (64, 64), None),  # no calibration for it
        ("JPEG", (64, 64), set(), None, None),  # nothing recorded
        ("PNG", (127, 128), {"PNG"}, (128, 128), None),  # a trim, not a x0.5 copy
        ("PNG", (128, 64), {"PNG"}, (128, 128), None),  # a crop keeping one side
        ("PNG", (96, 96), {"PNG"}, (128, 128), "x0.5"),  # side 0.75 of the references'
        ("PNG", (97, 97), {"PNG"}, (128, 128), None),  # just above it
        ("PNG", (48, 96), {"PNG"}, (64, 128), "x0.5"),  # portrait, both sides scaled
    ],
)
def test_query_processing(fmt, size, formats, sides, want):
    assert query_processing(fmt, size, frozenset(formats), sides) == want


@pytest.mark.parametrize(
    ("quality", "want"), [(None, "jpeg75"), (50, "jpeg75"), (90, "jpeg75"), (91, None), (100, None)]
)
def test_a_near_lossless_jpeg_is_not_a_jpeg75_copy(quality, want):
    assert query_processing("JPEG", (64, 64), {"PNG"}, (64, 64), jpeg_quality=quality) == want


@pytest.mark.parametrize("quality", [5, 30, 50, 60, 75, 85, 90, 95, 100])
def test_jpeg_quality_is_read_back_from_the_file(tmp_path, quality):
    from fpattr.io.loader import load_image

    px = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(px).save(tmp_path / "x.jpg", quality=quality)
    Image.fromarray(px).save(tmp_path / "x.png")
    assert load_image(tmp_path / "x.jpg").jpeg_quality == quality
    assert load_image(tmp_path / "x.png").jpeg_quality is None


def test_jpeg_quality_of_odd_tables():
    assert estimate_jpeg_quality([1] * 64) == 100
    assert estimate_jpeg_quality([255] * 64) == 1
    assert estimate_jpeg_quality([0] * 64) is None  # not a quantization table
    assert estimate_jpeg_quality([8] * 10) is None
    assert estimate_jpeg_quality("not a table") is None


def test_processing_chain_shapes_and_range():
    px = np.random.default_rng(0).random((40, 30, 3), dtype=np.float32)
    assert PROCESSINGS["x0.5"](px).shape == (20, 15, 3)
    j = PROCESSINGS["jpeg75"](px)
    assert j.shape == px.shape and j.dtype == np.float32 and 0 <= j.min() and j.max() <= 1
    assert not np.array_equal(j, px)
    out = Processing(resize=0.5, crop=10, jpeg=90)(px)
    assert out.shape == (10, 10, 3)
    assert Processing()(px) is px  # nothing set: untouched


# -- gallery storage ---------------------------------------------------------------------------


def _refs(n: int, tag: str = "r") -> list[dict]:
    return [{"path": f"{tag}{k}.png", "sha256": f"{tag}{k}"} for k in range(n)]


def _gallery(processed: bool = True) -> Gallery:
    g = Gallery(backbone={"name": "x", "id": "x", "sha256": "0"})
    rng, prng = np.random.default_rng(1), np.random.default_rng(2)
    for name in ("a", "b"):
        proc = {k: prng.normal(size=(3, 8)) for k in PROCESSINGS} if processed else None
        g.add(name, rng.normal(size=(3, 8)), _refs(3, name), processed=proc)
    return g


def test_processed_copies_round_trip_and_enter_the_digest(tmp_path):
    g = _gallery()
    assert g.processed_kinds() == sorted(PROCESSINGS)
    g.save(tmp_path / "g")
    doc = json.loads((tmp_path / "g" / "gallery.json").read_text())
    assert set(doc["models"]["a"]["processed"]) == set(PROCESSINGS)
    back = Gallery.load(tmp_path / "g")
    assert back.sha256 == g.sha256
    for name in ("a", "b"):
        for k in PROCESSINGS:
            np.testing.assert_array_equal(
                back.models[name].processed[k], g.models[name].processed[k]
            )
            assert np.allclose(np.linalg.norm(back.models[name].processed[k], axis=1), 1, atol=1e-6)
    # the copies are covered by the digest: changing one is caught
    g.models["a"].processed["jpeg75"][0, 0] += 0.5
    assert g.sha256 != back.sha256
    # a gallery without copies keeps the digest it had before copies existed
    plain = _gallery(processed=False)
    stripped = _gallery()
    for m in stripped.models.values():
        m.processed = {}
    assert plain.sha256 == stripped.sha256
    imported = import_npz(export_npz(back, tmp_path / "g.npz"))
    assert imported.sha256 == back.sha256 and imported.processed_kinds() == sorted(PROCESSINGS)


def test_duplicates_and_append_keep_rows_aligned():
    g = Gallery(backbone={"name": "x", "id": "x", "sha256": "0"})
    e = np.eye(4, 8)
    proc = {"jpeg75": np.eye(4, 8)[::-1].copy()}
    refs = _refs(3) + [_refs(1)[0]]  # the last repeats r0
    m = g.add("a", e, refs, processed=proc)
    assert m.embeddings.shape == (3, 8) and m.processed["jpeg75"].shape == (3, 8)
    np.testing.assert_array_equal(m.processed["jpeg75"], proc["jpeg75"][:3])
    v = g.version
    # appended references with the same kind extend it; a kind they lack is dropped
    g.add("a", np.ones((2, 8)), _refs(2, "s"), append=True, processed={"jpeg75": np.ones((2, 8))})
    assert g.version == v + 1  # a session refits after an append too
    assert g.models["a"].processed["jpeg75"].shape == (5, 8)
    g.add("a", np.ones((1, 8)), _refs(1, "t"), append=True)
    assert g.models["a"].processed == {} and g.models["a"].embeddings.shape == (6, 8)


@pytest.mark.parametrize(
    ("processed", "match"),
    [
        ({"jpeg75": np.ones((2, 8))}, "not \\(3, 8\\)"),
        ({"jpeg75": np.full((3, 8), np.nan)}, "non-finite"),
        ({"../x": np.ones((3, 8))}, "invalid processed-copy kind"),
    ],
)
def test_add_refuses_bad_copies(processed, match):
    g = Gallery(backbone={"name": "x", "id": "x", "sha256": "0"})
    with pytest.raises(GalleryError, match=match):
        g.add("a", np.ones((3, 8)), _refs(3), processed=processed)


def test_load_refuses_a_copy_outside_the_gallery(tmp_path):
    _gallery().save(tmp_path / "g")
    doc_file = tmp_path / "g" / "gallery.json"
    doc = json.loads(doc_file.read_text())
    doc["models"]["a"]["processed"]["jpeg75"] = "../outside.npy"
    doc_file.write_text(json.dumps(doc))
    with pytest.raises(GalleryError, match="refuses embedding path '../outside.npy'"):
        Gallery.load(tmp_path / "g")


# -- the session decides processed queries with the processed calibration ----------------------


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("proc")
    for name, kind in (("a", "nearest"), ("b", "checker"), ("c", "bilinear")):
        write_generator_images(root / "refs" / name, kind, n=4, size=64, seed=0)
    q = root / "q"
    write_generator_images(q, "checker", n=1, size=64, seed=7)
    png = next(q.glob("*.png"))
    with Image.open(png) as im:
        im.save(q / "query.jpg", quality=80)
        im.resize((32, 32)).save(q / "small.png")
    g = root / "g"
    for name in ("a", "b", "c"):
        r = run_cli(["gallery", "add", name, root / "refs" / name, "-g", g, "-b", "spectrum"])
        assert r.exit_code == 0, r.output
    return g, q


def test_gallery_add_enrols_the_copies(enrolled):
    g, _ = enrolled
    gallery = Gallery.load(g)
    assert gallery.processed_kinds() == sorted(PROCESSINGS)
    assert all(m.processed["x0.5"].shape == m.embeddings.shape for m in gallery.models.values())


def test_attribute_picks_the_calibration_by_how_the_query_was_stored(enrolled):
    g, q = enrolled
    r = run_cli(["attribute", q, "-g", g, "-b", "spectrum", "-f", "json"])
    assert r.exit_code == 0, r.output
    rows = {Path(x["path"]).name: x for x in json.loads(r.stdout)["results"]}
    png = next(n for n in rows if n.endswith(".png") and n != "small.png")
    assert rows[png]["calibration"]["processing"] is None
    assert rows["query.jpg"]["calibration"]["processing"] == "jpeg75"
    assert rows["small.png"]["calibration"]["processing"] == "x0.5"
    # the policy section lists the calibrations fitted for processed queries
    procs = {c.get("processing") for c in json.loads(r.stdout)["summary"]["policy"]["calibrations"]}
    assert {None, "jpeg75", "x0.5"} <= procs


def test_processed_calibration_differs_and_the_caveat_says_which(enrolled):
    g, q = enrolled
    s = Session(create_backbone("spectrum"), Gallery.load(g))
    res = {Path(x["path"]).name: x for x in s.attribute([q])}
    jpg = res["query.jpg"]
    clean = s.policy.calibration("image-vs-model")
    proc = s.processed_policy("jpeg75").calibration("image-vs-model")
    assert proc.processing == "jpeg75" and clean.processing is None
    # fitted on other pseudo-queries; the threshold never below the clean one
    assert proc.threshold >= clean.threshold and proc.display != clean.display
    assert any("calibration made of the references' jpeg75 copies" in c for c in jpg["caveats"])
    # without copies for every model there is no processed calibration, and the caveat
    # keeps the uncalibrated warning
    gallery = Gallery.load(g)
    gallery.models["a"].processed = {}
    s2 = Session(create_backbone("spectrum"), gallery)
    assert s2.processed_policy("jpeg75") is None
    jpg2 = {Path(x["path"]).name: x for x in s2.attribute([q])}["query.jpg"]
    assert jpg2["calibration"]["processing"] is None
    if jpg2.get("caveats"):
        assert "calibration made of" not in jpg2["caveats"][0]


def test_a_processed_calibration_never_lowers_the_clean_threshold(enrolled):
    """Which processing a query went through is a guess from its file: whatever the
    processed pseudo-queries give, the threshold in force is at least the clean one."""
    g, _ = enrolled
    s = Session(create_backbone("spectrum"), Gallery.load(g))
    clean = s.policy
    for kind in PROCESSINGS:
        pol = s.processed_policy(kind)
        assert pol is not None and pol.threshold_floor is clean
        for size in (1, 3):
            c = clean.calibration("image-vs-model", set_size=size)
            p = pol.calibration("image-vs-model", set_size=size)
            assert p.threshold >= c.threshold
            raised = [n for n in p.details["notes"] if "threshold raised" in n]
            # unfloored, the same policy's own threshold: raised exactly when it was lower
            bare = type(pol)(
                pol.card and clean.card and s.backbone.calibration(),
                s.gallery,
                processed_references=pol.processed_references,
                processing=kind,
            ).calibration("image-vs-model", set_size=size)
            assert bool(raised) == (bare.threshold < c.threshold)
            assert p.threshold == max(bare.threshold, c.threshold)


def test_a_crop_of_an_unseen_generator_is_not_named_on_the_x05_calibration(tmp_path):
    """Break-it case: a 127 x 128 crop or a quality-100 JPEG of a generator that is not
    enrolled was named (p 0.80) on the x0.5 / jpeg75 calibrations while the clean
    calibration answered unknown."""
    refs, q = tmp_path / "refs", tmp_path / "q"
    for name, kind, seed, trace in (
        ("nearest", "nearest", 0, 1234),
        ("checker", "checker", 20, 1234),
        ("checker2", "checker", 30, 999),
        ("checker3", "checker", 40, 77),
    ):
        write_generator_images(refs / name, kind, n=5, size=128, seed=seed, trace=trace)
    for p in write_generator_images(q, "bilinear", n=2, size=128, seed=300):
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.crop((0, 0, 127, 128)).save(q / f"{p.stem}_crop127.png")
            im.save(q / f"{p.stem}_q100.jpg", quality=100)
    g = tmp_path / "g"
    for name in ("nearest", "checker", "checker2", "checker3"):
        r = run_cli(["gallery", "add", name, refs / name, "-g", g, "-q"])
        assert r.exit_code == 0, r.output
    r = run_cli(["attribute", q, "-g", g, "-f", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["results"]
    assert len(rows) == 6
    for x in rows:
        assert x["decision"] == "unknown", (x["path"], x["decision"], x["probability"])
        assert x["calibration"]["processing"] is None  # near-clean: the clean calibration


def test_no_processed_copies_flag(tmp_path):
    write_generator_images(tmp_path / "r", "nearest", n=3, size=64, seed=0)
    r = run_cli(
        ["gallery", "add", "a", tmp_path / "r", "-g", tmp_path / "g", "-b", "spectrum"]
        + ["--no-processed-copies", "-f", "json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["processed_copies"] == {"enrolled": [], "gallery": []}
    assert Gallery.load(tmp_path / "g").models["a"].processed == {}


def test_reference_caveat_without_processing_keeps_the_warning():
    image = type("I", (), {"format": "JPEG", "width": 64, "height": 64})()
    res = {"decision": "a", "calibration": {"processing": None}}
    shapes = {"a": (frozenset({"PNG"}), 4096), None: (frozenset({"PNG"}), 4096)}
    text = reference_caveat(res, image, shapes)
    assert text is not None and "right 81% of the time" in text
    res["calibration"]["processing"] = "jpeg75"
    assert "named 8% of the time and right 90%" in reference_caveat(res, image, shapes)


@pytest.mark.parametrize(
    "res",
    [
        {"decision": "unknown", "leaning": None},
        {"decision": "inconclusive", "leaning": "unknown"},
        {"decision": "inconclusive", "leaning": "small"},
        {"decision": "small"},
    ],
)
def test_a_query_decided_as_a_processed_copy_always_gets_a_caveat(res):
    """Break-it: a 64 px crop whose top model has 128 px references was decided with the
    x0.5 calibration (judged against that model), but the caveat was judged against every
    reference (a 64 px model's among them) or the leaning model's: no caveat at all."""
    shapes = {
        "big": (frozenset({"PNG"}), 128 * 128),
        "small": (frozenset({"PNG"}), 64 * 64),
        None: (frozenset({"PNG"}), 64 * 64),
    }
    image = type("I", (), {"format": "PNG", "width": 64, "height": 64, "jpeg_quality": None})()
    top = [{"model": "big", "similarity": 0.9}, {"model": "small", "similarity": 0.8}]
    row = {**res, "top": top, "calibration": {"processing": "x0.5"}}
    text = reference_caveat(row, image, shapes)
    assert text is not None and "x0.5 copies" in text
    assert "(64x64) is smaller than big's references" in text
    # clean: judged by the answer, as large as small's references, not below every one
    row["calibration"]["processing"] = None
    assert reference_caveat(row, image, shapes) is None


def test_an_mpo_query_among_jpeg_references_is_not_called_re_encoded():
    # noticed in stop 24: the caveat compared format ids, and a camera's MPO (a
    # multi-picture JPEG) against JPEG references read "re-encoded"
    shapes = {"a": (frozenset({"JPEG"}), 4096), None: (frozenset({"JPEG"}), 4096)}
    mpo = type("I", (), {"format": "MPO", "width": 64, "height": 64, "jpeg_quality": 80})()
    res = {"decision": "a", "calibration": {"processing": None}}
    assert reference_caveat(res, mpo, shapes) is None
    png = type("I", (), {"format": "PNG", "width": 64, "height": 64, "jpeg_quality": None})()
    assert "the query is PNG" in reference_caveat(res, png, shapes)


def test_an_edit_that_loses_the_processed_calibration_says_so(tmp_path):
    """Break-it cases: appending without copies, appending with copies onto a model that
    has none, and importing an export without copies turned the processed calibrations
    off for the whole gallery without a word."""
    for name, kind, seed in (("a", "nearest", 0), ("b", "checker", 1), ("more", "nearest", 5)):
        write_generator_images(tmp_path / name, kind, n=3, size=64, seed=seed)
    g = tmp_path / "g"

    def add(*args: object):
        r = run_cli(["gallery", "add", *args, "-g", g, "-b", "spectrum", "-f", "json"])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout), " ".join(r.stderr.split())

    for name in ("a", "b"):
        out, err = add(name, tmp_path / name)
    assert out["processed_copies"]["gallery"] == sorted(PROCESSINGS) and "no longer" not in err
    out, err = add("a", tmp_path / "more", "--append", "--no-processed-copies")
    assert out["processed_copies"] == {"enrolled": [], "gallery": []}
    assert "no longer holds jpeg75 and x0.5 copies of every model's references" in err
    assert "missing for 'a'" in err and any("no longer holds" in n for n in out["notes"])
    # copies computed for an append onto a model that has none are not kept: said so
    write_generator_images(tmp_path / "extra", "nearest", n=2, size=64, seed=9)
    out, err = add("a", tmp_path / "extra", "--append")
    assert out["processed_copies"]["enrolled"] == []
    assert "copies of the appended ones were not kept" in err
    # gallery list / show name the model to re-enrol
    r = run_cli(["gallery", "list", "-g", g, "-b", "spectrum", "-f", "json"])
    rows = {x["model"]: x["processed_copies"] for x in json.loads(r.stdout)["models"]}
    assert rows == {"a": [], "b": sorted(PROCESSINGS)}
    r = run_cli(["gallery", "show", "b", "-g", g, "-b", "spectrum", "-f", "json"])
    assert json.loads(r.stdout)["processed_copies"] == sorted(PROCESSINGS)
    # an export without copies imported into a new gallery
    r = run_cli(["gallery", "export", tmp_path / "x.npz", "-g", g, "-b", "spectrum"])
    assert r.exit_code == 0, r.output
    r = run_cli(["gallery", "import", tmp_path / "x.npz", "-g", tmp_path / "g2"])
    assert r.exit_code == 0, r.output
    assert "do not all carry processed copies" in " ".join(r.stderr.split())
    # re-enrolling with --replace restores the calibration, silently
    out, err = add("a", tmp_path / "a", "--replace")
    assert out["processed_copies"]["gallery"] == sorted(PROCESSINGS) and "no longer" not in err


def test_the_caveat_names_the_change_the_calibration_was_made_for():
    shapes = {"a": (frozenset({"PNG"}), 4096), None: (frozenset({"PNG"}), 4096)}
    small_jpeg = type("I", (), {"format": "JPEG", "width": 32, "height": 32})()
    res = {"decision": "a", "calibration": {"processing": "x0.5"}}
    text = reference_caveat(res, small_jpeg, shapes)
    assert "(32x32) is smaller than a's references" in text and "x0.5 copies" in text
    res["calibration"]["processing"] = None  # uncalibrated: the format is said first
    assert "the query is JPEG" in reference_caveat(res, small_jpeg, shapes)


def test_a_set_mixing_processed_and_clean_images_says_how_it_was_decided(enrolled):
    g, q = enrolled
    s = Session(create_backbone("spectrum"), Gallery.load(g))
    stats = RunStats()
    rows = list(s.attribute([q], stats))  # one clean PNG, one JPEG, one small PNG
    assert sorted(stats.processings, key=str) == sorted([None, "jpeg75", "x0.5"], key=str)
    out = s.attribute_set(stats)
    assert out["n_images"] == len(rows) == 3
    # a tie of one each: the strongest change's calibration, and the note says so
    assert out["calibration"]["processing"] == "x0.5"
    assert "mixes images stored like the references and processed ones" in out["note"]
    assert (
        "(1 stored like the references, 1 jpeg75, 1 x0.5): decided with the calibration of "
        "the stronger change of a tie (the references' x0.5 copies)" in out["note"]
    )


def test_every_output_says_which_calibration_decided(enrolled):
    """Break-it: CSV rows and the table's threshold lines read alike for clean, jpeg75
    and x0.5 rows, and `gallery calibrate` did not show the processed calibrations."""
    g, q = enrolled
    r = run_cli(["attribute", q, "-g", g, "-b", "spectrum", "-f", "csv"])
    assert r.exit_code == 0, r.output
    cal = {
        Path(row["path"]).name: row["calibration"]
        for row in csv.DictReader(r.stdout.splitlines())
        if row.get("path")
    }
    assert cal["query.jpg"].endswith("/jpeg75 copies") and cal["small.png"].endswith("/x0.5 copies")
    r = run_cli(["attribute", q, "-g", g, "-b", "spectrum"], env={"COLUMNS": "300"})
    text = " ".join(r.output.split())
    assert "jpeg75 queries" in text and "x0.5 queries" in text
    report = g.parent / "report.html"
    r = run_cli(["attribute", q, "-g", g, "-b", "spectrum", "--report", report, "-q"])
    assert r.exit_code == 0, r.output
    html = report.read_text()
    assert "made of the references&#x27; jpeg75 copies" in html, "HTML names the calibration"
    r = run_cli(["gallery", "calibrate", "-g", g, "-b", "spectrum", "-f", "json"])
    assert r.exit_code == 0, r.output
    procs = [c.get("processing") for c in json.loads(r.stdout)["calibrations"]]
    assert "jpeg75" in procs and "x0.5" in procs
    r = run_cli(["gallery", "calibrate", "-g", g, "-b", "spectrum"], env={"COLUMNS": "300"})
    assert "image-vs-model, jpeg75 queries" in r.output


def test_api_processing_arguments_are_checked_and_decide_takes_one(enrolled):
    g, q = enrolled
    s = Session(create_backbone("spectrum"), Gallery.load(g))
    with pytest.raises(ValueError, match="unknown processing 'nope'"):
        s.embed_processed([next(q.glob("*.png"))], kinds=["nope"])
    e = next(iter(s.embed([q / "query.jpg"]))).embedding
    with pytest.raises(ValueError, match="unknown processing"):
        s.decide(e, processing="x2")
    assert s.decide(e, processing="jpeg75")["calibration"]["processing"] == "jpeg75"
    assert s.decide(e)["calibration"]["processing"] is None
    # a gallery without the copies: the clean calibration, and a caveat says so
    gallery = Gallery.load(g)
    gallery.models["a"].processed = {}
    res = Session(create_backbone("spectrum"), gallery).decide(e, processing="x0.5")
    assert res["calibration"]["processing"] is None and "does not hold x0.5" in res["caveats"][0]


def test_a_copy_of_the_wrong_dtype_says_so():
    with pytest.raises(GalleryError, match="dtype int64"):
        g = Gallery(backbone={"name": "x", "id": "x", "sha256": "0"})
        e = np.eye(3, 4, dtype=np.float32)
        g.add("a", e, _refs(3), processed={"jpeg75": np.ones((3, 4), np.int64)})


def test_a_halved_query_is_judged_against_the_model_it_scores_highest_with(tmp_path):
    """Generators have native sizes: a 128 px model's image halved to 64 px is still
    larger than a 32 px model's references, so 'smaller than every reference' missed it."""
    write_generator_images(tmp_path / "big", "bilinear", n=4, size=128, seed=0)
    write_generator_images(tmp_path / "big2", "nearest", n=4, size=128, seed=1)
    write_generator_images(tmp_path / "tiny", "checker", n=4, size=32, seed=2)
    g = tmp_path / "g"
    for name in ("big", "big2", "tiny"):
        r = run_cli(["gallery", "add", name, tmp_path / name, "-g", g, "-q"])
        assert r.exit_code == 0, r.output
    q = write_generator_images(tmp_path / "q", "bilinear", n=1, size=128, seed=7)[0]
    with Image.open(q) as im:
        im.resize((64, 64), Image.Resampling.BICUBIC).save(tmp_path / "half.png")
    s = Session(create_backbone("default"), Gallery.load(g))
    res = next(iter(s.attribute([tmp_path / "half.png"])))
    assert res["top"][0]["model"] == "big"
    assert res["calibration"]["processing"] == "x0.5"
    image = type("I", (), {"format": "PNG", "width": 64, "height": 64, "jpeg_quality": None})()
    assert s.query_processing(image) is None  # against every reference: not smaller
    assert s.query_processing(image, "big") == "x0.5"


def test_a_near_lossless_jpeg_caveat_says_why_the_clean_calibration_decided():
    shapes = {"a": (frozenset({"PNG"}), 4096), None: (frozenset({"PNG"}), 4096)}
    q95 = type("I", (), {"format": "JPEG", "width": 64, "height": 64, "jpeg_quality": 95})()
    text = reference_caveat({"decision": "a", "calibration": {"processing": None}}, q95, shapes)
    assert "saved at quality 95: near-lossless" in text and "quality 90 or less" in text
    q80 = type("I", (), {"format": "JPEG", "width": 64, "height": 64, "jpeg_quality": 80})()
    text = reference_caveat({"decision": "a", "calibration": {"processing": None}}, q80, shapes)
    assert "near-lossless" not in text  # the copies are missing: the generic warning


def test_the_table_lists_only_the_set_calibration_that_decided(enrolled):
    """Break-it: a processed set also fits the clean set calibration (its threshold
    floor), and the table listed it as if it had decided."""
    g, q = enrolled
    r = run_cli(["attribute", q, "-g", g, "-b", "spectrum", "--as-set"], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stdout.splitlines() if "set-vs-model" in ln]
    assert len(lines) == 1 and "x0.5 queries" in lines[0], lines
