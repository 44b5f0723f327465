"""`fpattr provenance` and the provenance of `fpattr attribute` results, through Typer's
runner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from fpattr.testing import run_cli, write_generator_images

GENS = ("nearest", "bilinear", "checker")


@pytest.fixture
def folder(tmp, pf) -> Path:
    """An A1111 PNG, a JPEG with XMP, a plain PNG, a malformed PNG and a text file."""
    d = tmp / "imgs"
    d.mkdir()
    pf.write_png(d / "a1111.png", pf.text_chunk("parameters", pf.A1111))
    xmp = pf.xmp_packet(
        '<rdf:Description xmlns:I="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        f' I:DigitalSourceType="{pf.DST}trainedAlgorithmicMedia"/>'
    )
    (d / "xmp.jpg").write_bytes(pf.jpeg_with_xmp(xmp))
    (d / "plain.png").write_bytes(pf.png_bytes())
    pf.write_png(d / "bad.png", pf.chunk(b"tEXt", b"parameters\x00x", bad_crc=True))
    (d / "notes.txt").write_text("not an image")
    return d


def test_provenance_json_and_jsonl(folder):
    r = run_cli(["provenance", folder, "-f", "json", "-q"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["command"] == "provenance" and doc["schema"] == "fpattr.report/1"
    rows = {Path(x["path"]).name: x for x in doc["results"]}
    assert rows["a1111.png"]["claimed_generator"] == "Stable Diffusion (model: v1-5-pruned)"
    assert rows["xmp.jpg"]["digital_source_type"].endswith("trainedAlgorithmicMedia")
    assert rows["plain.png"]["claimed_generator"] is None and rows["plain.png"]["status"] == "ok"
    assert rows["bad.png"]["status"] == "ok" and "bad CRC" in rows["bad.png"]["errors"][0]
    assert rows["notes.txt"]["status"] == "skipped"
    assert len(rows["a1111.png"]["sha256"]) == 64
    assert doc["summary"]["n_inputs"] == 4 and doc["summary"]["n_skipped"] == 1
    assert doc["summary"]["n_claims"] == 1 and doc["summary"]["n_metadata_errors"] == 1
    lines = [
        json.loads(x)
        for x in run_cli(["provenance", folder, "-f", "jsonl", "-q"]).stdout.splitlines()
    ]
    assert [x["type"] for x in lines] == ["manifest"] + ["result"] * 5 + ["summary"]


def test_provenance_csv_and_table(folder, tmp):
    r = run_cli(["provenance", folder, "-f", "csv", "-q"])
    assert r.exit_code == 0, r.output
    rows = {Path(x["path"]).name: x for x in csv.DictReader(io.StringIO(r.stdout))}
    assert rows["a1111.png"]["claimed_generator"] == "Stable Diffusion (model: v1-5-pruned)"
    assert rows["a1111.png"]["png_text_format"] == "automatic1111"
    assert "bad CRC" in rows["bad.png"]["metadata_errors"]
    r = run_cli(["provenance", folder, "-q"])
    assert r.exit_code == 0 and "Stable Diffusion (model: v1-5-pruned)" in r.stdout
    assert "trainedAlgorithmicMedia" in r.stdout and "skipped" in r.stdout
    out = tmp / "prov.jsonl"
    r = run_cli(["provenance", folder, "-o", out, "-q"])  # format from the suffix
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads(out.read_text().splitlines()[0])["type"] == "manifest"


def test_provenance_exit_codes(folder, tmp):
    r = run_cli(["provenance", folder / "a1111.png", tmp / "missing.png", "-f", "json", "-q"])
    assert r.exit_code == 1
    failed = [x for x in json.loads(r.stdout)["results"] if x["status"] == "error"]
    assert failed and "no such file" in failed[0]["error"]
    assert run_cli(["provenance", tmp / "missing.png", "-q"]).exit_code == 2
    assert run_cli(["provenance", folder / "notes.txt", "-q"]).exit_code == 2  # not an image
    assert run_cli(["provenance", folder, "-f", "html"]).exit_code == 2
    # nothing found is why the exit is 2: said under -q too (it printed nothing)
    (tmp / "empty").mkdir()
    r = run_cli(["provenance", tmp / "empty", "-q", "-f", "json"])
    assert r.exit_code == 2 and "no images found" in r.stderr
    assert run_cli(["provenance", folder, "--trust-anchors", folder / "notes.txt"]).exit_code == 2


@pytest.fixture
def gallery(tmp) -> Path:
    for gen in GENS:
        write_generator_images(tmp / "refs" / gen, gen, n=5, size=64, seed=0)
        args = ["gallery", "add", gen, tmp / "refs" / gen, "-g", tmp / "gallery"]
        r = run_cli([*args, "-b", "spectrum", "-q"])
        assert r.exit_code == 0, r.output
    return tmp / "gallery"


def test_attribute_results_carry_provenance(gallery, tmp, pf):
    """Queries of each fake generator: #0 claims its own generator, #1 another, #2 nothing;
    the pixels are untouched (chunks inserted), so the fingerprint decides as before."""
    q = tmp / "queries"
    for i, gen in enumerate(GENS):
        for k, path in enumerate(write_generator_images(q, gen, n=3, seed=100, prefix=f"{gen}_")):
            claim = {0: gen, 1: GENS[(i + 1) % 3]}.get(k)
            if claim:
                params = pf.A1111.replace("Model: v1-5-pruned", f"Model: {claim}-v1")
                path.write_bytes(
                    pf.insert_chunks(path.read_bytes(), pf.text_chunk("parameters", params))
                )
    base = ["attribute", q, "-g", gallery, "-b", "spectrum", "-q"]
    r = run_cli([*base, "-f", "json"])
    assert r.exit_code == 0, r.output
    results = json.loads(r.stdout)["results"]
    seen = set()
    for res in results:
        prov = res["provenance"]
        assert {
            "claimed_generator",
            "c2pa",
            "png_text",
            "agrees_with_fingerprint",
            "summary",
        } <= set(prov)
        claim, decision = prov["claimed_generator"], res["decision"]
        if claim is None or decision not in GENS:
            assert prov["agrees_with_fingerprint"] is None, res["path"]
            continue
        assert prov["agrees_with_fingerprint"] == (f"model: {decision}-v1" in claim), res["path"]
        seen.add(prov["agrees_with_fingerprint"])
        if prov["agrees_with_fingerprint"] is False:
            assert "DISAGREE" in prov["summary"] and decision in prov["summary"]
    assert seen == {True, False}  # both cases met
    rows = list(csv.DictReader(io.StringIO(run_cli([*base, "-f", "csv"]).stdout)))
    assert {"provenance_claimed_generator", "provenance_source_type", "provenance_agrees"} <= set(
        rows[0]
    )
    assert {row["provenance_agrees"] for row in rows} >= {"true", "false", ""}
    assert list(rows[0])[-2:] == ["error", "path_bytes_hex"]
    lines = run_cli([*base, "-f", "jsonl"]).stdout.splitlines()
    assert all("provenance" in json.loads(x) for x in lines[1:-1])
    table = run_cli([*base, "-f", "table"]).stdout
    assert "metadata: Stable Diffusion" in table and "DISAGREES with fingerprint" in table


def test_csv_keeps_the_provenance_columns_when_no_result_comes(gallery, tmp):
    # break-it finding: the columns followed the first result, so a run with no result
    # (an empty folder) wrote a header without them: two schemas for one command
    empty = tmp / "empty"
    empty.mkdir()
    r = run_cli(["attribute", empty, "-g", gallery, "-f", "csv"])
    header = next(csv.reader(io.StringIO(r.stdout)))
    assert {"provenance_claimed_generator", "provenance_source_type", "provenance_agrees"} <= set(
        header
    )
    assert header[-2:] == ["error", "path_bytes_hex"]


def test_csv_shows_metadata_control_characters_as_escapes(tmp):
    # break-it finding: an EXIF Software field holding an escape sequence reached the
    # analyst's terminal raw through `provenance -f csv`; metadata is display text
    from PIL import Image

    exif = Image.Exif()
    exif[305] = "evil\x1b[2J\x1b]0;owned\x07"
    d = tmp / "esc"
    d.mkdir()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(d / "e.png", exif=exif.tobytes())
    r = run_cli(["provenance", d, "-f", "csv", "-q"])
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    (row,) = list(csv.DictReader(io.StringIO(r.stdout)))
    assert row["exif_software"] == "evil\\x1b[2J\\x1b]0;owned\\x07"


def test_csv_to_a_terminal_escapes_every_text_field():
    # to a file or a pipe a path stays exact (it must read back as the file's name); to
    # a terminal a crafted file name must not run as an escape sequence
    from fpattr.report.csvfmt import RowWriter

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        RowWriter(stream).writerow(["a\x1b[31m.png", 0.5, None])
    assert tty.getvalue() == "a\\x1b[31m.png,0.5,\n"
    assert pipe.getvalue() == "a\x1b[31m.png,0.5,\n"


def test_output_onto_an_input_is_refused_and_the_input_kept(folder):
    # break-it finding: `provenance IMG -o IMG` replaced the image by a CSV header, and with
    # a folder input the image was skipped as "the run's own output" and overwritten
    img = folder / "plain.png"
    before = img.read_bytes()
    for args in ([img, "-o", img, "-f", "csv"], [folder, "-o", img, "-f", "json"]):
        r = run_cli(["provenance", *args, "-q"])
        assert r.exit_code == 2 and "one of the inputs" in r.output, r.output
        assert img.read_bytes() == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_full_disk_is_a_write_error_not_an_internal_one(folder):
    r = run_cli(["provenance", folder, "-q", "-o", "/dev/full", "-f", "csv"])
    assert r.exit_code == 74 and "cannot write results to /dev/full" in r.output, r.output
