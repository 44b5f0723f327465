"""Self-contained HTML report, the file analysts attach to a case.

It reads like an answer: the summary and one card per input (decision, probability,
threshold, candidates, metadata provenance) come first; the run manifest (environment,
settings, models, calibration) follows, collapsible. Paths and hashes are shown in
full as selectable text, with a copy button.

One file, no network: inline CSS, thumbnails as ``data:`` URIs, and a
Content-Security-Policy that forbids remote loads and every script except the one
fixed copy-button script below (allowed by its sha256), so even an escaping bug could
not turn a crafted file name into code. Without JavaScript the copy buttons stay
hidden and the text is still selectable. Every user-controlled string (paths, model
names, errors, manifest and metadata values) goes through :func:`_e`.

Cards are rendered as results arrive and kept as strings (the summary comes first
in the page but is only known at close). Thumbnails stop after
:data:`MAX_THUMBNAILS` inputs to keep the file openable.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

import fpattr
from fpattr.report.base import fmt_rate, fmt_score, is_verify, number, printable

MAX_THUMBNAILS = 2000

_THUMB_RE = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")

_MANIFEST_KEYS = frozenset(
    {
        "schema",
        "command",
        "tool",
        "python",
        "platform",
        "started",
        "backbone",
        "gallery",
        "calibration",
        "settings",
        "plugins",
    }
)

#: The page's only script: reveals the copy buttons and copies the ``<code>`` before one.
#: Where the clipboard API is refused it selects the text for Ctrl+C instead.
COPY_JS = (
    'document.documentElement.classList.add("js");'
    'document.addEventListener("click",function(e){'
    'var b=e.target.closest?e.target.closest("button.cpb"):null;if(!b)return;'
    "var c=b.previousElementSibling;if(!c)return;"
    "function sel(){var r=document.createRange();r.selectNodeContents(c);"
    "var s=window.getSelection();s.removeAllRanges();s.addRange(r);"
    'b.textContent="selected";}'
    'function done(t){b.textContent=t;setTimeout(function(){b.textContent="copy";},1500);}'
    "if(navigator.clipboard&&window.isSecureContext){"
    'navigator.clipboard.writeText(c.textContent).then(function(){done("copied");},sel);'
    "}else{sel();}});"
)

_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(COPY_JS.encode()).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'"
)

_NO_MATCH = frozenset({"unknown", "ambiguous", "insufficient signal"})


def _e(value: Any) -> str:
    """Escape for HTML text and attribute values; control characters made visible."""
    return html.escape(printable(value), quote=True)


def _e_lines(value: Any) -> str:
    """Like :func:`_e` but keeps line breaks (multi-line error messages)."""
    return "<br>".join(_e(line) for line in str(value).splitlines() or [""])


def _copyable(value: Any, cls: str = "") -> str:
    """``value`` in full as selectable ``<code>`` that wraps anywhere, with a copy button.

    The button is hidden until the page's script runs (``.js``), so without JavaScript
    there is no dead control, only text to select.
    """
    if value is None or value == "":
        return '<span class="muted">\u2014</span>'
    classes = f"cp {cls}".strip()
    return (
        f'<span class="cpw"><code class="{classes}">{_e(value)}</code>'
        '<button type="button" class="cpb" title="copy to clipboard">copy</button></span>'
    )


def _pct(value: float | None) -> str:
    f = 0.0 if value is None else min(1.0, max(0.0, value))
    return f"{f * 100:.1f}%"


def _fmt_time(value: Any) -> str:
    """ISO 8601 timestamps shown as ``2024-05-01 12:00:03 UTC``; anything else as is."""
    if not value:
        return '<span class="muted">\u2014</span>'
    s = str(value)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return _e(s)
    zone = " UTC" if dt.utcoffset() is not None and not dt.utcoffset() else ""
    shown = dt.strftime("%Y-%m-%d %H:%M:%S") + (zone or (dt.strftime(" %z") if dt.tzinfo else ""))
    return f'<time datetime="{_e(s)}">{_e(shown)}</time>'


def _badge(decision: Any, status: Any = "ok") -> str:
    if status == "error":
        return '<span class="badge b-failed">failed</span>'
    if status == "skipped":  # as the table and JSON say (break-it: "no decision")
        return '<span class="badge b-none">skipped</span>'
    if decision is None:
        return '<span class="badge b-none">no decision</span>'
    d = str(decision)
    cls = {
        "unknown": "b-unknown",
        "inconclusive": "b-unknown",  # verify's "no answer" reads like attribute's unknown
        "same": "b-same",
        "different": "b-different",
    }.get(d, "b-model")
    return f'<span class="badge {cls}">{_e(d)}</span>'


# -- generic values (manifest) -----------------------------------------------------------------


def _scalar(value: Any, key: str = "") -> str:
    if value is None:
        return '<span class="muted">\u2014</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _e(f"{value:.6g}")
    s = str(value)
    if "sha256" in key or _HEX64.fullmatch(s):
        return _copyable(s, "hash")
    if key == "path" or key.endswith(("_path", "_dir", "file")):
        return _copyable(s)
    if key in ("started", "finished"):
        return _fmt_time(s)
    return _e(s)


def _value(value: Any, key: str = "", depth: int = 0) -> str:
    """Any JSON-like manifest value as compact HTML (nested tables, chip lists)."""
    if isinstance(value, Mapping):
        if not value:
            return '<span class="muted">\u2014</span>'
        if depth >= 3:
            return _e(value)
        rows = "".join(
            f"<tr><th>{_e(k)}</th><td>{_value(v, str(k), depth + 1)}</td></tr>"
            for k, v in value.items()
        )
        return f'<table class="kv inner">{rows}</table>'
    if isinstance(value, (list, tuple)):
        if not value:
            return '<span class="muted">none</span>'
        if all(isinstance(v, Mapping) for v in value):
            return _records(value)
        chips = "".join(f'<span class="chip">{_scalar(v)}</span>' for v in value)
        if len(value) > 12:
            return (
                f"<details><summary>{len(value)} {_e(key or 'items')}</summary>"
                f'<div class="chips">{chips}</div></details>'
            )
        return f'<div class="chips">{chips}</div>'
    return _scalar(value, key)


def _records(items: Any) -> str:
    keys: list[str] = []
    for item in items:
        for k in item:
            if str(k) not in keys:
                keys.append(str(k))
    if len(keys) > 5:  # a wide grid would squeeze every column to a sliver: one block each
        blocks = "".join(f'<div class="rec">{_value(dict(item), "", 1)}</div>' for item in items)
        return f'<div class="recs">{blocks}</div>'
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_value(item.get(k), k, 3)}</td>" for k in keys) + "</tr>"
        for item in items
    )
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# -- the writer --------------------------------------------------------------------------------


def _far_text(r: dict) -> str:
    far = number(r.get("target_far"))
    cal = r.get("calibration") or {}
    if far is not None:
        return f" (fitted for FAR {fmt_rate(far)})"
    if cal.get("source") == "user-threshold":
        return " (user threshold: fitted for no FAR)"
    return ""


def _cal_text(r: dict) -> str:
    cal = r.get("calibration") or {}
    if not cal:
        return "uncalibrated"
    text = f"{cal.get('comparison')}, calibration: {cal.get('source')}"
    if cal.get("set_size", 1) and cal.get("set_size", 1) > 1:
        text += f", set of {cal.get('set_size')}"
    if cal.get("processing"):  # fitted on the references' processed copies
        text += f", made of the references' {cal.get('processing')} copies"
    return text


def _p_label(r: Mapping[str, Any]) -> str:
    """What the shown probability is of (escaped): the decision's outcome, the leaning one
    for "inconclusive" (it read "P(inconclusive) 0.483" for P(bilinear), break-it 27c),
    the candidates together for "ambiguous"."""
    decision = r.get("decision")
    if decision == "inconclusive" and r.get("leaning"):
        return _e(r["leaning"])
    if decision == "ambiguous" and r.get("candidates"):
        return _e(" or ".join(map(str, r["candidates"])))
    return _e(decision or "decision")


def _decision_line(r: dict) -> str:
    """The decision, the probability of that decision and the threshold in force."""
    prob = number(r.get("probability"))
    parts = [f"<span>P({_p_label(r)}) <b>{fmt_score(prob, 3)}</b></span>"]
    if r.get("leaning"):
        parts.append(f"<span>leaning {_e(r['leaning'])}</span>")
    if r.get("candidates"):
        parts.append(f"<span>between {_e(' | '.join(map(str, r['candidates'])))}</span>")
    if number(r.get("p_unknown")) is not None and r.get("decision") != "unknown":
        parts.append(f"<span>P(unknown) {fmt_score(r.get('p_unknown'), 3)}</span>")
    thr = number(r.get("threshold"))
    if thr is not None:
        parts.append(f"<span>threshold {fmt_score(thr, 3)}{_far_text(r)}</span>")
    parts.append(f"<span>{_e(_cal_text(r))}</span>")
    return f'<div class="meta decision">{"".join(parts)}</div>'


def _fingerprint_names(r: dict) -> str:
    """What the fingerprint said, for the disagreement line (HTML)."""
    decision = r.get("decision")
    if r.get("status") == "error" or decision is None:
        return "nothing (no fingerprint decision for this input)"
    if str(decision) in _NO_MATCH:
        return f"no enrolled model (<b>{_e(decision)}</b>)"
    return f"<b>{_e(decision)}</b>"


class HtmlWriter:
    """Renders a card per result as it arrives; writes the whole page at close."""

    def __init__(
        self,
        stream: TextIO,
        manifest: dict,
        *,
        thumbnails: bool = False,
        title: str | None = None,
        max_thumbnails: int = MAX_THUMBNAILS,
        **_options: Any,
    ) -> None:
        self.stream = stream
        self.manifest = manifest
        self.thumbnails = thumbnails
        self.title = title
        self.max_thumbnails = max_thumbnails
        self.cards: list[str] = []
        self.verify: bool | None = None
        self.any_probability = False
        self.n_provenance = 0  # results carrying a provenance record
        self.n_disagree = 0  # ... whose metadata names another origin than the fingerprint
        self._closed = False

    # -- cards --------------------------------------------------------------------------------

    def write(self, result: dict) -> None:
        if self._closed:
            raise RuntimeError("report writer is closed")
        if self.verify is None:
            self.verify = is_verify(self.manifest, result)
        index = len(self.cards) + 1
        if self.verify:
            card = self._verify_card(index, result)
        else:
            card = self._attribute_card(index, result)
        self.cards.append(card)

    def _thumb(self, index: int, result: dict) -> str:
        icon = (
            '<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path fill="none" '
            'stroke="currentColor" stroke-width="1.5" d="M4 5h16v14H4zM4 16l5-5 4 4 3-3 4 4"/>'
            '<circle cx="15.5" cy="9" r="1.5" fill="currentColor"/></svg>'
        )
        if not self.thumbnails:
            return f'<div class="thumb ph">{icon}<span>no thumbnail</span></div>'
        if index > self.max_thumbnails:
            return f'<div class="thumb ph">{icon}<span>thumbnail omitted</span></div>'
        uri = result.get("thumbnail")
        if isinstance(uri, str) and _THUMB_RE.fullmatch(uri):
            alt = f"thumbnail of {result.get('path', '')}"
            return f'<div class="thumb"><img src="{_e(uri)}" alt="{_e(alt)}"></div>'
        return f'<div class="thumb ph">{icon}<span>no thumbnail</span></div>'

    def _image_info(self, result: dict) -> str:
        info = result.get("image") or {}
        parts: list[str] = []
        w, h = info.get("width"), info.get("height")
        if w and h:
            parts.append(f"{_e(w)}\u00d7{_e(h)}")
        for key in ("format", "mode"):
            if info.get(key):
                parts.append(_e(info[key]))
        n_views = result.get("n_views")
        if n_views:
            parts.append(f"{_e(n_views)} view{'s' if n_views != 1 else ''}")
        conv = info.get("conversions") or []
        if conv:
            conv_s = ", ".join(_e(c) for c in conv)
            parts.append(f'<span class="conv" title="conversions applied">{conv_s}</span>')
        return " \u00b7 ".join(parts)

    def _topk(self, top: list[Any]) -> str:
        rows = []
        for i, t in enumerate(top):
            t = t if isinstance(t, Mapping) else {}
            prob = number(t.get("probability"))
            sim = number(t.get("similarity"))
            if prob is not None:
                self.any_probability = True
            score = prob if prob is not None else sim
            label = "p" if prob is not None else "sim"
            detail = f"similarity {fmt_score(sim, 3)}"
            if prob is not None:
                detail += f", probability {fmt_score(prob, 3)}"
            rows.append(
                f'<li class="{"first" if i == 0 else ""}" title="{_e(detail)}">'
                f'<span class="m">{_e(t.get("model"))}</span>'
                f'<span class="bar"><span style="width:{_pct(score)}"></span></span>'
                f'<span class="v"><small>{label}</small> {fmt_score(score)}'
                # the similarity is evidence too: visible, not only in the tooltip
                + (
                    f' <small class="simv">sim {fmt_score(sim, 3)}</small>'
                    if prob is not None
                    else ""
                )
                + "</span></li>"
            )
        if not rows:
            return '<p class="muted small">no candidates</p>'
        return f'<ol class="topk">{"".join(rows)}</ol>'

    def _provenance(self, r: dict, label: str = "Metadata") -> str:
        """The metadata line of evidence, beside (never inside) the fingerprint's numbers."""
        prov = r.get("provenance")
        if not isinstance(prov, Mapping):
            return ""
        self.n_provenance += 1
        agrees = prov.get("agrees_with_fingerprint")
        state = {True: " agree", False: " disagree"}.get(agrees, "")
        summary = prov.get("summary") or "no origin metadata found"
        parts = [
            f'<div class="prov{state}"><div class="pline"><span class="plabel">{_e(label)}</span>'
            f"<span>{_e(summary)}</span></div>"
        ]
        if agrees is False:
            self.n_disagree += 1
            claimed = prov.get("claimed_generator") or prov.get("digital_source_type")
            parts.append(
                '<div class="pwarn" role="note"><b>Disagreement:</b> metadata names '
                f"<b>{_e(claimed or 'another origin')}</b>, the fingerprint names "
                f"{_fingerprint_names(r)}. The two are separate evidence; the probability "
                "above uses the fingerprint only.</div>"
            )
        rows = [
            (label, prov.get(key))
            for key, label in (
                ("claimed_generator", "claimed generator"),
                ("digital_source_type", "DigitalSourceType"),
                ("c2pa", "C2PA"),
                ("png_text", "PNG text"),
                ("exif", "EXIF"),
                ("xmp", "XMP"),
                ("notes", "notes"),
                ("errors", "errors"),
            )
            if prov.get(key) not in (None, "", [], {})
        ]
        if rows:
            body = "".join(f"<tr><th>{_e(k)}</th><td>{_value(v, k)}</td></tr>" for k, v in rows)
            n_err = len(prov.get("errors") or [])
            more = f", {n_err} read error{'s' if n_err != 1 else ''}" if n_err else ""
            parts.append(
                f"<details><summary>metadata details{_e(more)}</summary>"
                f'<table class="kv">{body}</table></details>'
            )
        parts.append("</div>")
        return "".join(parts)

    def _attribute_card(self, index: int, r: dict) -> str:
        failed = r.get("status") == "error"
        body = [
            '<div class="head">',
            f'<span class="idx">#{index}</span>',
            f'<span class="path">{_copyable(r.get("path"))}</span>',
            _badge(r.get("decision"), r.get("status")),
            "</div>",
        ]
        if failed:
            body.append(
                f'<div class="error"><b>Error</b> {_e_lines(r.get("error") or "failed")}</div>'
            )
        elif r.get("status") == "skipped":  # not an image: no decision line to show
            body.append(
                f'<div class="warn"><b>Skipped</b> {_e_lines(r.get("error") or "skipped")}</div>'
            )
        else:
            body.append(_decision_line(r))
            body.append(self._topk(list(r.get("top") or [])))
            if r.get("error"):
                body.append(f'<div class="warn">{_e_lines(r["error"])}</div>')
            for c in r.get("caveats") or []:  # stored unlike the references it is judged against
                body.append(f'<div class="pwarn" role="note"><b>Caveat:</b> {_e_lines(c)}</div>')
        body.append(self._provenance(r))
        body.append(
            f'<div class="meta ids"><span>sha256 {_copyable(r.get("sha256"), "hash")}</span>'
        )
        info = self._image_info(r)
        body.append(f"<span>{info}</span></div>" if info else "</div>")
        cls = "card failed" if failed else "card"
        return (
            f'<article class="{cls}" id="r{index}">{self._thumb(index, r)}'
            f'<div class="body">{"".join(body)}</div></article>'
        )

    def _verify_card(self, index: int, r: dict) -> str:
        failed = r.get("status") == "error"
        sim = number(r.get("similarity"))
        prob = number(r.get("probability"))
        thr = number(r.get("threshold"))
        pair = "".join(
            f'<div class="pair"><span class="lbl">{side.upper()}</span><div class="pv">'
            f'<span class="path">{_copyable(r.get(side))}</span>'
            f'<span class="meta">sha256 {_copyable(r.get(side + "_sha256"), "hash")}</span>'
            "</div></div>"
            for side in ("a", "b")
        )
        parts = [
            '<div class="head">',
            f'<span class="idx">#{index}</span><span class="grow"></span>',
            _badge(r.get("decision"), r.get("status")),
            "</div>",
            pair,
        ]
        if failed:
            parts.append(
                f'<div class="error"><b>Error</b> {_e_lines(r.get("error") or "failed")}</div>'
            )
        else:
            marker = (
                f'<span class="thr" style="left:{_pct(thr)}" title="threshold {fmt_score(thr, 3)}">'
                "</span>"
                if thr is not None
                else ""
            )
            parts.append(
                '<div class="sim"><span class="m">similarity</span>'
                f'<span class="bar"><span style="width:{_pct(sim)}"></span>{marker}</span>'
                f'<span class="v">{fmt_score(sim, 3)}</span></div>'
                f'<div class="meta"><span>P({_p_label(r)}) '
                f"<b>{fmt_score(prob, 3)}</b></span>"
                + (f"<span>leaning {_e(r.get('leaning'))}</span>" if r.get("leaning") else "")
                + f"<span>threshold {fmt_score(thr, 3)}{_far_text(r)}</span>"
                + f"<span>{_e(_cal_text(r))}</span></div>"
            )
        for side in ("a", "b"):  # each file's own metadata, beside the fingerprint verdict
            prov = r.get(f"provenance_{side}")
            if isinstance(prov, Mapping):
                parts.append(
                    self._provenance({"provenance": prov}, label=f"{side.upper()} metadata")
                )
        skipped = [f for f in r.get("failed") or [] if isinstance(f, Mapping)]
        if skipped:  # images left out of a folder side: named, with the reason
            items = "".join(
                f"<li>{_copyable(f.get('path'))}: {_e(f.get('error'))}</li>" for f in skipped
            )
            parts.append(f'<div class="warn"><b>Skipped</b><ul>{items}</ul></div>')
        cls = "card nothumb failed" if failed else "card nothumb"
        body = "".join(parts)
        return f'<article class="{cls}" id="r{index}"><div class="body">{body}</div></article>'

    # -- page ---------------------------------------------------------------------------------

    def _manifest_section(self, summary: dict) -> str:
        m = self.manifest
        tool = m.get("tool") or {}
        run: list[tuple[str, str]] = [
            ("Tool", f"{_e(tool.get('name', 'fpattr'))} {_e(tool.get('version', ''))}"),
            ("Command", _e(m.get("command") or "\u2014")),
            ("Started", _fmt_time(m.get("started"))),
            ("Finished", _fmt_time(summary.get("finished"))),
            ("Python", _e(m.get("python") or "\u2014")),
            ("Platform", _e(m.get("platform") or "\u2014")),
            ("Settings", _value(m.get("settings"), "settings")),
            ("Plugins", _value(m.get("plugins"), "plugins")),
        ]
        models: list[tuple[str, str]] = [
            ("Backbone", _value(m.get("backbone"), "backbone")),
            (
                "Gallery",
                _value(m.get("gallery"), "gallery")
                if m.get("gallery")
                else '<span class="muted">none</span>',
            ),
            (
                "Calibration",
                _value(m.get("calibration"), "calibration")
                if m.get("calibration")
                else '<span class="muted">none (scores are not calibrated probabilities)</span>',
            ),
        ]
        models += [(str(k), _value(v, str(k))) for k, v in m.items() if k not in _MANIFEST_KEYS]

        def table(rows: list[tuple[str, str]]) -> str:
            body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
            return f'<table class="kv">{body}</table>'

        # open by default so it prints and files with the page; it comes last, so it is
        # never in the way of the answer
        return (
            '<details class="panel run" id="manifest" open><summary><h2>Run manifest</h2>'
            '<span class="muted small">environment, settings, models and calibration: '
            "what reproduces this run</span></summary>"
            '<div class="manifest">'
            f"<div><h3>Environment</h3>{table(run)}</div>"
            f"<div><h3>Models and calibration</h3>{table(models)}</div></div></details>"
        )

    def _summary_section(self, summary: dict) -> str:
        n_inputs = summary.get("n_inputs", len(self.cards))
        n_failed = int(summary.get("n_failed") or 0)
        decisions: dict[str, Any] = dict(summary.get("decisions") or {})
        seconds = number(summary.get("seconds"))
        ips = number(summary.get("images_per_second"))
        # the summary counts images (n_inputs, n_ok, n_failed, images_per_second) for
        # verify too: the pairs are the cards
        tiles = [
            ("Inputs", _e(n_inputs), ""),
            ("Processed", _e(summary.get("n_ok", "\u2014")), ""),
            ("Failed", _e(n_failed), " bad" if n_failed else ""),
        ]
        if self.verify:
            tiles.insert(0, ("Pair" if len(self.cards) == 1 else "Pairs", _e(len(self.cards)), ""))
            tiles[1] = ("Images", _e(n_inputs), "")
        else:
            unknown = decisions.get("unknown", 0)
            tiles.insert(2, ("Unknown", _e(unknown), ""))
        if self.n_provenance:
            tiles.append(
                ("Metadata disagrees", _e(self.n_disagree), " warnt" if self.n_disagree else "")
            )
        tiles.append(("Time", f"{seconds:.1f} s" if seconds is not None else "\u2014", ""))
        tiles.append(("Throughput", f"{ips:.1f} images/s" if ips is not None else "\u2014", ""))
        tile_html = "".join(
            f'<div class="tile{cls}"><div class="tv">{v}</div><div class="tl">{k}</div></div>'
            for k, v, cls in tiles
        )
        bars = sorted(
            ((str(k), int(number(v) or 0)) for k, v in decisions.items()),
            key=lambda kv: (kv[0] == "unknown", -kv[1], kv[0]),
        )
        if n_failed and not self.verify:
            # attribute: one card per input, so failed inputs share the chart with the
            # decisions; verify's chart counts pairs, and its failed images are a tile
            # (break-it: one pair read "inconclusive 1 10%, failed 9 90%")
            bars.append(("failed", n_failed))
        total = sum(c for _, c in bars) or 1
        peak = max((c for _, c in bars), default=0) or 1
        chart_rows = []
        for name, count in bars:
            cls = {"unknown": "c-unknown", "failed": "c-failed", "different": "c-different"}.get(
                name, "c-same" if name == "same" else "c-model"
            )
            chart_rows.append(
                f'<div class="crow {cls}"><span class="cl" title="{_e(name)}">{_e(name)}</span>'
                f'<span class="cb"><span style="width:{_pct(count / peak)}"></span></span>'
                f'<span class="cv">{count} <small>{count / total:.0%}</small></span></div>'
            )
        chart = (
            f'<div class="chart" role="img" aria-label="decisions">{"".join(chart_rows)}</div>'
            if chart_rows
            else '<p class="muted">No decisions.</p>'
        )
        as_set = summary.get("as_set")
        as_set_html = ""
        if isinstance(as_set, Mapping) and as_set:
            top = as_set.get("top")
            inner = self._topk(list(top)) if isinstance(top, list) and top else ""
            extra = {k: v for k, v in as_set.items() if k not in ("decision", "top")}
            as_set_html = (
                '<div class="asset"><h3>All inputs as one set '
                f"{_badge(as_set.get('decision')) if 'decision' in as_set else ''}</h3>"
                f"{inner}{_value(extra) if extra else ''}</div>"
            )
        return (
            '<section class="panel" id="summary"><h2>Summary</h2>'
            f'<div class="tiles">{tile_html}</div><h3>Decisions</h3>{chart}{as_set_html}</section>'
        )

    def _count_line(self, summary: dict) -> str:
        n_inputs = _e(summary.get("n_inputs", len(self.cards)))
        if not self.verify:
            return f"{n_inputs} inputs"
        n = len(self.cards)
        return f"{n} pair{'' if n == 1 else 's'}, {n_inputs} images"

    def close(self, summary: dict) -> None:
        if self._closed:
            return
        self._closed = True
        if self.verify is None:  # no results: the manifest decides
            self.verify = is_verify(self.manifest)
        m = self.manifest
        command = str(m.get("command") or "attribute")
        title = self.title or (
            "Same-model verification report" if self.verify else "Source attribution report"
        )
        started = m.get("started")
        tool = m.get("tool") or {}
        version = tool.get("version", fpattr.__version__)
        score_note = (
            "Bars show calibrated probabilities (p)."
            if self.any_probability
            else "Bars show cosine similarity (sim); no calibration was applied."
        )
        if self.verify:
            score_note = "Bars show embedding similarity; the tick marks the decision threshold."
        footnote = (
            "A same-model decision is statistical evidence, not proof."
            if self.verify
            else "Attribution is statistical evidence, not proof; "
            '"unknown" means no reference model matched closely enough.'
        )
        out = self.stream
        out.write(
            "<!doctype html>\n"
            '<html lang="en"><head><meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            '<meta name="referrer" content="no-referrer">\n'
            f'<meta name="generator" content="fpattr {_e(version)}">\n'
            f"<title>{_e(title)} \u2014 {_e(started or '')}</title>\n"
            f"<style>{CSS}</style>\n<script>{COPY_JS}</script></head><body>\n"
            '<header class="top"><div class="wrap">'
            f'<div class="brand">fpattr <span>{_e(version)}</span></div>'
            f"<h1>{_e(title)}</h1>"
            f'<p class="sub">{_e(command)} \u00b7 {_fmt_time(started)} \u00b7 '
            f"{self._count_line(summary)}</p>"
            '<nav class="toc"><a href="#summary">Summary</a><a href="#results">Results</a>'
            '<a href="#manifest">Run manifest</a></nav>'
            "</div></header>\n"
            '<main class="wrap">\n'
        )
        # the answer first (summary, then a card per input); how it was obtained after
        out.write(self._summary_section(summary) + "\n")
        out.write(
            f'<section id="results"><h2>Results <span class="count">{len(self.cards)}</span>'
            f'</h2><p class="muted small">{_e(score_note)}</p><div class="cards">\n'
        )
        for card in self.cards:
            out.write(card + "\n")
        self.cards = []
        out.write("</div></section>\n")
        out.write(self._manifest_section(summary) + "\n")
        out.write(
            "</main>\n"
            f'<footer class="wrap">Generated by fpattr {_e(version)}. {footnote}</footer>\n'
            "</body></html>\n"
        )
        out.flush()


CSS = """
:root{--fg:#1b1f24;--muted:#5f6b7a;--line:#dfe3e8;--bg:#f5f7fa;--card:#fff;--accent:#2456c5;
--accent-soft:#e6edfb;--ok:#1a7f4b;--ok-soft:#e3f4ea;--warn:#9a5b00;--warn-soft:#fdf1dc;
--bad:#b42318;--bad-soft:#fde8e6;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,
"Liberation Mono",monospace}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1180px;margin:0 auto;padding:0 24px}
header.top{background:#14213d;color:#fff;padding:22px 0 18px;margin-bottom:24px}
header.top h1{margin:4px 0 2px;font-size:22px;font-weight:600;letter-spacing:.2px}
.brand{font-size:12px;text-transform:uppercase;letter-spacing:1.5px;color:#9fb3d9;font-weight:600}
.brand span{font-weight:400;text-transform:none;letter-spacing:0}
.sub{margin:0;color:#c9d4ea;font-size:13px}
.toc{margin-top:8px;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px}
.toc a{color:#fff;text-decoration:underline;text-decoration-color:#6f86b8}
h2{font-size:16px;margin:0 0 12px;font-weight:600}
h3{font-size:13px;margin:18px 0 8px;color:var(--muted);font-weight:600;text-transform:uppercase;
letter-spacing:.6px}
section{margin-bottom:24px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px}
.muted{color:var(--muted)}.small{font-size:12px}
code,.hash{font-family:var(--mono);font-size:12px}
.hash.full{word-break:break-all}
code.cp{word-break:break-all;overflow-wrap:anywhere;user-select:all;-webkit-user-select:all}
.cpb{display:none;margin-left:6px;padding:0 6px;font:11px/16px system-ui,sans-serif;
color:var(--accent);background:#fff;border:1px solid var(--line);border-radius:4px;
cursor:pointer;vertical-align:baseline}
.js .cpb{display:inline-block}
.cpb:hover{border-color:var(--accent)}
table.kv{border-collapse:collapse;width:100%}
table.kv>tbody>tr>th,table.kv>tr>th{text-align:left;vertical-align:top;font-weight:600;
color:var(--muted);white-space:nowrap;padding:6px 16px 6px 0;width:1%;font-size:13px}
table.kv>tbody>tr>td,table.kv>tr>td{padding:6px 0;border-bottom:1px solid #eef1f4;
vertical-align:top;word-break:break-word}
table.kv.inner{width:auto}
table.kv.inner>tbody>tr>th,table.kv.inner>tr>th{padding:1px 12px 1px 0;font-weight:500;
font-size:12px;width:auto;vertical-align:baseline;white-space:normal;overflow-wrap:anywhere}
table.kv.inner>tbody>tr>td,table.kv.inner>tr>td{padding:1px 0;border:0;font-size:13px;
vertical-align:baseline}
details.run>summary{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 12px}
details.run>summary h2{display:inline;margin:0}
details.run[open]>summary{margin-bottom:12px}
.manifest{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:8px 32px}
.manifest h3{margin-top:0}
table.grid{border-collapse:collapse;font-size:12px;max-width:100%}
table.grid th,table.grid td{border:1px solid var(--line);padding:3px 8px;text-align:left;
word-break:break-word}
table.grid th{background:#f0f3f7;font-weight:600}
.recs{display:grid;gap:6px}.rec{border-left:2px solid var(--line);padding-left:8px}
.chips{display:flex;flex-wrap:wrap;gap:4px}
.chip{background:#eef1f5;border-radius:4px;padding:1px 7px;font-size:12px}
details summary{cursor:pointer;color:var(--accent)}
details .chips{margin-top:6px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:10px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fbfcfd}
.tile .tv{font-size:20px;font-weight:600}
.tile .tl{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.5px}
.tile.bad{border-color:#f3b8b2;background:var(--bad-soft)}.tile.bad .tv{color:var(--bad)}
.tile.warnt{border-color:#e0b062;background:var(--warn-soft)}.tile.warnt .tv{color:var(--warn)}
.chart{display:grid;gap:6px;max-width:760px}
.crow{display:grid;grid-template-columns:180px 1fr 90px;align-items:center;gap:10px}
.cl{overflow-wrap:anywhere;font-size:13px}
.cb{height:14px;background:#eef1f5;border-radius:3px;overflow:hidden}
.cb span{display:block;height:100%;background:var(--accent);border-radius:3px}
.c-unknown .cb span{background:#d99a2b}.c-failed .cb span{background:var(--bad)}
.c-same .cb span{background:var(--ok)}.c-different .cb span{background:#7a5af5}
.c-failed .cl{color:var(--bad);font-weight:600}
.cv{font-variant-numeric:tabular-nums;font-size:13px}.cv small{color:var(--muted)}
.asset{margin-top:8px}.asset h3{display:flex;gap:8px;align-items:center}
.count{background:#e4e8ee;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:500;
vertical-align:middle}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
.card{display:grid;grid-template-columns:112px 1fr;gap:14px;background:var(--card);
border:1px solid var(--line);border-radius:10px;padding:12px;break-inside:avoid;min-width:0}
.card.nothumb{grid-template-columns:1fr}
.card.failed{border-color:#f3b8b2;border-left:4px solid var(--bad)}
.thumb{width:112px;height:112px;border-radius:6px;overflow:hidden;background:#eef1f5;
display:flex;align-items:center;justify-content:center}
.thumb img{width:100%;height:100%;object-fit:contain;background:#fff;image-rendering:auto}
.thumb.ph{flex-direction:column;gap:4px;color:#98a2b3;font-size:11px;text-align:center;
border:1px dashed #cfd6df}
.body{min-width:0}
.head{display:flex;align-items:flex-start;gap:8px;min-width:0;line-height:20px}
.idx{color:var(--muted);font-size:12px;font-variant-numeric:tabular-nums}
.grow{flex:1}
.path{flex:1;min-width:0;font-family:var(--mono);font-size:12.5px;font-weight:600;
word-break:break-all}
.path code{font-size:12.5px}
.meta.ids{margin:8px 0 0}
.meta.ids>span{min-width:0;max-width:100%}
.prov{margin-top:8px;border-left:3px solid #b8c4d6;background:#f7f9fb;border-radius:0 6px 6px 0;
padding:6px 10px;font-size:12.5px;overflow-wrap:anywhere}
.prov.agree{border-left-color:var(--ok)}
.prov.disagree{border-left-color:#d99a2b;background:var(--warn-soft)}
.plabel{font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.5px;
color:var(--muted);margin-right:8px}
.pwarn{color:var(--warn);margin-top:4px}
.prov details{margin-top:4px}.prov details table.kv{margin-top:4px}
.meta{display:flex;flex-wrap:wrap;gap:4px 14px;color:var(--muted);font-size:12px;margin:4px 0 8px}
.conv{font-style:italic}
.badge{display:inline-block;border-radius:10px;padding:0 10px;line-height:20px;font-size:12px;
font-weight:600;overflow-wrap:anywhere;max-width:100%;flex:0 1 auto;min-width:0}
.b-model{background:var(--accent-soft);color:var(--accent)}
.b-unknown{background:var(--warn-soft);color:var(--warn);border:1px dashed #e0b062}
.b-failed{background:var(--bad-soft);color:var(--bad)}
.b-same{background:var(--ok-soft);color:var(--ok)}
.b-different{background:#efeafe;color:#5b3fd0}
.b-none{background:#eef1f5;color:var(--muted)}
ol.topk{list-style:none;margin:0;padding:0;display:grid;gap:4px}
ol.topk li,.sim{display:grid;grid-template-columns:minmax(0,2fr) minmax(48px,1fr) 72px;gap:8px;
align-items:center;font-size:12.5px}
ol.topk .m,.sim .m{overflow-wrap:anywhere}
ol.topk li.first .m{font-weight:600}
.bar{position:relative;height:10px;background:#eef1f5;border-radius:3px;overflow:visible}
.bar>span:first-child{display:block;height:100%;background:#aab6c6;border-radius:3px}
ol.topk li.first .bar>span:first-child{background:var(--accent)}
.sim .bar>span:first-child{background:var(--accent)}
.bar .thr{position:absolute;top:-3px;width:2px;height:16px;background:var(--fg);
margin-left:-1px}
.v{text-align:right;font-variant-numeric:tabular-nums}.v small{color:var(--muted)}
.v .simv{display:block}
.pair{display:grid;grid-template-columns:22px minmax(0,1fr);gap:8px;align-items:baseline;
margin:4px 0}
.pair .lbl{font-size:11px;font-weight:700;color:var(--muted)}
.pair .meta{display:block;margin:2px 0 4px}
.pair .hash{color:var(--muted)}
.error{color:var(--bad);background:var(--bad-soft);border-radius:6px;padding:8px 10px;
font-size:13px;word-break:break-word}
.warn{color:var(--warn);font-size:12px;margin-top:6px}
footer{color:var(--muted);font-size:12px;padding:8px 24px 32px}
@media (max-width:900px){.manifest{grid-template-columns:minmax(0,1fr)}}
@media (max-width:640px){.cards{grid-template-columns:1fr}.card{grid-template-columns:72px 1fr}
.thumb{width:72px;height:72px}.crow{grid-template-columns:110px 1fr 70px}
table.kv,table.kv>tbody,table.kv>tbody>tr,table.kv>tbody>tr>th,table.kv>tbody>tr>td{
display:block;width:auto}
table.kv>tbody>tr>th{white-space:normal;overflow-wrap:anywhere;padding:6px 0 0}
table.kv.inner>tbody>tr>td{padding-left:10px}}
@media print{body{background:#fff}
header.top{background:#fff;color:#000;border-bottom:2px solid #000}
.brand,.sub{color:#333}.panel,.card{border-color:#bbb}.cards{display:block}
.card{margin-bottom:8px}.cpb,.toc{display:none!important}}
"""
