"""`fpattr attribute`: which model made each image (or "unknown")."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import typer

from fpattr.cli import common


def register(app: typer.Typer) -> None:
    app.command("attribute", no_args_is_help=True)(attribute)


def attribute(
    paths: list[Path] = typer.Argument(
        None, help="Image files and/or folders (recursive); or --files-from.", show_default=False
    ),
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
    workers: int = common.WorkersOpt,
    max_mpx: float = typer.Option(64.0, "--max-mpx", min=0.01, help="Refuse larger images."),
    quiet: bool = common.QuietOpt,
    files_from: Path = typer.Option(
        None,
        "--files-from",
        help="Also read input paths from this file ('-': stdin): one path per line, or a "
        'manifest: .jsonl lines with a "path" (an fpattr results file works) or a .csv '
        'with a "path" column. Relative paths are from the current folder.',
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the jsonl file given as --output (e.g. after Ctrl-C): keep its results "
        "(by path; an input whose sha256 changed is redone, a result whose path is no longer "
        "among the inputs is dropped), process only the other inputs and append them. Needs "
        "the same backbone, gallery and decision settings.",
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local: this process; ray: map the same pipeline over a Ray cluster "
        "(needs fpattr[ray]; see 'Distributed runs (Ray)' in the user guide).",
    ),
    ray_address: str = typer.Option(
        None,
        "--ray-address",
        help="With --engine ray: join this cluster (HOST:PORT of `ray start --head`, or "
        "auto: RAY_ADDRESS or the latest `ray start` here); without it a local cluster is "
        "started for the run and stopped after.",
    ),
    ray_workers: int = typer.Option(
        None,
        "--ray-workers",
        min=1,
        help="With --engine ray: actors, one Session each, at most one per cluster CPU "
        "(default: one per CPU). Each reserves an equal share of whole CPUs and sizes its "
        "inference (lanes x ONNX Runtime threads) to it; the manifest records the plan.",
    ),
) -> None:
    """Attribute every image to its most likely source models, or "unknown".

    Example: fpattr attribute ./images --top-k 3 --report report.html

    Interrupting: with `-o FILE.jsonl` every finished result is written and flushed to
    FILE.jsonl as it is done. Ctrl-C (SIGINT, exit 130) or SIGTERM (exit 143) stops after
    the current record, so the file holds only complete lines (a `manifest` line, then one
    `result` line per finished input) and no `summary` line, which tells it is incomplete;
    other output files are not written and no temporary file is left.

    Resuming: `fpattr attribute --resume -o FILE.jsonl INPUTS...` with the same inputs and
    options keeps each result whose input still has the recorded sha256, redoes the others
    and the inputs not yet done, and appends. A resumed file holds one `manifest` line per
    run (the later ones carry `"resumed": {"kept", "redone", "dropped_partial_line"}`),
    every input's `result` line exactly once, and one `summary` line at the end, counting
    every result in the file (plus `"resumed": {"runs", "kept", "redone", "new"}`). A
    missing FILE starts a new run; in a finished one only changed inputs are redone and
    its summary line is replaced by the new one. Results whose path is not among the
    current inputs (as walked: a file deleted since, or another folder's) are dropped, with
    a note on stderr, so the summary counts only current inputs. `--resume` needs a jsonl
    `-o` and does not go with `--as-set`. Output paths are checked before any work (exit 2).

    Output files inside a scanned folder: the run's own `--output` and `--report` files
    (and their temporary files) are not inputs and never appear among the results. Files
    other than a streamed jsonl `-o` get their temporary file only when the run ends, so a
    killed run leaves none behind.

    Exit status: 0 all inputs done, 1 some failed, 2 usage error or no input read, 74 the
    results could not be written (disk full, I/O error: "cannot write results to ..."),
    130/143/129 interrupted. A closed pipe on stdout (`| head`) stops quietly.
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
        files_from=files_from,
        resume=resume,
        engine=engine,
        ray_address=ray_address,
        ray_workers=ray_workers,
    )
    raise typer.Exit(code)


def run(
    paths: list[Path] | None,
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
    workers: int | None = None,
    max_mpx: float = 64.0,
    quiet: bool = False,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    files_from: Path | None = None,
    resume: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
) -> int:
    """The attribute run behind the command (the demo reuses it); returns the exit code."""
    from fpattr import pipeline
    from fpattr.errors import UsageError
    from fpattr.io.atomic import claim_output, uninterrupted
    from fpattr.report.manifest import build_manifest
    from fpattr.report.outputs import Outputs, check_format, check_output_paths, output_format
    from fpattr.report.resume import Resume, check_resume_options
    from fpattr.session import Session

    console = common.stderr_console(quiet)
    check_format(fmt)
    if resume:
        check_resume_options(fmt, output, as_set)
    if engine not in ("local", "ray"):
        raise UsageError(f"unknown engine {engine!r}; choose local | ray")
    if engine == "local" and (ray_address is not None or ray_workers is not None):
        raise UsageError("--ray-address and --ray-workers go with --engine ray")
    if engine == "ray":  # a missing extra is a usage error now, before any model loads
        from fpattr.engine_ray import require_ray

        require_ray()
    given = list(paths or [])  # the manifest lists these; --files-from's are in its file
    paths = list(given)
    streamed = False  # --files-from read as the run goes (paths: an iterator)
    if files_from is not None:
        from fpattr.io.pathlist import iter_path_list

        listed = map(Path, iter_path_list(files_from))  # opened now: unreadable is exit 2
        # read as the run goes, so `find ... | fpattr attribute --files-from -` answers
        # as the paths come and a list of millions is never held (it was read whole
        # first); whole first where every input must be known before the first result:
        # --resume plans against them, the Ray engine hands them to its dataset, and an
        # output file that exists already is checked against every input before it is
        # replaced
        outputs_exist = any(
            p is not None and str(p) != "-" and Path(p).exists() for p in (output, report)
        )
        if resume or engine == "ray" or outputs_exist:
            paths += listed
        else:
            paths, streamed = itertools.chain(given, listed), True
    elif not given:
        raise UsageError("give image files or folders, or --files-from FILE")
    # before any work: exit 2 now, not after the run (no existing output when streamed)
    check_output_paths(output, report, inputs=given if streamed else paths)
    backbone = common.backbone_for_gallery(backbone, gallery)  # type: ignore[assignment]
    bb = common.load_backbone(backbone, backbone_opt, device)
    g = common.open_gallery(gallery, bb, need_models=True)
    common.check_outputs_spare_run(output, report, gallery=g, backbone=bb)
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
        gallery={**g.info(), "index": session.index_info()},
        calibration=session.policy.info(),
        settings={
            **settings.to_dict(),
            "as_set": as_set,
            "provenance": session.provenance,  # metadata claims read (their CSV columns)
            "backbone_name": bb.name,
            "inputs": [str(p) for p in given],
            **({"files_from": str(files_from)} if files_from is not None else {}),
        },
        plugins=common.plugin_versions(),
    )
    ray_run = None
    # what this run holds until it ends, released in one place: the Ray engine (actors, a
    # local cluster) and the output files, claimed against a second run
    held = ExitStack()
    if engine == "local":  # the threads this run uses (workers None in the settings: default)
        manifest = {
            **manifest,
            "engine": {
                "name": "local",
                "decode_workers": settings.workers or pipeline.decode_workers(),
                "onnx_threads_per_lane": getattr(bb, "threads", None),
                "lanes": pipeline.inference_lanes(bb),
            },
        }
    if engine == "ray":  # joined or started now: the manifest records the actors' plan
        from fpattr import engine_ray

        ray_run = engine_ray.RayEngine.start(
            address=ray_address,
            workers=ray_workers,
            backbone=backbone or "auto",
            backbone_opt=backbone_opt,
            device=device,
            decode_workers=workers,
            notify=lambda msg: console.print(msg, highlight=False, markup=False),
        )
        held.callback(ray_run.close)
        try:  # beside the settings, not in them: a resume may switch engines
            manifest = {**manifest, "engine": ray_run.info()}
        except BaseException:
            held.close()
            raise
    stats = pipeline.RunStats()
    todo: Any = paths if streamed else list(paths)  # a list: progress counts it first
    items: list[Any] | None = None  # inputs already walked (--resume's leftovers)
    state: Resume | None = None
    # the run's own output files are not inputs, even inside a scanned folder
    own = [p for p in (output, report) if p is not None and str(p) != "-"]
    try:
        for path in own:
            held.enter_context(claim_output(path))
        if resume and output is not None:
            state = Resume.prepare(output, paths, manifest, console, exclude=own)
            if state is not None:
                items = state.todo
                todo = [it.path for it in state.todo]
                manifest = {**manifest, "resumed": state.manifest_info()}
        out = Outputs(fmt, output, report, manifest, append=state is not None)
        common.print_notes(console, out.notes)
    except BaseException:
        held.close()
        raise
    settings.thumbnails = out.thumbnails
    n_done = 0
    try:
        if state is not None:
            for rec in state.kept:
                state.count(rec, stats)
                out.replay(rec)
        with common.progress(console, todo, "attributing") as advance:
            if ray_run is not None:
                from fpattr.io.walk import iter_inputs, once_per_path

                # the driver walks (same walker, order and exclusions); actors decide
                spec = ray_run.spec(
                    backbone or "auto",
                    backbone_opt,
                    device,
                    str(common.gallery_path(gallery, bb.name).absolute()),
                    settings,
                    pool=as_set,
                )
                walked = items if items is not None else iter_inputs(paths, exclude=own)
                walked = once_per_path(walked, stats.count_repeat)  # as Session.attribute
                results = ray_run.attribute(walked, stats, spec, session)
            else:
                results = session.attribute(paths, stats, items=items, exclude=own)
            for res in results if todo else ():
                with uninterrupted():  # a signal waits until this record is written whole
                    out.write(res)
                    n_done += 1
                if on_result is not None:
                    on_result(res)
                advance(res)
        extra = {
            "as_set": session.attribute_set(stats) if as_set else None,
            "policy": session.policy_info(),
        }
        if ray_run is not None:  # what each actor ran with, and how many inputs it did
            extra["engine"] = ray_run.summary_info()
        summary = stats.summary(extra)
        if state is not None:
            summary = state.finish_summary(summary, stats)
        with uninterrupted():  # the summary line and the report files are written whole
            out.close(summary)
    except BaseException as exc:
        out.abort(exc)
        if isinstance(exc, KeyboardInterrupt) and output is not None and str(output) != "-":
            kind = output_format(fmt, output)
            if kind == "jsonl":
                msg = (
                    f"interrupted: {n_done} more result(s) written to {output}; continue "
                    "with the same command plus --resume"
                )
            else:  # break-it: the docs promised kept records whatever the format
                msg = (
                    f"interrupted: nothing written to {output} (a {kind} file is written "
                    f"whole by a finished run only; the {n_done} result(s) done are lost: "
                    "-o FILE.jsonl streams every finished record and can be resumed)"
                )
            # said under -q too: where the results went is not progress
            common.stderr_console().print(msg, highlight=False, markup=False)
        if isinstance(exc, KeyboardInterrupt) and report is not None and str(report) != "-":
            # (the report went unmentioned: break-it 28)
            common.stderr_console().print(
                f"interrupted: nothing written to {report} (the report is written whole by "
                "a finished run only)",
                highlight=False,
                markup=False,
            )
        raise
    finally:
        held.close()
    common.print_policy_notes(console, session.policy_info())
    common.print_notes(console, session.view_notes())
    if stats.n_inputs == 0:
        skipped = f" ({stats.n_skipped} file(s) skipped: not images)" if stats.n_skipped else ""
        # the reason for exit 2 is an error, not progress: said under -q too
        common.stderr_console().print(f"[red]no images found[/]{skipped}")
    return common.exit_code(stats.n_inputs, stats.n_ok)
