"""`fpattr analyze fit|predict`: design choices of a generator from its fingerprint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from fpattr.cli import common

analyze_app = typer.Typer(
    help="Infer design choices (family, up-sampling, normalisation, activation) of an "
    "unknown generator from its fingerprint.\n\nExample: fpattr analyze predict img.png",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app, name="analyze")


def _embed_folder_tree(
    root: Path, bb: object, views: int | None, entries: dict[str, dict]
) -> tuple[dict[str, object], list[dict[str, str]]]:
    """The model folders' embeddings and every file or folder left out, with its reason
    (said on stderr: an analysis of a tree must account for every file, as evaluate)."""
    from fpattr.analysis import embed_folder_tree, unlabelled
    from fpattr.report.base import printable

    ignored: list[dict[str, str]] = []
    emb = embed_folder_tree(root, bb, views, ignored)
    unlabelled(emb, entries, ignored)  # type: ignore[arg-type]
    if ignored:
        first = ignored[0]
        print(
            f"note: {len(ignored)} file(s) or folder(s) of {printable(str(root))} not used, "
            f"e.g. {printable(first['path'])}: {first['reason']} (each in ignored_files)",
            file=sys.stderr,
        )
    return emb, ignored  # type: ignore[return-value]


def _load_heads(heads_file: Path | None, bb: object) -> object:
    from fpattr.analysis import load_heads

    return load_heads(heads_file, bb.info())[0]  # type: ignore[attr-defined]


def _labelled_entries(root: Path) -> dict[str, dict]:
    from fpattr.analysis import labelled_entries

    return labelled_entries(root)


@analyze_app.command("fit", no_args_is_help=True)
def fit(
    zoo: Path = typer.Argument(..., help="A zoo from `fpattr synth` (design labels inside)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the heads (JSON)."),
    run: Path = typer.Option(
        None, "--run", help="Training run whose held-out models are kept out of the fit."
    ),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    views: int = common.ViewsOpt,
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Fit design-choice heads on a zoo's training models; score them on held-out models.

    Example: fpattr analyze fit runs/zoo --run runs/train --out models/analysis.json
    """
    import numpy as np

    from fpattr.analysis import Heads, cluster_nmi, design_labels
    from fpattr.errors import UsageError
    from fpattr.io.atomic import atomic_write_text, check_writable

    check_writable(out, "heads file")  # before any work (a missing folder was exit 70, after)
    bb = common.load_backbone(backbone, backbone_opt)
    entries = _labelled_entries(zoo)
    if not entries:
        raise UsageError(f"{zoo} has no labelled models (done.json from fpattr synth)")
    held: dict[str, list[str]] = {}
    if run is not None:
        result = run / "train_result.json"
        try:
            held = json.loads(result.read_text(encoding="utf-8"))["held_out_ids"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # (a missing --run folder was exit 70 "internal error", break-it 27d)
            raise UsageError(
                f"--run {run}: cannot read its held-out models from {result} "
                f"({type(exc).__name__}: {exc}); give a folder made by `fpattr train`"
            ) from None
    else:
        ids = sorted(entries)
        rng = np.random.default_rng(seed)
        pick = list(rng.permutation(ids)[: max(2, len(ids) // 5)])
        held = {"val": sorted(pick)}
    if not [i for i in entries if i not in {m for v in held.values() for m in v}]:
        # (a 2-model zoo drew both as held out: "need at least one array", exit 70)
        raise UsageError(
            f"{zoo}: every one of its {len(entries)} labelled model(s) is held out for "
            "scoring, none is left to fit the heads on; synthesize more models (without --run, "
            "2 of up to 10 are held out: at least 4, of two designs or more)"
        )
    emb, ignored = _embed_folder_tree(zoo, bb, views, entries)
    held_ids = {i for v in held.values() for i in v}
    train_ids = [i for i in sorted(emb) if i in entries and i not in held_ids]

    def stack(ids: list[str]) -> tuple[np.ndarray, list[dict[str, str]]]:
        xs = [emb[i] for i in ids if i in emb]
        labs = [design_labels(entries[i]) for i in ids if i in emb for _ in range(len(emb[i]))]
        return np.concatenate(xs), labs

    if not train_ids:  # (no image read: "need at least one array", exit 70; break-it 28b)
        raise UsageError(
            f"{zoo}: no image of its labelled training models could be read (each model's "
            "images lie directly in its folder); nothing to fit the heads on"
        )
    x, labels = stack(train_ids)
    heads = Heads.fit(x, labels, bb.info())
    if not heads.heads:  # (an empty heads file, exit 0; break-it 28b)
        raise UsageError(
            f"{zoo}: no design choice takes two values among the {len(train_ids)} training "
            "model(s), so no head can be fitted; synthesize more models of several designs "
            "(`fpattr synth --models` of at least a few per family)"
        )
    metrics: dict = {
        "n_train_models": len(train_ids),
        "n_train_images": len(labels),
        "ignored_files": ignored,
    }
    for name, ids in held.items():
        ids = [i for i in ids if i in emb]
        if ids:
            xv, lv = stack(ids)
            metrics[name] = {"n_models": len(ids), "per_image": heads.accuracy(xv, lv)}
    all_ids = [i for i in sorted(emb) if i in entries]
    fp = np.stack([emb[i].mean(0) for i in all_ids])
    metrics["cluster_nmi"] = cluster_nmi(fp, [design_labels(entries[i]) for i in all_ids], seed)
    heads.metrics = metrics
    atomic_write_text(out, heads.to_json())
    print(json.dumps({"heads": str(out), "backbone": bb.id, **metrics}, indent=2))


@analyze_app.command("predict", no_args_is_help=True)
def predict(
    paths: list[Path] = typer.Argument(..., help="Images and/or folders."),
    heads_file: Path = typer.Option(
        None, "--heads", help="File written by `analyze fit` (default: the shipped heads)."
    ),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    views: int = common.ViewsOpt,
    as_set: bool = typer.Option(
        False, "--as-set", help="One answer for all images (assumed to share one source)."
    ),
    fmt: str = common.FormatOpt,
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="Write results to this file instead of stdout (format from --format, or the "
        "suffix .json/.jsonl/.csv/.txt).",
    ),
    quiet: bool = common.QuietOpt,
) -> None:
    """Most likely design choices per image (or for the set), or "undetermined".

    Probabilities are calibrated on held-out generators the project trained itself;
    each answer comes with how often that head was right on them, and a head below
    its confidence threshold (or no better than chance) answers "undetermined". The
    heads assume the images are generated: a real photo gets answers too.

    Example: fpattr analyze predict suspects/ --as-set
    """
    code = run_predict(
        paths,
        heads_file=heads_file,
        backbone=backbone,
        backbone_opt=backbone_opt,
        views=views,
        as_set=as_set,
        fmt=fmt,
        output=output,
        quiet=quiet,
    )
    raise typer.Exit(code)


def _output_format(fmt: str, output: Path | None) -> str:
    from fpattr.errors import UsageError

    if fmt not in common.FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose {' | '.join(common.FORMATS)}")
    if output is not None and fmt == "table" and output.suffix.lower() not in ("", ".txt"):
        from fpattr.report.files import SUFFIX_FORMATS, format_for_path

        fmt = format_for_path(output, default="")
        if fmt not in common.FORMATS:
            # only the suffixes of the formats it writes (the shared list offered .html,
            # which it then refused; break-it 28b)
            ok = ", ".join(f"{s} ({f})" for s, f in SUFFIX_FORMATS.items() if f in common.FORMATS)
            raise UsageError(
                f"analyze predict writes {' | '.join(common.FORMATS)}: cannot tell a format "
                f"from {str(output)!r}; use one of {ok}, or pass --format"
            )
    return fmt


def run_predict(
    paths: list[Path],
    *,
    heads_file: Path | None = None,
    backbone: str = "auto",
    backbone_opt: list[str] | None = None,
    views: int | None = None,
    as_set: bool = False,
    fmt: str = "table",
    output: Path | None = None,
    quiet: bool = False,
) -> int:
    """The predict run behind the command; returns the exit code."""
    import time

    from fpattr.analysis import head_info, load_heads, predict_paths, real_photo_caveat
    from fpattr.report.manifest import build_manifest, finish_summary

    started = time.monotonic()
    fmt = _output_format(fmt, output)
    from fpattr.report.outputs import check_output_paths

    # before any work, as attribute does: a folder that is not there, an output that is
    # one of the inputs (break-it: "-o ap/x.png -f json" replaced the image with the JSON)
    check_output_paths(output, inputs=paths)
    console = common.stderr_console(quiet)
    bb = common.load_backbone(backbone, backbone_opt)
    heads, heads_path = load_heads(heads_file, bb.info())
    common.check_outputs_spare_run(output, backbone=bb, files=[heads_path])
    mode = "set" if as_set else "image"
    info = head_info(heads, mode)
    cal, why = heads.calibration_status()
    notes = [real_photo_caveat(heads, mode)]
    if why is not None:
        notes.insert(0, why)
    elif mode not in (cal or {}).get("modes", {}):
        notes.insert(0, f"uncalibrated: the calibration has no {mode} mode")
    elif as_set:
        k = cal["modes"]["set"].get("set_size")  # type: ignore[index]
        notes.append(
            f"--as-set uses the calibration fitted on sets of {k} images of one generator; "
            "it assumes every image shares one source."
        )
    from rich.markup import escape

    for n in notes:
        if n.startswith("uncalibrated"):
            console.print(f"[yellow]warning:[/] {escape(n)}", highlight=False)  # n: prose

    def on_record(res: dict) -> None:
        if res["status"] != "ok":
            word = "skipped" if res["status"] == "skipped" else "failed"
            console.print(f"{word} {res['path']}: {res['error']}", markup=False, highlight=False)
        advance(res)

    try:
        with common.progress(console, paths, "analysing") as advance:
            pred = predict_paths(paths, bb, heads, views=views, as_set=as_set, on_record=on_record)
    except KeyboardInterrupt:
        if output is not None and str(output) != "-":  # as attribute says it (break-it)
            common.stderr_console().print(
                f"interrupted: nothing written to {output} (analyze predict writes its "
                "output whole, once every input is read)",
                highlight=False,
                markup=False,
            )
        raise
    manifest = build_manifest(
        "analyze predict",
        backbone=bb.info(),
        gallery=None,
        calibration=_calibration_info(heads, mode, why),
        settings={
            "as_set": as_set,
            "views": views,
            "inputs": [str(p) for p in paths],
            "mode": mode,
        },
        plugins=common.plugin_versions(),
    )
    manifest["heads"] = {
        "file": str(heads_path),
        "heads_sha256": heads.heads_sha256(),
        "backbone_sha256": heads.backbone.get("sha256"),
        "calibrated": cal is not None,
    }
    manifest["head_info"] = info
    manifest["caveats"] = notes
    summary = finish_summary(
        {
            "n_inputs": pred.n_inputs,
            "n_ok": pred.n_ok,
            "n_failed": pred.n_inputs - pred.n_ok,
            # non-images met in a folder: records, not inputs (as attribute counts them)
            "n_skipped": pred.n_skipped,
        },
        started,
    )
    for row in pred.rows:  # e.g. a set smaller than its calibration's sets
        if row.get("note"):
            console.print(f"note: {row['path']}: {row['note']}", markup=False, highlight=False)
    _write(fmt, output, manifest, pred.rows, summary)
    if pred.n_inputs == 0:
        common.stderr_console().print("no inputs found", highlight=False)  # -q too: exit 2
    if as_set and not pred.n_ok:  # nothing read (a set of flat images is answered)
        return 2
    return common.exit_code(pred.n_inputs, pred.n_ok)


def _calibration_info(heads: object, mode: str, why: str | None) -> dict:
    """What the report header says about the heads' calibration."""
    cal = heads.calibration if why is None else {}  # type: ignore[attr-defined]
    block = (cal.get("modes") or {}).get(mode) or {}
    return {
        "calibrated": bool(block),
        "mode": mode,
        "note": why,
        "method": cal.get("method"),
        "protocol": cal.get("protocol"),
        "unit": block.get("unit"),
        "n": block.get("n"),
        "n_generators": block.get("n_generators"),
        "generators": cal.get("generators"),
        "target_accuracy": cal.get("target_accuracy"),
        "created": cal.get("created"),
    }


def _write(fmt: str, output: Path | None, manifest: dict, rows: list, summary: dict) -> None:
    if output is None:
        _write_stream(fmt, sys.stdout, manifest, rows, summary)
        return
    from fpattr.io.atomic import atomic_open

    with atomic_open(output) as f:
        _write_stream(fmt, f, manifest, rows, summary, width=120)


def _write_stream(
    fmt: str, stream, manifest: dict, rows: list, summary: dict, width: int | None = None
) -> None:
    if fmt in ("json", "jsonl"):
        from fpattr.report.jsonfmt import JsonlWriter, JsonWriter

        w = (JsonWriter if fmt == "json" else JsonlWriter)(stream, manifest)
        for r in rows:
            w.write(r)
        w.close(summary)
    elif fmt == "csv":
        _write_csv(stream, manifest, rows)
    else:
        _write_table(stream, manifest, rows, summary, width=width)
    stream.flush()


def _choices(manifest: dict) -> list[str]:
    from fpattr.analysis import CHOICES

    present = list(manifest["head_info"])
    return [c for c in CHOICES if c in present] + [c for c in present if c not in CHOICES]


def _write_csv(stream, manifest: dict, rows: list) -> None:
    """One row per input (or the set): answer, top value, probability and held-out
    accuracy per head. Text cells starting with = + - @ are quoted (formula guard)."""
    from fpattr.report.csvfmt import RowWriter, text_cell

    choices = _choices(manifest)
    cols = ["path", "sha256", "status"]
    for c in choices:
        cols += [c, f"{c}_top", f"{c}_probability", f"{c}_heldout_accuracy"]
    cols.append("error")
    w = RowWriter(stream)
    w.writerow(cols)

    for r in rows:
        preds = r.get("predictions") or {}
        vals: list = [text_cell(r.get("path")), r.get("sha256") or "", r.get("status")]
        for c in choices:
            a = preds.get(c) or {}
            acc = manifest["head_info"][c].get("heldout_accuracy")
            vals += [a.get("value", ""), a.get("top", ""), a.get("probability", ""), acc or ""]
        vals.append(text_cell(r.get("error")))
        w.writerow(vals)


def _heldout_cell(i: dict, ans: dict) -> str:
    """How often the head was right on held-out generators: for an answer, how often
    that very answer was right there; otherwise the head overall, against chance."""
    from fpattr.analysis import pct

    if not i.get("calibrated"):
        return "not measured (uncalibrated)"
    if "heldout_value_n" in ans:
        if not ans["heldout_value_n"]:
            return f"unchecked (never answered {ans['value']})"
        return f"{pct(ans['heldout_value_accuracy'])} (its {ans['value']} answers)"
    above = i.get("heldout_answered_accuracy")
    if i["status"] == "ok" and i.get("threshold") is not None and above is not None:
        return f"{pct(above)} at p>={i['threshold']:.2f} ({pct(i['heldout_accuracy'])} all)"
    return f"{pct(i['heldout_accuracy'])} (chance {pct(i['chance'])})"


_SHORT_REASONS = {
    "head not better than chance": "chance-level",
    "no threshold reaches the target": "no threshold",
    "flat image: no fingerprint evidence": "flat image",
}


def _write_table(stream, manifest: dict, rows: list, summary: dict, width: int | None) -> None:
    """Per input and head: the answer, its probability, and how often that head was
    right on held-out project generators; then each head in words and the caveats."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from fpattr.analysis import UNDETERMINED, head_sentence
    from fpattr.report.base import printable
    from fpattr.report.table import shorten_left

    isatty = getattr(stream, "isatty", lambda: False)()
    con = Console(file=stream, width=width or (None if isatty else 120), highlight=False)
    info = manifest["head_info"]
    choices = _choices(manifest)
    t = Table(title="fpattr analyze predict", box=box.SIMPLE_HEAD)
    t.add_column("image", no_wrap=True, max_width=28, min_width=12)
    t.add_column("choice", no_wrap=True, min_width=10)
    t.add_column("answer", min_width=12)
    t.add_column("p", justify="right", min_width=4, no_wrap=True)
    t.add_column("right on held-out generators", min_width=16)
    for r in rows:
        name = Text(shorten_left(printable(r.get("path")), 28))
        if r.get("status") != "ok":
            label = (
                Text("skipped", style="yellow")
                if r.get("status") == "skipped"
                else Text("failed", style="bold red")
            )
            t.add_row(name, "", label, "", Text(printable(r.get("error"))))
            continue
        preds = r.get("predictions") or {}
        for k, c in enumerate(choices):
            a = preds.get(c) or {}
            value = a.get("value", UNDETERMINED)
            reason = a.get("reason")
            if value == UNDETERMINED:
                why = _SHORT_REASONS.get(reason, reason)
                if reason == "below threshold":
                    why = f"p<{a.get('threshold'):.2f}"
                ans = Text(value, style="yellow")
                if why:
                    ans.append(f" ({printable(why)})", style="dim")
            else:
                ans = Text(printable(value), style="bold cyan")
                if reason == "uncalibrated":
                    ans.append(" (uncalibrated)", style="dim")
            p = a.get("probability")
            t.add_row(
                name if k == 0 else Text(""),
                c,
                ans,
                "" if p is None else f"{p:.2f}",
                _heldout_cell(info[c], a),
                end_section=k == len(choices) - 1,
            )
    con.print(t)
    for c in choices:
        con.print(Text(f"{c}: {head_sentence(info[c])}"))
    for n in manifest.get("caveats") or []:
        con.print(Text(f"note: {n}", style="dim" if n.startswith("--as-set") else ""))
    n_failed = summary.get("n_failed") or 0
    if n_failed:
        con.print(Text(f"{n_failed} input(s) failed", style="red"))


@analyze_app.command("score", no_args_is_help=True)
def score_cmd(
    bench: Path = typer.Argument(
        ..., help="Folder per model with labels (done.json per folder, or manifest.json)."
    ),
    heads_file: Path = typer.Option(
        None, "--heads", help="File written by `analyze fit` (default: the shipped heads)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the JSON here."),
    backbone: str = common.BackboneOpt,
    backbone_opt: list[str] = common.BackboneOpts,
    views: int = common.ViewsOpt,
    seed: int = typer.Option(0, "--seed", help="k-means seed for the clustering NMI."),
) -> None:
    """Score fitted heads on labelled models they never saw: accuracy per image and per
    model against chance, confusion per design choice, and clustering NMI.

    Labels use the synthesizers' names (`family` plus `design`: up-sampling, norm,
    activation), as in a zoo's done.json or benchmarks/make_real_benchmark.py's manifest.

    Example: fpattr analyze score runs/realbench
    """
    from fpattr.analysis import score
    from fpattr.errors import UsageError
    from fpattr.io.atomic import atomic_write_text

    entries = _labelled_entries(bench)
    if not entries:
        raise UsageError(f"{bench} has no model labels (done.json per folder or manifest.json)")
    bb = common.load_backbone(backbone, backbone_opt)
    heads = _load_heads(heads_file, bb)
    emb, ignored = _embed_folder_tree(bench, bb, views, entries)
    res = {"bench": str(bench), "heads": str(heads_file or "shipped"), "backbone": bb.id}
    res |= score(heads, emb, entries, seed)  # type: ignore[arg-type]
    res["ignored_files"] = ignored
    text = json.dumps(res, indent=2)
    if out is not None:
        atomic_write_text(out, text + "\n")
    print(text)
