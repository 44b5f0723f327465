"""The inference loop's defaults (issue 12 item 5): the thread split an ONNX backbone gets,
the lanes the Embedder runs, and that overlapping decode, inference and the caller's work
changes no result. No timings here: the figures are in docs/performance.md."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from fpattr._testing_onnx import write_tiny_onnx_model  # noqa: E402
from fpattr.backbones.onnx import OnnxBackbone, default_model_available  # noqa: E402
from fpattr.backbones.spectrum import SpectrumBackbone  # noqa: E402
from fpattr.cli.common import load_backbone  # noqa: E402
from fpattr.pipeline import (  # noqa: E402
    ONNX_THREADS,
    Embedder,
    Settings,
    decode_workers,
    inference_lanes,
)
from fpattr.testing import write_generator_images  # noqa: E402
from fpattr.views import ViewBatcher  # noqa: E402


@pytest.fixture
def card(tmp_path: Path) -> Path:
    return write_tiny_onnx_model(tmp_path / "model", size=32, dim=16)


def test_onnx_default_is_one_thread_per_lane_one_lane_per_core(card: Path) -> None:
    assert ONNX_THREADS == 1
    bb = load_backbone("onnx", [f"model={card}"])
    assert bb.threads == ONNX_THREADS
    for cpus in (1, 2, 16):
        assert inference_lanes(bb, cpus=cpus) == cpus


def test_cpu_batches_are_cpu_batch_views_unless_asked(card: Path) -> None:
    # a 64-view batch spills out of a core's cache: 16 ran 7-20 % faster on 2 cores
    import json

    from fpattr.backbones.onnx import CPU_BATCH_VIEWS

    assert CPU_BATCH_VIEWS == 16
    doc = json.loads(card.read_text())
    for card_batch, want in ((64, 16), (8, 8)):  # never above the card's own batch
        card.write_text(json.dumps({**doc, "batch_size": card_batch}))
        assert OnnxBackbone(card).batch_size == want
    assert OnnxBackbone(card, batch_size=64).batch_size == 64  # --batch-size wins
    assert Embedder(OnnxBackbone(card), Settings(batch_size=5)).batch_views == 5


def test_threads_override_keeps_lanes_to_the_cores(card: Path) -> None:
    bb = load_backbone("onnx", [f"model={card}", "threads=2"])
    assert bb.threads == 2
    assert [inference_lanes(bb, cpus=c) for c in (1, 2, 3, 16)] == [1, 1, 1, 8]
    # ORT's own default (0: every core) runs one batch at a time
    assert inference_lanes(OnnxBackbone(card, threads=0), cpus=16) == 1


def test_decoding_threads_one_per_four_cpus() -> None:
    assert [decode_workers(c) for c in (1, 2, 3, 4, 8, 16)] == [1, 1, 1, 1, 2, 4]
    assert Settings().workers is None  # resolved per machine, unless --workers is given


def test_cpus_follow_the_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    # break-it pass: under `taskset -c 0` on a 2-core box the defaults counted 2 CPUs
    import os

    from fpattr import pipeline

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(5)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert pipeline.available_cpus() == 5
    assert pipeline.decode_workers() == 1
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # no affinity API
    assert pipeline.available_cpus() == 64 and pipeline.decode_workers() == 16


def test_embedder_runs_the_default_decoding_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fpattr import pipeline

    seen: list[int] = []
    real = pipeline.iter_loaded

    def spy(items, *, workers, **kw):  # type: ignore[no-untyped-def]
        seen.append(workers)
        return real(items, workers=workers, **kw)

    monkeypatch.setattr(pipeline, "iter_loaded", spy)
    monkeypatch.setattr(pipeline, "PROCESS_CPUS", 8)
    folder = _folder(tmp_path)
    for s in (Settings(), Settings(workers=3)):
        got = {Path(e.path).name: e for e in Embedder(SpectrumBackbone(), s).embed_paths([folder])}
        assert got["c_broken.png"].error and got["b000.png"].embedding is not None
    assert seen == [2, 3]


def test_other_backbones_run_one_lane() -> None:
    assert inference_lanes(SpectrumBackbone(), cpus=16) == 1


@pytest.mark.skipif(not default_model_available(), reason="shipped extractor not installed")
def test_session_open_gets_the_cli_default() -> None:
    from fpattr.session import Session

    assert Session.open("default").backbone.threads == ONNX_THREADS
    assert Session.open("default", threads=2).backbone.threads == 2


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    write_generator_images(d, "checker", n=9, size=48, seed=3)
    write_generator_images(d, "nearest", n=4, size=80, seed=4, prefix="b")
    (d / "c_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.new("RGB", (40, 40), (9, 9, 9)).save(d / "c_flat.png")  # every view flat
    (d / "notes.txt").write_text("not an image")  # skipped in a folder
    return d


def _sequential(bb: OnnxBackbone, paths: list[str]) -> dict[str, np.ndarray]:
    """Each image embedded alone, no threads: what the loop must reproduce."""
    from fpattr.io.loader import load_image

    out = {}
    for p in paths:
        b = ViewBatcher(bb)
        b.add(0, load_image(p).pixels)
        b.flush()
        emb, _ = b.pop(0)
        if emb is not None:
            out[p] = emb
    return out


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_overlapped_loop_keeps_order_and_results(card: Path, tmp_path: Path, batch_size) -> None:
    bb = OnnxBackbone(card, threads=1)
    folder = _folder(tmp_path)
    settings = Settings(batch_size=batch_size, workers=2)
    got = list(Embedder(bb, settings, include_skipped=True).embed_paths([folder]))
    assert [Path(e.path).name for e in got] == sorted(p.name for p in folder.iterdir())
    status = {Path(e.path).name: ("skipped" if e.skipped else e.error) for e in got}
    assert status["notes.txt"] == "skipped" and status["c_broken.png"]
    ok = [e for e in got if e.embedding is not None and not e.error]
    assert len(ok) == 14 and all(e.image is not None and e.image.pixels is None for e in ok)
    ref = _sequential(bb, [e.path for e in ok])
    for e in ok:
        np.testing.assert_allclose(e.embedding, ref[e.path], atol=1e-5)


def test_metadata_is_read_in_the_decode_threads(card: Path, tmp_path: Path) -> None:
    seen: list[str] = []

    def meta(path: str) -> dict:
        seen.append(threading.current_thread().name)
        if path.endswith("003.png"):
            raise RuntimeError("a reader bug")
        return {"path": path}

    folder = _folder(tmp_path)
    got = list(
        Embedder(OnnxBackbone(card), Settings(workers=2), metadata=meta).embed_paths([folder])
    )
    decoded = [e for e in got if e.image is not None]
    assert seen and all(name.startswith("fpattr-load") for name in seen)
    for e in decoded:
        assert e.metadata == (None if e.path.endswith("003.png") else {"path": e.path})
    assert all(e.metadata is None for e in got if e.image is None)  # not decoded: not read


def test_closing_early_leaves_no_thread(card: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    gen = Embedder(OnnxBackbone(card), Settings(batch_size=1)).embed_paths([folder])
    next(gen)
    gen.close()
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith(("fpattr-infer", "fpattr-load"))]


def test_attribute_provenance_equals_reading_after_the_decision(card: Path, tmp_path) -> None:
    """Provenance is read beside the decode now; the record is the one a read after the
    decision gives, for decoded, failed and skipped inputs alike."""
    from fpattr.gallery import Gallery
    from fpattr.provenance import read_provenance, with_decision
    from fpattr.session import Session

    bb = OnnxBackbone(card)
    refs = tmp_path / "refs"
    write_generator_images(refs, "checker", n=3, size=64, seed=1)
    s = Session(bb)
    embs, refs_info, _ = s.embed_references([refs])
    g = Gallery(backbone=bb.info())
    g.add("m", embs, refs_info)
    results = list(Session(bb, g).attribute([_folder(tmp_path)]))
    assert {r["status"] for r in results} == {"ok", "error", "skipped"}
    for r in results:
        if r["status"] != "skipped":
            want = with_decision(read_provenance(r["path"]), r["decision"])
            assert r["provenance"] == want, r["path"]
        else:
            assert r["provenance"]["read_error"].startswith("input skipped")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_c2pa_skipped_only_where_the_library_finds_nothing(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clean walk with no C2PA block and no XMP does not ask the c2pa library (the
    attribute loop's costliest metadata step); the library says the same of that file."""
    pytest.importorskip("c2pa")
    from fpattr.provenance import c2pa_check, read_provenance

    path = tmp_path / f"x.{fmt.lower()}"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(path, fmt)
    library = c2pa_check.read_c2pa

    def not_asked(*args: object, **kwargs: object) -> None:
        raise AssertionError("the c2pa library was asked")

    monkeypatch.setattr(c2pa_check, "read_c2pa", not_asked)
    rec = read_provenance(path)
    monkeypatch.setattr(c2pa_check, "read_c2pa", library)
    assert rec["c2pa"] is None and "no C2PA manifest" in rec["notes"] and not rec["errors"]
    with open(path, "rb") as f:
        assert c2pa_check.read_c2pa(f, fmt, None, None, container=False) == (None, [], [])


def test_a_process_share_sizes_the_lanes(card: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fpattr import pipeline

    bb = OnnxBackbone(card, threads=1)
    monkeypatch.setattr(pipeline, "PROCESS_CPUS", 1)  # a Ray actor given one CPU
    assert inference_lanes(bb) == 1
    monkeypatch.setattr(pipeline, "PROCESS_CPUS", 3)
    assert inference_lanes(bb) == 3
