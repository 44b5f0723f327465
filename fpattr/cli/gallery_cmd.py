"""`fpattr gallery ...`: enrol models zero-shot from a few references, manage galleries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from fpattr.cli import common

gallery_app = typer.Typer(
    help="Enrol generative models from a few reference images (no retraining) and manage "
    "galleries.\n\nExample: fpattr gallery add my-model refs/*.png",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(gallery_app, name="gallery")


def _emit(obj: Any, fmt: str, table: Any) -> None:
    if fmt == "none":
        return
    if fmt == "json":
        from fpattr.report.base import dumps

        # strict JSON whatever the bytes of a name: not-UTF-8 bytes as \xNN, with the
        # exact bytes in *_bytes_hex beside (as attribute's results), never lone surrogates
        print(dumps(obj, indent=2))
    else:
        from rich.console import Console

        Console().print(_folded(table))


def _folded(table: Any) -> Any:
    """Wrap cells instead of cutting them: model names differing only at the end must stay
    distinguishable at any terminal width."""
    for col in table.columns:
        col.overflow = "fold"
    return table


@gallery_app.command("add", no_args_is_help=True)
def add(
    name: str = typer.Argument(..., help="Model name, e.g. sdxl-turbo."),
    images: list[Path] = typer.Argument(..., help="Reference images and/or folders."),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    device: str = common.DeviceOpt,
    gallery: str = common.GalleryOpt,
    replace: bool = typer.Option(False, "--replace", help="Replace the model if enrolled."),
    append: bool = typer.Option(False, "--append", help="Add references to an enrolled model."),
    views: int = common.ViewsOpt,
    processed_copies: bool = typer.Option(
        True,
        "--processed-copies/--no-processed-copies",
        help="Also enrol each reference's JPEG 75 and x0.5 copies: a JPEG query against "
        "PNG references, or a query smaller than them, is then decided with a calibration "
        "made of references processed the same way.",
    ),
    fmt: str = common.format_option("table", "json", "none"),
    quiet: bool = common.QuietOpt,
) -> None:
    """Enrol a model from a few reference images (zero-shot: no retraining).

    Example: fpattr gallery add stylegan2-ffhq refs/stylegan2/*.png
    """
    from rich.markup import escape

    from fpattr import gallery as gal
    from fpattr.errors import NoReferenceError, UsageError
    from fpattr.io.atomic import check_writable_folder
    from fpattr.pipeline import Settings
    from fpattr.report.base import printable
    from fpattr.session import Session

    if replace and append:
        raise UsageError("--replace and --append are exclusive")
    gal.check_model_name(name)
    if Path(name).is_file():
        # `gallery add *.png` (the name forgotten) enrolled a model named after the first
        # file, without it (break-it 28); a folder of the model's name stays fine
        raise UsageError(
            f"the model name {name!r} is a file here: give the model's name first "
            f"(fpattr gallery add MODEL {name} ...)"
        )
    console = common.stderr_console(quiet)
    # an existing named gallery keeps its backbone (as attribute, verify and calibrate do)
    backbone = common.backbone_for_gallery(backbone, gallery)  # type: ignore[assignment]
    bb = common.load_backbone(backbone, backbone_opt, device)
    path = common.editable_gallery_path(gallery, bb.name)
    check_writable_folder(path, "gallery")  # before embedding: a read-only gallery is exit 2
    session = Session(bb, settings=Settings(views=views))
    with common.progress(console, images, f"enrolling {name}") as advance:
        # a line, not a status spinner: a second live display inside the progress bar is
        # an error before rich 14.1 (review 28), and pyproject allows rich 13
        def stage(text: str) -> None:
            console.print(escape(text))

        try:
            result = session.enrol(
                name,
                images,
                replace=replace,
                append=append,
                processed_copies=processed_copies,
                save_to=path,
                on_each=advance,
                on_stage=stage,
            )
        except NoReferenceError as exc:  # every reference's reason, then the verdict
            for x in exc.left_out:
                why = printable(str(x["path"]) + ": " + str(x["error"]))
                kind = "[yellow]skipped[/]" if x.get("skipped") else "[red]failed[/]"
                common.print_error(console, f"{kind} {escape(why)}")
            common.print_error(console, f"[red]{escape(printable(str(exc)))}[/]")
            raise typer.Exit(2) from None
    shown = escape(repr(name))  # model names are the user's text: "[...]" is not markup
    for x in result["failed"]:  # why the exit is 1 (or 2): said under -q too
        why = printable(str(x["path"]) + ": " + str(x["error"]))
        common.print_error(console, f"[red]failed[/] {escape(why)}")
    for x in result["skipped"]:
        why = printable(str(x["path"]) + ": " + str(x["error"]))
        console.print(f"[yellow]skipped[/] {escape(why)}")
    mine = result["enrolment_check"]
    if mine is not None and mine["checkable"]:
        console.print(
            f"leave-one-out: {mine['recognised']}/{mine['n_refs']} references of {shown} "
            f"recognised as {shown} ({mine['unknown']} unknown, {mine['ambiguous']} "
            f"ambiguous, {mine['inconclusive']} inconclusive, confused with "
            f"{escape(str(mine['confused_with'] or 'none'))})"
        )
    for w in result["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(printable(w))}")
    for w in result["notes"]:
        console.print(f"[yellow]note:[/] {escape(printable(w))}")
    from rich.table import Table

    t = Table(title=f"enrolled {name} in {path}")
    for k in ("model", "n_refs", "n_models", "recognised (LOO)", "backbone"):
        t.add_column(k)
    rec = f"{mine['recognised']}/{mine['n_refs']}" if mine else "-"
    t.add_row(name, str(result["n_refs"]), str(result["n_models"]), rec, bb.id)
    _emit(result, fmt, t)
    raise typer.Exit(1 if result["failed"] else 0)


@gallery_app.command("calibrate")
def calibrate(
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    gallery: str = common.GalleryOpt,
    target_far: float = common.TargetFarOpt,
    fmt: str = common.format_option("table", "json"),
) -> None:
    """Show the calibration fitted from the gallery's references and how each model's
    references fare under leave-one-out (refitted from the references on every use, so
    it follows every `gallery add` / `remove`).

    Example: fpattr gallery calibrate --format json
    """
    from rich.table import Table

    from fpattr.pipeline import Settings
    from fpattr.report.base import fmt_rate
    from fpattr.session import Session

    backbone = common.backbone_for_gallery(backbone, gallery)  # type: ignore[assignment]
    bb = common.load_backbone(backbone, backbone_opt)
    g = common.open_gallery(gallery, bb, need_models=True)
    session = Session(bb, g, settings=Settings(target_far=target_far), provenance=False)
    pol = session.policy
    cals = [pol.calibration("image-vs-model"), pol.calibration("image-vs-image")]
    # small images (under two views a side) are decided with the card's calibration at
    # their effective view count as the prior: show those thresholds too
    cals += [pol.calibration("image-vs-model", views=v) for v in pol.card_view_counts()]
    # JPEG and down-scaled queries: the calibrations made of the references' copies
    for kind in g.processed_kinds():
        processed = session.processed_policy(kind)
        if processed is not None:
            cals.append(processed.calibration("image-vs-model"))
    check = pol.enrolment_check()
    warnings = [w for m in g.models for w in pol.enrolment_warnings(m)]
    t = Table(
        "comparison",
        "threshold",
        "FAR",
        "achieved",
        "source",
        "gen/imp",
        "weight",
        "look-alike",
        title=f"calibration of {g.path}",
        caption="FAR: the false-accept rate the threshold is fitted for; achieved: what it "
        "accepts of the held-out impostor scores; gen/imp: held-out genuine/impostor scores "
        "from the references; weight: the gallery's share against the card's prior; "
        "look-alike: how often a generator not enrolled is taken to pass for an enrolled "
        "one (left-out models reaching the 1 % FAR threshold, rule of succession), which "
        "caps the odds of a name",
    )
    for c in cals:
        if c is None:
            continue
        far, got = fmt_rate(c.target_far), fmt_rate(c.achieved_far)
        level = c.details.get("fitted_far_level")
        if level is not None and c.target_far is not None and level < c.target_far:
            # the column said 1.00 % beside a note "fitted at FAR 0.00129" (break-it 28b)
            far += f" (fitted at {fmt_rate(level)})"
        what = c.comparison if c.views is None else f"{c.comparison}, {c.views} view(s)"
        if c.processing:
            what += f", {c.processing} queries"
        t.add_row(
            what,
            f"{c.threshold:.3f}",
            far,
            got,
            c.source,
            f"{c.n_genuine}/{c.n_impostor}",
            f"{c.gallery_weight:.2f}",
            f"{c.details['look_alike']['unseen_named_rate']:.1%}"
            if "look_alike" in c.details
            else "-",
        )
    t2 = Table(
        "model",
        "refs",
        "recognised",
        "unknown",
        "ambig.",
        "inconcl.",
        "confused with",
        title="references as queries (leave-one-out)",
    )
    for m, r in check.items():
        conf = ", ".join(f"{k} {v}" for k, v in r["confused_with"].items()) or "-"
        rec = str(r["recognised"]) if r["checkable"] else "n/a (1 ref)"
        t2.add_row(
            m,
            str(r["n_refs"]),
            rec,
            str(r["unknown"]),
            str(r["ambiguous"]),
            str(r["inconclusive"]),
            conf,
        )
    if fmt == "json":
        _emit(
            {
                "gallery": g.info(),
                "score_space": pol.space.info(),
                "calibrations": [c.info() for c in cals if c],
                "enrolment_check": check,
                "warnings": warnings,
            },
            fmt,
            None,
        )
    else:
        from rich.console import Console

        Console().print(_folded(t))
        if check:
            Console().print(_folded(t2))
        else:  # (an empty table with one model enrolled: break-it 28)
            print(
                "references as queries (leave-one-out): needs at least 2 models (a reference "
                f"is recognised against the others); {len(g.models)} enrolled",
                file=sys.stderr,
            )
        print(f"scores: {pol.space.info()['method']}", file=sys.stderr)
        for c in cals:
            if c is not None:
                label = c.comparison + (f" ({c.processing} queries)" if c.processing else "")
                print(f"{label}: {c.why}", file=sys.stderr)
                for note in c.details.get("notes", []):
                    print(f"note: {note}", file=sys.stderr)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def _load(gallery: str | None, backbone: str) -> Any:
    from fpattr.backbones.resolve import resolve_backbone_name
    from fpattr.gallery import Gallery

    return Gallery.load(common.gallery_path(gallery, resolve_backbone_name(backbone)))


@gallery_app.command("list")
def list_(
    backbone: str = common.BackboneOpt,
    gallery: str = common.GalleryOpt,
    all_: bool = typer.Option(False, "--all", help="List the registered (shipped) galleries."),
    fmt: str = common.format_option("table", "json"),
) -> None:
    """List the models of a gallery (or, with --all, every registered gallery).

    Example: fpattr gallery list --format json
    """
    from rich.table import Table

    if all_:
        from fpattr.plugins import galleries

        rows = [
            {
                "name": e.name,
                "plugin": e.plugin,
                "backbone": e.meta.get("backbone"),
                "description": e.description,
            }
            for e in galleries()
        ]
        t = Table("name", "plugin", "backbone", "description", title="registered galleries")
        for r in rows:
            t.add_row(*(str(r[k] or "") for k in ("name", "plugin", "backbone", "description")))
        _emit(rows, fmt, t)
        return
    g = _load(gallery, backbone)
    rows = [
        {
            "model": n,
            "n_refs": len(m.refs),
            "created": m.created,
            "processed_copies": sorted(m.processed),
        }
        for n, m in g.models.items()
    ]
    t = Table(
        "model", "refs", "processed copies", "created", title=f"{g.path} ({g.backbone.get('id')})"
    )
    for r in rows:
        copies = ", ".join(r["processed_copies"]) or "-"
        t.add_row(r["model"], str(r["n_refs"]), copies, r["created"])
    _emit({"gallery": g.info(), "models": rows}, fmt, t)


@gallery_app.command("show", no_args_is_help=True)
def show(
    name: str = typer.Argument(..., help="Enrolled model name."),
    backbone: str = common.BackboneOpt,
    gallery: str = common.GalleryOpt,
    fmt: str = common.format_option("table", "json"),
) -> None:
    """Show one enrolled model: its references and their hashes.

    Example: fpattr gallery show stylegan2-ffhq
    """
    from rich.table import Table

    from fpattr.errors import GalleryError

    g = _load(gallery, backbone)
    if name not in g.models:
        raise GalleryError(f"no model {name!r} in {g.path} (has: {', '.join(g.models) or '-'})")
    m = g.models[name]
    t = Table("reference", "sha256", title=f"{name}: {len(m.refs)} refs, created {m.created}")
    from rich.text import Text

    from fpattr.report.base import printable

    for r in m.refs:  # a reference's name as text (no markup), not-UTF-8 bytes as \xNN
        t.add_row(Text(printable(r.get("path"))), str(r.get("sha256")))
    _emit(
        {
            "model": name,
            "created": m.created,
            "refs": m.refs,
            "meta": m.meta,
            "dim": int(m.embeddings.shape[1]),
            "processed_copies": sorted(m.processed),
        },
        fmt,
        t,
    )


@gallery_app.command("remove", no_args_is_help=True)
def remove(
    name: str = typer.Argument(..., help="Enrolled model name."),
    backbone: str = common.BackboneOpt,
    gallery: str = common.GalleryOpt,
) -> None:
    """Remove a model from the gallery (atomic).

    Example: fpattr gallery remove old-model
    """
    from fpattr.backbones.resolve import resolve_backbone_name
    from fpattr.gallery import Gallery, editing

    path = common.editable_gallery_path(gallery, resolve_backbone_name(backbone))
    binding = Gallery.load(path).backbone  # refuses a missing/corrupt gallery first
    with editing(path, binding) as g:
        g.remove(name)
        left = len(g.models)
    print(
        f"removed {name} from {path}; decisions now calibrate on the remaining references "
        "(`fpattr gallery calibrate` shows the refitted calibration)"
        if left
        else f"removed {name} from {path}: the gallery is now empty; enrol models with "
        "`fpattr gallery add` before attributing against it",
        file=sys.stderr,
    )


@gallery_app.command("export", no_args_is_help=True)
def export(
    dest: Path = typer.Argument(..., help="Output file (.npz)."),
    backbone: str = common.BackboneOpt,
    gallery: str = common.GalleryOpt,
) -> None:
    """Export a gallery to one portable .npz file (JSON metadata + float32; no pickle).

    Example: fpattr gallery export team-gallery.npz
    """
    from fpattr.errors import UsageError
    from fpattr.gallery import export_npz
    from fpattr.io.atomic import check_writable

    if str(dest) == "-":  # (it wrote a file named "-")
        raise UsageError("gallery export writes a file: name one (stdout is not supported)")
    check_writable(dest, "export")  # exit 2 before loading anything
    g = _load(gallery, backbone)
    common.check_outputs_spare_run(dest, gallery=g)  # a backup must not wreck the original
    export_npz(g, dest)
    print(f"exported {len(g.models)} models to {dest} (sha256 {g.sha256[:16]}...)", file=sys.stderr)


@gallery_app.command("import", no_args_is_help=True)
def import_(
    src: Path = typer.Argument(..., help="A file written by `fpattr gallery export`."),
    gallery: str = common.GalleryOpt,
    replace: bool = typer.Option(False, "--replace", help="Overwrite models of the same name."),
) -> None:
    """Merge an exported gallery into a gallery (the backbones must match).

    Example: fpattr gallery import team-gallery.npz
    """
    from fpattr.errors import GalleryError
    from fpattr.gallery import editing, import_npz
    from fpattr.io.atomic import check_writable_folder
    from fpattr.processing import PROCESSINGS
    from fpattr.report.base import printable

    src_g = import_npz(src)
    path = common.editable_gallery_path(gallery, src_g.backbone.get("name", "default"))
    check_writable_folder(path, "gallery")
    with editing(path, src_g.backbone) as g:
        before = g.processed_kinds() if g.models else None
        for name, m in src_g.models.items():
            if name in g.models and not replace:
                raise GalleryError(f"model {name!r} already in {path}; use --replace")
            g.models[name] = m
        if before is not None:
            note = g.processed_change_note(before)
        elif set(g.processed_kinds()) != set(PROCESSINGS):
            note = (
                "the imported models do not all carry processed copies of their references "
                f"(it has {', '.join(g.processed_kinds()) or 'none'} for every model): JPEG "
                "or down-scaled queries are decided with the clean references' calibration "
                "and a caveat; re-enrol with `gallery add --replace` to have them"
            )
        else:
            note = None
    print(f"imported {len(src_g.models)} models into {path}", file=sys.stderr)
    if note:  # an export made without copies (or before they existed)
        print(f"note: {printable(note)}", file=sys.stderr)
