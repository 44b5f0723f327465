"""`fpattr attribute`: which model made each image (or "unknown")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from fpattr.cli import common


def register(app: typer.Typer) -> None:
    app.command("attribute", no_args_is_help=True)(attribute)


def attribute(
    paths: list[Path] = typer.Argument(..., help="Image files and/or folders (recursive)."),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    device: str = common.DeviceOpt,
    gallery: str = common.GalleryOpt,
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, help="Candidates listed per image."),
    as_set: bool = typer.Option(
        False, "--as-set", help="Also decide once for all images, assumed to share one source."
    ),
    fmt: str = common.FormatOpt,
    output: Path = common.OutputOpt,
    report: Path = common.ReportOpt,
    views: int = common.ViewsOpt,
    threshold: float = common.ThresholdOpt,
    target_far: float = common.TargetFarOpt,
    min_probability: float = common.MinProbabilityOpt,
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Views per inference batch."),
    workers: int = typer.Option(2, "--workers", min=1, help="Decoding threads."),
    max_mpx: float = typer.Option(64.0, "--max-mpx", min=0.01, help="Refuse larger images."),
    quiet: bool = common.QuietOpt,
) -> None:
    """Attribute every image to its most likely source models, or "unknown".

    Example: fpattr attribute ./images --top-k 3 --report report.html
    """
    code = run(
        paths,
        backbone=backbone,
        backbone_opt=backbone_opt,
        device=device,
        gallery=gallery,
        top_k=top_k,
        as_set=as_set,
        fmt=fmt,
        output=output,
        report=report,
        views=views,
        threshold=threshold,
        target_far=target_far,
        min_probability=min_probability,
        batch_size=batch_size,
        workers=workers,
        max_mpx=max_mpx,
        quiet=quiet,
    )
    raise typer.Exit(code)


def run(
    paths: list[Path],
    *,
    backbone: str = "auto",
    backbone_opt: list[str] | None = None,
    device: str = "auto",
    gallery: str | None = None,
    top_k: int = 3,
    as_set: bool = False,
    fmt: str = "table",
    output: Path | None = None,
    report: Path | None = None,
    views: int | None = None,
    threshold: float | None = None,
    target_far: float = 0.01,
    min_probability: float = 0.5,
    batch_size: int | None = None,
    workers: int = 2,
    max_mpx: float = 64.0,
    quiet: bool = False,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """The attribute run behind the command (the demo reuses it); returns the exit code."""
    from fpattr import pipeline
    from fpattr.report.manifest import build_manifest
    from fpattr.report.outputs import Outputs
    from fpattr.session import Session

    console = common.stderr_console(quiet)
    bb = common.load_backbone(backbone, backbone_opt, device, decode_workers=workers)
    g = common.open_gallery(gallery, bb)
    settings = pipeline.Settings(
        top_k=top_k,
        views=views,
        batch_size=batch_size,
        workers=workers,
        max_pixels=int(max_mpx * 1e6),
        target_far=target_far,
        threshold=threshold,
        min_probability=min_probability,
    )
    session = Session(bb, g, settings=settings)
    default_cal = session.policy.calibration("image-vs-model")
    if default_cal is None:
        console.print(
            "[yellow]warning:[/] uncalibrated (no calibration in the extractor's card and "
            "fewer than 2 models with 2 references): decisions are left empty. Enrol >= 2 "
            "models with >= 2 references, or pass --threshold."
        )
    manifest = build_manifest(
        "attribute",
        backbone=bb.info(),
        gallery=g.info(),
        calibration=session.policy.info(),
        settings={
            **settings.to_dict(),
            "as_set": as_set,
            "backbone_name": bb.name,
            "inputs": [str(p) for p in paths],
        },
        plugins=common.plugin_versions(),
    )
    out = Outputs(fmt, output, report, manifest)
    settings.thumbnails = out.thumbnails
    stats = pipeline.RunStats()
    try:
        with common.progress(console, paths, "attributing") as advance:
            for res in session.attribute(paths, stats):
                out.write(res)
                if on_result is not None:
                    on_result(res)
                advance(res)
        extra = {
            "as_set": session.attribute_set(stats) if as_set else None,
            "policy": session.policy.info(),
        }
        out.close(stats.summary(extra))
    except BaseException as exc:
        out.abort(exc)
        raise
    common.print_policy_notes(console, session.policy)
    if stats.n_inputs == 0:
        console.print(
            "[red]no inputs found[/] (folders are searched for .png .jpg .jpeg .webp "
            ".tif .tiff .bmp .gif)"
        )
    return common.exit_code(stats.n_inputs, stats.n_ok)
