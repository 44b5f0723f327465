"""PNG text chunks of generation tools, EXIF, and malformed chunks."""

from __future__ import annotations

import io
import json
import zlib

from PIL import Image

from fpattr.provenance import read_provenance
from fpattr.provenance.containers import MAX_BLOCK_BYTES

KEYS = {
    "claimed_generator",
    "digital_source_type",
    "c2pa",
    "png_text",
    "exif",
    "xmp",
    "claims",
    "claims_disagree",
    "notes",
    "errors",
    "read_error",
}


def test_a1111_parameters_in_text(tmp, pf):
    rec = read_provenance(pf.write_png(tmp / "a.png", pf.text_chunk("parameters", pf.A1111)))
    assert set(rec) == KEYS and rec["errors"] == []
    assert rec["claimed_generator"] == "Stable Diffusion (model: v1-5-pruned)"
    p = rec["png_text"]["parameters"]
    assert rec["png_text"]["format"] == "automatic1111"
    assert p["prompt"] == "a castle on a hill, golden hour"
    assert p["negative_prompt"] == "blurry, lowres"
    assert (p["Steps"], p["Sampler"], p["CFG scale"], p["Seed"]) == ("20", "Euler a", "7", "1234")
    assert (p["Size"], p["Model hash"], p["Model"]) == ("64x64", "6ce0161689", "v1-5-pruned")
    assert p["Lora hashes"] == "a: 1, b: 2"  # a quoted value keeps its commas
    json.dumps(rec)  # JSON-able


def test_itxt_and_ztxt_chunks(tmp, pf):
    for kind in ("zTXt", "iTXt", "iTXt-z"):
        rec = read_provenance(
            pf.write_png(tmp / f"{kind}.png", pf.text_chunk("parameters", pf.A1111, kind))
        )
        assert rec["claimed_generator"] == "Stable Diffusion (model: v1-5-pruned)", kind
        assert rec["errors"] == [], kind
    rec = read_provenance(
        pf.write_png(tmp / "u.png", pf.text_chunk("Title", "caf\u00e9 \u2603", "iTXt"))
    )
    assert (
        rec["png_text"]["raw"]["Title"] == "caf\u00e9 \u2603" and rec["claimed_generator"] is None
    )


CKPT = "sdxl_base.safetensors"
SAMPLER = {"seed": 7, "steps": 25, "cfg": 6.5, "sampler_name": "euler"}


def test_comfyui_prompt_and_workflow(tmp, pf):
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "3": {
            "class_type": "KSampler",
            "inputs": {**SAMPLER, "model": ["4", 0]},
        },
    }
    workflow = {"nodes": [{"type": "UNETLoader", "widgets_values": ["flux1-dev.safetensors"]}]}
    rec = read_provenance(
        pf.write_png(
            tmp / "c.png",
            pf.text_chunk("prompt", json.dumps(prompt)),
            pf.text_chunk("workflow", json.dumps(workflow)),
        )
    )
    assert rec["claimed_generator"] == "ComfyUI (model: sdxl_base.safetensors)"
    assert rec["png_text"]["models"] == ["sdxl_base.safetensors"]
    assert rec["png_text"]["samplers"][0] == {
        "seed": 7,
        "steps": 25,
        "cfg": 6.5,
        "sampler_name": "euler",
    }
    # the UI workflow alone names the model too
    rec = read_provenance(
        pf.write_png(tmp / "w.png", pf.text_chunk("workflow", json.dumps(workflow)))
    )
    assert rec["claimed_generator"] == "ComfyUI (model: flux1-dev.safetensors)"


def test_novelai_and_invokeai(tmp, pf):
    rec = read_provenance(
        pf.write_png(
            tmp / "n.png",
            pf.text_chunk("Software", "NovelAI"),
            pf.text_chunk("Source", "NovelAI Diffusion V4 5BDE8ED2"),
            pf.text_chunk("Comment", json.dumps({"prompt": "a cat", "steps": 28, "seed": 3})),
        )
    )
    assert rec["claimed_generator"] == "NovelAI (NovelAI Diffusion V4 5BDE8ED2)"
    assert rec["png_text"]["parameters"]["prompt"] == "a cat"
    meta = {
        "model": {"name": "juggernaut-xl", "base": "sdxl"},
        "positive_prompt": "a dog",
        "seed": 9,
    }
    rec = read_provenance(
        pf.write_png(tmp / "i.png", pf.text_chunk("invokeai_metadata", json.dumps(meta)))
    )
    assert rec["claimed_generator"] == "InvokeAI (model: juggernaut-xl)"
    assert rec["png_text"]["parameters"]["positive_prompt"] == "a dog"


def test_unknown_keys_kept_raw_and_truncated(tmp, pf):
    rec = read_provenance(
        pf.write_png(tmp / "k.png", pf.text_chunk("Secret", "x" * 50_000, "zTXt"))
    )
    raw = rec["png_text"]["raw"]["Secret"]
    assert raw.startswith("x" * 2000) and "truncated, 50000 chars" in raw and len(raw) < 2100
    assert rec["claimed_generator"] is None and rec["errors"] == []


def test_malformed_chunks_are_errors_not_exceptions(tmp, pf):
    bad_crc = pf.chunk(b"tEXt", b"parameters\x00" + pf.A1111.encode(), bad_crc=True)
    no_key = pf.chunk(b"tEXt", b"no keyword separator")
    bad_zlib = pf.chunk(b"zTXt", b"Comment\x00\x00not zlib at all")
    bomb = pf.chunk(b"zTXt", b"Bomb\x00\x00" + zlib.compress(b"\x00" * (MAX_BLOCK_BYTES * 4)))
    bad_json = pf.text_chunk("prompt", "{not json")
    rec = read_provenance(pf.write_png(tmp / "m.png", bad_crc, no_key, bad_zlib, bomb, bad_json))
    errors = " | ".join(rec["errors"])
    assert "bad CRC" in errors and "no keyword" in errors and "bad compressed text" in errors
    assert "inflates beyond" in errors and "not valid ComfyUI JSON" in errors
    assert rec["claimed_generator"] is None  # the corrupt parameters pf.chunk was not believed
    # a PNG cut in the middle of a pf.chunk still gives a record
    cut = pf.insert_chunks(pf.png_bytes(), pf.text_chunk("parameters", pf.A1111))[:60]
    (tmp / "cut.png").write_bytes(cut)
    rec = read_provenance(tmp / "cut.png")
    assert rec["errors"] and "truncated" in rec["errors"][0]


def test_exif_software_via_pillow(tmp, pf):
    exif = Image.Exif()
    exif[305] = "DALL-E 3"  # Software
    exif[271], exif[272], exif[315] = "ACME", "Cam 1", "Jane Doe"  # Make, Model, Artist
    for fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        path = tmp / f"e.{fmt.lower()}"
        Image.new("RGB", (16, 16), (1, 2, 3)).save(path, fmt, exif=exif.tobytes())
        rec = read_provenance(path)
        assert rec["exif"] == {
            "Software": "DALL-E 3",
            "Make": "ACME",
            "Model": "Cam 1",
            "Artist": "Jane Doe",
        }, fmt
        assert rec["claimed_generator"] == "DALL-E 3 (EXIF Software)", fmt
    # an editor is not a generator claim
    exif[305] = "GIMP 2.10"
    Image.new("RGB", (16, 16)).save(tmp / "g.jpg", exif=exif.tobytes())
    rec = read_provenance(tmp / "g.jpg")
    assert rec["exif"]["Software"] == "GIMP 2.10" and rec["claimed_generator"] is None


def test_a1111_parameters_in_jpeg_user_comment(tmp, pf):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + pf.A1111.encode("utf-16-be")
    Image.new("RGB", (16, 16)).save(tmp / "u.jpg", exif=exif.tobytes())
    rec = read_provenance(tmp / "u.jpg")
    assert rec["claimed_generator"] == "Stable Diffusion (model: v1-5-pruned) (EXIF UserComment)"
    assert rec["exif"]["UserComment"]["parameters"]["Seed"] == "1234"


def test_plain_and_non_image_files(tmp, pf):
    (tmp / "p.png").write_bytes(pf.png_bytes())
    rec = read_provenance(tmp / "p.png")
    assert rec["claimed_generator"] is None and rec["png_text"] is None and rec["errors"] == []
    (tmp / "t.txt").write_text("hello")
    assert "not an image format" in read_provenance(tmp / "t.txt")["notes"][0]
    assert read_provenance(tmp / "missing.png")["errors"][0].startswith("cannot read the file")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "GIF")
    (tmp / "g.gif").write_bytes(buf.getvalue())
    assert any("only C2PA" in n for n in read_provenance(tmp / "g.gif")["notes"])


def test_camera_and_editor_fields_are_not_called_no_metadata(tmp):
    # break-it finding: a file with EXIF Make, Model and Software was described as
    # "no provenance metadata"
    from fpattr.provenance.read import describe

    exif = Image.Exif()
    exif[305], exif[271], exif[272] = "GIMP 2.10", "ACME", "Cam 1"
    Image.new("RGB", (16, 16)).save(tmp / "c.jpg", exif=exif.tobytes())
    line = describe(read_provenance(tmp / "c.jpg"))
    assert (
        line
        == "no generator claimed (EXIF Software 'GIMP 2.10', EXIF Make 'ACME', EXIF Model 'Cam 1')"
    )
    Image.new("RGB", (16, 16)).save(tmp / "bare.png")
    assert describe(read_provenance(tmp / "bare.png")) == "no provenance metadata"
