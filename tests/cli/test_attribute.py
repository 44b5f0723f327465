"""`fpattr attribute` through Typer's runner: formats, exit codes, bad inputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from fpattr.testing import make_hostile_inputs, run_cli, write_generator_images


def _json(r):
    assert r.stdout.strip(), r.output
    return json.loads(r.stdout)


def test_attribute_identifies_generators(enrolled):
    world = enrolled
    r = run_cli(
        [
            "attribute",
            world["queries"],
            "-g",
            world["gallery"],
            "-b",
            "spectrum",
            "-f",
            "json",
            "-q",
        ]
    )
    assert r.exit_code == 0, r.output
    rep = _json(r)
    assert rep["schema"] == "fpattr.report/1" and rep["command"] == "attribute"
    assert rep["summary"]["n_inputs"] == 9 and rep["summary"]["n_failed"] == 0
    cal = rep["calibration"]["calibrations"][0]
    assert cal["source"] == "gallery" and cal["comparison"] == "image-vs-model"
    assert cal["target_far"] == 0.01 and 0 < cal["threshold"] < 1
    correct = sum(
        res["top"][0]["model"] == res["path"].rsplit("/", 1)[1].split("_")[0]
        for res in rep["results"]
    )
    assert correct >= 8, [(x["path"], x["top"][0]) for x in rep["results"]]
    for res in rep["results"]:
        assert len(res["sha256"]) == 64 and len(res["top"]) == 3
        assert 0 <= res["top"][0]["probability"] <= 1
        assert res["decision"] in ("nearest", "bilinear", "checker", "unknown", "ambiguous")
        # the posterior over the enrolled models and "unknown" sums to 1
        assert abs(sum(t["probability"] for t in res["top"]) + res["p_unknown"] - 1) < 1e-6
        assert abs(res["threshold"] - cal["threshold"]) < 1e-6 and res["target_far"] == 0.01
        assert "thumbnail" not in res or res["thumbnail"] is None


def test_formats_jsonl_csv_table(enrolled):
    world = enrolled
    base = ["attribute", world["queries"], "-g", world["gallery"], "-b", "spectrum", "-q"]
    lines = run_cli([*base, "-f", "jsonl"]).stdout.strip().splitlines()
    kinds = [json.loads(x)["type"] for x in lines]
    assert kinds[0] == "manifest" and kinds[-1] == "summary" and kinds.count("result") == 9
    rows = list(csv.DictReader(io.StringIO(run_cli([*base, "-f", "csv"]).stdout)))
    assert len(rows) == 9 and {"path", "sha256", "decision", "top1_model"} <= set(rows[0])
    table = run_cli([*base, "-f", "table"])
    assert table.exit_code == 0 and "checker" in table.stdout


def test_output_and_report_files(enrolled, tmp_path):
    world = enrolled
    out, rep = tmp_path / "res.json", tmp_path / "rep.html"
    r = run_cli(
        [
            "attribute",
            world["queries"],
            "-g",
            world["gallery"],
            "-b",
            "spectrum",
            "-f",
            "json",
            "-o",
            out,
            "--report",
            rep,
            "-q",
        ]
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == ""
    assert json.loads(out.read_text())["summary"]["n_ok"] == 9
    html = rep.read_text()
    assert "data:image/png;base64," in html and "fpattr" in html


def test_as_set(enrolled):
    world = enrolled
    r = run_cli(
        [
            "attribute",
            world["refs"] / "checker",
            "-g",
            world["gallery"],
            "-b",
            "spectrum",
            "--as-set",
            "-f",
            "json",
            "-q",
        ]
    )
    assert _json(r)["summary"]["as_set"]["top"][0]["model"] == "checker"


def test_bad_inputs_exit_1_with_reasons_and_no_traceback(enrolled, tmp_path):
    world = enrolled
    bad = tmp_path / "mixed"
    cases = make_hostile_inputs(bad)
    for k in range(2):
        (bad / f"good{k}.png").write_bytes((world["queries"] / f"checker_{k:03d}.png").read_bytes())
    r = run_cli(["attribute", bad, "-g", world["gallery"], "-b", "spectrum", "-f", "json", "-q"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    rep = _json(r)
    errors = [x for x in rep["results"] if x["status"] == "error"]
    oks = [x for x in rep["results"] if x["status"] == "ok"]
    assert errors and all(x["error"] for x in errors)
    assert len(oks) >= 2
    by_name = {x["path"].rsplit("/", 1)[-1]: x for x in rep["results"]}
    for name in ("empty.png", "truncated.jpg", "huge.png"):
        hits = [v for k, v in by_name.items() if k == name]
        assert not hits or hits[0]["status"] == "error", hits
    assert sum(1 for _ in cases) > 10


def test_nothing_processed_is_exit_2(enrolled, tmp_path):
    world = enrolled
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "x.png").write_bytes(b"")
    r = run_cli(["attribute", tmp_path / "e", "-g", world["gallery"], "-b", "spectrum", "-q"])
    assert r.exit_code == 2
    r = run_cli(["attribute", tmp_path / "missing", "-g", world["gallery"], "-q"])
    assert r.exit_code == 2


def test_usage_errors_are_exit_2(enrolled):
    world = enrolled
    q = world["queries"]
    assert run_cli(["attribute", q, "-g", world["gallery"], "-f", "xml"]).exit_code == 2
    r = run_cli(["attribute", q, "-g", world["root"] / "nogallery", "-b", "spectrum"])
    assert r.exit_code == 2 and "no gallery" in r.output
    r = run_cli(["attribute", q, "-b", "spectrumm", "-g", world["gallery"]])
    assert r.exit_code == 2 and "did you mean spectrum" in r.output
    # a view count below 1 is refused before any work (it used to fail every file)
    for cmd in (["attribute", q, "-g", world["gallery"]], ["verify", q, q]):
        for bad in ("0", "-1"):
            r = run_cli([*cmd, "-b", "spectrum", "--views", bad])
            assert r.exit_code == 2 and "--views" in r.output, r.output


@pytest.mark.parametrize(
    "cmd",
    [
        ["gallery", "calibrate"],
        ["gallery", "list"],
        ["plugins", "list"],
        ["doctor"],
    ],
)
def test_commands_refuse_a_format_they_do_not_write(enrolled, cmd):
    # every table|json command: an unknown format is a usage error, not the table, exit 0
    extra = ["-g", enrolled["gallery"]] if cmd[0] == "gallery" else []
    r = run_cli([*cmd, *extra, "-f", "csv"])
    assert r.exit_code == 2 and "is not one of" in r.output, r.output


def test_gallery_from_another_backbone_is_refused(enrolled):
    world = enrolled
    r = run_cli(
        [
            "attribute",
            world["queries"],
            "-g",
            world["gallery"],
            "-b",
            "spectrum",
            "--backbone-opt",
            "size=32",
        ]
    )
    assert r.exit_code == 2 and "re-enrol" in r.output


def test_unknown_when_nothing_matches(enrolled, tmp_path):
    world = enrolled
    from fpattr.testing import write_image

    for k in range(3):
        write_image(tmp_path / "noise" / f"{k}.png", (64, 64), seed=k)
    r = run_cli(
        [
            "attribute",
            tmp_path / "noise",
            "-g",
            world["gallery"],
            "-b",
            "spectrum",
            "-f",
            "json",
            "-q",
        ]
    )
    decisions = [x["decision"] for x in _json(r)["results"]]
    assert decisions.count("unknown") >= 2, decisions


def test_manifest_records_the_decoding_threads_used(enrolled):
    # break-it pass: without --workers the manifest said "workers": null
    from fpattr.pipeline import decode_workers

    base = ["attribute", enrolled["queries"], "-g", enrolled["gallery"], "-b", "spectrum"]
    rep = _json(run_cli([*base, "-f", "json", "-q"]))
    assert rep["settings"]["workers"] is None  # as given: the default
    assert rep["engine"]["name"] == "local"
    assert rep["engine"]["decode_workers"] == decode_workers() >= 1
    rep = _json(run_cli([*base, "--workers", "3", "-f", "json", "-q"]))
    assert rep["settings"]["workers"] == rep["engine"]["decode_workers"] == 3


def test_workers_zero_through_the_api_decodes_in_the_callers_thread(enrolled):
    # break-it pass: Settings(workers=0) was taken as "not set" (default threads)
    import threading

    from fpattr.pipeline import Settings
    from fpattr.session import Session

    names: set[str] = set()
    s = Session.open("spectrum", enrolled["gallery"], settings=Settings(workers=0))
    for _ in s.attribute([enrolled["queries"]]):
        names |= {t.name for t in threading.enumerate()}
    assert not any(n.startswith("fpattr-load") for n in names)


def test_resume_counts_redone_inputs_once(enrolled, tmp_path):
    # break-it pass: a failed and a skipped input, redone on --resume, were also counted
    # as new: kept 8 + redone 2 + new 2 for 10 inputs
    import shutil

    d = tmp_path / "in"
    shutil.copytree(enrolled["queries"], d)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (d / "notes.txt").write_text("hi", encoding="utf-8")
    out = tmp_path / "r.jsonl"
    base = ["attribute", d, "-g", enrolled["gallery"], "-b", "spectrum", "-q", "-o", out]
    assert run_cli([*base, "-f", "jsonl"]).exit_code == 1
    r = run_cli([*base, "-f", "jsonl", "--resume"])
    assert r.exit_code == 1, r.output
    summary = json.loads(out.read_text(encoding="utf-8").splitlines()[-1])
    n = len(list(d.iterdir()))  # every input, the skipped text file included
    got = summary["resumed"]
    assert (got["kept"], got["redone"], got["new"]) == (n - 2, 2, 0)


def test_as_set_csv_has_the_set_decision(enrolled):
    # break-it pass: `--as-set -f csv` wrote the per-image rows only, the set's answer was lost
    base = ["attribute", enrolled["queries"], "-g", enrolled["gallery"], "-b", "spectrum", "-q"]
    pooled = _json(run_cli([*base, "--as-set", "-f", "json"]))["summary"]["as_set"]
    rows = list(csv.DictReader(io.StringIO(run_cli([*base, "--as-set", "-f", "csv"]).stdout)))
    assert [r["path"] for r in rows].count("<set>") == 1 and rows[-1]["path"] == "<set>"
    assert rows[-1]["decision"] == pooled["decision"] and rows[-1]["status"] == "set"
    assert float(rows[-1]["probability"]) == pytest.approx(pooled["probability"])
    plain = list(csv.DictReader(io.StringIO(run_cli([*base, "-f", "csv"]).stdout)))
    assert "<set>" not in [r["path"] for r in plain]


def test_as_set_says_how_many_flat_images_it_left_out(enrolled, tmp_path):
    # the set decision pooled the images with a fingerprint and said nothing of the others
    import shutil

    from PIL import Image

    d = tmp_path / "set"
    d.mkdir()
    for p in sorted(enrolled["queries"].glob("checker*"))[:3]:
        shutil.copy(p, d / p.name)
    for k in range(2):
        Image.new("RGB", (64, 64), (40 * k, 90, 200)).save(d / f"flat{k}.png")
    base = ["attribute", d, "-g", enrolled["gallery"], "-b", "spectrum", "-q", "--as-set"]
    pooled = _json(run_cli([*base, "-f", "json"]))["summary"]["as_set"]
    assert (pooled["n_images"], pooled["n_flat"]) == (3, 2)
    assert "2 flat image(s) carry no fingerprint: left out of the set" in pooled["note"]
    assert "2 flat image(s)" in " ".join(run_cli(base).stdout.split())
    for p in d.glob("checker*"):
        p.unlink()
    pooled = _json(run_cli([*base, "-f", "json"]))["summary"]["as_set"]
    assert (pooled["n_images"], pooled["n_flat"]) == (0, 2)
    assert "every image is flat (2)" in pooled["note"]


def test_doctor_fails_when_a_shipped_model_is_missing(tmp_path, monkeypatch):
    # break-it finding: the checks followed the cards present, so removing default-int8.json,
    # v2.json or analysis.json removed its row and the doctor still exited 0
    import shutil

    from fpattr.paths import SHIPPED_EXTRACTORS, SHIPPED_HEADS, models_dir

    src = models_dir()
    if not (src / "default-int8.json").is_file():
        pytest.skip("shipped models not in this checkout")
    assert set(SHIPPED_EXTRACTORS) == {p.stem for p in src.glob("*.onnx")}  # the list is true
    assert (src / SHIPPED_HEADS).is_file()
    m = tmp_path / "models"
    shutil.copytree(src, m)
    monkeypatch.setenv("FPATTR_MODELS", str(m))
    for gone in ("default-int8.json", "v2.json", "analysis.json", "default.json", "default.onnx"):
        (m / gone).unlink()
    r = run_cli(["doctor", "-f", "json"])
    assert r.exit_code == 1, r.output
    rows = {x["check"]: x for x in json.loads(r.stdout)["checks"]}
    for check in ("extractor default-int8", "extractor v2", "analysis heads", "default extractor"):
        assert rows[check]["status"] == "fail" and "missing" in rows[check]["detail"], check


def test_doctor_checks_the_user_data_folder_and_its_galleries(tmp_path, monkeypatch):
    # break-it 28: "user data ok" with the default gallery damaged (every attribute then
    # failed) and with an FPATTR_HOME no gallery could be made in
    home = tmp_path / "home"
    monkeypatch.setenv("FPATTR_HOME", str(home))
    refs = write_generator_images(tmp_path / "refs", "checker", n=3, size=64)
    assert run_cli(["gallery", "add", "checker", *refs, "-b", "spectrum"]).exit_code == 0

    def rows() -> tuple[int, dict]:
        r = run_cli(["doctor", "-f", "json"])
        return r.exit_code, {x["check"]: x for x in json.loads(r.stdout)["checks"]}

    _, got = rows()
    assert got["user data"]["status"] == "ok"
    assert got["gallery spectrum (user)"]["status"] == "ok"
    next((home / "galleries" / "spectrum" / "emb").glob("*.npy")).unlink()
    code, got = rows()
    assert code == 1 and got["gallery spectrum (user)"]["status"] == "fail"
    assert "damaged" in got["gallery spectrum (user)"]["detail"]
    # a read-only data folder: said, and its galleries still checked (review 28)
    from fpattr.errors import UsageError
    from fpattr.io import atomic

    def read_only(*_a, **_k):
        raise UsageError("cannot write user data: read-only file system")

    monkeypatch.setattr(atomic, "check_writable_folder", read_only)
    code, got = rows()
    assert got["user data"]["status"] == "warn" and code == 1
    assert got["gallery spectrum (user)"]["status"] == "fail"
    monkeypatch.undo()
    monkeypatch.setenv("FPATTR_HOME", str(home))
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    monkeypatch.setenv("FPATTR_HOME", str(tmp_path / "a-file" / "home"))
    _, got = rows()
    assert got["user data"]["status"] == "warn" and "cannot write" in got["user data"]["detail"]


def test_doctor_verifies_every_shipped_model(tmp_path, monkeypatch):
    # break-it pass: a truncated default-int8.onnx and corrupt analysis heads passed the
    # doctor (only default.onnx was checked), and `-b default-int8` then failed
    import shutil

    from fpattr.paths import models_dir

    src = models_dir()
    if not (src / "default-int8.json").is_file():
        pytest.skip("shipped models not in this checkout")
    m = tmp_path / "models"
    shutil.copytree(src, m)
    monkeypatch.setenv("FPATTR_MODELS", str(m))
    rows = {r["check"]: r for r in json.loads(run_cli(["doctor", "-f", "json"]).stdout)["checks"]}
    assert rows["extractor default-int8"]["status"] == "ok"
    assert rows["analysis heads"]["status"] == "ok"
    data = (m / "default-int8.onnx").read_bytes()
    (m / "default-int8.onnx").write_bytes(data[:1000])
    (m / "analysis.json").write_text("{not json", encoding="utf-8")
    (m / "v2.onnx").unlink()
    r = run_cli(["doctor", "-f", "json"])
    assert r.exit_code == 1, r.output
    rows = {x["check"]: x for x in json.loads(r.stdout)["checks"]}
    assert rows["extractor default-int8"]["status"] == "fail"
    assert "MISMATCH" in rows["extractor default-int8"]["detail"]
    assert rows["analysis heads"]["status"] == "fail"
    assert rows["extractor v2"]["status"] == "fail" and "missing" in rows["extractor v2"]["detail"]
    assert rows["default extractor"]["status"] == "ok"


def test_nothing_to_attribute_says_why_even_under_quiet(enrolled, tmp_path):
    # break-it finding: with -q an empty folder exited 2 with nothing on stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli(["attribute", empty, "-g", enrolled["gallery"], "-b", "spectrum", "-q"])
    assert r.exit_code == 2
    assert "no images found" in r.stderr and "no images found" not in r.stdout


def test_a_query_stored_unlike_the_references_gets_a_caveat(world, tmp_path):
    # measured (benchmarks/processed_queries.py): re-encoded or halved queries against clean
    # references are named wrongly far more often than the calibration says; the row says so
    from PIL import Image

    g = tmp_path / "g"
    for gen in ("nearest", "checker"):
        r = run_cli(["gallery", "add", gen, world["refs"] / gen, "-g", g, "-b", "spectrum", "-q"])
        assert r.exit_code == 0, r.output
    doc = json.loads((g / "gallery.json").read_text())
    ref = doc["models"]["checker"]["refs"][0]
    assert ref["format"] == "PNG" and ref["width"] > 0 and ref["height"] > 0
    q = tmp_path / "q"
    q.mkdir()
    src = sorted(world["refs"].glob("checker/*"))[0]
    with Image.open(src) as im:
        im.convert("RGB").save(q / "as.jpg", quality=95)
        im.resize((im.width // 2, im.height // 2)).save(q / "half.png")
        im.save(q / "same.png")
    base = ["attribute", q, "-g", g, "-b", "spectrum", "-q"]
    rows = {Path(r["path"]).name: r for r in _json(run_cli([*base, "-f", "json"]))["results"]}
    # stored like the references (its bytes are even one reference's: only that is said)
    assert all("enrolled reference of model 'checker'" in c for c in rows["same.png"]["caveats"])
    (jpg,) = rows["as.jpg"]["caveats"]
    assert "the query is JPEG" in jpg and "saved at quality 95: near-lossless" in jpg
    (half,) = rows["half.png"]["caveats"]
    assert "smaller than" in half and "resized" in half
    table = " ".join(run_cli(base).stdout.split())
    assert "caveat: the query is JPEG" in table
    # a gallery enrolled before references recorded their format and size: no caveat
    for m in doc["models"].values():
        for r in m["refs"]:
            for k in ("format", "width", "height"):
                r.pop(k)
    from fpattr.session import reference_caveat, reference_shapes

    class _G:
        models = {k: type("M", (), {"refs": v["refs"]}) for k, v in doc["models"].items()}

    img = type("I", (), {"format": "JPEG", "width": 8, "height": 8})
    assert reference_caveat({"decision": "checker"}, img, reference_shapes(_G)) is None


def test_a_session_follows_its_gallery_add_and_remove(enrolled):
    # break-it finding: after s.gallery.remove('nearest') the session still named it, and
    # a model added with s.gallery.add never appeared among the candidates
    from fpattr import Session

    s = Session.open("spectrum", enrolled["gallery"])
    q = sorted(enrolled["queries"].glob("nearest*"))[0]
    first = next(iter(s.attribute([q])))
    assert first["top"][0]["model"] == "nearest"
    emb, refs, _ = s.embed_references(sorted((enrolled["refs"] / "nearest").iterdir()))
    s.gallery.remove("nearest")
    gone = next(iter(s.attribute([q])))
    assert "nearest" not in {t["model"] for t in gone["top"]} and gone["decision"] != "nearest"
    s.gallery.add("nearest-again", emb, refs)
    back = next(iter(s.attribute([q])))
    assert back["top"][0]["model"] == "nearest-again"


def test_a_session_given_another_gallery_decides_with_it(enrolled, tmp_path):
    # break-it: after s.gallery = Gallery.load(other) the session kept ranking a model the
    # new gallery does not hold (caches keyed by a version number both galleries had)
    import shutil

    from fpattr import Session
    from fpattr.gallery import Gallery

    other = tmp_path / "other"
    shutil.copytree(enrolled["gallery"], other)
    r = run_cli(["gallery", "remove", "nearest", "-g", other, "-b", "spectrum"])
    assert r.exit_code == 0, r.output
    s = Session.open("spectrum", enrolled["gallery"])
    q = sorted(enrolled["queries"].glob("nearest*"))[0]
    assert next(iter(s.attribute([q])))["top"][0]["model"] == "nearest"
    s.gallery = Gallery.load(other)
    res = next(iter(s.attribute([q])))
    assert "nearest" not in {t["model"] for t in res["top"]}
    assert "nearest" not in s.policy.gallery.models


def test_a_session_decides_with_settings_assigned_or_changed_later(enrolled):
    # break-it 28: s.settings = Settings(threshold=0.99, target_far=0.2) applied top_k but
    # decided with the old threshold and target FAR, unsaid
    from fpattr import Session
    from fpattr.pipeline import Settings

    q = sorted(enrolled["queries"].glob("nearest*"))[0]
    s = Session.open("spectrum", enrolled["gallery"])
    assert next(iter(s.attribute([q])))["target_far"] == 0.01
    s.settings = Settings(threshold=0.99, top_k=1, target_far=0.2)
    got = next(iter(s.attribute([q])))
    assert (got["threshold"], len(got["top"])) == (0.99, 1)
    s.settings.threshold = None  # a field set on the settings object acts too
    got = next(iter(s.attribute([q])))
    fresh = Session.open("spectrum", enrolled["gallery"], settings=Settings(target_far=0.2))
    want = next(iter(fresh.attribute([q])))
    for key in ("decision", "probability", "threshold", "target_far"):
        assert got[key] == want[key], key


def test_every_record_has_the_decision_keys_failed_ones_too(enrolled, tmp_path):
    # break-it: the user guide's loop (r["threshold"], r["target_far"]) met a KeyError on
    # the first input that failed
    from fpattr import Session

    (tmp_path / "bad.png").write_text("not an image", encoding="utf-8")
    q = sorted(enrolled["queries"].glob("nearest*"))[0]
    s = Session.open("spectrum", enrolled["gallery"])
    ok, bad = list(s.attribute([q, tmp_path / "bad.png"]))
    assert bad["status"] == "error" and ok["status"] == "ok"
    # the same keys on every record (p_not_retrieved too: null without an index)
    assert set(ok) == set(bad)
    assert ok["p_not_retrieved"] is None
    for key in (
        "threshold",
        "target_far",
        "p_unknown",
        "leaning",
        "calibration",
        "p_not_retrieved",
    ):
        assert bad[key] is None


def test_every_record_carries_caveats_ok_failed_skipped_and_flat(enrolled, tmp_path):
    # break-it: `caveats` was set only when there was one: the API's records and the
    # JSON/JSONL results of clean, failed, skipped and flat inputs had no such key
    import shutil

    from PIL import Image

    from fpattr import Session

    d = tmp_path / "in"
    d.mkdir()
    q = sorted(enrolled["queries"].glob("checker*"))[0]
    shutil.copy(q, d / "clean.png")
    Image.new("RGB", (64, 64), (40, 90, 200)).save(d / "flat.png")
    (d / "bad.png").write_text("not an image", encoding="utf-8")
    (d / "notes.txt").write_text("not an image", encoding="utf-8")  # skipped in a folder
    s = Session.open("spectrum", enrolled["gallery"])
    recs = {Path(r["path"]).name: r for r in s.attribute([d])}
    assert [recs[n]["status"] for n in ("clean.png", "bad.png", "notes.txt")] == [
        "ok",
        "error",
        "skipped",
    ]
    assert recs["flat.png"]["decision"] == "insufficient signal"
    for name in ("clean.png", "bad.png", "notes.txt"):
        assert recs[name]["caveats"] == [], name
    assert isinstance(recs["flat.png"]["caveats"], list)
    emb = next(iter(s.gallery.models.values())).embeddings[0]
    assert s.decide(emb)["caveats"] == []
    base = ["attribute", d, "-g", enrolled["gallery"], "-b", "spectrum", "-q"]
    for fmt in ("json", "jsonl"):
        r = run_cli([*base, "-f", fmt])
        assert r.exit_code == 1, r.output  # bad.png failed
        rows = (
            json.loads(r.stdout)["results"]
            if fmt == "json"
            else [x for x in map(json.loads, r.stdout.splitlines()) if x["type"] == "result"]
        )
        assert len(rows) == 4 and all(isinstance(x["caveats"], list) for x in rows), fmt


def test_results_stream_from_a_slow_source_and_from_a_run_of_failures(enrolled):
    # break-it: results waited for a full batch of views: 400,000 missing paths gave their
    # first answer only once all were read (memory growing), and a generator feeding one
    # image every 0.5 s gave its first answer after the 36th
    import time

    from fpattr import Session

    s = Session.open("spectrum", enrolled["gallery"])
    read = []

    def missing():
        for k in range(600):
            read.append(k)
            yield f"/nonexistent/{k}.png"

    first = next(iter(s.attribute(missing())))
    assert first["status"] == "error" and len(read) < 600

    images = sorted(enrolled["queries"].iterdir())[:6]
    fed = []

    def slow():
        for p in images:
            fed.append(p)
            time.sleep(0.3)
            yield p

    results = s.attribute(slow())
    assert next(results)["status"] == "ok"
    assert len(fed) <= 3  # not a batch's worth of inputs first
    assert len(list(results)) == len(images) - 1


def test_a_source_that_raises_gets_the_results_before_it(enrolled):
    # second break-it pass: a generator raising after 5 images lost all 5 results
    from fpattr import Session

    images = sorted(enrolled["queries"].iterdir())[:5]

    def broken():
        yield from images
        raise ValueError("the source broke")

    s = Session.open("spectrum", enrolled["gallery"])
    got = []
    with pytest.raises(ValueError, match="the source broke"):
        for r in s.attribute(broken()):
            got.append(r["path"])
    assert got == [str(p) for p in images]


def test_a_flat_image_is_said_decided_with_no_processed_calibration(enrolled, tmp_path):
    # break-it 27: a 1x1 PNG ("insufficient signal") was read as an x0.5 copy and its
    # caveat said it was decided with the references' x0.5 copies: nothing was decided
    from PIL import Image

    one = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(one)
    r = run_cli(["attribute", one, "-g", enrolled["gallery"], "-b", "spectrum", "-q", "-f", "json"])
    rec = _json(r)["results"][0]
    assert rec["decision"] == "insufficient signal"
    assert rec["caveats"] == [] and (rec["calibration"] or {}).get("processing") is None
    small = tmp_path / "small.png"  # a real but halved image is still judged as one
    Image.open(sorted(enrolled["queries"].glob("checker*"))[0]).reduce(2).save(small)
    r = run_cli(
        ["attribute", small, "-g", enrolled["gallery"], "-b", "spectrum", "-q", "-f", "json"]
    )
    rec = _json(r)["results"][0]
    assert rec["decision"] != "insufficient signal"
    assert (rec["calibration"] or {}).get("processing") == "x0.5", rec
