"""`fpattr artifacts ...`: ManiFPT manifold-projection artifacts (a(x) = x - P(x)).

``index`` crops a real reference, ``compute`` writes the artifacts of images,
``info`` shows a reference. The work is in :mod:`fpattr.manifpt`; numpy and the
reference are imported inside the commands so the CLI starts fast.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import typer

from fpattr.cli import common
from fpattr.errors import ExitCode, UsageError

artifacts_app = typer.Typer(
    help="ManiFPT artifacts: what is left of an image after subtracting its nearest real "
    "patch.\n\nExample: fpattr artifacts index ../shared/data/bsds500/val --out ref.npz "
    "&& fpattr artifacts compute fakes/ --ref ref.npz --out art/",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(artifacts_app, name="artifacts")


def _say(console: Any, style: str, label: str, message: str) -> None:
    """One stderr line; paths are never parsed as rich markup."""
    from rich.text import Text

    console.print(Text(label + " ", style=style) + Text(message), soft_wrap=True)


@artifacts_app.command("index", no_args_is_help=True)
def index(
    real: list[Path] = typer.Argument(..., help="Folders and/or files of real photos."),
    out: Path = typer.Option(..., "--out", "-o", help="Reference file to write (.npz)."),
    space: str = typer.Option(
        "pixel", "--space", help="Nearest-neighbour space: pixel | frequency | embedding."
    ),
    size: int = typer.Option(64, "--size", min=8, help="Patch side in pixels (= view size)."),
    patches: int = typer.Option(20000, "--patches", "-n", min=1, help="Patches in all."),
    strategy: str = typer.Option(
        "random", "--strategy", help="random (seeded) | grid crops at native resolution."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the crops and of the approximate index."),
    metric: str = typer.Option(
        "auto", "--metric", help="auto (cosine for embedding, else l2) | l2 | cosine."
    ),
    index_kind: str = typer.Option(
        "auto", "--index", help="exact | ivf | auto (exact below 50k patches)."
    ),
    ann: str = typer.Option(
        "auto",
        "--ann",
        help="ivf engine: auto | numpy | faiss | hnswlib (auto: an installed one, else numpy).",
    ),
    nlist: int = typer.Option(None, "--nlist", min=1, help="ivf cells (default sqrt(N))."),
    nprobe: int = typer.Option(8, "--nprobe", min=1, help="ivf cells searched per query."),
    backbone: str = typer.Option(
        "spectrum", "--backbone", "-b", help="Backbone of the embedding space."
    ),
    backbone_opt: list[str] = common.BackboneOpts,
    freq_input: str = typer.Option(
        "patch", "--freq-input", help="frequency space: spectrum of the patch | residual."
    ),
    dtype: str = typer.Option(
        "auto",
        "--dtype",
        help="Patch storage: auto | uint8 | float16 | float32 (auto: uint8 for 8-bit images).",
    ),
    align_mean: bool = typer.Option(
        True,
        "--align-mean/--no-align-mean",
        help="Shift P(x) to the view's per-channel mean (the spaces ignore brightness).",
    ),
    workers: int = typer.Option(2, "--workers", min=0, help="Decoding threads."),
    max_mpx: float = typer.Option(64.0, "--max-mpx", min=0.01, help="Refuse larger images."),
    quiet: bool = common.QuietOpt,
) -> None:
    """Build a real reference: N patches of real photos and their search descriptors.

    Prints a JSON summary on stdout. Exit code 1 when some images could not be read.

    Example: fpattr artifacts index bsds500/val --out ref.npz --size 64 --patches 20000
    """
    from fpattr.manifpt import RealReference

    console = common.stderr_console(quiet)
    started = time.perf_counter()

    def on_image(path: str, error: str | None) -> None:
        if error:
            _say(console, "red", "failed", f"{path}: {error}")

    ref, failed = RealReference.build(
        real,
        size=size,
        n_patches=patches,
        space=space,
        metric=None if metric == "auto" else metric,
        strategy=strategy,
        seed=seed,
        dtype=dtype,
        freq_input=freq_input,
        backbone=backbone,
        backbone_options=common.parse_opts(backbone_opt),
        align_mean=align_mean,
        workers=workers,
        max_pixels=int(max_mpx * 1e6),
        on_image=on_image,
    )
    cropped = time.perf_counter()
    ref.build_index(index_kind, ann=ann, nlist=nlist, nprobe=nprobe, seed=seed)
    ref.save(out)
    done = time.perf_counter()
    summary = {
        "out": str(out),
        "sha256": ref.sha256,
        "n_patches": len(ref),
        "n_images": len(ref.sources),
        "n_failed": len(failed),
        "failed": failed,
        "space": ref.space,
        "metric": ref.metric,
        "size": ref.size,
        "dtype": str(ref.patches.dtype),
        "index": ref.index().config(),
        "bytes": out.stat().st_size,
        "seconds": round(done - started, 3),
        "patches_per_s": round(len(ref) / max(done - started, 1e-9), 1),
        "seconds_cropping": round(cropped - started, 3),
    }
    print(json.dumps(summary, indent=2))
    raise typer.Exit(int(ExitCode.SOME_FAILED if failed else ExitCode.OK))


@artifacts_app.command("compute", no_args_is_help=True)
def compute(
    images: list[Path] = typer.Argument(..., help="Image files and/or folders (recursive)."),
    ref: Path = typer.Option(..., "--ref", "-r", help="Real reference (.npz)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the artifacts."),
    png: bool = typer.Option(
        False, "--png", help="Write PNG visualisations (0.5 + a / (6 std)) instead of .npy."
    ),
    views: int = typer.Option(4, "--views", min=1, help="Crops per image (square grid)."),
    strategy: str = typer.Option("grid", "--strategy", help="grid | center crops."),
    index_kind: str = typer.Option(
        None, "--index", help="Override the search: exact | ivf (the stored one)."
    ),
    nprobe: int = typer.Option(None, "--nprobe", min=1, help="Override the ivf nprobe."),
    batch_size: int = typer.Option(
        256, "--batch-size", min=1, help="Views searched together (one reference pass each)."
    ),
    workers: int = typer.Option(2, "--workers", min=0, help="Decoding threads."),
    max_mpx: float = typer.Option(64.0, "--max-mpx", min=0.01, help="Refuse larger images."),
    quiet: bool = common.QuietOpt,
) -> None:
    """Write a(x) = x - P(x) for each view of each image; one JSON line per image.

    .npy files hold float32 (V, S, S, 3) artifacts (signed, pixel units in [0, 1]).
    Each line has the path, the nearest-neighbour distance in the search space and
    the artifact energy (mean squared value). Exit code 1 when some inputs failed.

    Example: fpattr artifacts compute fakes/ --ref ref.npz --out art/ --png
    """
    import numpy as np

    from fpattr.io.atomic import atomic_write_bytes
    from fpattr.io.loader import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageLoadError
    from fpattr.io.prefetch import iter_loaded
    from fpattr.io.walk import iter_inputs
    from fpattr.manifpt import RealReference
    from fpattr.views import make_views

    console = common.stderr_console(quiet)
    reference = RealReference.load(ref)
    if index_kind is not None or nprobe is not None:
        reference.use_search(index_kind, nprobe)
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    counts = {"in": 0, "ok": 0, "views": 0}
    started = time.perf_counter()
    # views of consecutive images are searched together: one pass over the reference per batch
    pending: list[tuple[dict[str, Any], Any, bool]] = []

    def flush() -> None:
        batch = [v for _, v, _ in pending if v is not None]
        proj = reference.project(np.concatenate(batch)) if batch else None
        start = 0
        for row, v, padded in pending:
            if v is not None and proj is not None:
                sl = slice(start, start + len(v))
                start += len(v)
                art = (v - proj.projected[sl]).astype(np.float32)
                dest = out / (
                    _unique(_safe_stem(Path(row["path"])), used) + (".png" if png else ".npy")
                )
                atomic_write_bytes(dest, _png_bytes(art) if png else _npy_bytes(art))
                per_view = (art.astype(np.float64) ** 2).mean(axis=(1, 2, 3))
                row.update(
                    status="ok",
                    out=str(dest),
                    n_views=len(v),
                    padded=padded,
                    nn_distance=float(proj.distances[sl].mean()),
                    energy=float(per_view.mean()),
                    views=[
                        {**reference.source_of(int(i)), "nn_distance": float(d), "energy": float(e)}
                        for i, d, e in zip(
                            proj.indices[sl], proj.distances[sl], per_view, strict=True
                        )
                    ],
                )
                counts["ok"] += 1
                counts["views"] += len(v)
            print(json.dumps(row), flush=True)
        pending.clear()

    max_pixels = int(max_mpx * 1e6) or DEFAULT_MAX_PIXELS
    loaded = iter_loaded(
        iter_inputs(images, extensions=IMAGE_EXTENSIONS), workers=workers, max_pixels=max_pixels
    )
    try:
        for item, res in loaded:
            counts["in"] += 1
            row: dict[str, Any] = {"path": str(item.path)}
            if isinstance(res, ImageLoadError):
                row.update(status="error", error=res.reason)
                _say(console, "red", "failed", f"{item.path}: {res.reason}")
                pending.append((row, None, False))
                continue
            try:
                v, vinfo = make_views(res.pixels, reference.size, views, strategy)
            except ValueError as exc:
                raise UsageError(str(exc)) from exc
            row["sha256"] = res.sha256
            pending.append((row, v, bool(vinfo["padded"])))
            if sum(len(x) for _, x, _ in pending if x is not None) >= batch_size:
                flush()
        flush()
    finally:
        loaded.close()
    n_in, n_ok, n_views = counts["in"], counts["ok"], counts["views"]
    seconds = time.perf_counter() - started
    if n_in == 0:
        raise UsageError("no input images found")
    _say(
        console,
        "green",
        "done",
        f"{n_ok}/{n_in} images, {n_views} views in {seconds:.2f} s "
        f"({n_views / max(seconds, 1e-9):.1f} views/s), artifacts in {out}",
    )
    raise typer.Exit(common.exit_code(n_in, n_ok))


@artifacts_app.command("info", no_args_is_help=True)
def info(ref: Path = typer.Argument(..., help="Real reference (.npz).")) -> None:
    """Print a reference's configuration, size and sha256 (JSON); verifies its content.

    Example: fpattr artifacts info ref.npz
    """
    from fpattr.manifpt import RealReference

    print(json.dumps(RealReference.load(ref).info(), indent=2))


def _safe_stem(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "_", Path(path).stem).strip("._") or "image"
    return stem[:120]


def _unique(stem: str, used: set[str]) -> str:
    """Same stems from different folders must not overwrite each other."""
    name, k = stem, 1
    while name in used:
        name, k = f"{stem}-{k}", k + 1
    used.add(name)
    return name


def _npy_bytes(arr: Any) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _png_bytes(art: Any) -> bytes:
    """Views side by side, 2 px gaps, one shared scale: 0.5 + a / (6 std), clipped."""
    import io

    import numpy as np
    from PIL import Image

    scale = 6 * max(float(art.std()), 1e-6)
    vis = np.clip(0.5 + art / scale, 0, 1)
    v, s = vis.shape[:2]
    tile = np.ones((s, v * s + 2 * (v - 1), 3), np.float32)
    for k in range(v):
        tile[:, k * (s + 2) : k * (s + 2) + s] = vis[k]
    buf = io.BytesIO()
    Image.fromarray((tile * 255 + 0.5).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
