"""`fpattr verify A B`: did the same model make A and B?"""

from __future__ import annotations

from pathlib import Path

import typer

from fpattr.cli import common


def register(app: typer.Typer) -> None:
    app.command("verify", no_args_is_help=True)(verify)


def verify(
    a: Path = typer.Argument(..., help="An image, or a folder of images from one source."),
    b: Path = typer.Argument(..., help="An image, or a folder of images from one source."),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    device: str = common.DeviceOpt,
    gallery: str = typer.Option(
        None,
        "--gallery",
        "-g",
        help="Gallery whose references calibrate the score (held out, shrunk toward the "
        "extractor card's calibration; default: your gallery for the backbone, if any).",
    ),
    threshold: float = common.ThresholdOpt,
    target_far: float = common.TargetFarOpt,
    fmt: str = common.FormatOpt,
    output: Path = common.OutputOpt,
    report: Path = common.ReportOpt,
    views: int = common.ViewsOpt,
    quiet: bool = common.QuietOpt,
) -> None:
    """Same model or not, with a calibrated probability and the threshold used.

    Files are compared image to image; a folder is pooled into one fingerprint.

    Example: fpattr verify suspect.png folder_of_known_model/
    """
    import time

    from rich.text import Text

    from fpattr import pipeline
    from fpattr.errors import FpattrError
    from fpattr.report.base import left_out
    from fpattr.report.manifest import build_manifest
    from fpattr.report.outputs import Outputs, check_output_paths
    from fpattr.session import Session

    check_output_paths(output, report, inputs=(a, b))  # before any work: a bad path is exit 2 now
    console = common.stderr_console(quiet)
    started = time.monotonic()  # the report's time covers loading and scoring
    backbone = common.backbone_for_gallery(backbone, gallery)  # type: ignore[assignment]
    bb = common.load_backbone(backbone, backbone_opt, device)
    g = None
    try:
        g = common.open_gallery(gallery, bb)
    except FpattrError:
        if gallery is not None:
            raise
    common.check_outputs_spare_run(output, report, gallery=g, backbone=bb)
    settings = pipeline.Settings(views=views, target_far=target_far, threshold=threshold)
    session = Session(bb, g, settings=settings)
    scoring = time.monotonic()
    res = session.verify(a, b)
    work_s = time.monotonic() - scoring  # images/s: decoding, embedding and deciding
    if res.get("status") == "ok" and res.get("decision") is None:
        console.print(
            "[yellow]warning:[/] uncalibrated (no calibration in the extractor's card and no "
            "--gallery with >= 2 models): no decision; pass --threshold or a --gallery."
        )
    for label, style, line in left_out(res):  # names and reasons print literally
        console.print(Text(f"{label} ", style=style).append(line, style=""))
    common.print_policy_notes(console, session.policy_info())
    common.print_notes(console, session.view_notes())
    manifest = build_manifest(
        "verify",
        backbone=bb.info(),
        gallery=g.info() if g else None,
        calibration=session.policy.info(),
        settings={**settings.to_dict(), "backbone_name": bb.name},
        plugins=common.plugin_versions(),
    )
    out = Outputs(fmt, output, report, manifest, started=started)
    common.print_notes(console, out.notes)
    try:
        out.write(res)
        counts = session.verify_counts(res)
        out.close(
            {
                **counts,
                "as_set": None,
                "policy": session.policy.info(),
                "images_per_second": (
                    round(counts["n_ok"] / work_s, 3) if counts["n_ok"] and work_s > 0 else None
                ),
            }
        )
    except BaseException as exc:
        out.abort(exc)
        raise
    if res["status"] == "error":
        raise typer.Exit(2)
    raise typer.Exit(1 if res["failed"] else 0)
