"""``fpattr attribute --resume``: what an interrupted JSONL results file keeps, what is left.

The results file is the report's (fpattr.report owns writing results), so reading it back
belongs here too. :class:`Resume` reads the file, checks it was made with the same
extractor, gallery and decision settings, keeps every result whose input is still among
the current inputs with the same content (sha256), and plans the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def check_resume_options(fmt: str, output: Path | None, as_set: bool) -> None:
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
    from fpattr.report.base import from_bytes_hex

    exact = from_bytes_hex(rec.get("path_bytes_hex"))
    return exact if exact is not None else str(rec.get("path"))


class Resume:
    """What ``--resume`` keeps from an existing results file and what is left to do."""

    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []
        self.todo: list[Any] = []  #: the InputItems left to do, as the walk found them
        self.redone = 0
        self.dropped_partial = False
        self.dropped_gone = 0  #: results dropped: their path is not among the current inputs
        self.repeated = 0  #: current inputs whose path came before (attributed once)
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
    ) -> Resume | None:
        """Read ``output``, rewrite it (atomically) without what is redone, and plan the rest.

        None when there is nothing to resume (no file, or an empty one): a plain run.
        """
        from fpattr.errors import UsageError
        from fpattr.io.atomic import atomic_open
        from fpattr.io.loader import sha256_file
        from fpattr.io.walk import iter_inputs, once_per_path
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
        repeated: list[Any] = []
        items = list(once_per_path(iter_inputs(paths, exclude=exclude or ()), repeated.append))
        self.repeated = len(repeated)
        wanted = {str(it.path) for it in items}
        latest: dict[str, dict[str, Any]] = {}
        for rec in content.results:
            latest[_record_path(rec)] = rec  # a path recorded twice: the last one counts
        if latest and not wanted & set(latest):
            # break-it: resuming with a typo in the inputs silently dropped every result
            raise UsageError(
                f"cannot resume {str(output)!r}: none of its {len(latest)} result(s) is for "
                "one of the current inputs (other inputs than the run it continues?); "
                "rerun with the original inputs, or without --resume to start over"
            )
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
            markup=False,  # the output path is the user's: "[...]" in it is text
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
        # this run processed the redone inputs and the new ones (the kept were counted in)
        new = max(0, stats.n_inputs + getattr(stats, "n_skipped", 0) - len(self.kept) - self.redone)
        new_ok = stats.n_ok - sum(r.get("status") == "ok" for r in self.kept)
        secs = summary.get("seconds") or 0
        summary = dict(summary)
        summary["decisions"] = dict(sorted(stats.decisions.items(), key=lambda kv: -kv[1]))
        summary["n_repeated"] = self.repeated  # of the inputs, as a fresh run counts them
        summary["images_per_second"] = round(new_ok / secs, 2) if secs > 0 else 0.0
        summary["resumed"] = {
            "runs": self.runs,
            "kept": len(self.kept),
            "redone": self.redone,
            "new": new,
        }
        return summary
