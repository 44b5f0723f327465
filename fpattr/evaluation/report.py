"""How `fpattr evaluate` results are shown: JSON document, terminal table, CSV, HTML, plots.

The table, CSV and HTML always treat a run as a list of backbone runs, so one
backbone and ``--compare`` share a single layout (one column per backbone).
matplotlib is imported only when a figure is drawn, and only through its
object-oriented API (no pyplot, no global backend switch). The HTML report follows
``fpattr.report.htmlfmt``: one file, inline CSS, images as ``data:`` URIs, no
scripts, a CSP forbidding remote loads, and every string escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

import fpattr
from fpattr.errors import UsageError
from fpattr.evaluation import metrics
from fpattr.evaluation.protocol import SCHEMA, THRESHOLDS_NOTE, Bench, EvalConfig, RunResult
from fpattr.report.base import dumps, fmt_score, number, printable
from fpattr.report.csvfmt import RowWriter

# Shared per-run keys kept at the top of a --compare document too.
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

#: (label, path into a run summary, digits) for the side-by-side table, CSV and HTML.
ROWS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("models", ("n_models",), 0),
    ("refs / model", ("refs_per_model",), 0),
    ("references", ("ref_choice",), 0),
    ("queries", ("n_queries",), 0),
    ("processing", ("processing",), 0),
    ("score space", ("identification", "score_space", "kind"), 0),
    ("top-1", ("identification", "top1"), 3),
    ("macro-F1", ("identification", "macro_f1"), 3),
    ("ROC-AUC (pairs)", ("verification", "roc_auc"), 3),
    ("EER", ("verification", "eer"), 3),
    ("TAR@FAR=1e-2", ("verification", "tar_at_far_1e-2"), 3),
    ("pairs", ("verification", "n_pairs"), 0),
    # fewer than the pairs drawn: pairs repeat (break-it: "pairs 10000" of 4,950 possible)
    ("distinct pairs", ("verification", "n_distinct_pairs"), 0),
    ("open-set AUROC", ("open_set", "auroc"), 3),
    ("OSCR", ("open_set", "oscr"), 3),
    ("LOMO folds", ("open_set", "n_folds"), 0),
    ("real-vs-known AUROC", ("open_set", "real_vs_known", "auroc"), 3),
    # what the decision figures were measured under (CSV rows carried none of it)
    ("decisions: target FAR", ("decisions", "target_far"), 4),
    # in force for single images in-gallery: fitted for the target, or --threshold's
    ("decisions: threshold", ("decisions", "threshold"), 4),
    ("decisions: min probability", ("decisions", "min_probability"), 2),
    ("decisions: disjoint splits", ("decisions", "protocols", "generator_disjoint", "splits"), 0),
    ("decisions: achieved FAR", ("decisions", "achieved_far"), 4),
    ("decisions: precision", ("decisions", "precision"), 3),
    ("decisions: coverage", ("decisions", "coverage"), 3),
    ("decisions: ECE", ("decisions", "ece"), 3),
    # references resembling each other more than the queries resemble them: an optimistic
    # calibration (fpattr.evaluation.decisions.reference_gap)
    ("reference gap", ("decisions", "protocols", "reference_gap", "gap"), 3),
    ("seconds", ("seconds",), 2),
    ("images/s", ("images_per_second",), 1),
)


def _get(d: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, str):  # a label (the score space), not a figure
        return printable(value)
    if digits == 0 and number(value) is not None:
        return str(int(value))
    x = number(value)
    if x is not None and digits > 0 and 0 < abs(x) < 0.5 * 10.0**-digits:
        # never a non-zero figure shown as 0 (--target-far 0.00001 read "0.0000"; break-it
        # 28b): two significant digits
        return f"{x:.2g}"
    return fmt_score(value, digits)


# --------------------------------------------------------------------------- document


def build_document(
    runs: Sequence[RunResult], bench: Bench, cfg: EvalConfig, seconds: float
) -> dict[str, Any]:
    """The JSON printed by ``--format json``: one run object, or ``{"runs": [...]}``."""
    tool = {"name": "fpattr", "version": fpattr.__version__}
    if len(runs) == 1:
        return {**runs[0].summary, "bench": bench.info(), "tool": tool}
    return {
        "schema": SCHEMA,
        "bench": bench.info(),
        "tool": tool,
        "backbones": [r.summary["backbone"] for r in runs],
        "thresholds": THRESHOLDS_NOTE,
        "seconds": round(seconds, 3),
        "settings": cfg.to_dict(),
        "skipped": runs[0].summary["skipped"],
        "runs": [r.summary for r in runs],
    }


def runs_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["runs"]) if "runs" in doc else [doc]


# --------------------------------------------------------------------------- stdout formats


def write_json(doc: dict[str, Any], stream: TextIO) -> None:
    stream.write(dumps(doc, indent=2) + "\n")


def write_jsonl(doc: dict[str, Any], stream: TextIO) -> None:
    for run in runs_of(doc):
        stream.write(dumps({**run, "bench": doc.get("bench")}) + "\n")


def write_csv(doc: dict[str, Any], stream: TextIO) -> None:
    """One row per backbone with the headline figures (for spreadsheets / benchmarks)."""
    cols = ["backbone", "backbone_id", "extractor_sha256"] + [
        "_".join(p) if len(p) > 1 else p[0] for _, p, _ in ROWS
    ]
    w = RowWriter(stream)
    w.writerow(cols)
    for run in runs_of(doc):
        vals = [run.get("backbone"), run.get("backbone_id"), run.get("extractor_sha256")]
        vals += [_csv_value(_get(run, p)) for _, p, _ in ROWS]
        w.writerow(["" if v is None else v for v in vals])


def _csv_value(v: Any) -> Any:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        return v
    return v if isinstance(v, int) else number(v)


def write_table(doc: dict[str, Any], stream: TextIO, *, width: int | None = None) -> None:
    """Headline figures side by side (one column per backbone), then per-model top-1."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    runs = runs_of(doc)
    isatty = getattr(stream, "isatty", lambda: False)()
    console = Console(
        file=stream, width=width or (None if isatty else 100), highlight=False, soft_wrap=False
    )
    bench = (doc.get("bench") or {}).get("path", "")
    t = Table(
        title=Text(f"fpattr evaluate {printable(bench)}"),
        box=box.SIMPLE_HEAD,
    )
    # every column folds: a long backbone or model name wraps onto more lines, in full,
    # so two backbones that share a long prefix stay told apart at any width
    t.add_column("metric", style="bold", overflow="fold")
    for run in runs:
        t.add_column(
            Text(printable(run.get("backbone_id") or run.get("backbone"))),
            justify="right",
            overflow="fold",
            min_width=_NUMBER_W,
        )
    for label, path, digits in ROWS:
        t.add_row(label, *(_fmt(_get(run, path), digits) for run in runs))
    console.print(t)

    names = sorted({m for run in runs for m in (run.get("per_model") or {})})
    if names:
        pm = Table(title="per model: top-1 (mean genuine similarity)", box=box.SIMPLE_HEAD)
        pm.add_column("model", style="bold", overflow="fold")
        pm.add_column("refs/queries", justify="right", overflow="fold")
        for run in runs:
            pm.add_column(
                Text(printable(run.get("backbone_id") or run.get("backbone"))),
                justify="right",
                overflow="fold",
                min_width=_NUMBER_W,
            )
        for n in names:
            first = next(r["per_model"][n] for r in runs if n in r["per_model"])
            cells = []
            for run in runs:
                m = run["per_model"].get(n)
                cells.append(
                    "\u2014"
                    if m is None
                    else f"{fmt_score(m['top1'], 3)} ({fmt_score(m['mean_genuine_similarity'])})"
                )
            pm.add_row(Text(printable(n)), f"{first['n_refs']}/{first['n_queries']}", *cells)
        console.print(pm)
    for run in runs:
        if run.get("decisions"):
            for table in _decision_tables(run, console.width):
                console.print(table)
            look = look_alike_phrase(run)
            if look:
                console.print(Text(look))
            for note in (run["decisions"].get("protocols") or {}).get("notes") or []:
                console.print(Text(f"note: {note}", style="dim"))
        if run.get("flat_images"):
            console.print(
                Text(
                    f"note: {len(run['flat_images'])} flat image(s) (no fingerprint evidence) "
                    "left out of every figure",
                    style="yellow",
                )
            )
        if run.get("conflicting_labels"):
            console.print(
                Text(
                    f"warning: {len(run['conflicting_labels'])} image(s) under two labels "
                    "(same sha256) left out",
                    style="bold yellow",
                )
            )
        if run.get("duplicate_queries"):
            console.print(
                Text(
                    f"warning: {len(run['duplicate_queries'])} query file(s) identical to a "
                    "reference (same sha256) left out",
                    style="bold yellow",
                )
            )
    ignored = (doc.get("bench") or {}).get("ignored_files") or []
    if ignored:  # files of the bench that no figure counts: named, never silent
        first = ignored[0]
        console.print(
            Text(
                f"note: {len(ignored)} file(s) of the bench not read, e.g. "
                f"{printable(first['path'])} ({first['reason']}); listed in "
                "bench.ignored_files",
                style="yellow",
            )
        )
    console.print(
        Text(
            f"thresholds: {THRESHOLDS_NOTE}; open set: leave-one-model-out "
            f"({_fmt(_get(runs[0], ('open_set', 'n_folds')), 0)} folds)",
            style="dim",
        )
    )


#: (label, key) of the decision-quality columns.
DECISION_COLS = (
    ("FAR", "achieved_far"),
    ("prec.", "precision"),
    ("cover.", "coverage"),
    ("acc.", "accuracy"),
    ("ambig.", "ambiguous_rate"),
    ("incon.", "inconclusive_rate"),
    ("unseen", "unseen_named_rate"),
    ("real", "real_named_rate"),
    ("ECE", "ece_pooled"),
)
_PROTOCOL_LABELS = {
    "in_gallery": "in-gallery",
    "generator_disjoint": "disjoint",
    "calibration_transfer": "transfer",
}


def decision_rows(run: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(protocol, unit, figures) for every decision block of a run summary."""
    d = (run.get("decisions") or {}).get("protocols") or {}
    out = []
    for proto in ("in_gallery", "generator_disjoint", "calibration_transfer"):
        block = d.get(proto)
        if not block:
            continue
        block = block if proto == "in_gallery" else block.get("mean") or {}
        label = _PROTOCOL_LABELS[proto]
        if block.get("single"):
            out.append((label, "image", block["single"]))
        for n, r in (block.get("sets") or {}).items():
            out.append((label, f"set {n}", r))
        if block.get("pairs"):
            out.append((label, "pairs", block["pairs"]))
    return out


#: Width of a figure cell: "-0.1234" and "1234.5" print in full.
_NUMBER_W = 7


def _decision_tables(run: dict[str, Any], width: int) -> list[Any]:
    """The decision-quality table of ``run``, split into as many tables (each with the
    protocol and unit columns) as it takes for every figure to print in full at ``width``."""
    rows = decision_rows(run)
    proto_w = max([len("protocol")] + [len(p) for p, _, _ in rows])
    unit_w = max([len("unit")] + [len(u) for _, u, _ in rows])
    key_w = proto_w + unit_w + 7  # two padded columns, a separator, the edges
    cols: list[list[tuple[str, str]]] = [[]]
    used = key_w
    for label, key in DECISION_COLS:
        cells = [_fmt(r.get(key), 3 if key != "achieved_far" else 4) for _, _, r in rows]
        w = max([len(label)] + [len(c) for c in cells]) + 3
        if cols[-1] and used + w > width:
            cols.append([])
            used = key_w
        cols[-1].append((label, key))
        used += w
    return [_decision_table(run, chunk, first=i == 0) for i, chunk in enumerate(cols)]


#: Unseen generators the table and the HTML report name as passing for enrolled models.
LOOK_ALIKES_SHOWN = 5


def look_alike_phrase(run: dict[str, Any]) -> str:
    """The generators not enrolled most often named as an enrolled model (generator-
    disjoint, single images; up to :data:`LOOK_ALIKES_SHOWN` of those named at all), as
    one sentence, or "" (no such protocol, or none named)."""
    gd = ((run.get("decisions") or {}).get("protocols") or {}).get("generator_disjoint") or {}
    rows = [
        r
        for r in ((gd.get("mean") or {}).get("single") or {}).get("look_alikes") or []
        if r.get("named_rate")
    ]
    if not rows:
        return ""
    parts = [
        f"{printable(r['generator'])} named in {r['named_rate']:.1%} of its queries "
        f"({r['named_as_share']:.0%} as {printable(r['named_as'])}), FAR {r['far']:.2%}"
        for r in rows[:LOOK_ALIKES_SHOWN]
    ]
    more = (
        f"; {len(rows) - LOOK_ALIKES_SHOWN} more in the JSON"
        if len(rows) > LOOK_ALIKES_SHOWN
        else ""
    )
    return (
        "generators not enrolled that pass for enrolled ones (generator-disjoint, single "
        "images): " + "; ".join(parts) + more
    )


def _named_at(dec: dict[str, Any]) -> str:
    """ ", named at P >= x" when the run named models at another posterior than the
    default 0.5 (``--min-probability``), else ""."""
    p = dec.get("min_probability", 0.5)
    return f", named at P >= {_fmt(p, 2)}" if p != 0.5 else ""


def _decision_table(
    run: dict[str, Any], columns: Sequence[tuple[str, str]] = DECISION_COLS, first: bool = True
) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    dec = run.get("decisions") or {}
    applied = (
        f"target FAR {_fmt(dec.get('target_far'), 3)}"
        if dec.get("target_far") is not None
        else f"user threshold {_fmt(dec.get('threshold'), 4)}"
    )
    applied += _named_at(dec)
    splits = ((dec.get("protocols") or {}).get("generator_disjoint") or {}).get("splits")
    if splits:
        applied += f", {splits} generator-disjoint split{'s' if splits > 1 else ''}"
    if dec.get("processing"):  # processed queries: calibrated on the references' copies
        applied += f", calibrated on the references' {dec['processing']} copies"
    last = columns[-1] == DECISION_COLS[-1]
    t = Table(
        title=Text(
            f"decisions under the attribute/verify policy ({printable(run.get('backbone'))}, "
            f"{applied})"
        )
        if first
        else None,
        caption=None
        if not last
        else Text(
            "disjoint / transfer: mean over folds of random halves of the generators (one half "
            "enrolled and measured, the other unseen / calibrated on the other half); FAR: "
            "impostor comparisons of every kind at or above the threshold; unseen, real: named "
            "rate of models not enrolled and of real photos; ECE: pooled over the folds (its "
            "noise floor is in the JSON)",
            style="dim",
        ),
        box=box.SIMPLE_HEAD,
    )
    t.add_column("protocol", no_wrap=True)
    t.add_column("unit", no_wrap=True)
    for label, _ in columns:
        t.add_column(label, justify="right", no_wrap=True)
    for proto, unit, r in decision_rows(run):
        t.add_row(
            proto,
            unit,
            *(_fmt(r.get(k), 3 if k != "achieved_far" else 4) for _, k in columns),
        )
    return t


WRITERS = {"json": write_json, "jsonl": write_jsonl, "csv": write_csv, "table": write_table}


def write(doc: dict[str, Any], fmt: str, stream: TextIO) -> None:
    if fmt not in WRITERS:
        raise UsageError(f"unknown format {fmt!r} for evaluate; choose {' | '.join(WRITERS)}")
    WRITERS[fmt](doc, stream)


# --------------------------------------------------------------------------- figures


def _matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # not a base dependency
        raise UsageError("--report and --plots need matplotlib: pip install matplotlib") from exc
    return Figure


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def roc_png(results: Sequence[RunResult]) -> bytes:
    """Verification ROC (query pairs) of every backbone on one chart, log FAR axis."""
    figure = _matplotlib()
    fig = figure(figsize=(5.6, 4.4))
    ax = fig.add_subplot()
    floor = 1e-4
    for r in results:
        s = r.summary
        if r.genuine.size == 0 or r.impostor.size == 0:
            continue
        far, tar = metrics.roc_curve(r.genuine, r.impostor)
        auc = number(s["verification"]["roc_auc"])
        label = f"{s['backbone']} (AUC {auc:.3f})" if auc is not None else str(s["backbone"])
        ax.plot(np.maximum(far, floor), tar, label=label)
    ax.axvline(1e-2, color="0.6", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false accept rate (impostor pairs)")
    ax.set_ylabel("true accept rate (genuine pairs)")
    ax.set_title("Verification ROC, single image pairs")
    ax.grid(True, alpha=0.3)
    if results:
        ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def confusion_png(results: Sequence[RunResult]) -> bytes:
    """Row-normalised confusion heatmaps (true model rows, predicted columns), one per run."""
    figure = _matplotlib()
    n_runs = max(1, len(results))
    n_lab = max(len(r.summary["confusion"]["labels"]) for r in results) if results else 1
    side = min(max(3.6, 0.42 * n_lab + 2.0), 18.0)
    fig = figure(figsize=(side * n_runs, side))
    for i, r in enumerate(results):
        labels = [printable(x) for x in r.summary["confusion"]["labels"]]
        m = np.asarray(r.summary["confusion"]["matrix"], np.float64).reshape(
            len(labels), len(labels)
        )
        norm = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax = fig.add_subplot(1, n_runs, i + 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ticks = np.arange(len(labels))
        fs = 8 if len(labels) <= 20 else 5
        ax.set_xticks(ticks, labels, rotation=90, fontsize=fs)
        ax.set_yticks(ticks, labels, fontsize=fs)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(
            f"{r.summary['backbone']}: top-1 {_fmt(r.summary['identification']['top1'], 3)}"
        )
        if len(labels) <= 20:
            for y in range(len(labels)):
                for x in range(len(labels)):
                    if m[y, x]:
                        color = "white" if norm[y, x] > 0.6 else "black"
                        ax.text(
                            x, y, int(m[y, x]), ha="center", va="center", fontsize=7, color=color
                        )
    return _png(fig)


def reliability_png(results: Sequence[RunResult]) -> bytes:
    """Reliability diagrams of the decisions (probability shown vs how often it was right):
    single images, sets and verify pairs, in-gallery protocol, one panel per backbone."""
    figure = _matplotlib()
    n = max(1, len(results))
    fig = figure(figsize=(4.6 * n, 4.4))
    for i, r in enumerate(results):
        ax = fig.add_subplot(1, n, i + 1)
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        d = (r.summary.get("decisions") or {}).get("protocols", {}).get("in_gallery") or {}
        series = [("single image", d.get("single"))]
        series += [(f"set of {k}", v) for k, v in (d.get("sets") or {}).items()]
        series.append(("verify pairs", d.get("pairs")))
        for label, block in series:
            bins = (block or {}).get("reliability") or []
            if not bins:
                continue
            x = [b["confidence"] for b in bins]
            y = [b["accuracy"] for b in bins]
            ax.plot(x, y, marker="o", ms=3, label=f"{label} (ECE {_fmt(block.get('ece'), 3)})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("probability shown for the decision")
        ax.set_ylabel("fraction of decisions that were right")
        ax.set_title(f"{r.summary['backbone']}: reliability (in-gallery)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=7)
    return _png(fig)


def write_plots(folder: Any, results: Sequence[RunResult]) -> list[str]:
    """``roc.png``, ``confusion.png`` and ``reliability.png`` in ``folder`` (atomic)."""
    from pathlib import Path

    from fpattr.io.atomic import atomic_write_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    plots = [("roc.png", roc_png), ("confusion.png", confusion_png)]
    if any(r.summary.get("decisions") for r in results):
        plots.append(("reliability.png", reliability_png))
    for name, draw in plots:
        data = draw(results)
        atomic_write_bytes(folder / name, data)
        out.append(str(folder / name))
    return out


# --------------------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    return html.escape(printable(value), quote=True)


def _img(data: bytes, alt: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<img class="fig" alt="{_e(alt)}" src="{uri}">'


_EXTRA_CSS = """
img.fig{max-width:100%;height:auto;border:1px solid var(--line);border-radius:8px;background:#fff}
table.grid td.num,table.grid th.num{text-align:right;font-variant-numeric:tabular-nums}
.figs{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
"""


def render_html(doc: dict[str, Any], results: Sequence[RunResult]) -> str:
    """A self-contained HTML page: settings, headline table, ROC, confusion, per-model."""
    from fpattr.report.htmlfmt import CSS

    runs = runs_of(doc)
    bench = doc.get("bench") or {}
    version = (doc.get("tool") or {}).get("version", fpattr.__version__)
    head_cells = "".join(f'<th class="num">{_e(r.get("backbone_id"))}</th>' for r in runs)
    rows = "".join(
        f"<tr><th>{_e(label)}</th>"
        + "".join(f'<td class="num">{_e(_fmt(_get(r, p), d))}</td>' for r in runs)
        + "</tr>"
        for label, p, d in ROWS
    )
    headline = f'<table class="grid"><tr><th>metric</th>{head_cells}</tr>{rows}</table>'
    for r in runs:
        drows = decision_rows(r)
        if not drows:
            continue
        cols = "".join(f'<th class="num">{_e(label)}</th>' for label, _ in DECISION_COLS)
        body = "".join(
            f"<tr><td>{_e(p)}</td><td>{_e(u)}</td>"
            + "".join(
                f'<td class="num">{_e(_fmt(v.get(k), 4 if k == "achieved_far" else 3))}</td>'
                for _, k in DECISION_COLS
            )
            + "</tr>"
            for p, u, v in drows
        )
        dec = r.get("decisions") or {}
        headline += (
            f"<h3>Decisions: {_e(r.get('backbone'))}, target FAR "
            f"{_e(_fmt(dec.get('target_far'), 3))}"
            + _e(_named_at(dec))
            + (
                f", calibrated on the references' {_e(dec['processing'])} copies"
                if dec.get("processing")
                else ""
            )
            + "</h3>"
            f'<table class="grid"><tr><th>protocol</th><th>unit</th>{cols}</tr>{body}</table>'
        )
        look = look_alike_phrase(r)
        if look:
            headline += f'<p class="muted">{_e(look)}</p>'

    settings = runs[0].get("settings") or {}
    kv = "".join(
        f"<tr><th>{_e(k)}</th><td><code>{_e(json.dumps(v, default=str))}</code></td></tr>"
        for k, v in settings.items()
    )
    backbones = "".join(
        f"<tr><th>{_e(r.get('backbone'))}</th><td>{_e(r.get('backbone_id'))}<br>"
        f'<code class="hash full">{_e(r.get("extractor_sha256"))}</code></td></tr>'
        for r in runs
    )
    manifest = (
        '<section class="panel"><h2>Run</h2><div class="manifest"><div>'
        f'<h3>Bench</h3><table class="kv"><tr><th>path</th><td><code>{_e(bench.get("path"))}'
        f"</code></td></tr><tr><th>models</th><td>{_e(len(bench.get('models') or []))}</td></tr>"
        f"<tr><th>images</th><td>{_e(bench.get('n_images'))}</td></tr>"
        f"<tr><th>real</th><td>{_e(bench.get('n_real'))}</td></tr></table>"
        f'<h3>Backbones</h3><table class="kv">{backbones}</table></div>'
        f'<div><h3>Settings</h3><table class="kv">{kv}</table></div></div></section>'
    )

    figs = ""
    try:
        figs = (
            '<section class="panel"><h2>Figures</h2><div class="figs">'
            + _img(roc_png(results), "verification ROC curve")
            + _img(confusion_png(results), "confusion matrix heatmap")
            + (
                _img(reliability_png(results), "reliability diagram of the decisions")
                if any(r.summary.get("decisions") for r in results)
                else ""
            )
            + "</div></section>"
        )
    except UsageError as exc:  # no matplotlib: the numbers still make a report
        figs = f'<section class="panel"><p class="muted">{_e(exc)}</p></section>'

    per_run = ""
    for r in runs:
        pm_rows = "".join(
            f"<tr><td>{_e(n)}</td><td class='num'>{_e(m['n_refs'])}</td>"
            f"<td class='num'>{_e(m['n_queries'])}</td>"
            f"<td class='num'>{_e(fmt_score(m['top1'], 3))}</td>"
            f"<td class='num'>{_e(fmt_score(m['mean_genuine_similarity'], 3))}</td></tr>"
            for n, m in (r.get("per_model") or {}).items()
        )
        labels = r["confusion"]["labels"]
        conf_head = "".join(f'<th class="num">{_e(x)}</th>' for x in labels)
        conf_rows = "".join(
            f"<tr><th>{_e(lab)}</th>"
            + "".join(f'<td class="num">{_e(v)}</td>' for v in row)
            + "</tr>"
            for lab, row in zip(labels, r["confusion"]["matrix"], strict=True)
        )
        folds = "".join(
            f"<tr><td>{_e(f['held_out'])}</td><td class='num'>{_e(fmt_score(f['auroc'], 3))}</td>"
            f"<td class='num'>{_e(fmt_score(f['oscr'], 3))}</td>"
            f"<td class='num'>{_e(f['n_known'])}</td><td class='num'>{_e(f['n_unknown'])}</td>"
            "</tr>"
            for f in r["open_set"]["per_fold"]
        )
        per_run += (
            f'<section class="panel"><h2>{_e(r.get("backbone_id"))}</h2>'
            '<h3>Per model</h3><table class="grid"><tr><th>model</th><th class="num">refs</th>'
            '<th class="num">queries</th><th class="num">top-1</th>'
            f'<th class="num">mean genuine similarity</th></tr>{pm_rows}</table>'
            "<h3>Confusion (rows: true, columns: predicted)</h3>"
            f'<table class="grid"><tr><th></th>{conf_head}</tr>{conf_rows}</table>'
            "<h3>Open set, leave-one-model-out folds</h3>"
            '<table class="grid"><tr><th>held out</th><th class="num">AUROC</th>'
            '<th class="num">OSCR</th><th class="num">known</th><th class="num">unknown</th>'
            f"</tr>{folds}</table></section>"
        )

    problems = ""
    skipped = runs[0].get("skipped") or []
    failed = [f for r in runs for f in (r.get("failed") or [])]
    conflicts = runs[0].get("conflicting_labels") or []
    ignored = bench.get("ignored_files") or []
    if skipped or failed or conflicts or ignored:
        items = (
            "".join(
                f"<li><code>{_e(s.get('model'))}</code>: {_e(s.get('reason'))}</li>"
                for s in skipped
            )
            + "".join(
                f"<li><code>{_e(f.get('path'))}</code>: {_e(f.get('error'))}</li>" for f in failed
            )
            + "".join(
                f"<li><code>{_e(' = '.join(c['paths']))}</code>: the same image under "
                f"{_e(', '.join(c['labels']))}, left out</li>"
                for c in conflicts
            )
            + "".join(
                f"<li><code>{_e(f.get('path'))}</code>: not read, {_e(f.get('reason'))}</li>"
                for f in ignored
            )
        )
        problems = f'<section class="panel"><h2>Skipped and failed</h2><ul>{items}</ul></section>'

    title = "Attribution benchmark"
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f'<meta name="generator" content="fpattr {_e(version)}">\n'
        f"<title>{_e(title)} \u2014 {_e(bench.get('path'))}</title>\n"
        f"<style>{CSS}{_EXTRA_CSS}</style></head><body>\n"
        '<header class="top"><div class="wrap">'
        f'<div class="brand">fpattr <span>{_e(version)}</span></div>'
        f"<h1>{_e(title)}</h1>"
        f'<p class="sub">evaluate \u00b7 {_e(bench.get("path"))} \u00b7 '
        f"{_e(', '.join(str(r.get('backbone')) for r in runs))}</p>"
        '</div></header>\n<main class="wrap">\n'
        f'<section class="panel"><h2>Results</h2>{headline}'
        f'<p class="muted small">Thresholds: {_e(THRESHOLDS_NOTE)}. Identification: nearest '
        "reference centroid by cosine. Verification: single query image vs single query "
        "image pairs. Open set: leave-one-model-out, real images are unknowns in every "
        "fold.</p></section>\n"
        f"{figs}\n{per_run}\n{problems}\n{manifest}\n"
        f'</main>\n<footer class="wrap">Generated by fpattr {_e(version)}.</footer>\n'
        "</body></html>\n"
    )


def write_html(path: Any, doc: dict[str, Any], results: Sequence[RunResult]) -> None:
    from fpattr.io.atomic import atomic_write_text

    atomic_write_text(path, render_html(doc, results))
