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
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the jsonl file given as --output (e.g. after Ctrl-C): keep its results "
        "(by path; an input whose sha256 changed is redone, a result whose path is no longer "
        "among the inputs is dropped), process only the other inputs and append them. Needs "
        "the same backbone, gallery and decision settings.",
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
        resume=resume,
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
    resume: bool = False,
) -> int:
    """The attribute run behind the command (the demo reuses it); returns the exit code."""
    from fpattr import pipeline
    from fpattr.io.atomic import uninterrupted
    from fpattr.report.manifest import build_manifest
    from fpattr.report.outputs import Outputs, check_format, check_output_paths, output_format
    from fpattr.session import Session

    console = common.stderr_console(quiet)
    check_format(fmt)
    check_output_paths(output, report)  # before any work: exit 2 now, not after the run
    if resume:
        _check_resume_options(fmt, output, as_set)
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
    stats = pipeline.RunStats()
    todo: list[Any] = list(paths)
    state: _Resume | None = None
    own = [p for p in (output, report) if p is not None and str(p) != "-"]
    if own:  # the run's own output files are not inputs, even inside a scanned folder
        session.embed = _embed_walk(session, own)  # type: ignore[method-assign]
    if resume and output is not None:
        state = _Resume.prepare(output, paths, manifest, console, exclude=own)
        if state is not None:
            todo = [it.path for it in state.todo]
            session.embed = _embed_items(session, state.todo)  # type: ignore[method-assign]
            manifest = {**manifest, "resumed": state.manifest_info()}
    out = Outputs(fmt, output, report, manifest, append=state is not None)
    settings.thumbnails = out.thumbnails
    n_done = 0
    try:
        if state is not None:
            for rec in state.kept:
                state.count(rec, stats)
                out.replay(rec)
        with common.progress(console, todo, "attributing") as advance:
            for res in session.attribute(todo, stats) if todo else ():
                with uninterrupted():  # a signal waits until this record is written whole
                    out.write(res)
                    n_done += 1
                if on_result is not None:
                    on_result(res)
                advance(res)
        extra = {
            "as_set": session.attribute_set(stats) if as_set else None,
            "policy": session.policy.info(),
        }
        summary = stats.summary(extra)
        if state is not None:
            summary = state.finish_summary(summary, stats)
        with uninterrupted():  # the summary line and the report files are written whole
            out.close(summary)
    except BaseException as exc:
        out.abort(exc)
        if isinstance(exc, KeyboardInterrupt) and output is not None:
            if output_format(fmt, output) == "jsonl" and str(output) != "-":
                console.print(
                    f"interrupted: {n_done} more result(s) written to {output}; continue "
                    "with the same command plus --resume",
                    highlight=False,
                )
        raise
    common.print_policy_notes(console, session.policy)
    if stats.n_inputs == 0:
        skipped = f" ({stats.n_skipped} file(s) skipped: not images)" if stats.n_skipped else ""
        console.print(f"[red]no images found[/]{skipped}")
    return common.exit_code(stats.n_inputs, stats.n_ok)


# --------------------------------------------------------------------------- --resume

#: Settings that change the numbers: a resumed file must not mix results made with others.
_SAME_SETTINGS = (
    "top_k",
    "views",
    "view_strategy",
    "max_pixels",
    "target_far",
    "threshold",
    "prior_unknown",
    "min_probability",
)


def _check_resume_options(fmt: str, output: Path | None, as_set: bool) -> None:
    from fpattr.errors import UsageError
    from fpattr.report.outputs import output_format

    if output is None or str(output) == "-" or output_format(fmt, output) != "jsonl":
        raise UsageError("--resume continues a jsonl results file: pass -o FILE.jsonl")
    if as_set:
        raise UsageError(
            "--resume does not go with --as-set (the set decision needs every image's "
            "fingerprint, which the results file does not keep); rerun without --resume"
        )


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diffs = []
    ob, nb = old.get("backbone") or {}, new.get("backbone") or {}
    for key in ("id", "sha256"):
        if ob.get(key) != nb.get(key):
            diffs.append(f"backbone {key} {ob.get(key)!r} -> {nb.get(key)!r}")
    og, ng = old.get("gallery") or {}, new.get("gallery") or {}
    if og.get("sha256") != ng.get("sha256"):
        diffs.append(f"gallery sha256 {og.get('sha256')!r} -> {ng.get('sha256')!r}")
    os_, ns = old.get("settings") or {}, new.get("settings") or {}
    for key in _SAME_SETTINGS:
        if os_.get(key) != ns.get(key):
            diffs.append(f"{key} {os_.get(key)!r} -> {ns.get(key)!r}")
    return diffs


def _record_path(rec: dict[str, Any]) -> str:
    """The input a result is for, exactly: a name that is not UTF-8 is shown escaped in
    ``path`` and kept exactly in ``path_bytes_hex`` (fpattr.report.base)."""
    import os

    raw = rec.get("path_bytes_hex")
    if isinstance(raw, str):
        try:
            return os.fsdecode(bytes.fromhex(raw))
        except ValueError:
            pass
    return str(rec.get("path"))


def _embed_walk(session: Any, exclude: list[Path]) -> Callable[[Any], Any]:
    """``session.embed`` walking its paths lazily, leaving out ``exclude`` (the run's own
    output files and their temp files)."""
    from fpattr.io.walk import iter_inputs

    def embed(paths: Any) -> Any:
        return _embed_items(session, iter_inputs(paths, exclude=exclude))(paths)

    return embed


def _embed_items(session: Any, items: Any) -> Callable[[Any], Any]:
    """``session.embed`` for exactly these walked items (ignoring the paths it is given).

    The items are passed as the walk found them, not re-walked from their paths: a file
    found in a folder keeps ``in_folder`` (a non-image there is *skipped*, while a file
    named explicitly would *fail*), and a walk error keeps its reason.
    """
    from fpattr.pipeline import Embedder

    def embed(_paths: Any) -> Any:
        try:
            embedder = Embedder(session.backbone, session.settings, include_skipped=True)
        except TypeError:  # an Embedder without skipped inputs
            embedder = Embedder(session.backbone, session.settings)
        return embedder.embed_items(iter(items))

    return embed


class _Resume:
    """What ``--resume`` keeps from an existing results file and what is left to do."""

    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []
        self.todo: list[Any] = []  #: the InputItems left to do, as the walk found them
        self.redone = 0
        self.dropped_partial = False
        self.dropped_gone = 0  #: results dropped: their path is not among the current inputs
        self.runs = 1

    @classmethod
    def prepare(
        cls,
        output: Path,
        paths: list[Path],
        manifest: dict[str, Any],
        console: Any,
        *,
        exclude: list[Path] | None = None,
    ) -> _Resume | None:
        """Read ``output``, rewrite it (atomically) without what is redone, and plan the rest.

        None when there is nothing to resume (no file, or an empty one): a plain run.
        """
        from fpattr.errors import UsageError
        from fpattr.io.atomic import atomic_open
        from fpattr.io.loader import sha256_file
        from fpattr.io.walk import iter_inputs
        from fpattr.report.base import dumps
        from fpattr.report.jsonfmt import read_jsonl

        if not output.exists() or output.stat().st_size == 0:
            return None
        content = read_jsonl(output)
        manifests = content.manifests
        if not content.lines and content.partial_tail:
            return None  # killed before its manifest line was whole
        first = content.lines[0] if content.lines else {}
        if first.get("type") != "manifest" or first.get("command") != "attribute":
            raise UsageError(
                f"cannot resume {str(output)!r}: it is not the jsonl output of fpattr attribute "
                "(its first line is not an attribute manifest)"
            )
        diffs = _differences(first, manifest)
        if diffs:
            raise UsageError(
                f"cannot resume {str(output)!r}: it was made with other options or models ("
                + "; ".join(diffs)
                + "); rerun without --resume to start over, or with the original options"
            )
        self = cls()
        self.runs = len(manifests) + 1
        self.dropped_partial = content.partial_tail
        items = list(iter_inputs(paths, exclude=exclude or ()))
        wanted = {str(it.path) for it in items}
        latest: dict[str, dict[str, Any]] = {}
        for rec in content.results:
            latest[_record_path(rec)] = rec  # a path recorded twice: the last one counts
        keep_paths: set[str] = set()
        gone = 0
        for path, rec in latest.items():
            if path not in wanted:
                gone += 1  # deleted since, or another run's input: not one of these inputs
                continue
            recorded = rec.get("sha256")
            try:
                now = sha256_file(path) if recorded else None
            except OSError:
                now = None
            if recorded and recorded == now:
                keep_paths.add(path)
            else:
                self.redone += 1
        lines: list[dict[str, Any]] = []
        seen: set[str] = set()
        for line in content.lines:
            kind = line.get("type")
            if kind == "summary":
                continue  # the resumed file gets one summary, at its end
            if kind == "result":
                path = _record_path(line)
                if path not in keep_paths or path in seen or latest[path] is not line:
                    continue
                seen.add(path)
                self.kept.append(line)
            lines.append(line)
        if len(lines) != len(content.lines) or content.partial_tail:
            with atomic_open(output, "w") as f:  # the old file stays whole until replaced
                for line in lines:
                    f.write(dumps(line) + "\n")
        done = {_record_path(rec) for rec in self.kept}
        self.todo = [it for it in items if str(it.path) not in done]
        self.dropped_gone = gone
        console.print(
            f"resuming {output}: {len(self.kept)} result(s) kept, {self.redone} to redo "
            f"(input changed, or not read: failed or skipped), {len(self.todo)} input(s) "
            "to process"
            + (
                f"; {gone} result(s) dropped: their paths are not among the current inputs "
                "(deleted, moved, or from other inputs)"
                if gone
                else ""
            )
            + ("; an incomplete last line was dropped" if content.partial_tail else ""),
            highlight=False,
        )
        return self

    def manifest_info(self) -> dict[str, Any]:
        return {
            "kept": len(self.kept),
            "redone": self.redone,
            "dropped_partial_line": self.dropped_partial,
            "dropped_not_inputs": self.dropped_gone,
        }

    @staticmethod
    def count(rec: dict[str, Any], stats: Any) -> None:
        """A kept result, counted in the run's totals as if it had just been done."""
        if rec.get("status") == "skipped" and hasattr(stats, "n_skipped"):
            stats.n_skipped += 1
            return
        stats.n_inputs += 1
        if rec.get("status") == "ok":
            stats.n_ok += 1
            key = rec.get("decision") or "undecided"
            stats.decisions[key] = stats.decisions.get(key, 0) + 1

    def finish_summary(self, summary: dict[str, Any], stats: Any) -> dict[str, Any]:
        """Totals over the whole file; the speed of this run's own inputs only."""
        new = stats.n_inputs + getattr(stats, "n_skipped", 0) - len(self.kept)
        new_ok = stats.n_ok - sum(r.get("status") == "ok" for r in self.kept)
        secs = summary.get("seconds") or 0
        summary = dict(summary)
        summary["decisions"] = dict(sorted(stats.decisions.items(), key=lambda kv: -kv[1]))
        summary["images_per_second"] = round(new_ok / secs, 2) if secs > 0 else 0.0
        summary["resumed"] = {
            "runs": self.runs,
            "kept": len(self.kept),
            "redone": self.redone,
            "new": new,
        }
        return summary
