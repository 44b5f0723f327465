"""Options and helpers shared by the commands (kept free of heavy imports).

Writing results is the report package's job: :class:`fpattr.report.outputs.Outputs`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from fpattr.errors import ExitCode, UsageError

FORMATS = ("table", "json", "jsonl", "csv")

BackboneOpt = typer.Option(
    "auto",
    "--backbone",
    "-b",
    help="Registered backbone (see `fpattr plugins list`); auto = shipped extractor, "
    "else the training-free spectrum backbone.",
)
BackboneOpts = typer.Option(
    None, "--backbone-opt", help="Backbone option KEY=VALUE (repeatable), e.g. threads=2."
)
DeviceOpt = typer.Option("auto", "--device", help="auto | cpu | cuda (ONNX execution provider).")
GalleryOpt = typer.Option(
    None,
    "--gallery",
    "-g",
    help="Gallery folder or registered gallery name (default: your gallery for the backbone).",
)


def format_option(*allowed: str) -> Any:
    """``--format/-f`` limited to ``allowed`` (the first is the default): anything else is
    a usage error (exit 2) before any work, never a silent fallback to the table."""

    def check(value: str) -> str:
        if value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return typer.Option(allowed[0], "--format", "-f", help=" | ".join(allowed), callback=check)


FormatOpt = typer.Option("table", "--format", "-f", help="table | json | jsonl | csv (stdout).")
OutputOpt = typer.Option(
    None,
    "--output",
    "-o",
    help="Write results to this file instead of stdout (format from "
    "--format, or the suffix .json/.jsonl/.csv/.html/.txt).",
)
ReportOpt = typer.Option(
    None, "--report", help="Also write a self-contained HTML report (thumbnails, manifest)."
)
ViewsOpt = typer.Option(
    None,
    "--views",
    min=1,
    help="Crops per image, rounded to a square grid (default: by the image's size, the "
    "whole view tiles along each side between the backbone's 2 x 2 and 4 x 4: a 256 px "
    "image gives 16 views of 64 px).",
)


def check_threshold(value: float | None) -> float | None:
    import math

    if value is not None and not (math.isfinite(value) and -1.0 <= value <= 1.0):
        raise typer.BadParameter(f"a cosine threshold must be in [-1, 1], not {value}")
    return value


ThresholdOpt = typer.Option(
    None,
    "--threshold",
    callback=check_threshold,
    help="Use this cosine threshold instead of the one fitted for --target-far (the report "
    "says so, with the false-accept rate it gives on the gallery's held-out references).",
)
TargetFarOpt = typer.Option(
    0.01,
    "--target-far",
    min=1e-6,
    max=0.5,
    help="False-accept rate per comparison that the decision threshold is fitted for "
    "(from the gallery's references, shrunk toward the extractor's card).",
)
MinProbabilityOpt = typer.Option(
    0.5,
    "--min-probability",
    min=0.01,
    max=1.0,
    help="Posterior a model needs to be named; below it the answer is 'ambiguous' (two "
    "or three models above the threshold reach it together) or 'inconclusive'.",
)
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar or log on stderr.")
WorkersOpt = typer.Option(
    None,
    "--workers",
    min=1,
    help="Decoding threads (default: one per 4 CPUs, at least one).",
    show_default=False,
)


def need_torch(command: str) -> None:
    """Refuse a command that trains or builds torch models when torch is not installed.

    Checked before any work so the user gets a usage error naming the extra (exit 2), not
    an internal error from deep inside a family or the trainer (exit 70). ``find_spec``
    does not import torch (seconds), so the check costs nothing when it is installed.
    """
    import importlib.util

    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or half-removed installation
        found = False
    if not found:
        raise UsageError(
            f"fpattr {command} needs fpattr[train] (torch): pip install 'fpattr[train]'"
        )


def stderr_console(quiet: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


def print_error(console: Any, *objects: Any, **kwargs: Any) -> None:
    """Print on ``console`` even when it is quiet: ``-q`` silences progress and notes,
    never the reason a command exits non-zero (a failed input, nothing enrolled or found).
    """
    quiet, console.quiet = console.quiet, False
    try:
        console.print(*objects, **kwargs)
    finally:
        console.quiet = quiet


def parse_opts(pairs: list[str] | None, flag: str = "--backbone-opt") -> dict[str, Any]:
    """KEY=VALUE pairs -> dict; values parsed as JSON when they parse (2, true, "x")."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(raw)
        except ValueError:
            out[key.strip().replace("-", "_")] = raw
    return out


def load_backbone(name: str, opts: list[str] | None, device: str = "auto") -> Any:
    """Create the backbone; ONNX backbones get the pipeline's default intra-op threads.

    :data:`fpattr.pipeline.ONNX_THREADS` (measured there) decides the split between
    inference and decoding, with :func:`fpattr.pipeline.inference_lanes`; the number of
    decode threads (attribute's ``--workers``) does not change it.
    ``--backbone-opt threads=N`` overrides it.
    """
    from fpattr.backbones.onnx import is_onnx_backbone
    from fpattr.backbones.resolve import resolve_backbone_name
    from fpattr.pipeline import open_backbone

    options = parse_opts(opts)
    real = resolve_backbone_name(name)
    if device != "auto":
        if device not in ("cpu", "cuda"):
            raise UsageError(f"--device must be auto, cpu or cuda, not {device!r}")
        if is_onnx_backbone(real):
            options.setdefault("providers", device)
    return open_backbone(real, **options)


def gallery_path(spec: str | None, backbone_name: str) -> Path:
    """A registered gallery name, a folder, or the user's default for the backbone."""
    from fpattr.paths import default_gallery_dir
    from fpattr.plugins import galleries

    if spec is None:
        return default_gallery_dir(backbone_name)
    reg = galleries()
    if spec in reg and not Path(spec).exists():
        obj = reg.get(spec)
        return Path(obj() if callable(obj) else obj)
    return Path(spec).expanduser()


def editable_gallery_path(spec: str | None, backbone_name: str) -> Path:
    """:func:`gallery_path` for a command that writes the gallery (add, remove, import).

    A gallery a plugin registers by name is read-only: its folder belongs to the plugin's
    package (a reinstall would drop the edits, a site-packages folder may not be the
    user's to change), and a registered folder that does not exist was created wherever
    the plugin said (``/nonexistent/...``; break-it 27b). Raises :class:`UsageError`
    saying how to make an editable copy.
    """
    from fpattr.errors import UsageError
    from fpattr.plugins import galleries

    path = gallery_path(spec, backbone_name)
    if spec is not None and spec in galleries() and not Path(spec).exists():
        raise UsageError(
            f"{spec!r} is a gallery a plugin registers ({path}): it is read-only. Copy it "
            f"to a folder of your own and edit that: fpattr gallery export {spec}.npz -g "
            f"{spec}; fpattr gallery import {spec}.npz -g FOLDER"
        )
    return path


def backbone_for_gallery(backbone: str | None, gallery: str | None) -> str | None:
    """``--backbone auto`` with a named gallery becomes the backbone the gallery is bound to
    (a plugin's gallery may be made with ``spectrum``); an explicit backbone is kept, so a
    mismatch is still reported by :func:`open_gallery`."""
    import json

    from fpattr.backbones.resolve import AUTO

    if backbone not in (None, "", AUTO) or gallery is None:
        return backbone
    meta = gallery_path(gallery, "default") / "gallery.json"
    try:
        name = json.loads(meta.read_text(encoding="utf-8"))["backbone"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return backbone  # open_gallery reports what is wrong with it
    from fpattr.plugins import backbones

    return name if isinstance(name, str) and name in backbones() else backbone


def open_gallery(spec: str | None, backbone: Any, *, need_models: bool = False) -> Any:
    """The gallery ``spec`` names (None: the user's for ``backbone``), checked against the
    backbone; ``need_models``: an empty one (every model removed) is a usage error too."""
    from fpattr.errors import GalleryError
    from fpattr.gallery import Gallery

    path = gallery_path(spec, backbone.name)
    if not (path / "gallery.json").is_file():
        hint = (
            f"enrol models first: fpattr gallery add NAME REF_IMAGES... --backbone {backbone.name}"
            if spec is None
            else "pass an existing gallery folder or name (fpattr gallery list)"
        )
        raise GalleryError(f"no gallery at {path}: {hint}")
    g = Gallery.load(path)
    g.check_backbone(backbone.info())
    if need_models and not g.models:
        raise GalleryError(
            f"the gallery at {path} has no enrolled model: enrol models with "
            "`fpattr gallery add NAME REF_IMAGES...`"
        )
    return g


def check_outputs_spare_run(
    *paths: Path | None, gallery: Any = None, backbone: Any = None, files: Any = ()
) -> None:
    """:func:`fpattr.report.outputs.check_outputs_spare` for what a command has opened: no
    output inside the gallery's folder, over the backbone's model files or over ``files``
    (analysis heads, ...)."""
    from fpattr.report.outputs import check_outputs_spare

    read = [getattr(backbone, k, None) for k in ("model_path", "card_path")] + list(files)
    check_outputs_spare(*paths, folders=[getattr(gallery, "path", None)], files=read)


def exit_code(n_inputs: int, n_ok: int) -> int:
    if n_ok == 0:
        return int(ExitCode.USAGE)
    return int(ExitCode.OK if n_ok == n_inputs else ExitCode.SOME_FAILED)


def plugin_versions() -> list[dict[str, Any]]:
    from fpattr.plugins import get_host

    return [
        {"name": p.name, "version": p.version, "builtin": p.builtin, "error": p.error}
        for p in get_host().plugins.values()
    ]


@contextmanager
def progress(console: Any, paths: Any, label: str) -> Iterator[Any]:
    """A rich progress bar on stderr (total from a cheap pre-walk of a list of ``paths``;
    none for an iterator, which the run itself reads: ``--files-from`` streamed), or a
    no-op.

    Yields ``advance(result_dict)``; nothing is drawn when stderr is not a terminal.
    """
    if console.quiet or not console.is_terminal:
        yield lambda res: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from fpattr.io.walk import iter_inputs

    total = sum(1 for _ in iter_inputs(paths)) if isinstance(paths, list | tuple) else None
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as prog:
        task = prog.add_task(label, total=total, failed=0)
        failed = 0

        def advance(res: dict[str, Any]) -> None:
            nonlocal failed
            failed += res.get("status") == "error"
            prog.update(task, advance=1, failed=failed)

        yield advance


def print_notes(console: Any, notes: list[str]) -> None:
    """Notes on stderr, each once, printed literally (they quote model names, extras,
    ranges: "[...]" in them is text, not markup)."""
    from rich.markup import escape

    for note in dict.fromkeys(notes):
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)


def print_policy_notes(console: Any, info: dict[str, Any]) -> None:
    """Each calibration's caveats (a card-only threshold for another FAR, too few
    impostor scores for the target, references that do not separate...), once; ``info``:
    ``Session.policy_info()``."""
    first: dict[str, str] = {}  # a note shared by several calibrations: once, the first's
    for cal in info.get("calibrations", []):
        label = str(cal.get("comparison"))
        if cal.get("views") is not None:  # small images: the card's fit at fewer views
            label += f" ({cal['views']} view(s))"
        if cal.get("processing"):  # queries stored unlike the references
            label += f" ({cal['processing']} queries)"
        for note in cal.get("notes") or []:
            first.setdefault(note, f"{label}: {note}")
    print_notes(console, list(first.values()))


def check_export_target(out: Path, name: str, replace_shipped: bool) -> None:
    """Before an export (or quantize) does any work, :class:`UsageError` (exit 2) when:
    ``out`` cannot take files; ``name`` is a registered backbone that is not an ONNX model
    (a model file ``marra.onnx`` hid the built-in ``-b marra`` and could not be reached
    itself); or it would replace a shipped extractor (:data:`fpattr.paths.
    SHIPPED_EXTRACTORS` in :func:`fpattr.paths.models_dir`) without ``replace_shipped``:
    the defaults ``--out models --name default`` replaced the shipped default with a toy
    model, and every gallery and analysis head bound to it stopped working (break-it 27d).
    """
    import os

    from fpattr.backbones.onnx import is_onnx_backbone
    from fpattr.backbones.resolve import AUTO
    from fpattr.errors import UsageError
    from fpattr.io.atomic import check_writable_folder
    from fpattr.paths import SHIPPED_EXTRACTORS, models_dir
    from fpattr.plugins import backbones

    check_writable_folder(out, "model folder")
    # "auto" and "onnx" are words of -b itself (the resolver, the generic ONNX backbone)
    if name in (AUTO, "onnx") or (name in backbones() and not is_onnx_backbone(name)):
        raise UsageError(
            f"{name!r} is the name of a backbone fpattr or a plugin provides: a model of "
            "that name would hide it (and could not be reached itself); choose another --name"
        )
    shipped = os.path.realpath(out) == os.path.realpath(models_dir())
    if shipped and name in SHIPPED_EXTRACTORS and (Path(out) / f"{name}.json").exists():
        if not replace_shipped:
            raise UsageError(
                f"{Path(out) / (name + '.json')} is the shipped {name!r} extractor: galleries "
                "and analysis heads are bound to it. Export under another --name (use it "
                "with -b NAME), or pass --replace-shipped to replace it on purpose"
            )
