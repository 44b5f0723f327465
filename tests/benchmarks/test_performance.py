"""benchmarks/performance.py: the page it writes from a result (no timing is asserted), the
torch twin of the shipped extractor, and the helpers it shares with the other scripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fpattr.testing import write_generator_images

pytest.importorskip("matplotlib")
BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import performance  # noqa: E402
import speed  # noqa: E402


def _result(gpu: bool = False) -> dict[str, Any]:
    """A result shaped like a real run's, with made-up figures."""
    hnsw = [{"ef_search": 64, "recall_at_5": 0.998, "single_ms": 0.2, "batch_ms": 0.1}]
    size = {"exact_single_ms": 9.5, "hnsw": hnsw, "chosen_ef_search": 64}
    size |= {"hnsw_build_s": 30.0, "hnsw_rss_mb": 270.0}
    return {
        "command": "python benchmarks/performance.py --out docs/",
        "generated": "2026-01-01 00:00 UTC",
        "seconds": 321.0,
        "settings": {"images": 960, "size": 128, "rounds": 3},
        "machine": {
            "cpus": 2,
            "cpu_model": "a CPU",
            "platform": "Linux",
            "python": "3.11",
            "onnxruntime": "1.x",
            "providers": ["CPUExecutionProvider"],
            "torch": "2.x",
            "faiss": "1.x",
            "ray": "2.x",
        },
        "inference": {
            "batch_views": 64,
            "threads": 2,
            "onnxruntime_views_per_s": 2000.0,
            "torch_eager_views_per_s": 500.0,
            "ratio_ort_over_torch": 4.0,
        },
        "int8": {
            "speed": [
                {
                    "batch_views": 64,
                    "threads": t,
                    "views_per_s": {"default": 1000.0 * t, "default-int8": 1500.0 * t},
                    "ratio": 1.5,
                }
                for t in (1, 2)
            ],
            "accuracy": {
                "source": "docs/results/int8.json",
                "benchmarks": {
                    "real": {
                        "top1_fp32": 0.857,
                        "top1_int8": 0.853,
                        "top1_lost_points": 0.4,
                        "auc_fp32": 0.935,
                        "auc_int8": 0.935,
                        "auc_lost": 0.0,
                    }
                },
            },
        },
        "end_to_end": {
            "images": 960,
            "views_per_image": 4,
            "best_images_per_s": {
                "attribute default": 400.0,
                "attribute threads=2": 350.0,
                "attribute int8": 500.0,
                "pure one session, 2 threads": 480.0,
                "pure 2 single-thread sessions at once": 500.0,
            },
            "median_images_per_s": {
                "attribute default": 390.0,
                "attribute threads=2": 340.0,
                "attribute int8": 490.0,
                "pure one session, 2 threads": 470.0,
                "pure 2 single-thread sessions at once": 495.0,
            },
            "cpu_ms_per_image": {
                "attribute default": 5.0,
                "pure 2 single-thread sessions at once": 4.0,
            },
            "pure_inference_images_per_s": 500.0,
            "ratio_default": 0.8,
            "ratio_threads_override": 0.7,
            "provenance": {
                "images_per_s_with": 380.0,
                "images_per_s_without": 400.0,
                "ratio": 0.95,
            },
        },
        "ray": {
            "measured": True,
            "images": 960,
            "workers": {
                "1": {"running_images_per_s": 200.0, "wall_s": 9.0, "first_result_s": 4.0},
                "2": {"running_images_per_s": 300.0, "wall_s": 8.0, "first_result_s": 4.5},
            },
            "ratio_2_over_1": 1.5,
        },
        "gallery": {
            "measured": True,
            "dim": 694,
            "k": 5,
            "sizes": [{"n": 10_000, **size}, {"n": 100_000, **size}],
            "committed_1m": {
                "n": 1_000_000,
                "source": "docs/results/gallery_index_1m.json",
                **size,
            },
        },
        "collection": {
            "distinct_images": 960,
            "sizes": [
                {
                    "images": n,
                    "wall_seconds": n / 300,
                    "pipeline_images_per_s": 300.0,
                    "max_rss_mb": 290.0,
                }
                for n in (1000, 10_000)
            ],
        },
        "startup": {"help_s": 0.2, "one_image_attribute_s": 1.1},
        "gpu": (
            {"measured": True, "attribute_images_per_s": 2500.0}
            if gpu
            else {"measured": False, "note": "not measured: no GPU was available"}
        ),
    }


def test_page_has_every_ratio_with_its_target(tmp_path: Path) -> None:
    res = _result()
    figures = performance.plots(res, tmp_path / "figures")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(figures)
    assert figures == ["perf_collection.png", "perf_gallery.png"]
    page = performance.render(res, figures)
    assert page.startswith("# Performance\n") and "<!-- fpattr:" not in page
    assert performance.COMMAND in page
    for needle in (
        "ONNX Runtime vs torch eager",
        "**4.00x**",
        "INT8 vs FP32, ONNX Runtime alone (batch 64, 1 thread)",
        "INT8 vs FP32, `fpattr attribute` end to end",
        "cited from docs/results/int8.json",
        "end to end vs pure inference",
        "**0.80**",
        ">= 0.85 (within 15 %, issue 12)",
        "Ray engine, 2 vs 1 workers",
        "**1.50x**",
        "HNSW vs exact, 100,000 entries",
        "1,000,000 entries (cited from docs/results/gallery_index_1m.json, not re-run)",
        "peak RSS of `fpattr attribute`, 1,000 vs 10,000 images",
        "`fpattr --help` | 0.20 s | < 0.3 s",
        "not measured: no GPU was available",
        "5.00 ms of CPU per image (start-up left out) against 4.00 ms",
        "figures/perf_collection.png",
        "figures/perf_gallery.png",
    ):
        assert needle in page, needle
    assert "2,500 images/s" in performance.render(_result(gpu=True), figures)


def test_missing_extras_are_said_not_guessed(tmp_path: Path) -> None:
    res = _result()
    res["inference"] = {"batch_views": 64, "threads": 2, "onnxruntime_views_per_s": 2000.0}
    res["ray"] = {"measured": False, "note": "not measured: ray is not installed (fpattr[ray])"}
    res["gallery"] = {"measured": False, "note": "not measured: faiss is not installed"}
    figures = performance.plots(res, tmp_path)
    assert figures == ["perf_collection.png"]
    page = performance.render(res, figures)
    assert "not measured: torch is not installed" in page
    assert "ray is not installed" in page and "faiss is not installed" in page
    assert "perf_gallery" not in page


def test_linked_folder_cycles_regular_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_generator_images(src, "checker", n=3, size=16)
    out = performance.linked_folder(src, tmp_path / "n7", 7)
    files = sorted(out.iterdir())
    assert len(files) == 7 and all(p.is_file() and not p.is_symlink() for p in files)
    assert os.path.samefile(files[0], files[3])


def test_torch_twin_has_the_shipped_weights() -> None:
    """ORT vs torch eager compares the same weights: read back from the ONNX file."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    card = BENCH.parent / "models" / "default.json"
    if not card.is_file():
        pytest.skip("shipped extractor not installed")
    import torch

    from fpattr.backbones.resolve import create_backbone

    x = np.random.default_rng(0).random((8, 64, 64, 3), dtype=np.float32)
    with torch.no_grad():
        eager = speed.torch_twin(card)(torch.from_numpy(x)).numpy()
    ort = create_backbone("default").embed(x)
    cos = (eager * ort).sum(1) / np.linalg.norm(eager, axis=1) / np.linalg.norm(ort, axis=1)
    assert cos.min() > 0.9999
