"""Shared fake run data for the report tests (no pipeline, no models)."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest

EVIL_PATH = "imgs/<script>alert(1)</script>.png"
CSV_PATH = 'imgs/a,b "quoted"\nline2.png'
SHA = "ab" * 32


def tiny_png() -> str:
    """A 2x2 PNG as a data URI, built by hand so the tests need no Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


@pytest.fixture
def manifest() -> dict:
    return {
        "schema": "fpattr.report/1",
        "command": "attribute",
        "tool": {"name": "fpattr", "version": "0.1.0"},
        "python": "3.11.7 (cpython)",
        "platform": "Linux-test",
        "started": "2024-05-01T12:00:00Z",
        "backbone": {"id": "fp-resnet18-v1", "sha256": "cd" * 32},
        "gallery": {"sha256": "ef" * 32, "models": ["sdxl", "midjourney-v6", "flux-dev"]},
        "calibration": {"method": "temperature", "temperature": np.float32(1.5)},
        "settings": {"top_k": 2, "unknown_threshold": 0.5, "views": 4},
        "plugins": [{"name": "fpattr.report.builtin", "version": "0.1.0", "builtin": True}],
    }


@pytest.fixture
def results() -> list[dict]:
    def ok(path: str, top: list[tuple[str, float, float | None]], decision: str) -> dict:
        return {
            "path": path,
            "sha256": SHA,
            "status": "ok",
            "error": None,
            "image": {
                "width": 512,
                "height": 512,
                "format": "PNG",
                "mode": "RGB",
                "conversions": ["RGBA->RGB"],
            },
            "n_views": 4,
            "top": [{"model": m, "similarity": s, "probability": p} for m, s, p in top],
            "decision": decision,
            "thumbnail": tiny_png(),
        }

    return [
        ok(
            "imgs/cat.png",
            [("sdxl", np.float32(0.91), np.float64(0.97)), ("flux-dev", 0.4, 0.02)],
            "sdxl",
        ),
        ok(EVIL_PATH, [("midjourney-v6", 0.3, float("nan")), ("sdxl", 0.2, 0.01)], "unknown"),
        ok(CSV_PATH, [("flux-dev", 0.8, None), ("sdxl", np.float32(0.1), None)], "flux-dev"),
        {
            "path": "imgs/broken.jpg",
            "sha256": None,
            "status": "error",
            "error": "cannot decode image: truncated JPEG <b>",
            "image": None,
            "n_views": 0,
            "top": [],
            "decision": None,
            "thumbnail": None,
        },
    ]


@pytest.fixture
def summary() -> dict:
    return {
        "n_inputs": 4,
        "n_ok": 3,
        "n_failed": 1,
        "decisions": {"sdxl": np.int64(1), "unknown": 1, "flux-dev": 1},
        "as_set": None,
        "seconds": 2.0,
        "images_per_second": 2.0,
        "finished": "2024-05-01T12:00:02Z",
    }


@pytest.fixture
def verify_manifest(manifest: dict) -> dict:
    return {**manifest, "command": "verify"}


@pytest.fixture
def verify_results() -> list[dict]:
    return [
        {
            "a": "x/a.png",
            "b": EVIL_PATH,
            "a_sha256": SHA,
            "b_sha256": "12" * 32,
            "status": "ok",
            "error": None,
            "similarity": np.float32(0.82),
            "probability": 0.95,
            "threshold": 0.6,
            "decision": "same",
        },
        {
            "a": "x/a.png",
            "b": "x/c.png",
            "a_sha256": SHA,
            "b_sha256": None,
            "status": "error",
            "error": "x/c.png: file not found",
            "similarity": float("nan"),
            "probability": None,
            "threshold": 0.6,
            "decision": None,
        },
    ]


@pytest.fixture
def verify_summary() -> dict:
    return {
        "n_inputs": 2,
        "n_ok": 1,
        "n_failed": 1,
        "decisions": {"same": 1},
        "as_set": None,
        "seconds": 0.5,
        "images_per_second": 4.0,
    }


def _run_writer(factory, manifest, results, summary, **options) -> str:
    buf = io.StringIO()
    writer = factory(buf, manifest, **options)
    for r in results:
        writer.write(r)
    writer.close(summary)
    return buf.getvalue()


@pytest.fixture
def run_writer():
    """Feed a writer like the pipeline does; returns what it wrote."""
    return _run_writer
