"""Regressions from a QA pass on provenance: C2PA presence, special files, hostile text
chunks, verify, conflicting claims, ComfyUI shape, messages and the table's metadata line.
Every file is built here."""

from __future__ import annotations

import io
import json
import os
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fpattr.io.loader import load_image
from fpattr.io.walk import NOT_REGULAR, iter_inputs
from fpattr.provenance import c2pa_check, containers, read_provenance, with_decision
from fpattr.provenance.batch import Counts, provenance_rows
from fpattr.report.table import TableWriter
from fpattr.testing import run_cli, write_generator_images

DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _exif_png(pf: Any, software: str, *chunks: bytes) -> bytes:
    exif = Image.Exif()
    exif[305] = software
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, "PNG", exif=exif)
    return pf.insert_chunks(buf.getvalue(), *chunks)


def _rows(paths: list[Path], **kw: Any) -> tuple[list[dict], Counts]:
    counts = Counts()
    return list(provenance_rows(paths, counts, **kw)), counts


# -- 1. C2PA presence is a container found, never a parse error -------------------------------


def _damaged_pngs(d: Path, pf: Any) -> dict[str, Path]:
    png = pf.write_png(d / "full.png", pf.text_chunk("parameters", pf.A1111)).read_bytes()
    files = {
        "truncated": png[: len(png) - 40],
        "header_only": png[:20],
        # a tEXt chunk claiming 0x7fff0000 bytes in a file of a few dozen
        "liar": png[:33] + b"\x7f\xff\x00\x00tEXtab\x00cd",
    }
    out = {}
    for name, data in files.items():
        (d / f"{name}.png").write_bytes(data)
        out[name] = d / f"{name}.png"
    return out


def test_damaged_png_without_manifest_has_no_c2pa(tmp, pf, monkeypatch):
    pytest.importorskip("c2pa")
    files = _damaged_pngs(tmp, pf)
    for name, path in files.items():
        rec = read_provenance(path)
        assert rec["c2pa"] is None, name
        assert any(e.startswith("PNG:") for e in rec["errors"]), (name, rec["errors"])
        assert not any("manifest" in e for e in rec["errors"]), (name, rec["errors"])
    rows, counts = _rows(list(files.values()))
    assert counts.n_c2pa == 0 and {r["status"] for r in rows} == {"ok"}
    # a real (if broken) caBX container is still "present"
    fake = pf.write_png(tmp / "cabx.png", pf.chunk(b"caBX", b"\x00" * 40))
    c2 = read_provenance(fake)["c2pa"]
    assert c2 is not None and c2["present"] is True and c2["checked"] is True
    assert _rows([fake])[1].n_c2pa == 1


def test_jpeg_app11_that_is_not_jumbf_is_not_c2pa(tmp):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG")
    data = buf.getvalue()
    seg = b"\xff\xeb\x00\x0aJP\x00\x01abcd"  # an APP11 JPEG XT box, no JUMBF store
    (tmp / "x.jpg").write_bytes(data[:2] + seg + data[2:])
    with open(tmp / "x.jpg", "rb") as f:
        assert containers.read_jpeg(f).c2pa_hint is False
    assert containers.is_c2pa_jumbf(
        b"JP\x00\x01\x00\x00\x00\x01\x00\x00\x01\x00jumb"
        + b"\x00" * 4
        + b"jumd"
        + b"\x00" * 17
        + b"c2pa\x00"
    )


# -- 3. named special files are refused, never opened --------------------------------------------


def _unblock_after(path: Path, seconds: float) -> threading.Timer:
    """If a reader blocks on the FIFO, open its write end so the test ends (and fails)."""

    def open_writer() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass

    t = threading.Timer(seconds, open_writer)
    t.start()
    return t


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_and_pipe_are_refused_by_provenance(tmp):
    fifo = tmp / "p.png"
    os.mkfifo(fifo)
    timer = _unblock_after(fifo, 10)
    try:
        assert [i.error for i in iter_inputs([fifo])] == [NOT_REGULAR]
        rec = read_provenance(fifo)
        assert rec["read_error"] == NOT_REGULAR
        assert with_decision(rec, None)["summary"] == f"metadata not read: {NOT_REGULAR}"
        r, w = os.pipe()  # what <(cat file.png) hands a command: /dev/fd/N, a pipe
        try:
            os.write(w, b"\x89PNG\r\n\x1a\n")
            rows, counts = _rows([fifo, Path(f"/dev/fd/{r}")])
        finally:
            os.close(r)
            os.close(w)
        assert [(x["status"], x["error"]) for x in rows] == [("error", NOT_REGULAR)] * 2
        assert counts.n_ok == 0
    finally:
        timer.cancel()


@pytest.fixture
def gallery(tmp) -> Path:
    for gen in ("nearest", "checker"):
        write_generator_images(tmp / "refs" / gen, gen, n=4, size=64, seed=0)
        args = ["gallery", "add", gen, tmp / "refs" / gen, "-g", tmp / "gallery"]
        r = run_cli([*args, "-b", "spectrum", "-q"])
        assert r.exit_code == 0, r.output
    return tmp / "gallery"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_by_attribute(gallery, tmp):
    fifo = tmp / "q.png"
    os.mkfifo(fifo)
    good = write_generator_images(tmp / "q", "nearest", n=1, size=64, seed=5)[0]
    timer = _unblock_after(fifo, 20)
    try:
        r = run_cli(["attribute", fifo, good, "-g", gallery, "-b", "spectrum", "-f", "json", "-q"])
    finally:
        timer.cancel()
    assert r.exit_code == 1, r.output
    res = {Path(x["path"]).name: x for x in json.loads(r.stdout)["results"]}
    assert res["q.png"]["status"] == "error" and res["q.png"]["error"] == NOT_REGULAR
    assert res["q.png"]["provenance"]["read_error"] == NOT_REGULAR
    assert res[good.name]["status"] == "ok"


# -- 4. a hostile text chunk does not change the pixels' fate -------------------------------------


def test_ztxt_bomb_does_not_stop_pixel_decoding(tmp, pf):
    bomb = zlib.compress(b"\x00" * (2 << 20), 9)  # 2 MiB inflated, ~2 KB stored
    assert len(bomb) < 8000
    plain = pf.png_bytes()
    (tmp / "plain.png").write_bytes(plain)
    pf.write_png(tmp / "bomb.png", pf.chunk(b"zTXt", b"Comment\x00\x00" + bomb))
    pf.write_png(tmp / "bomb_itxt.png", pf.chunk(b"iTXt", b"Comment\x00\x01\x00en\x00\x00" + bomb))
    for name in ("bomb.png", "bomb_itxt.png"):
        im = load_image(tmp / name)  # Pillow's MAX_TEXT_CHUNK is 1 MiB: it raised here
        assert (im.pixels == load_image(tmp / "plain.png").pixels).all()
        assert im.sha256 != load_image(tmp / "plain.png").sha256  # the file's own digest
        errors = read_provenance(tmp / name)["errors"]
        assert any("inflates beyond" in e for e in errors), errors


def test_text_chunk_limits_lowered_still_decode(tmp, pf, monkeypatch):
    from PIL import PngImagePlugin

    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", 64)
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_MEMORY", 64)
    path = pf.write_png(tmp / "t.png", pf.text_chunk("parameters", pf.A1111, "zTXt"))
    assert load_image(path).pixels.shape == (16, 16, 3)
    assert read_provenance(path)["claimed_generator"] == "Stable Diffusion (model: v1-5-pruned)"


# -- 5. verify carries each side's provenance ------------------------------------------------------


def test_verify_has_provenance_per_side(tmp, pf):
    a, b = write_generator_images(tmp / "v", "nearest", n=2, size=64, seed=3)
    params = pf.A1111.replace("Model: v1-5-pruned", "Model: nearest-v1")
    a.write_bytes(pf.insert_chunks(a.read_bytes(), pf.text_chunk("parameters", params)))
    base = ["verify", a, b, "-b", "spectrum", "--threshold", "0.5", "-q"]
    r = run_cli([*base, "-f", "json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["results"][0]
    pa, pb = res["provenance_a"], res["provenance_b"]
    assert pa["claimed_generator"] == "Stable Diffusion (model: nearest-v1)"
    assert pb["claimed_generator"] is None and "summary" in pb
    assert pa["agrees_with_fingerprint"] is None  # a verify decision names no model
    r = run_cli([*base, "-f", "json"][:2] + [tmp / "v", *base[3:], "-f", "json"])
    assert json.loads(r.stdout)["results"][0]["provenance_b"] is None  # a folder side
    table = run_cli([*base, "-f", "table"], env={"COLUMNS": "160"}).stdout
    assert "A metadata: Stable Diffusion (model: nearest-v1)" in table


# -- 6. conflicting claims, camera claims, what matched ------------------------------------------


def test_every_claim_is_listed_and_conflicts_flagged(tmp, pf):
    path = tmp / "c.png"
    path.write_bytes(_exif_png(pf, "Adobe Firefly", pf.text_chunk("parameters", pf.A1111)))
    rec = read_provenance(path)
    assert rec["claimed_generator"] == "Stable Diffusion (model: v1-5-pruned)"
    assert rec["claims"] == [
        "Stable Diffusion (model: v1-5-pruned)",
        "Adobe Firefly (EXIF Software)",
    ]
    assert rec["claims_disagree"] is True
    summary = with_decision(rec, None)["summary"]
    assert "metadata sources disagree (also: Adobe Firefly (EXIF Software))" in summary
    # the same generator written twice is not a conflict
    path.write_bytes(_exif_png(pf, "Stable Diffusion", pf.text_chunk("parameters", pf.A1111)))
    rec = read_provenance(path)
    assert len(rec["claims"]) == 2 and rec["claims_disagree"] is False


def test_camera_source_type_disagrees_with_a_named_model(tmp, pf):
    xmp = pf.xmp_packet(
        '<rdf:Description xmlns:I="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        f' I:DigitalSourceType="{DST}digitalCapture"/>'
    )
    path = pf.write_png(tmp / "cam.png", pf.text_chunk("XML:com.adobe.xmp", xmp.decode(), "iTXt"))
    rec = read_provenance(path)
    assert rec["claimed_generator"] is None
    out = with_decision(rec, "stylegan2-ffhq")
    assert out["agrees_with_fingerprint"] is False
    assert "claims to be a camera capture (digital capture (camera))" in out["summary"]
    assert "DISAGREE" in out["summary"]
    assert with_decision(rec, "unknown")["agrees_with_fingerprint"] is None
    # beside a generator claim naming the model too: self-contradicting metadata
    # corroborates nothing (break-it 28: it read as agreeing)
    both = {**rec, "claimed_generator": "ComfyUI (model: stylegan2-ffhq)"}
    out = with_decision(both, "stylegan2-ffhq")
    assert out["agrees_with_fingerprint"] is False and out["agreement"]["agrees"] is False
    assert out["agreement"]["capture_conflict"] and out["agreement"]["matched"] == ["model name"]
    assert "the metadata contradicts itself" in out["summary"]


def test_agreement_says_what_matched():
    def rec(claim: str) -> dict:
        return {"claimed_generator": claim, "errors": [], "claims": [claim]}

    out = with_decision(rec("Stable Diffusion (model: stylegan2-ffhq)"), "stylegan2-ffhq")
    assert out["agrees_with_fingerprint"] is False
    assert out["agreement"] == {
        "model_name": True,
        "family": False,
        "matched": ["model name"],
        "other_model": None,
        "agrees": False,
    }
    assert "claimed generator family (Stable Diffusion) is another" in out["summary"]
    out = with_decision(rec("Stable Diffusion (model: nearest-v1)"), "nearest")
    assert out["agrees_with_fingerprint"] is True and out["agreement"]["matched"] == ["model name"]
    assert "they agree on the model name" in out["summary"]
    out = with_decision(rec("DALL\u00b7E 3 (C2PA)"), "dall-e-3")
    assert out["agreement"]["matched"] == ["generator family"]
    assert with_decision(rec("DALL\u00b7E 3 (C2PA)"), "stylegan2-ffhq")["agreement"] == {
        "model_name": None,
        "family": False,
        "matched": [],
        "other_model": None,
        "agrees": False,
    }


@pytest.mark.parametrize(
    ("claim", "model", "agrees"),
    [
        # break-it pass: false conflicts (ComfyUI counted as a family; SDXL and Stable
        # Diffusion as two families; flux1-dev did not name flux-dev)
        ("ComfyUI (model: sd_xl_base_1.0.safetensors)", "sdxl-base", True),
        ("Stable Diffusion (model: sd_xl_turbo_1.0_fp16)", "sdxl-turbo", True),
        ("ComfyUI (model: flux1-dev.safetensors)", "flux-dev", True),
        ("Stable Diffusion", "sdxl-turbo", True),  # the same family line
        # and what must stay a disagreement
        ("ComfyUI (model: flux1-schnell.safetensors)", "flux-dev", False),
        ("Stable Diffusion (model: v1-5-pruned)", "sdxl-turbo", False),  # another checkpoint
        ("Stable Diffusion (model: stylegan2-ffhq)", "stylegan2-ffhq", False),
        ("DALL\u00b7E 3 (C2PA)", "stylegan2-ffhq", False),
    ],
)
def test_agreement_of_front_ends_family_lines_and_checkpoint_names(claim, model, agrees):
    out = with_decision({"claimed_generator": claim, "errors": [], "claims": [claim]}, model)
    assert out["agrees_with_fingerprint"] is agrees, out["agreement"]
    if not agrees and out["agreement"]["model_name"] is False:
        assert "the metadata names another model" in out["summary"]


@pytest.mark.parametrize(
    ("claim", "model", "enrolled", "agrees", "other"),
    [
        # break-it: names were matched as substrings: `checker` "agreed" with a claim of
        # `checker2` (both enrolled), `sdxl` with `sdxl-turbo`
        (
            "Stable Diffusion (model: checker2)",
            "checker",
            ("checker", "checker2"),
            False,
            "checker2",
        ),
        ("Stable Diffusion (model: checker2)", "checker", ("checker",), False, None),
        ("Stable Diffusion (model: checker2)", "checker2", ("checker", "checker2"), True, None),
        ("Stable Diffusion (model: stylegan2)", "stylegan", (), False, None),
        (
            "Stable Diffusion (model: sdxl-turbo)",
            "sdxl",
            ("sdxl", "sdxl-turbo"),
            False,
            "sdxl-turbo",
        ),
        (
            "ComfyUI (model: sd_xl_turbo_1.0_fp16)",
            "sdxl",
            ("sdxl", "sdxl-turbo"),
            False,
            "sdxl-turbo",
        ),
        ("ComfyUI (model: sd_xl_turbo_1.0_fp16)", "sdxl-turbo", ("sdxl", "sdxl-turbo"), True, None),
        ("ComfyUI (model: sd_xl_base_1.0)", "sdxl", ("sdxl", "sdxl-turbo"), True, None),
        (
            "ComfyUI (model: flux1-dev.safetensors)",
            "flux-dev",
            ("flux-dev", "flux1-dev"),
            False,
            "flux1-dev",
        ),
        ("ComfyUI (model: a.ckpt, SDXL_Turbo.safetensors)", "sdxl-turbo", ("sdxl",), True, None),
        ("Stable Diffusion (model: Checker-V2)", "checker", ("checker", "checker2"), True, None),
        # a claim without a model field: its family text names the model
        ("DALL\u00b7E 3 (C2PA)", "dall-e-3", ("dall-e-2", "dall-e-3"), True, None),
        ("DALL\u00b7E 3 (C2PA)", "dall-e-2", ("dall-e-2", "dall-e-3"), False, "dall-e-3"),
        ("DALL\u00b7E 3 (C2PA)", "dall-e", ("dall-e", "dall-e-3"), False, "dall-e-3"),
        # a claim naming two enrolled models agrees with neither (break-it 28: it agreed
        # with whichever the fingerprint picked)
        ("Stable Diffusion (model: bilinear-nearest)", "nearest", ("bilinear",), False, "bilinear"),
        ("Stable Diffusion (model: bilinear-nearest)", "bilinear", ("nearest",), False, "nearest"),
        ("ComfyUI (model: nearest_and_checker)", "checker", ("nearest",), False, "nearest"),
        ("ComfyUI (model: a.ckpt, nearest.ckpt)", "nearest", ("a",), False, "a"),
        # every run counts, in either order (review 28: only the first was read)
        ("ComfyUI (model: sdxl-turbo + sdxl refiner)", "sdxl-turbo", ("sdxl",), False, "sdxl"),
        ("ComfyUI (model: sdxl refiner + sdxl-turbo)", "sdxl-turbo", ("sdxl",), False, "sdxl"),
    ],
)
def test_a_claim_naming_another_enrolled_model_never_agrees(claim, model, enrolled, agrees, other):
    rec = {"claimed_generator": claim, "errors": [], "claims": [claim]}
    out = with_decision(rec, model, [model, *enrolled])
    assert out["agrees_with_fingerprint"] is agrees, out["agreement"]
    assert out["agreement"]["other_model"] == other
    if other:
        assert f"names another enrolled model ({other}): they DISAGREE" in out["summary"]


def test_attribute_tells_the_enrolled_models_apart_in_the_claim(tmp):
    # end to end: the gallery's names reach the comparison (checker's image claiming the
    # enrolled `nearest`, and `checker2`, enrolled or not, never agree with `checker`)
    refs, q = tmp / "refs", tmp / "q"
    for gen in ("nearest", "checker"):
        write_generator_images(refs / gen, gen, n=5, size=64, seed=0)
        args = ["gallery", "add", gen, refs / gen, "-g", tmp / "g", "-b", "spectrum", "-q"]
        assert run_cli(args).exit_code == 0
    from PIL import PngImagePlugin

    (src,) = write_generator_images(tmp / "src", "checker", n=1, size=64, seed=100)
    q.mkdir()
    for claim in ("checker2", "nearest", "checker-v1"):
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", f"a cat\nSteps: 20, Seed: 1, Model: {claim}")
        Image.open(src).save(q / f"{claim}.png", pnginfo=info)
    r = run_cli(["attribute", q, "-g", tmp / "g", "-b", "spectrum", "-q", "-f", "json"])
    rows = {Path(x["path"]).stem: x for x in json.loads(r.stdout)["results"]}
    assert {rows[c]["decision"] for c in ("checker2", "nearest", "checker-v1")} == {"checker"}
    got = {c: row["provenance"]["agrees_with_fingerprint"] for c, row in rows.items()}
    assert got == {"checker2": False, "nearest": False, "checker-v1": True}
    assert rows["nearest"]["provenance"]["agreement"]["other_model"] == "nearest"


# -- 7. ComfyUI needs the node-graph shape ----------------------------------------------------


@pytest.mark.parametrize("value", ["[1, 2, 3]", '{"a": {"x": 1}}', '"text"', "{}"])
def test_comfy_json_without_nodes_is_no_claim(tmp, pf, value):
    rec = read_provenance(pf.write_png(tmp / "c.png", pf.text_chunk("prompt", value)))
    assert rec["claimed_generator"] is None and rec["claims"] == []
    assert rec["png_text"]["raw"] == {"prompt": value} and rec["png_text"]["format"] is None
    assert any("not a ComfyUI node graph" in n for n in rec["notes"])


def test_comfy_node_graph_is_a_claim(tmp, pf):
    graph = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.ckpt"}}}
    rec = read_provenance(pf.write_png(tmp / "c.png", pf.text_chunk("prompt", json.dumps(graph))))
    assert rec["claimed_generator"] == "ComfyUI (model: m.ckpt)"


# -- 8. rich markup in stderr notes ---------------------------------------------------------------


def test_not_checked_note_keeps_its_brackets(tmp, pf, monkeypatch):
    monkeypatch.setattr(c2pa_check, "available", lambda: False)
    (tmp / "p.png").write_bytes(pf.png_bytes())
    r = run_cli(["provenance", tmp / "p.png", "-f", "json"])
    assert "install fpattr[provenance]" in r.stderr


# -- 9. messages ----------------------------------------------------------------------------------


def test_output_suffix_message_lists_only_provenance_formats(tmp, pf):
    (tmp / "p.png").write_bytes(pf.png_bytes())
    for name in ("out.xyz", "out.html"):
        r = run_cli(["provenance", tmp / "p.png", "-o", tmp / name])
        assert r.exit_code == 2
        listed = r.output.split("use one of", 1)[1]
        assert ".json" in listed and ".html" not in listed


def test_total_cap_is_one_error_with_a_count(tmp, pf):
    big = "x" * 900_000
    chunks = [pf.text_chunk(f"k{i}", big) for i in range(12)]  # 10.8 MB of text, 8 MiB cap
    rec = read_provenance(pf.write_png(tmp / "many.png", *chunks))
    over = [e for e in rec["errors"] if "in all" in e]
    assert over == ["metadata over 8388608 bytes in all: 3 block(s) not read"]


def test_unread_inputs_say_why(tmp):
    from fpattr.session import _provenance

    out = _provenance(tmp / "missing.png", None, "no such file or directory")
    assert out["summary"].startswith("metadata not read: cannot read the file")
    out = _provenance(tmp / ".hidden.png", None, "skipped: hidden", skipped=True)
    assert out["summary"] == "metadata not read: input skipped (skipped: hidden)"
    (tmp / "t.txt").write_text("hello")
    out = with_decision(read_provenance(tmp / "t.txt"), None)
    assert out["summary"] == "metadata not read: not an image format whose metadata fpattr reads"


# -- 10. the table's metadata line is full width --------------------------------------------------


def test_attribute_table_metadata_line_is_full_width():
    prov = {
        "claimed_generator": "Stable Diffusion (model: v1-5-pruned-emaonly)",
        "c2pa": None,
        "agrees_with_fingerprint": False,
    }
    rows = [
        {"path": "a.png", "status": "ok", "decision": "nearest", "probability": 0.9,
         "top": [{"model": "nearest", "similarity": 0.8, "probability": 0.9}],
         "provenance": prov},
        {"path": "b.png", "status": "ok", "decision": "checker", "probability": 0.8,
         "top": [{"model": "checker", "similarity": 0.7, "probability": 0.8}],
         "provenance": {"claimed_generator": None, "c2pa": None}},
    ]  # fmt: skip
    for width in (200, 100):
        out = io.StringIO()
        w = TableWriter(out, {"command": "attribute"}, width=width, color=False)
        for r in rows:
            w.write(r)
        w.close({"n_inputs": 2, "n_ok": 2})
        text = out.getvalue()
        line = (
            "\u21b3 metadata: Stable Diffusion (model: v1-5-pruned-emaonly) \u2014 "
            "DISAGREES with fingerprint"
        )
        assert line in text, text
        lines = text.splitlines()
        a = next(i for i, x in enumerate(lines) if x.lstrip().startswith("a.png"))
        b = next(i for i, x in enumerate(lines) if x.lstrip().startswith("b.png"))
        assert a < next(i for i, x in enumerate(lines) if line in x) < b
        # the rows after the line keep the columns of the rows before it
        assert lines[a].index("nearest") == lines[b].index("checker")
