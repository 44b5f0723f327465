"""docs/performance.md, generated: every speed and scale ratio measured in one run, one machine.

    python benchmarks/performance.py --out docs/

Measures side by side (issue 12 item 6), on synthetic PNGs this script writes to a
temporary folder (three fake generators, a gallery of them):

- ONNX Runtime vs torch eager: the same weights (read back from the ONNX file when no
  checkpoint is given) on the same views, same batch and threads (speed.ort_vs_torch);
- INT8 vs FP32: ONNX Runtime alone at 1 thread and at every core (int8.speed), and
  ``fpattr attribute`` end to end with each; accuracy cited from docs/results/int8.json;
- end to end vs pure inference: ``fpattr attribute`` with default settings against ONNX
  Runtime alone on the same views (its best of one session on every core and one
  single-thread session per core), plus ``--backbone-opt threads=N`` and the provenance
  read's cost (speed_extractors);
- Ray engine, 1 vs 2 workers (ray_workers.timed_run), when ray is installed;
- gallery search, HNSW index vs exact, at growing sizes (gallery_index.one_size), with
  the committed 1M figure cited from docs/results/gallery_index_1m.json;
- cost and peak RSS of ``fpattr attribute`` as the collection grows (1k and 10k images
  among the sizes; speed.attribute_run), plotted;
- start-up: ``fpattr --help`` and a one-image ``fpattr attribute``;
- GPU: measured only where ONNX Runtime has a CUDA provider, else said so.

Writes OUT/results/performance.json, OUT/figures/perf_collection.png,
OUT/figures/perf_gallery.png and OUT/performance.md (the whole page). Throughputs are
the best of interleaved rounds (the least disturbed on a shared machine); medians are in
the JSON. Run on a quiet machine (3 to 4 minutes on 2 cores); ``--quick`` runs tiny
sizes to check the script, not figures to publish.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gallery_index  # noqa: E402
import ray_workers  # noqa: E402
import speed  # noqa: E402
import speed_extractors  # noqa: E402

from fpattr.backbones.onnx import CPU_BATCH_VIEWS  # noqa: E402

COMMAND = "python benchmarks/performance.py --out docs/"
BATCH = 64  # views per batch: the shipped card's, and the pure-inference setting
CPU_BATCH = CPU_BATCH_VIEWS  # views per batch of the default run on the CPU


# -- the world: images, galleries, views --------------------------------------------------------


def make_world(root: Path, images: int, size: int) -> dict[str, Any]:
    """Query PNGs of three fake generators, galleries of them for the FP32 and INT8
    extractors, and the views the extractor sees of every query."""
    from fpattr.backbones.resolve import create_backbone
    from fpattr.io.loader import load_image
    from fpattr.testing import run_cli
    from fpattr.views import make_views

    folder, gallery = ray_workers.make_world(root, images, size)
    galleries = {"default": gallery}
    if (ROOT / "models" / "default-int8.json").is_file():
        g8 = root / "gallery-int8"
        for gen in ray_workers.GENS:
            r = run_cli(
                ["gallery", "add", gen, root / "refs" / gen, "-g", g8, "-b", "default-int8", "-q"]
            )
            if r.exit_code != 0:
                raise SystemExit(f"gallery add -b default-int8 failed: {r.output}")
        galleries["default-int8"] = g8
    bb = create_backbone("default", threads=1)
    paths = sorted(folder.iterdir())
    views = np.concatenate(
        [make_views(load_image(p).pixels, bb.input_size, bb.default_views)[0] for p in paths]
    )
    return {
        "folder": folder,
        "galleries": galleries,
        "views": views,
        "n_images": len(paths),
        "views_per_image": bb.default_views,
    }


def linked_folder(src: Path, dst: Path, n: int) -> Path:
    """``n`` inputs: hard links to ``src``'s images, cycled (each a regular file)."""
    files = sorted(src.iterdir())
    dst.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        os.link(files[k % len(files)], dst / f"{k:06d}.png")
    return dst


# -- measurements -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import onnxruntime as ort

    def version(pkg: str) -> str | None:
        import importlib.metadata as md

        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), "")
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "numpy": np.__version__,
        "torch": version("torch"),
        "faiss": version("faiss-cpu") or version("faiss-gpu"),
        "ray": version("ray"),
    }


def lanes_views_per_s(
    views: np.ndarray, lanes: int, seconds: float, backbone: str = "default", batch: int = BATCH
) -> float:
    """ONNX Runtime alone as the pipeline runs it: ``lanes`` single-thread runs at once."""
    from fpattr.backbones.resolve import create_backbone

    bb = create_backbone(backbone, threads=1)
    batches = [views[i : i + batch] for i in range(0, len(views) - batch + 1, batch)]
    with ThreadPoolExecutor(lanes) as pool:
        n_items = sum(len(b) for b in batches)
        return speed.rate(lambda: list(pool.map(bb.embed, batches)), n_items, seconds)


def _cpu(who: int) -> float:
    import resource

    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def end_to_end(world: dict[str, Any], cpus: int, rounds: int, seconds: float) -> dict[str, Any]:
    """attribute (default, threads override, INT8) vs ONNX Runtime alone, interleaved, with
    the CPU time each spends per image (where the gap goes on saturated cores)."""
    import resource

    folder, gal, views = world["folder"], world["galleries"], world["views"]
    per_image = world["views_per_image"]
    runs: dict[str, list[float]] = {}
    cpu_ms: dict[str, list[float]] = {}
    attribute = {
        "default": [],
        f"threads={cpus}": ["--backbone-opt", f"threads={cpus}"],
    }
    if "default-int8" in gal:
        attribute["int8"] = ["-b", "default-int8"]
    pure: dict[str, Callable[[], float]] = {
        f"one session, {cpus} threads": lambda: speed_extractors.ort_views_per_s(
            "default", BATCH, seconds, threads=cpus, views=views
        ),
        f"{cpus} single-thread sessions at once": lambda: lanes_views_per_s(views, cpus, seconds),
        # at the batch the default run uses (fpattr.backbones.onnx.CPU_BATCH_VIEWS): the
        # strict comparison, beside the batch-64 reference
        f"{cpus} single-thread sessions at once, batch {CPU_BATCH}": lambda: lanes_views_per_s(
            views, cpus, seconds, batch=CPU_BATCH
        ),
    }
    # start-up CPU (imports, model and gallery load) of one attribute process, to leave out
    one = sorted(folder.iterdir())[0]
    c0 = _cpu(resource.RUSAGE_CHILDREN)
    ray_workers.timed_run(one, gal["default"], [])
    startup_cpu = _cpu(resource.RUSAGE_CHILDREN) - c0
    for _ in range(rounds):
        for name, extra in attribute.items():
            g = gal["default-int8"] if name == "int8" else gal["default"]
            c0 = _cpu(resource.RUSAGE_CHILDREN)
            r = ray_workers.timed_run(folder, g, extra)
            used = _cpu(resource.RUSAGE_CHILDREN) - c0 - startup_cpu
            runs.setdefault(f"attribute {name}", []).append(r["summary_images_per_s"])
            cpu_ms.setdefault(f"attribute {name}", []).append(1e3 * used / r["n"])
        for name, fn in pure.items():
            c0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
            rate = fn() / per_image
            used, wall = _cpu(resource.RUSAGE_SELF) - c0, time.perf_counter() - t0
            runs.setdefault(f"pure {name}", []).append(rate)
            # the timed loop is most of the call: CPU per image at its rate
            cpu_ms.setdefault(f"pure {name}", []).append(1e3 * used / (rate * wall))
    best = {k: max(v) for k, v in runs.items()}
    same = f"pure {cpus} single-thread sessions at once, batch {CPU_BATCH}"
    pure_best = max(v for k, v in best.items() if k.startswith("pure ") and k != same)
    return {
        "images": world["n_images"],
        "views_per_image": per_image,
        "batch_views": BATCH,
        "rounds": runs,
        "best_images_per_s": best,
        "median_images_per_s": {k: statistics.median(v) for k, v in runs.items()},
        "cpu_ms_per_image": {k: statistics.median(v) for k, v in cpu_ms.items()},
        "startup_cpu_s": startup_cpu,
        "pure_inference_images_per_s": pure_best,
        "ratio_default": best["attribute default"] / pure_best,
        "default_batch_views": CPU_BATCH,
        "pure_same_batch_images_per_s": best[same],
        "ratio_default_same_batch": best["attribute default"] / best[same],
        "ratio_threads_override": best[f"attribute threads={cpus}"] / pure_best,
        "provenance": speed_extractors.provenance_cost(folder, gal["default"], max(1, rounds - 1)),
    }


def int8_speed(cpus: int, seconds: float, views: np.ndarray) -> dict[str, Any]:
    """INT8 vs FP32, ONNX Runtime alone: one session at 1 thread and at every core
    (int8.speed), and as the pipeline runs inference (one single-thread lane per core, on
    the world's views: :func:`lanes_views_per_s`)."""
    import int8

    models = {k: ROOT / "models" / f"{k}.onnx" for k in ("default", "default-int8")}
    rows = [r for t in sorted({1, cpus}) for r in int8.speed(models, [BATCH], t, seconds)]
    if cpus > 1:
        rates = {k: 0.0 for k in models}
        for _ in range(2):  # alternated, best of two: the least disturbed
            for k in models:
                rates[k] = max(rates[k], lanes_views_per_s(views, cpus, seconds, k, CPU_BATCH))
        # the pipeline's own batch on the CPU (CPU_BATCH_VIEWS), not the reference's 64
        rows.append({"batch_views": CPU_BATCH, "threads": 1, "lanes": cpus, "views_per_s": rates})
    for r in rows:
        r["ratio"] = r["views_per_s"]["default-int8"] / r["views_per_s"]["default"]
    return {"speed": rows, "accuracy": int8_accuracy()}


def int8_accuracy() -> dict[str, Any] | None:
    """Top-1 / ROC-AUC lost by INT8 per benchmark, from the committed int8.json."""
    path = ROOT / "docs" / "results" / "int8.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    out = {}
    for bench, runs in (doc.get("benchmarks") or {}).items():
        by = {r["backbone"]: r for r in runs}
        if {"default", "default-int8"} <= by.keys():
            f, q = by["default"], by["default-int8"]
            out[bench] = {
                "top1_fp32": f["top1"],
                "top1_int8": q["top1"],
                "top1_lost_points": round(100 * (f["top1"] - q["top1"]), 2),
                "auc_fp32": f["roc_auc"],
                "auc_int8": q["roc_auc"],
                "auc_lost": round(f["roc_auc"] - q["roc_auc"], 4),
            }
    return {"source": "docs/results/int8.json", "benchmarks": out} if out else None


def ray_scaling(world: dict[str, Any], workers: list[int], rounds: int) -> dict[str, Any]:
    if importlib.util.find_spec("ray") is None:
        return {"measured": False, "note": "not measured: ray is not installed (fpattr[ray])"}
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for n in workers:
            extra = ["--engine", "ray", "--ray-workers", str(n)]
            r = ray_workers.timed_run(world["folder"], world["galleries"]["default"], extra)
            runs.setdefault(str(n), []).append(r)
    rows = {
        n: {
            "running_images_per_s": max(r["running_images_per_s"] for r in rs),
            "wall_s": min(r["wall_s"] for r in rs),
            "first_result_s": min(r["first_result_s"] for r in rs),
        }
        for n, rs in runs.items()
    }
    out: dict[str, Any] = {"measured": True, "workers": rows, "images": world["n_images"]}
    if "1" in rows and "2" in rows:
        out["ratio_2_over_1"] = (
            rows["2"]["running_images_per_s"] / rows["1"]["running_images_per_s"]
        )
    return out


def gallery_search(sizes: list[int], queries: int, seconds: float) -> dict[str, Any]:
    if importlib.util.find_spec("faiss") is None:
        return {"measured": False, "note": "not measured: faiss is not installed (fpattr[index])"}
    args = gallery_index.settings(
        ["--queries", str(queries), "--seconds", str(seconds), "--ef-search", "32,64,128,256"]
    )
    dim = gallery_index.default_dim()
    rows = [gallery_index.one_size(n, dim, args) for n in sizes]
    out: dict[str, Any] = {"measured": True, "dim": dim, "k": gallery_index.K, "sizes": rows}
    try:
        doc = json.loads((ROOT / "docs/results/gallery_index_1m.json").read_text())
        out["committed_1m"] = {"source": "docs/results/gallery_index_1m.json", **doc["sizes"][-1]}
    except (OSError, ValueError, KeyError, IndexError):
        pass
    return out


def collection_growth(world: dict[str, Any], root: Path, sizes: list[int]) -> dict[str, Any]:
    rows = []
    for n in sizes:
        folder = linked_folder(world["folder"], root / f"n{n}", n)
        r = speed.attribute_run(folder, world["galleries"]["default"], dict(os.environ))
        if r["exit"] != 0:
            raise SystemExit(f"attribute on {n} images exited {r['exit']}")
        rows.append({"images": n, **r})
    return {"distinct_images": world["n_images"], "sizes": rows}


def startup(world: dict[str, Any], n: int) -> dict[str, Any]:
    one = sorted(world["folder"].iterdir())[0]
    cmd = [sys.executable, "-m", "fpattr", "attribute", str(one), "-g"]
    cmd += [str(world["galleries"]["default"]), "-f", "jsonl", "-q"]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return {"help_s": speed.help_seconds(n), "one_image_attribute_s": statistics.median(times)}


def gpu(world: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return {"measured": False, "note": "not measured: no GPU was available"}
    extra = ["--device", "cuda", "--batch-size", "1024"]
    r = ray_workers.timed_run(world["folder"], world["galleries"]["default"], extra)
    return {"measured": True, "attribute_images_per_s": r["summary_images_per_s"], **r}


# -- the page -----------------------------------------------------------------------------------


def plots(res: dict[str, Any], figures: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures.mkdir(parents=True, exist_ok=True)
    made = []
    rows = res["collection"]["sizes"]
    n = [r["images"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(n, [r["wall_seconds"] for r in rows], "o-")
    a.set(xlabel="images", ylabel="wall seconds", title="fpattr attribute: time")
    b.plot(n, [r["max_rss_mb"] for r in rows], "o-", color="tab:red")
    b.set(xlabel="images", ylabel="peak RSS (MB)", title="fpattr attribute: memory")
    b.set_ylim(0, max(r["max_rss_mb"] for r in rows) * 1.3)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(figures / "perf_collection.png", dpi=110)
    plt.close(fig)
    made.append("perf_collection.png")
    g = res["gallery"]
    if g.get("measured"):
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        sizes = [r["n"] for r in g["sizes"]]
        ax.loglog(sizes, [r["exact_single_ms"] for r in g["sizes"]], "o-", label="exact")
        ax.loglog(sizes, [_chosen(r)["single_ms"] for r in g["sizes"]], "s-", label="HNSW")
        big = g.get("committed_1m")
        if big:
            ax.loglog([big["n"]], [big["exact_single_ms"]], "o", mfc="none", color="tab:blue")
            ax.loglog([big["n"]], [_chosen(big)["single_ms"]], "s", mfc="none", color="tab:orange")
            last = g["sizes"][-1]
            for key, color in (("exact", "tab:blue"), ("hnsw", "tab:orange")):
                ys = [
                    r["exact_single_ms"] if key == "exact" else _chosen(r)["single_ms"]
                    for r in (last, big)
                ]
                ax.loglog([last["n"], big["n"]], ys, ":", color=color)
            ax.annotate(
                "1M: committed run",
                (big["n"], big["exact_single_ms"]),
                xytext=(-6, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=8,
            )
        ax.set(xlabel="gallery entries", ylabel="ms per top-5 query", title="gallery search")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        fig.savefig(figures / "perf_gallery.png", dpi=110)
        plt.close(fig)
        made.append("perf_gallery.png")
    return made


def _chosen(row: dict[str, Any]) -> dict[str, Any]:
    """The HNSW row at the efSearch that first reached the target recall (else the last)."""
    return next(
        (s for s in row["hnsw"] if s["ef_search"] == row["chosen_ef_search"]), row["hnsw"][-1]
    )


def _f(x: float, nd: int = 0) -> str:
    return f"{x:,.{nd}f}"


def render(res: dict[str, Any], figures: list[str]) -> str:
    m, e, cpus = res["machine"], res["end_to_end"], res["machine"]["cpus"]
    best = e["best_images_per_s"]
    rows: list[tuple[str, str, str]] = []
    inf = res.get("inference") or {}
    if "ratio_ort_over_torch" in inf:
        rows.append(
            (
                f"ONNX Runtime vs torch eager (same weights and views, batch {inf['batch_views']}, "
                f"{inf['threads']} threads each)",
                f"{_f(inf['onnxruntime_views_per_s'])} vs {_f(inf['torch_eager_views_per_s'])} "
                f"views/s: **{inf['ratio_ort_over_torch']:.2f}x**",
                ">= 1.5x (design)",
            )
        )
    else:
        rows.append(
            ("ONNX Runtime vs torch eager", "not measured: torch is not installed", ">= 1.5x")
        )
    q = res.get("int8") or {}
    for r in q.get("speed", []):
        v = r["views_per_s"]
        rows.append(
            (
                (
                    f"INT8 vs FP32, ONNX Runtime alone as the pipeline runs it (batch "
                    f"{r['batch_views']}, {r['lanes']} single-thread lanes at once)"
                    if r.get("lanes")
                    else f"INT8 vs FP32, ONNX Runtime alone (batch {r['batch_views']}, "
                    f"{r['threads']} thread{'s' if r['threads'] > 1 else ''})"
                ),
                f"{_f(v['default-int8'])} vs {_f(v['default'])} views/s: **{r['ratio']:.2f}x**",
                f">= 1.5x on {cpus} cores (issue 12)",
            )
        )
    if "attribute int8" in best:
        rows.append(
            (
                "INT8 vs FP32, `fpattr attribute` end to end",
                f"{_f(best['attribute int8'])} vs {_f(best['attribute default'])} images/s: "
                f"**{best['attribute int8'] / best['attribute default']:.2f}x**",
                "",
            )
        )
    acc = (q.get("accuracy") or {}).get("benchmarks") or {}
    for bench, a in acc.items():
        rows.append(
            (
                f"INT8 vs FP32 accuracy, {bench} (cited from docs/results/int8.json, not re-run)",
                f"top-1 {a['top1_int8']:.4f} vs {a['top1_fp32']:.4f} "
                f"({-a['top1_lost_points']:+.2f} points), ROC-AUC {a['auc_int8']:.4f} vs "
                f"{a['auc_fp32']:.4f} ({-a['auc_lost']:+.4f})",
                "<= 1 point, <= 0.01 (issue 12)",
            )
        )
    rows.append(
        (
            f"`fpattr attribute` end to end vs pure inference, default settings "
            f"({e['images']} PNGs of {res['settings']['size']} px, {e['views_per_image']} "
            f"views each)",
            f"{_f(best['attribute default'])} vs {_f(e['pure_inference_images_per_s'])} images/s: "
            f"**{e['ratio_default']:.2f}**",
            ">= 0.85 (within 15 %, issue 12)",
        )
    )
    if "ratio_default_same_batch" in e:
        rows.append(
            (
                f"same, against pure inference at the default run's own batch "
                f"({e['default_batch_views']} views)",
                f"{_f(best['attribute default'])} vs {_f(e['pure_same_batch_images_per_s'])} "
                f"images/s: **{e['ratio_default_same_batch']:.2f}**",
                "",
            )
        )
    p = e["provenance"]
    rows.append(
        (
            "same through the Python API (`Session.attribute`, results not written)",
            f"{_f(p['images_per_s_with'])} images/s: "
            f"{p['images_per_s_with'] / e['pure_inference_images_per_s']:.2f}",
            "",
        )
    )
    rows.append(
        (
            f"same, `--backbone-opt threads={cpus}` (one batch at a time)",
            f"{_f(best[f'attribute threads={cpus}'])} images/s: {e['ratio_threads_override']:.2f}",
            "",
        )
    )
    rows.append(
        (
            "`fpattr attribute` end to end, default settings",
            f"**{_f(best['attribute default'])} images/s**",
            ">= 100 (design)",
        )
    )
    rows.append(
        (
            "provenance read (Python API, with vs without)",
            f"{_f(p['images_per_s_with'])} vs {_f(p['images_per_s_without'])} images/s: "
            f"{p['ratio']:.2f}",
            "",
        )
    )
    ray = res["ray"]
    if ray.get("ratio_2_over_1"):
        w = ray["workers"]
        rows.append(
            (
                "Ray engine, 2 vs 1 workers (images/s once running)",
                f"{_f(w['2']['running_images_per_s'])} vs {_f(w['1']['running_images_per_s'])}: "
                f"**{ray['ratio_2_over_1']:.2f}x**",
                "",
            )
        )
    else:
        rows.append(("Ray engine, 2 vs 1 workers", ray.get("note", "not measured"), ""))
    g = res["gallery"]
    if g.get("measured"):
        for r in g["sizes"]:
            c = _chosen(r)
            rows.append(
                (
                    f"gallery top-5, HNSW vs exact, {_f(r['n'])} entries "
                    f"(efSearch {c['ef_search']})",
                    f"{c['single_ms']:.3f} vs {r['exact_single_ms']:.3f} ms/query: "
                    f"**{r['exact_single_ms'] / c['single_ms']:.1f}x**, "
                    f"recall@5 {c['recall_at_5']:.3f}",
                    "recall >= 0.99",
                )
            )
        big = g.get("committed_1m")
        if big:
            c = _chosen(big)
            rows.append(
                (
                    f"same, {_f(big['n'])} entries (cited from {big['source']}, not re-run)",
                    f"{c['single_ms']:.2f} vs {big['exact_single_ms']:.1f} ms/query, recall@5 "
                    f"{c['recall_at_5']:.3f}",
                    "milliseconds, recall >= 0.99 (issue 12)",
                )
            )
    else:
        rows.append(("gallery index vs exact", g.get("note", "not measured"), ""))
    mem = {r["images"]: r for r in res["collection"]["sizes"]}
    lo, hi = (1000, 10_000) if {1000, 10_000} <= mem.keys() else (min(mem), max(mem))
    rows.append(
        (
            f"peak RSS of `fpattr attribute`, {_f(lo)} vs {_f(hi)} images",
            f"{_f(mem[lo]['max_rss_mb'])} vs {_f(mem[hi]['max_rss_mb'])} MB "
            f"({mem[hi]['max_rss_mb'] / mem[lo]['max_rss_mb']:.2f}x)",
            "flat",
        )
    )
    s = res["startup"]
    rows.append(("`fpattr --help`", f"{s['help_s']:.2f} s", "< 0.3 s (design)"))
    rows.append(
        (
            "`fpattr attribute` of one image (start-up, model and gallery load included)",
            f"{s['one_image_attribute_s']:.2f} s",
            "",
        )
    )
    gp = res["gpu"]
    if gp.get("measured"):
        rows.append(
            (
                "GPU, `fpattr attribute --device cuda`",
                f"{_f(gp['attribute_images_per_s'])} images/s",
                ">= 2,000 (issue 12)",
            )
        )
    else:
        rows.append(("GPU (CUDA execution provider)", gp["note"], ">= 2,000 images/s (issue 12)"))

    table = "\n".join(
        ["| measure | result | target |", "|---|---|---|"]
        + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    )
    coll = res["collection"]
    growth = "\n".join(
        ["| images | wall s | images/s | peak RSS MB |", "|---:|---:|---:|---:|"]
        + [
            f"| {_f(r['images'])} | {r['wall_seconds']:.1f} | "
            f"{_f(r['pipeline_images_per_s'] or 0)} | {_f(r['max_rss_mb'])} |"
            for r in coll["sizes"]
        ]
    )
    gallery_rows = ""
    if g.get("measured"):
        gallery_rows = "\n".join(
            [
                "| entries | exact ms/query | HNSW ms/query | efSearch | recall@5 "
                "| HNSW build s | HNSW MB |",
                "|---:|---:|---:|---:|---:|---:|---:|",
            ]
            + [
                f"| {_f(r['n'])} | {r['exact_single_ms']:.3f} | {_chosen(r)['single_ms']:.3f} "
                f"| {_chosen(r)['ef_search']} | {_chosen(r)['recall_at_5']:.4f} "
                f"| {r['hnsw_build_s']} | {r['hnsw_rss_mb']} |"
                for r in g["sizes"] + ([g["committed_1m"]] if g.get("committed_1m") else [])
            ]
        )
    cpu_ms = e.get("cpu_ms_per_image", {})
    e_rows = "\n".join(
        ["| run | best images/s | median images/s | CPU ms per image |", "|---|---:|---:|---:|"]
        + [
            f"| {k} | {_f(v)} | {_f(e['median_images_per_s'][k])} | {cpu_ms[k]:.2f} |"
            if k in cpu_ms
            else f"| {k} | {_f(v)} | {_f(e['median_images_per_s'][k])} | |"
            for k, v in best.items()
        ]
    )
    gap = ""
    if "attribute default" in cpu_ms:
        pure_cpu = min(v for k, v in cpu_ms.items() if k.startswith("pure "))
        busy = cpu_ms["attribute default"] * best["attribute default"] / 1e3
        head = (
            f"Where the gap goes: the default run used {cpu_ms['attribute default']:.2f} ms of "
            f"CPU per image (start-up left out) against {pure_cpu:.2f} ms for inference alone, "
            f"and kept {busy:.1f} of the {cpus} cores busy"
        )
        if busy >= 0.9 * cpus:
            gap = head + (
                ": the cores are saturated, so the pipeline's own work per image (decoding, "
                "the views and their flat-signal check, the metadata read, the decision, the "
                "JSONL writer) adds to inference instead of hiding behind it."
            )
        else:
            gap = head + ": the cores are not saturated, so part of the gap is waiting."
    out = [
        "# Performance",
        "",
        f"<!-- generated by `{res['command']}`: do not edit; re-run `{COMMAND}` -->",
        "",
        f"Generated by `{COMMAND}` ({res['generated']}, {res['seconds']:.0f} s): every figure "
        "below was measured in that one run, on one machine, except the rows that say they "
        "are cited. The images are synthetic PNGs the script writes itself (three fake "
        "generators, a gallery of five references each). Throughputs are the best of "
        f"{res['settings']['rounds']} interleaved rounds (the least disturbed on a shared "
        "machine; medians in `docs/results/performance.json`).",
        "",
        f"Machine: {m['cpus']} CPU cores ({m['cpu_model'] or 'model unknown'}), {m['platform']}, "
        f"Python {m['python']}, ONNX Runtime {m['onnxruntime']} ({', '.join(m['providers'])}), "
        f"torch {m['torch'] or 'not installed'}, faiss {m['faiss'] or 'not installed'}, "
        f"ray {m['ray'] or 'not installed'}.",
        "",
        "Regenerate the whole page (and its JSON and figures) with that one command on a "
        "quiet machine; nothing here is filled in by hand.",
        "",
        "## Ratios",
        "",
        table,
        "",
        "Pure inference is ONNX Runtime alone on the views of the same images at batch "
        f"{BATCH}, the faster of one session with {cpus} threads and {cpus} single-thread "
        "sessions running at once (the issue's reference); the row after it compares with "
        f"ONNX Runtime alone at the batch the default run uses on the CPU ({CPU_BATCH} views, "
        "`fpattr.backbones.onnx.CPU_BATCH_VIEWS`: a 64-view batch's activations spill out "
        "of a core's cache). The default `fpattr attribute` runs inference in lanes "
        "(one ONNX Runtime thread each, one lane per core) while its decoding threads load "
        "the next images, make their views and read their metadata, and the main thread "
        "decides and writes the batch before (`fpattr.pipeline.ONNX_THREADS`, "
        "`inference_lanes`).",
        "",
        "## End to end",
        "",
        e_rows,
        "",
        gap,
        "",
        "## Cost as the collection grows",
        "",
        f"`fpattr attribute` with default settings on N inputs (hard links to the "
        f"{coll['distinct_images']} distinct PNGs, cycled), wall time of the whole command and "
        "the process's peak RSS:",
        "",
        growth,
        "",
        "![time and memory against collection size](figures/perf_collection.png)",
        "",
    ]
    if g.get("measured") and "perf_gallery.png" in figures:
        out += [
            "## Cost as the gallery grows",
            "",
            f"Top-5 search over synthetic galleries ({g['dim']}-dim clustered unit vectors, "
            "`benchmarks/gallery_index.py`), one query at a time; `fpattr.index` picks the "
            "exact search below `EXACT_MAX_ENTRIES` entries and HNSW above. The last row is "
            "the committed million-entry run, cited.",
            "",
            gallery_rows,
            "",
            "![query latency against gallery size](figures/perf_gallery.png)",
            "",
        ]
    out += [
        "## On a GPU",
        "",
        (
            f"`fpattr attribute --device cuda`: {_f(gp['attribute_images_per_s'])} images/s."
            if gp.get("measured")
            else "Not measured: no GPU was available in this run (ONNX Runtime providers: "
            f"{', '.join(m['providers'])}), so no GPU figure is given. The earlier GPU check "
            "(model synthesis on a lent H100) is in "
            "[Benchmarks](benchmarks.md#on-a-gpu-lent-h100-one-measurement-so-far)."
        ),
        "",
        "## Accuracy against speed",
        "",
        "Which backbone to pick is a trade between these figures and attribution quality, "
        "measured in [Benchmarks](benchmarks.md#every-backbone-both-benchmarks-one-run):",
        "",
        "![overview](figures/bench_overview.png)",
        "",
    ]
    return "\n".join(out)


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="the docs folder")
    ap.add_argument("--images", type=int, default=960, help="query PNGs (a multiple of 3)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="per pure-inference timing")
    ap.add_argument("--collection", default="300,1000,3000,10000", help="images per run")
    ap.add_argument("--gallery-sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=500, help="gallery queries per size")
    ap.add_argument("--ray-workers", default="1,2")
    ap.add_argument("--ray-rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: check the script only")
    ap.add_argument(
        "--from-json",
        action="store_true",
        help="measure nothing: rewrite the page and plots from OUT/results/performance.json",
    )
    args = ap.parse_args(argv)
    out = args.out
    if args.from_json:
        res = json.loads((out / "results" / "performance.json").read_text(encoding="utf-8"))
        figures = plots(res, out / "figures")
        (out / "performance.md").write_text(render(res, figures), encoding="utf-8")
        return 0
    if args.quick:
        args.images, args.rounds, args.seconds, args.queries = 48, 1, 0.3, 50
        args.collection, args.gallery_sizes, args.ray_rounds = "20,60", "500,2000", 1
    t0 = time.perf_counter()
    cpus = os.cpu_count() or 1
    res: dict[str, Any] = {
        "command": "python benchmarks/performance.py " + " ".join(argv or sys.argv[1:]),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "settings": {
            k: getattr(args, k)
            for k in ("images", "size", "rounds", "seconds", "collection", "gallery_sizes")
        },
    }

    def step(name: str) -> None:
        print(f"[{time.perf_counter() - t0:5.0f}s] {name}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["FPATTR_HOME"] = str(root / "home")  # never the user's galleries
        step("images and galleries")
        world = make_world(root / "world", args.images, args.size)
        step("ONNX Runtime vs torch eager")
        res["inference"] = speed.ort_vs_torch(
            ROOT / "models" / "default.json", None, BATCH, cpus, args.seconds, world["views"]
        )
        step("INT8 vs FP32")
        if (ROOT / "models" / "default-int8.onnx").is_file():
            res["int8"] = int8_speed(cpus, args.seconds, world["views"])
        step("end to end vs pure inference")
        res["end_to_end"] = end_to_end(world, cpus, args.rounds, args.seconds)
        step("Ray engine")
        res["ray"] = ray_scaling(
            world, [int(x) for x in args.ray_workers.split(",")], args.ray_rounds
        )
        step("collection growth")
        sizes = [int(x) for x in args.collection.split(",")]
        res["collection"] = collection_growth(world, root, sizes)
        step("start-up")
        res["startup"] = startup(world, 3 if args.quick else 5)
        step("GPU")
        res["gpu"] = gpu(world)
    step("gallery search")
    res["gallery"] = gallery_search(
        [int(x) for x in args.gallery_sizes.split(",")], args.queries, min(args.seconds, 1.0)
    )
    res["seconds"] = time.perf_counter() - t0
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "results" / "performance.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    figures = plots(res, out / "figures")
    (out / "performance.md").write_text(render(res, figures), encoding="utf-8")
    step(f"written {out / 'performance.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
