"""`fpattr evaluate BENCH`: benchmark figures on a folder-per-model bench."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any

import typer

from fpattr.cli import common
from fpattr.errors import ExitCode, UsageError
from fpattr.evaluation import DISJOINT_SPLITS

EVAL_FORMATS = ("table", "json", "jsonl", "csv")
_MAX_LISTED = 20


def register(app: typer.Typer) -> None:
    app.command("evaluate", no_args_is_help=True)(evaluate)


def evaluate(
    bench: Path = typer.Argument(
        ...,
        help="Bench folder: BENCH/MODEL_ID/*.png|jpg|webp... (one folder per model) and "
        "optionally BENCH/real/ (real photos, open-set unknowns only).",
    ),
    refs: int = typer.Option(
        10,
        "--refs",
        "-n",
        min=1,
        help="N files of each model folder are its references (see --ref-choice); the rest "
        "are queries.",
    ),
    ref_choice: str = typer.Option(
        "first",
        "--ref-choice",
        help="first: the first N files (sorted by name) are the references; random: N files "
        "drawn with --seed (references that span a folder's batches or prompts, as an "
        "analyst enrolling from several sources would).",
    ),
    min_queries: int = typer.Option(
        1, "--min-queries", min=1, help="Skip (and list) model folders with fewer queries."
    ),
    real_dir: str = typer.Option(
        "real", "--real-dir", help="Folder name holding real images (not a model)."
    ),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = typer.Option(
        None,
        "--backbone-opt",
        help="Backbone option KEY=VALUE (repeatable); with --compare, NAME:KEY=VALUE "
        "targets one backbone.",
    ),
    device: str = common.DeviceOpt,
    compare: str = typer.Option(
        None,
        "--compare",
        help="Comma-separated backbones measured side by side in one run on the same "
        "images, pairs and folds (replaces --backbone).",
    ),
    views: int = common.ViewsOpt,
    jpeg: int = typer.Option(
        None, "--jpeg", min=1, max=100, help="Robustness: re-encode every image as JPEG at Q."
    ),
    resize: float = typer.Option(
        None, "--resize", min=0.01, max=16.0, help="Robustness: bicubic rescale by this factor."
    ),
    crop: int = typer.Option(
        None, "--crop", min=1, help="Robustness: center crop C x C pixels (after --resize)."
    ),
    queries_only: bool = typer.Option(
        False,
        "--degrade-queries-only",
        help="Apply --resize/--crop/--jpeg to the queries (and real photos) only; the "
        "references stay clean, as enrolled.",
    ),
    processed_copies: bool = typer.Option(
        True,
        "--processed-copies/--no-processed-copies",
        help="With --degrade-queries-only: decide with the calibration made of the "
        "references' JPEG 75 or x0.5 copies, as attribute does with a gallery that "
        "`gallery add` enrolled (--no-processed-copies: the clean references' calibration).",
    ),
    pairs: int = typer.Option(
        10000, "--pairs", min=2, help="Verification pairs (balanced genuine/impostor)."
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        min=0,
        help="Seed of the pair sampling (and of the draw of --ref-choice random).",
    ),
    target_far: float = common.TargetFarOpt,
    threshold: float = typer.Option(
        None,
        "--threshold",
        callback=common.check_threshold,
        help="Decide with this cosine threshold instead of one fitted for --target-far (the "
        "decision metrics then give the false-accept rate it achieves; target FAR shows -).",
    ),
    min_probability: float = common.MinProbabilityOpt,
    splits: int = typer.Option(
        DISJOINT_SPLITS,
        "--splits",
        min=1,
        help="Random halves of the generators in the generator-disjoint protocol (each "
        "enrolled once: twice as many folds). Fewer run faster, and their figures move "
        "more with --seed.",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | jsonl | csv (stdout)."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write the results to this file instead of stdout."
    ),
    report: Path = typer.Option(
        None, "--report", help="Also write a self-contained HTML report (ROC, confusion)."
    ),
    plots: Path = typer.Option(
        None,
        "--plots",
        help="Also write roc.png, confusion.png and reliability.png into this folder (made "
        "if missing; its parent must exist, as for -o).",
    ),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Views per inference batch."),
    workers: int = common.WorkersOpt,
    max_mpx: float = typer.Option(64.0, "--max-mpx", min=0.01, help="Refuse larger images."),
    quiet: bool = common.QuietOpt,
) -> None:
    """Measure identification, verification, open-set figures and decision quality.

    Nothing is fitted on the queries being scored: ranking figures are threshold-free,
    decisions use the attribute/verify policy fitted on the references (see
    docs/methods/decision-policy.md). Exit code 1 when some images could not be read.

    Example: fpattr evaluate ./bench --refs 10 --format json --compare spectrum,default
    """
    code = run(
        bench,
        refs=refs,
        ref_choice=ref_choice,
        min_queries=min_queries,
        real_dir=real_dir,
        backbone=backbone,
        backbone_opt=backbone_opt,
        device=device,
        compare=compare,
        views=views,
        jpeg=jpeg,
        resize=resize,
        crop=crop,
        queries_only=queries_only,
        processed_copies=processed_copies,
        pairs=pairs,
        seed=seed,
        target_far=target_far,
        threshold=threshold,
        min_probability=min_probability,
        splits=splits,
        fmt=fmt,
        output=output,
        report=report,
        plots=plots,
        batch_size=batch_size,
        workers=workers,
        max_mpx=max_mpx,
        quiet=quiet,
    )
    raise typer.Exit(code)


def _note(console: Any, style: str, label: str, message: str) -> None:
    """One stderr line; user-controlled text (paths, folder names) never parsed as markup."""
    from rich.text import Text

    from fpattr.report.base import printable

    line = Text(label + " ", style=style) + Text(printable(message))
    console.print(line, soft_wrap=True)


def split_backbone_opts(names: list[str], opts: list[str] | None) -> dict[str, list[str]]:
    """``KEY=VALUE`` goes to every backbone, ``NAME:KEY=VALUE`` to backbone NAME only."""
    out: dict[str, list[str]] = {n: [] for n in names}
    for opt in opts or []:
        key = opt.partition("=")[0]
        if ":" in key:
            name, _, rest = opt.partition(":")
            if name not in out:
                raise UsageError(f"--backbone-opt {opt!r}: {name!r} is not among {names}")
            out[name].append(rest)
        else:
            for n in names:
                out[n].append(opt)
    return out


def run(
    bench: Path,
    *,
    refs: int = 10,
    ref_choice: str = "first",
    min_queries: int = 1,
    real_dir: str = "real",
    backbone: str = "auto",
    backbone_opt: list[str] | None = None,
    device: str = "auto",
    compare: str | None = None,
    views: int | None = None,
    jpeg: int | None = None,
    resize: float | None = None,
    crop: int | None = None,
    queries_only: bool = False,
    processed_copies: bool = True,
    pairs: int = 10000,
    seed: int = 0,
    target_far: float = 0.01,
    threshold: float | None = None,
    min_probability: float = 0.5,
    splits: int = DISJOINT_SPLITS,
    fmt: str = "table",
    output: Path | None = None,
    report: Path | None = None,
    plots: Path | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    max_mpx: float = 64.0,
    quiet: bool = False,
) -> int:
    """The evaluate run behind the command; returns the exit code."""
    from fpattr.evaluation import protocol
    from fpattr.evaluation import report as rep

    started = time.perf_counter()
    console = common.stderr_console(quiet)
    if fmt not in EVAL_FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose {' | '.join(EVAL_FORMATS)}")
    from fpattr.report.outputs import output_format, write_error

    # -o x.json writes JSON, as attribute/verify/provenance do (a break-it pass found the
    # table in ev.json)
    fmt = output_format(fmt, output)
    if fmt not in EVAL_FORMATS:
        raise UsageError(
            f"evaluate writes {' | '.join(EVAL_FORMATS)} to --output, not {fmt!r} (suffix of "
            f"{str(output)!r}); the HTML report is --report"
        )
    names = [n.strip() for n in compare.split(",")] if compare is not None else [backbone]
    if compare is not None and not all(names):  # ("default,,spectrum": break-it 28b)
        raise UsageError(f"--compare has an empty entry: {compare!r}; list backbone names")
    if len(set(names)) != len(names):
        raise UsageError(f"--compare names a backbone twice: {compare}")
    if not processed_copies and not queries_only:  # accepted and doing nothing (break-it 28b)
        raise UsageError(
            "--no-processed-copies acts with --degrade-queries-only only (every image "
            "processed alike needs no processed calibration)"
        )
    transform = protocol.Transform(jpeg=jpeg, resize=resize, crop=crop, queries_only=queries_only)
    cfg = protocol.EvalConfig(
        refs=refs,
        ref_choice=ref_choice,
        pairs=pairs,
        seed=seed,
        min_queries=min_queries,
        real_dir=real_dir,
        views=views,
        batch_size=batch_size,
        workers=workers,
        max_pixels=int(max_mpx * 1e6),
        transform=transform,
        target_far=target_far,
        threshold=threshold,
        min_probability=min_probability,
        splits=splits,
        processed_references=processed_copies,
    )
    from fpattr.io.atomic import check_writable_folder
    from fpattr.report.outputs import check_output_paths

    # before any work, as attribute and verify: a path that cannot be written is exit 2
    # now (a break-it pass lost a whole evaluation to -o /nonexistent/x.json: exit 70)
    check_output_paths(output, report, inputs=[bench])
    if plots is not None:
        parent = plots.absolute().parent
        if not parent.is_dir():  # (it made /nonexistent/p whole, unlike -o; break-it 28b)
            raise UsageError(
                f"cannot write --plots folder {str(plots)!r}: {str(parent)!r} not found"
            )
        check_writable_folder(plots, "--plots folder")
    bench_obj = protocol.discover_bench(
        bench,
        refs,
        real_dir=real_dir,
        min_queries=min_queries,
        ref_choice=ref_choice,
        seed=seed,
    )
    for s in bench_obj.skipped:
        _note(console, "yellow", "skipped", f"model folder {s['model']!r}: {s['reason']}")
    if bench_obj.ignored_files:
        first = bench_obj.ignored_files[0]
        _note(
            console,
            "yellow",
            "note:",
            f"{len(bench_obj.ignored_files)} file(s) in {bench} not read, e.g. "
            f"{first['path']}: {first['reason']} (each with its reason in "
            "bench.ignored_files)",
        )
    if bench_obj.ignored_subfolders:
        sub = bench_obj.ignored_subfolders
        _note(
            console,
            "yellow",
            "note:",
            f"{len(sub)} folder(s) inside model (or real) folders not read, e.g. {sub[0]} "
            "(evaluate reads the images directly in BENCH/<model_id>/; listed in "
            "bench.ignored_subfolders)",
        )
    opts = split_backbone_opts(names, backbone_opt)
    backbones = [common.load_backbone(n, opts[n], device) for n in names]
    for bb in backbones:  # the results must not replace a model or card the run reads
        common.check_outputs_spare_run(output, report, backbone=bb)

    paths, _, _ = bench_obj.images()
    with common.progress(console, paths, "embedding") as advance:
        results = protocol.evaluate(
            bench_obj,
            backbones,
            cfg,
            on_image=lambda ok: advance({"status": "ok" if ok else "error"}),
        )
    doc = rep.build_document(results, bench_obj, cfg, time.perf_counter() - started)

    failed = {f["path"]: f["error"] for r in results for f in r.summary["failed"]}
    for k, (path, err) in enumerate(failed.items()):
        if k == _MAX_LISTED:
            _note(console, "red", "...", f"and {len(failed) - _MAX_LISTED} more failed images")
            break
        _note(console, "red", "failed", f"{path}: {err}")

    dups = results[0].summary.get("duplicate_queries") or [] if results else []
    if dups:
        _note(
            console,
            "bold yellow",
            "warning:",
            f"{len(dups)} query file(s) are byte-identical to a reference (same sha256) and "
            f"were left out, e.g. {dups[0]['path']} = {dups[0]['same_as']}: copies of the "
            "references would score as perfect matches",
        )
    summary0 = results[0].summary if results else {}
    found = {s["model"] for s in bench_obj.skipped}
    for s in summary0.get("skipped") or []:  # folders emptied once the images were read
        if s["model"] not in found:
            _note(console, "yellow", "skipped", f"model folder {s['model']!r}: {s['reason']}")
    for s in summary0.get("short_of_refs") or []:
        _note(
            console,
            "yellow",
            "note:",
            f"model {s['model']!r} has {s['n_refs']} reference(s), fewer than --refs {refs}: "
            + (
                "the first files by name were references"
                if ref_choice == "first"
                else f"the references were drawn (--seed {seed})"
            )
            + " before some were left out",
        )
    rep_imgs = summary0.get("repeated_images") or []
    if rep_imgs:
        _note(
            console,
            "yellow",
            "left out:",
            f"{len(rep_imgs)} repeated image(s) (same sha256 under one label, counted once), "
            f"e.g. {rep_imgs[0]['path']} = {rep_imgs[0]['same_as']}; listed in repeated_images",
        )
    conflicts = summary0.get("conflicting_labels") or []
    if conflicts:
        c = conflicts[0]
        _note(
            console,
            "bold yellow",
            "warning:",
            f"{len(conflicts)} image(s) appear under two labels (same sha256) and every copy "
            f"was left out, e.g. {' = '.join(c['paths'])} ({', '.join(c['labels'])}): an "
            "image cannot come from two sources; listed in conflicting_labels",
        )
    flat = results[0].summary.get("flat_images") or [] if results else []
    if flat:
        _note(
            console,
            "yellow",
            "left out:",
            f"{len(flat)} image(s) whose every view is flat (no fingerprint evidence), e.g. "
            f"{flat[0]['path']} ({flat[0]['role']}); listed in flat_images",
        )
    if plots is not None:
        for p in rep.write_plots(plots, results):
            _note(console, "green", "wrote", p)
    if report is not None:
        try:
            rep.write_html(report, doc, results)
        except OSError as exc:
            raise write_error(str(report), exc) from exc
        _note(console, "green", "wrote", str(report))
    if output is not None:
        from fpattr.io.atomic import atomic_write_text

        buf = io.StringIO()
        rep.write(doc, fmt, buf)
        try:
            atomic_write_text(output, buf.getvalue())
        except OSError as exc:  # a full disk: the one-line write error, not an internal one
            raise write_error(str(output), exc) from exc
    else:
        rep.write(doc, fmt, sys.stdout)
    return int(ExitCode.SOME_FAILED if failed else ExitCode.OK)
