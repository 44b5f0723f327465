from __future__ import annotations

import json

from fpattr.testing import run_cli, write_generator_images


def test_verify_files_and_folders(enrolled):
    world = enrolled
    q = world["queries"]
    opts = ["-g", world["gallery"], "-b", "spectrum", "-f", "json", "-q", "--target-far", "0.1"]
    same = run_cli(["verify", q / "checker_000.png", q / "checker_001.png", *opts])
    assert same.exit_code == 0, same.output
    res = json.loads(same.stdout)["results"][0]
    assert res["decision"] == "same" and res["calibration"]["comparison"] == "image-vs-image"
    assert 0.5 <= res["probability"] <= 1 and res["threshold"] is not None
    assert res["probability"] == res["p_same"] and res["target_far"] == 0.1
    diff = run_cli(["verify", q / "checker_000.png", q / "nearest_000.png", *opts])
    dres = json.loads(diff.stdout)["results"][0]
    assert dres["decision"] == "different" and dres["p_same"] < res["p_same"]
    # the probability shown is that of the decision: never above 0.5 for "same" beside "different"
    assert dres["probability"] == 1 - dres["p_same"] and dres["probability"] >= 0.5
    folders = run_cli(
        [
            "verify",
            world["refs"] / "nearest",
            world["refs"] / "bilinear",
            "-g",
            world["gallery"],
            "-b",
            "spectrum",
            "-f",
            "json",
            "-q",
        ]
    )
    res = json.loads(folders.stdout)["results"][0]
    assert res["a_images"] == 5 and res["calibration"]["comparison"] == "set-vs-set"
    assert res["calibration"]["set_size"] == 5


def test_verify_threshold_override_and_errors(world, tmp_path):
    q = world["queries"]
    r = run_cli(
        [
            "verify",
            q / "checker_000.png",
            q / "checker_001.png",
            "-b",
            "spectrum",
            "--threshold",
            "0.5",
            "-f",
            "json",
            "-q",
        ]
    )
    res = json.loads(r.stdout)["results"][0]
    assert res["threshold"] == 0.5 and res["probability"] is None and res["decision"]
    (tmp_path / "empty.png").write_bytes(b"")
    r = run_cli(
        [
            "verify",
            tmp_path / "empty.png",
            q / "checker_001.png",
            "-b",
            "spectrum",
            "-q",
            "-f",
            "json",
        ]
    )
    assert r.exit_code == 2


def test_gallery_lifecycle(enrolled, tmp_path):
    world = enrolled
    g = ["-g", world["gallery"], "-b", "spectrum"]
    listing = json.loads(run_cli(["gallery", "list", *g, "-f", "json"]).stdout)
    assert [m["model"] for m in listing["models"]] == ["nearest", "bilinear", "checker"]
    shown = json.loads(run_cli(["gallery", "show", "checker", *g, "-f", "json"]).stdout)
    assert len(shown["refs"]) == 5 and all(len(r["sha256"]) == 64 for r in shown["refs"])
    dup = run_cli(["gallery", "add", "checker", world["refs"] / "checker", *g])
    assert dup.exit_code == 2 and "already enrolled" in dup.output
    # the same files under another name: enrolled, with a warning naming the other model
    same = run_cli(["gallery", "add", "checker2", world["refs"] / "checker", *g, "-f", "json"])
    assert same.exit_code == 0 and "also enrolled under 'checker'" in same.stderr
    assert json.loads(same.stdout)["shared_references"] == {"checker": 5}
    assert run_cli(["gallery", "remove", "checker2", *g]).exit_code == 0
    assert run_cli(["gallery", "export", tmp_path / "x.npz", *g]).exit_code == 0
    assert run_cli(["gallery", "remove", "checker", *g]).exit_code == 0
    listing = json.loads(run_cli(["gallery", "list", *g, "-f", "json"]).stdout)
    assert len(listing["models"]) == 2
    r = run_cli(["gallery", "import", tmp_path / "x.npz", "-g", tmp_path / "g2"])
    assert r.exit_code == 0, r.output
    r = run_cli(["gallery", "list", "-g", tmp_path / "g2", "-b", "spectrum", "-f", "json"])
    assert len(json.loads(r.stdout)["models"]) == 3


def test_gallery_add_with_no_usable_reference(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"nope")
    r = run_cli(
        ["gallery", "add", "m", tmp_path / "bad.png", "-g", tmp_path / "g", "-b", "spectrum", "-q"]
    )
    assert r.exit_code == 2 and not (tmp_path / "g" / "gallery.json").exists()
    # break-it: under -q the exit 2 came with nothing printed; -q silences progress and
    # notes, never the reason for a non-zero exit
    assert "no usable reference image for 'm'" in r.stderr
    assert "failed " in r.stderr and "bad.png" in r.stderr
    base = ["gallery", "add", "m", "-g", tmp_path / "g", "-b", "spectrum", "-q"]
    r = run_cli([*base, tmp_path / "nonexistent"])
    assert r.exit_code == 2 and "no such file or directory" in " ".join(r.stderr.split())
    # a failed reference beside usable ones is why the exit is 1: said under -q too
    write_generator_images(tmp_path / "refs", "checker", n=3, size=64, seed=0)
    r = run_cli([*base, tmp_path / "refs", tmp_path / "bad.png", "-f", "none"])
    assert r.exit_code == 1 and "failed " in r.stderr and "bad.png" in r.stderr, r.output
    r = run_cli(["gallery", "add", "bad/name", tmp_path, "-g", tmp_path / "g"])
    assert r.exit_code == 2


def test_an_emptied_gallery_is_a_usage_error_not_an_internal_one(enrolled, tmp_path):
    # break-it pass: attribute against a gallery whose models were all removed was exit 70
    # "internal error: ValueError: the gallery is empty"
    g = ["-g", tmp_path / "g", "-b", "spectrum"]
    assert run_cli(["gallery", "add", "m", enrolled["refs"] / "checker", *g, "-q"]).exit_code == 0
    r = run_cli(["gallery", "remove", "m", *g])
    assert r.exit_code == 0 and "the gallery is now empty" in r.stderr
    for cmd in (["attribute", enrolled["queries"], *g, "-q"], ["gallery", "calibrate", *g]):
        r = run_cli(cmd)
        assert r.exit_code == 2 and "has no enrolled model" in r.stderr, (cmd, r.output)


def test_gallery_add_follows_the_gallerys_backbone(enrolled, tmp_path):
    # break-it pass: `gallery add` without -b on a spectrum gallery tried the default
    # extractor and was refused, where attribute / verify / calibrate follow the gallery
    g = ["-g", tmp_path / "g"]
    r = run_cli(["gallery", "add", "a", enrolled["refs"] / "checker", *g, "-b", "spectrum", "-q"])
    assert r.exit_code == 0, r.output
    r = run_cli(["gallery", "add", "b", enrolled["refs"] / "nearest", *g, "-q"])
    assert r.exit_code == 0, r.output
    listing = json.loads(run_cli(["gallery", "list", *g, "-f", "json"]).stdout)
    assert [m["model"] for m in listing["models"]] == ["a", "b"]


def test_gallery_json_and_table_show_names_that_are_not_utf8(world, tmp_path):
    # break-it finding: gallery add -f json and gallery show wrote lone surrogates
    # ("\udcff"), which strict JSON readers reject or turn into U+FFFD
    import os
    import shutil

    src = sorted((world["refs"] / "nearest").iterdir())
    d = tmp_path / "not-utf8"
    d.mkdir()
    for k, p in enumerate(src[:3]):
        shutil.copy(p, os.fsdecode(bytes(d) + b"/ok%d\xff.png" % k))
    shutil.copy(src[0], os.fsdecode(bytes(d) + b"/dup\xfe.png"))  # a duplicate: dropped
    g = tmp_path / "g"
    r = run_cli(["gallery", "add", "m", d, "-g", g, "-b", "spectrum", "-f", "json", "-q"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    (dropped,) = doc["duplicates_dropped"]  # one of the two copies, escaped
    assert "\\udc" not in r.stdout and dropped in (f"{d}/dup\\xfe.png", f"{d}/ok0\\xff.png")
    r = run_cli(["gallery", "show", "m", "-g", g, "-f", "json"])
    refs = json.loads(r.stdout)["refs"]
    assert "\\udc" not in r.stdout and {x["path"] for x in refs} >= {f"{d}/ok1\\xff.png"}
    assert all(bytes.fromhex(x["path_bytes_hex"])[-5:] in (b"\xff.png", b"\xfe.png") for x in refs)
    table = run_cli(["gallery", "show", "m", "-g", g]).stdout
    assert "\\xff.png" in table and "\\udc" not in table  # (long paths fold across lines)


def test_gallery_export_to_dash_is_refused(enrolled, tmp_path, monkeypatch):
    # break-it finding: `gallery export -` wrote a file literally named "-"
    monkeypatch.chdir(tmp_path)
    r = run_cli(["gallery", "export", "-", "-g", enrolled["gallery"]])
    assert r.exit_code == 2 and "stdout is not supported" in r.output
    assert not (tmp_path / "-").exists()


def test_gallery_add_with_the_name_forgotten_is_refused(tmp_path, monkeypatch):
    # break-it 28: `gallery add *.png` enrolled a model named "000.png" from the others
    refs = write_generator_images(tmp_path / "sdxl", "checker", n=3, size=64)
    monkeypatch.chdir(tmp_path / "sdxl")
    names = [p.name for p in refs]
    r = run_cli(["gallery", "add", *names, "-g", tmp_path / "g", "-b", "spectrum"])
    assert r.exit_code == 2 and "is a file here" in r.output, r.output
    assert not (tmp_path / "g").exists()
    # a folder named like the model stays the usual way to enrol it
    monkeypatch.chdir(tmp_path)
    r = run_cli(["gallery", "add", "sdxl", "sdxl", "-g", tmp_path / "g", "-b", "spectrum"])
    assert r.exit_code == 0, r.output


def test_gallery_calibrate_of_one_model_says_why_there_is_no_leave_one_out(tmp_path):
    # break-it 28: an empty leave-one-out table, unexplained
    refs = write_generator_images(tmp_path / "r", "checker", n=3, size=64)
    assert (
        run_cli(
            ["gallery", "add", "checker", *refs, "-g", tmp_path / "g", "-b", "spectrum"]
        ).exit_code
        == 0
    )
    r = run_cli(["gallery", "calibrate", "-g", tmp_path / "g"])
    assert r.exit_code == 0, r.output
    assert "leave-one-out): needs at least 2 models" in " ".join(r.stderr.split())
    assert "references as queries" not in r.stdout
