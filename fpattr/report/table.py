"""Terminal table report (the CLI's default output), rendered with rich.

Rows are collected and rendered at close because a rich table sizes its columns
from every row. Every user-controlled string goes in as :class:`rich.text.Text`
(never markup) after :func:`~fpattr.report.base.printable`, so a file named
``[red]x`` or one holding escape sequences prints literally.
"""

from __future__ import annotations

from typing import Any, TextIO

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fpattr.report.base import fmt_rate, fmt_score, is_verify, left_out, number, printable

DEFAULT_WIDTH = 100


def shorten_left(text: str, width: int) -> str:
    """Keep the end of a path (file name and nearest folders), which tells files apart."""
    if width <= 1:
        return text[-width:] if width > 0 else ""
    return text if len(text) <= width else "\u2026" + text[-(width - 1) :]


def share_widths(available: int, wanted: list[tuple[int, int]]) -> list[int]:
    """Column widths for ``(wanted, minimum)`` pairs within ``available`` characters.

    A column that wants less than an even share gets what it wants; the rest split
    what is left evenly (never below ``minimum``, which may overflow ``available`` on a
    very narrow terminal: rich then wraps, it never has to cut a folded column).
    """
    widths = [0] * len(wanted)
    todo = sorted(range(len(wanted)), key=lambda i: wanted[i][0])
    left = available
    while todo:
        share = left // len(todo)
        i = todo.pop(0)
        want, least = wanted[i]
        widths[i] = min(want, max(least, share))
        left -= widths[i]
    return widths


def _overhead(n_columns: int) -> int:
    """Characters a SIMPLE_HEAD table without edge padding adds around ``n_columns``."""
    return 2 + 3 * (n_columns - 1)


def _decision_text(decision: Any, status: Any) -> Text:
    if status == "error":
        return Text("failed", style="bold red")
    if status == "skipped":
        return Text("skipped", style="yellow")
    if decision is None:
        return Text("\u2014", style="dim")
    d = printable(decision)
    if d == "unknown":
        return Text(d, style="yellow")
    if d == "same":
        return Text(d, style="bold green")
    if d == "different":
        return Text(d, style="bold magenta")
    return Text(d, style="bold cyan")


def _threshold_line(summary: dict, results: list[dict]) -> Text | None:
    """The thresholds in force, with the false-accept rate each was fitted for."""
    policy = summary.get("policy") or {}
    cals = [c for c in policy.get("calibrations") or [] if isinstance(c, dict)]
    if not cals:
        return None
    # the calibrations that decided something: the rows' and the set's (a processed
    # calibration also fits the clean one as its threshold floor, which decided nothing)
    as_set = summary.get("as_set") if isinstance(summary.get("as_set"), dict) else {}
    used = {
        (c.get("comparison"), c.get("set_size"), c.get("views"), c.get("processing"))
        for r in [*results, as_set]
        for c in [r.get("calibration") or {}]
    }
    line = Text()
    for c in cals:
        key = (c.get("comparison"), c.get("set_size"), c.get("views"), c.get("processing"))
        if used and key not in used:
            continue
        if line:
            line.append("\n")
        far = number(c.get("target_far"))
        line.append(f"{fmt_score(c.get('threshold'), 3)} cosine")
        line.append(
            f" (fitted for FAR {fmt_rate(far)}" if far is not None else " (user threshold, no FAR",
        )
        what = printable(c.get("comparison"))
        if c.get("views"):
            what += f", {c.get('views')} view(s)"
        if c.get("processing"):  # fitted on the references' processed copies
            what += f", {printable(c.get('processing'))} queries"
        line.append(f"; {what}; {printable(c.get('source'))})", style="dim")
    return line or None


def provenance_note(prov: Any, label: str = "metadata") -> Text | None:
    """A short line under the row when the file's metadata claims an origin (None when
    it claims nothing): the claim, the C2PA verdict, and whether the fingerprint agrees."""
    if not isinstance(prov, dict):
        return None
    c2 = prov.get("c2pa") if isinstance(prov.get("c2pa"), dict) else {}
    claim = prov.get("claimed_generator")
    if not claim and prov.get("digital_source_type"):
        claim = "source type " + str(prov["digital_source_type"]).rstrip("/").rsplit("/", 1)[-1]
    if not claim and not c2.get("present"):
        return None
    line = Text(f"\u21b3 {label}: " + printable(claim or "C2PA manifest"), style="dim")
    if prov.get("claims_disagree"):
        line.append(" [metadata sources disagree]", style="yellow")
    if c2.get("present"):
        # validity first: a tampered file by a trusted signer is INVALID, not "trusted"
        if not c2.get("checked"):
            line.append(f" [{printable(c2.get('summary') or 'C2PA not checked')}]", style="yellow")
        elif not c2.get("signature_valid"):
            line.append(" [C2PA INVALID]", style="bold red")
        elif c2.get("signer_trusted"):
            line.append(" [C2PA trusted]", style="green")
        else:
            line.append(" [C2PA signed, signer not trusted]", style="dim")
    agree = prov.get("agrees_with_fingerprint")
    if agree is True:
        line.append(" \u2014 agrees with fingerprint", style="green")
    elif agree is False:
        line.append(" \u2014 DISAGREES with fingerprint", style="bold yellow")
    return line


def row_note(r: dict) -> Text | None:
    """The lines printed under an attribute row: its metadata claim
    (:func:`provenance_note`) and its caveats (a query stored unlike the references it is
    judged against: :func:`fpattr.session.reference_caveat`)."""
    lines = [provenance_note(r.get("provenance"))]
    lines += [
        Text("\u21b3 caveat: " + printable(c), style="yellow") for c in r.get("caveats") or []
    ]
    kept = [x for x in lines if x is not None]
    return Text("\n  ").join(kept) if kept else None


class TableWriter:
    """Accumulates rows, renders one table and a summary panel at close."""

    def __init__(
        self,
        stream: TextIO,
        manifest: dict,
        *,
        width: int | None = None,
        color: bool | None = None,
        **_options: Any,
    ) -> None:
        self.manifest = manifest
        isatty = getattr(stream, "isatty", lambda: False)()
        if width is None and not isatty:
            import os

            cols = os.environ.get("COLUMNS", "")
            width = int(cols) if cols.isdigit() and int(cols) >= 40 else DEFAULT_WIDTH
        self.console = Console(
            file=stream,
            width=width,
            force_terminal=color,
            no_color=(color is False) or None,
            highlight=False,
            soft_wrap=False,
        )
        self.results: list[dict] = []
        self._closed = False

    def write(self, result: dict) -> None:
        if self._closed:
            raise RuntimeError("report writer is closed")
        self.results.append({k: v for k, v in result.items() if k != "thumbnail"})

    # -- attribute ----------------------------------------------------------------------------

    def _attribute_table(self) -> Group:
        ok = [r for r in self.results if r.get("status") != "error"]
        dec_lines = [
            line
            for r in ok
            for line in [
                printable(r.get("decision")),
                f"leaning {printable(r.get('leaning'))}" if r.get("leaning") else "",
                *("\u00b7 " + printable(c) for c in r.get("candidates") or []),
            ]
        ]
        top_lines = [
            f"{printable((t or {}).get('model'))} "
            f"{fmt_score((t or {}).get('similarity'))} {fmt_score((t or {}).get('probability'))}"
            for r in ok
            for t in (r.get("top") or [])
        ]
        prob_w = len("P(decision)")
        path_w, dec_w, top_w = share_widths(
            self.console.width - prob_w - _overhead(4),
            [
                (max([4] + [len(printable(r.get("path"))) for r in self.results]), 12),
                (max([len("failed"), 8] + [len(line) for line in dec_lines]), 9),
                (max([len("(unknown) 0.00")] + [len(line) for line in top_lines]), 12),
            ],
        )
        multi = any(len(r.get("top") or []) > 1 for r in ok)

        notes = [row_note(r) for r in self.results]
        chunked = any(n is not None for n in notes)

        def new_table(header: bool) -> Table:
            t = Table(
                box=box.SIMPLE_HEAD,
                header_style="bold",
                pad_edge=False,
                leading=1 if multi else 0,
                show_header=header,
                # chunks drop the blank edge lines (one blank line each side is added
                # around them all) and are indented by the edge's one space instead
                show_edge=not chunked,
            )
            # decisions and model names fold onto more lines when narrow: never cut
            t.add_column("Path", width=path_w, overflow="fold")
            t.add_column("Decision", width=dec_w, overflow="fold")
            t.add_column("P(decision)", justify="right", no_wrap=True, width=prob_w)
            t.add_column("Top-k: similarity, posterior", width=top_w, overflow="fold")
            return t

        # A rich table cannot span a row across columns, so a row's metadata line is
        # printed full width after it and the rows go on in a new table with the same
        # fixed column widths (they line up): in the Path column it folded every few
        # characters.
        parts: list[Any] = []
        table = new_table(True)
        for r, note in zip(self.results, notes, strict=True):
            path = Text(shorten_left(printable(r.get("path")), path_w))
            if r.get("status") in ("error", "skipped"):
                # the path column is the wide one: the reason goes under the path
                style = "red" if r.get("status") == "error" else "yellow"
                path.stylize(style)
                path.append("\n\u21b3 " + printable(r.get("error") or "failed"), style=style)
                table.add_row(path, _decision_text(None, r.get("status")), "", "")
                continue
            models = Text()
            for i, t in enumerate(r.get("top") or []):
                t = t or {}
                style = "" if i == 0 else "dim"
                models.append(("\n" if i else "") + f"{printable(t.get('model'))} ", style=style)
                models.append(fmt_score(t.get("similarity")), style=style)
                if number(t.get("probability")) is not None:
                    models.append(" " + fmt_score(t.get("probability")), style=style)
            if number(r.get("p_unknown")) is not None:
                models.append(f"\n(unknown) {fmt_score(r.get('p_unknown'))}", style="dim")
            decision = _decision_text(r.get("decision"), r.get("status"))
            if r.get("leaning"):
                decision.append(f"\nleaning {printable(r['leaning'])}", style="dim")
            for c in r.get("candidates") or []:
                decision.append("\n\u00b7 " + printable(c), style="dim")
            table.add_row(path, decision, fmt_score(r.get("probability"), 3), models)
            if note is not None:
                parts += [Padding(table, (0, 0, 0, 1), expand=False), Text("  ").append_text(note)]
                if multi:
                    parts.append(Text())
                table = new_table(False)
        if not chunked:
            return Group(table)
        if table.row_count:
            parts.append(Padding(table, (0, 0, 0, 1), expand=False))
        return Group(Text(), *parts, Text())

    # -- verify -------------------------------------------------------------------------------

    def _verify_stacked(self) -> Table:
        """Verify results as label/value rows: at any width numbers and decisions stay whole
        (values fold; a column layout would squeeze the numbers)."""
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for k, r in enumerate(self.results):
            if k:
                grid.add_row("", "")
            grid.add_row("A", Text(printable(r.get("a"))))
            grid.add_row("B", Text(printable(r.get("b"))))
            if r.get("status") == "error":
                grid.add_row("failed", Text(printable(r.get("error") or "failed"), style="red"))
                continue
            grid.add_row("similarity", fmt_score(r.get("similarity"), 3))
            grid.add_row("probability", fmt_score(r.get("probability"), 3))
            grid.add_row("threshold", fmt_score(r.get("threshold"), 3))
            decision = _decision_text(r.get("decision"), r.get("status"))
            if r.get("leaning"):
                decision.append(f" ({printable(r['leaning'])})", style="dim")
            grid.add_row("decision", decision)
            for side in "ab":
                note = provenance_note(r.get(f"provenance_{side}"), f"{side.upper()} metadata")
                if note is not None:
                    grid.add_row("", note)
        return grid

    def _verify_table(self) -> tuple[Table, Text | None]:
        headers: tuple[str, ...] = ("Similarity", "Probability", "Threshold")
        numeric = tuple(map(len, headers))
        if self.console.width - sum(numeric) - _overhead(6) < 8 + 8 + len("different"):
            headers, numeric = ("Sim.", "Prob.", "Thr."), (6, 6, 6)  # "-0.123" in full
        if self.console.width - sum(numeric) - _overhead(6) < 8 + 8 + len("different"):
            return self._verify_stacked(), None  # too narrow for columns: one block per pair
        n_errors = sum(r.get("status") == "error" for r in self.results)
        longest = max(
            [len("different")]
            + [
                len(printable(r.get("decision"))) + len(printable(r.get("leaning"))) + 3
                for r in self.results
                if r.get("leaning")
            ]
        )
        dec_w = max(longest, len(f"failed [{n_errors}]") if n_errors else 0)
        longest_a, longest_b = (
            max([4] + [len(printable(r.get(k))) for r in self.results]) for k in "ab"
        )
        a_w, b_w, dec_w = share_widths(
            self.console.width - sum(numeric) - _overhead(6),
            [(longest_a, 8), (longest_b, 8), (dec_w, len("different"))],
        )
        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        table.add_column("A", no_wrap=True, width=a_w)
        table.add_column("B", no_wrap=True, width=b_w)
        for name, w in zip(headers, numeric, strict=True):
            table.add_column(name, justify="right", no_wrap=True, width=w)
        table.add_column("Decision", width=dec_w, overflow="fold")  # folds, never cut
        notes = Text()
        n_failed = 0
        for r in self.results:
            a = Text(shorten_left(printable(r.get("a")), a_w))
            b = Text(shorten_left(printable(r.get("b")), b_w))
            if r.get("status") == "error":
                # reasons do not fit a numeric column: footnote them under the table
                n_failed += 1
                a.stylize("red")
                b.stylize("red")
                mark = f"failed [{n_failed}]"
                table.add_row(a, b, "", "", "", Text(mark, style="bold red"))
                reason = printable(r.get("error") or "failed")
                notes.append(f"{chr(10) if n_failed > 1 else ''}[{n_failed}] ", style="bold red")
                notes.append(f"{printable(r.get('a'))} vs {printable(r.get('b'))}: ", style="red")
                notes.append(reason, style="red")
                continue
            table.add_row(
                a,
                b,
                fmt_score(r.get("similarity"), 3),
                fmt_score(r.get("probability"), 3),
                fmt_score(r.get("threshold"), 3),
                _decision_text(r.get("decision"), r.get("status")).append(
                    f" ({printable(r['leaning'])})" if r.get("leaning") else "", style="dim"
                ),
            )
        for r in self.results:  # what each side's metadata claims, full width
            for side in "ab":
                note = provenance_note(r.get(f"provenance_{side}"), f"{side.upper()} metadata")
                if note is not None:
                    notes.append("\n" if notes else "")
                    notes.append_text(note)
        for r in self.results:  # images left out of a folder side: named, with the reason
            for label, style, line in left_out(r):
                notes.append("\n" if notes else "")
                notes.append(f"{label} ", style=style)
                notes.append(line)
            for side in "ab":  # read fine, but no evidence: not in the pooled fingerprint
                flat, dup = r.get(f"{side}_flat") or 0, r.get(f"{side}_duplicates") or 0
                shared = r.get(f"{side}_shared") or 0
                if flat or dup or shared:
                    parts = [f"{flat} flat (no signal)"] if flat else []
                    parts += [f"{dup} repeated (same sha256)"] if dup else []
                    other = "B" if side == "a" else "A"
                    parts += [f"{shared} also in {other} (same sha256)"] if shared else []
                    notes.append("\n" if notes else "")
                    notes.append(
                        f"{side.upper()}: {' and '.join(parts)} left out of the fingerprint",
                        style="dim",
                    )
        return table, (notes if notes else None)

    # -- summary ------------------------------------------------------------------------------

    def _summary_panel(self, summary: dict) -> Panel:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        decisions = summary.get("decisions") or {}
        if decisions:
            line = Text()
            items = sorted(decisions.items(), key=lambda kv: (-int(kv[1] or 0), str(kv[0])))
            for i, (name, count) in enumerate(items):
                if i:
                    line.append("  ")
                line.append_text(_decision_text(name, "ok"))
                line.append(f" {count}")
            grid.add_row("Decisions", line)
        thr = _threshold_line(summary, self.results)
        if thr is not None:
            grid.add_row("Threshold", thr)
        n_in = summary.get("n_inputs", len(self.results))
        n_ok = summary.get("n_ok")
        n_failed = summary.get("n_failed") or 0
        counts = Text(f"{n_in} inputs")
        if n_ok is not None:
            counts.append(f", {n_ok} ok")
        counts.append(f", {n_failed} failed", style="bold red" if n_failed else "")
        if summary.get("n_skipped"):
            counts.append(f", {summary['n_skipped']} skipped (not images)", style="yellow")
        if summary.get("n_repeated"):
            counts.append(
                f", {summary['n_repeated']} path(s) given again: attributed once", style="yellow"
            )
        grid.add_row("Inputs", counts)
        as_set = summary.get("as_set")
        if isinstance(as_set, dict) and as_set:
            text = Text()
            if "decision" in as_set:
                text.append_text(_decision_text(as_set.get("decision"), "ok"))
                if number(as_set.get("probability")) is not None:
                    text.append(f" p {fmt_score(as_set.get('probability'), 3)}")
                if as_set.get("n_images"):
                    text.append(f" ({as_set['n_images']} images)")
            tops = as_set.get("top") or []
            if tops:
                parts = [
                    f"{printable(t.get('model'))} {fmt_score(t.get('probability'))}"
                    if number(t.get("probability")) is not None
                    else f"{printable(t.get('model'))} {fmt_score(t.get('similarity'))}"
                    for t in tops
                    if isinstance(t, dict)
                ]
                text.append(("  " if text else "") + ", ".join(parts), style="dim")
            if as_set.get("note"):
                text.append("\n" + printable(as_set["note"]), style="yellow")
            if not text:
                text = Text(printable(", ".join(f"{k}={v}" for k, v in as_set.items())))
            grid.add_row("As a set", text)
        seconds = number(summary.get("seconds"))
        ips = number(summary.get("images_per_second"))
        if seconds is not None or ips is not None:
            speed = Text()
            if seconds is not None:
                speed.append(f"{seconds:.1f} s")
            if ips is not None:
                speed.append(("  " if seconds is not None else "") + f"{ips:.1f} images/s")
            grid.add_row("Time", speed)
        return Panel(grid, title="Summary", title_align="left", box=box.ROUNDED, expand=False)

    def close(self, summary: dict) -> None:
        if self._closed:
            return
        self._closed = True
        first = self.results[0] if self.results else None
        parts: list[Any] = []
        if self.results:
            if is_verify(self.manifest, first):
                table, notes = self._verify_table()
                parts.append(table)
                if notes is not None:
                    parts += [notes, Text()]
            else:
                parts.append(self._attribute_table())
        parts.append(self._summary_panel(summary))
        self.console.print(Group(*parts))
        self.console.file.flush()
        self.results = []
