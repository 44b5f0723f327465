"""Fan results out to their destinations: stdout or ``--output``, and an HTML report.

:class:`Outputs` is what ``fpattr attribute`` and ``fpattr verify`` write through; the
formats themselves are plugins (:func:`fpattr.plugins.report_formats`). Heavy or
plugin-loading imports stay inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from fpattr.errors import ExitCode, FpattrError, UsageError

#: Exit status when results could not be written (disk full, I/O error...): the run's
#: output is lost. 74 is EX_IOERR from sysexits.h; distinct from 1 (some inputs failed),
#: 2 (usage) and 70 (internal error).
EXIT_OUTPUT_LOST = int(ExitCode.OUTPUT_LOST)  # 74, EX_IOERR


class OutputWriteError(FpattrError):
    """Writing, flushing or closing an output failed (ENOSPC, EIO...): results are lost."""

    exit_code = EXIT_OUTPUT_LOST  # type: ignore[assignment]


def write_error(dest: str, exc: OSError) -> OutputWriteError:
    """The one-line error for a failed write of results to ``dest``."""
    why = exc.strerror or str(exc) or type(exc).__name__
    shown = _stdout_name() if dest == "stdout" else dest
    return OutputWriteError(f"cannot write results to {shown}: {why}")


def _stdout_name() -> str:
    """The name "stdout", or the device/file it is redirected to where that can be told."""
    import os

    try:
        target = os.readlink(f"/proc/self/fd/{sys.stdout.fileno()}")
    except (OSError, ValueError, AttributeError):
        return "stdout"
    return target if target.startswith("/") else "stdout"


def flush_stdout() -> None:
    """Flush ``sys.stdout`` now, inside the guarded region, so that a failure cannot be left
    to Python's final flush at exit (which would turn it into exit 0 or 120).

    EPIPE (the reader left, ``| head``) is re-raised as :class:`BrokenPipeError`; any other
    :class:`OSError` becomes :class:`OutputWriteError`. Either way stdout is pointed at
    ``os.devnull`` first, so the data still buffered cannot fail again at exit.
    """
    import errno

    try:
        sys.stdout.flush()
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
            _silence_stdout()
            raise BrokenPipeError(errno.EPIPE, "Broken pipe") from None
        error = write_error("stdout", exc)
        _silence_stdout()
        raise error from None


def _silence_stdout() -> None:
    import os

    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


def check_format(fmt: str) -> str:
    """``fmt`` if it is a registered report format, else a :class:`UsageError`."""
    from fpattr.plugins import report_formats

    if fmt not in report_formats():
        raise UsageError(
            f"unknown format {fmt!r}; available: {', '.join(report_formats().names())}"
        )
    return fmt


def output_format(fmt: str, output: Path | None) -> str:
    """The format ``--output`` is written in: ``--format``, or the suffix when it was left
    at ``table`` and the suffix names another format."""
    from fpattr.plugins import report_formats
    from fpattr.report.files import format_for_path

    if output is None or fmt != "table" or str(output) == "-":
        return fmt
    # a plugin format's ``extension`` counts (break-it: "-o out.md" wrote the table); a
    # suffix that names no format: the table asked for (or defaulted)
    return format_for_path(output, registry=report_formats(), default=fmt)


def check_output_paths(*paths: Path | None, inputs: Iterable[Any] = ()) -> None:
    """:class:`UsageError` (exit 2) now, before any work, unless every given output path can
    be written (folder exists and is a folder, not read-only, the path is not a folder), no
    two of them are the same file (one would silently replace the other), and none is one
    of the ``inputs`` the run would read, by any name (the report would overwrite the
    evidence it reports on). The inputs are walked only when an output file exists.
    """
    from fpattr.io.atomic import check_writable
    from fpattr.io.loader import IMAGE_EXTENSIONS

    given = [p for p in paths if p is not None and str(p) != "-"]
    for path in paths:
        if path is not None:
            check_writable(path, "output")
    seen: dict[str, Path] = {}
    for path in given:
        real = os.path.realpath(path)
        if real in seen:
            raise UsageError(
                f"{str(seen[real])!r} and {str(path)!r} are the same file: give each output "
                "its own path"
            )
        seen[real] = path
    # an existing output file must not be an input under any name (the same file, a hard
    # link, a symlink met in a folder): compared by inode over the inputs the run would walk
    existing: dict[tuple[int, int], Path] = {}
    for path in given:
        try:
            st = os.stat(path)
        except OSError:
            continue  # a new file cannot be an input
        key = (st.st_dev, st.st_ino)
        if key in existing:  # two names of one file (a hard link): realpath tells them apart
            raise UsageError(
                f"{str(existing[key])!r} and {str(path)!r} are the same file: give each "
                "output its own path"
            )
        existing[key] = path
    if not existing:
        return
    from fpattr.io.walk import iter_inputs, names_entry

    for item in iter_inputs([p for p in inputs if str(p) != "-"]):
        try:
            st = os.stat(item.path)
        except OSError:
            continue
        out = existing.get((st.st_dev, st.st_ino))
        if out is None:
            continue
        # the run leaves its own output out of a folder it walks (a results.jsonl beside
        # the images): that is no input, unless it is an image the user expects read. Only
        # the entry of that name is left out: an output that is a symlink to an image of
        # the folder is that image (break-it: "-o results.json" linked to an input
        # replaced the evidence with the report)
        own = item.in_folder and names_entry(item.path, out)
        if own and Path(out).suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        raise UsageError(
            f"output {str(out)!r} is one of the inputs ({str(item.path)!r}): writing it "
            "would destroy an input; write the output elsewhere"
        )


def check_outputs_spare(
    *paths: Path | None, folders: Iterable[Any] = (), files: Iterable[Any] = ()
) -> None:
    """:class:`UsageError` (exit 2) when an output path lies inside one of ``folders`` or
    is one of ``files``, by any name: the files the run itself reads, beside its inputs
    (the gallery in use, the extractor's model and card). A break-it pass wrote
    ``-o GALLERY/gallery.json`` and ``gallery export GALLERY/gallery.json``: exit 0, and
    the gallery no command could read any more.
    """

    def identity(p: Any) -> tuple[int, int] | None:
        try:
            st = os.stat(p)
        except (OSError, ValueError):
            return None
        return st.st_dev, st.st_ino

    # compared by (device, inode), not by spelling: a hard link, or another letter case
    # on a case-insensitive file system, names the same file (review 28)
    guarded = {i: str(f) for f in folders if f is not None and (i := identity(f))}
    exact = {i for f in files if f is not None and (i := identity(f))}
    for path in paths:
        if path is None or str(path) == "-":
            continue
        real = os.path.realpath(path)
        inside = None
        # the output's folder and each folder above it (the output may not exist yet)
        for up in [real, *Path(real).parents]:
            ident = identity(up)
            if ident in guarded:
                inside = guarded[ident]
                break
        if inside is not None:
            raise UsageError(
                f"output {str(path)!r} is inside the gallery in use ({inside}): writing it "
                "would damage the gallery; write the output elsewhere"
            )
        if identity(real) in exact:
            raise UsageError(
                f"output {str(path)!r} is a file this run reads (the extractor's model or "
                "card, the analysis heads): write the output elsewhere"
            )


class Outputs:
    """Fans results out to stdout (or --output) and an optional HTML report.

    Files are written atomically, except a line format (jsonl) given as ``--output``: it is
    streamed to its destination record by record, so an interrupted run keeps every finished
    record, and ``append=True`` continues such a file (``attribute --resume``).
    """

    def __init__(
        self,
        fmt: str,
        output: Path | None,
        report: Path | None,
        manifest: dict[str, Any],
        *,
        append: bool = False,
        started: float | None = None,
    ) -> None:
        import time

        from fpattr.plugins import report_formats
        from fpattr.report.files import format_for_path, open_report

        # ``started`` (time.monotonic()): when the work began, if before these outputs
        self._started = time.monotonic() if started is None else started
        self._stack = ExitStack()
        self.writers: list[Any] = []
        self._dests: list[str] = []
        self._appended: Any = None
        reg = report_formats()
        check_format(fmt)
        check_output_paths(output, report)  # all of them before any file is opened
        #: notes for the user (stderr), e.g. a suffix that names no format
        self.notes: list[str] = []
        if output is not None:
            ofmt = output_format(fmt, output)
            named = format_for_path(output, registry=reg, default="")
            if ofmt == "table" and output.suffix and not named:
                # break-it: "-o x.weird" silently wrote the table
                self.notes.append(
                    f"{str(output)!r}: the suffix {output.suffix!r} names no format, so the "
                    f"table is written; --format ({', '.join(reg.names())}) chooses"
                )
            elif named and named != ofmt:
                # break-it 27: "-f jsonl -o report.html" wrote JSONL under .html, unsaid
                self.notes.append(
                    f"{str(output)!r}: written as {ofmt} (--format), not the {named} its "
                    "suffix names"
                )
            with self._guard(str(output)):
                writer = self._stack.enter_context(
                    open_report(
                        output,
                        ofmt,
                        manifest,
                        registry=reg,
                        thumbnails=ofmt == "html",
                        stream=True,
                        append=append,
                    )
                )
            self.writers.append(writer)
            self._dests.append("stdout" if str(output) == "-" else str(output))
            if append:
                self._appended = writer
        else:
            with self._guard("stdout"):
                self.writers.append(reg.get(fmt)(sys.stdout, manifest))
            self._dests.append("stdout")
        if report is not None:
            # --report is the HTML report; another format only where its suffix names one
            # (break-it: --report /dev/full was refused for naming no format, offering json
            # and csv for an HTML report)
            rfmt = format_for_path(report, registry=reg, default="html")
            self.writers.append(
                self._stack.enter_context(
                    open_report(report, rfmt, manifest, registry=reg, thumbnails=True)
                )
            )
            self._dests.append(str(report))
        self.thumbnails = report is not None or (
            output is not None and output.suffix in (".html", ".htm")
        )

    @staticmethod
    @contextmanager
    def _guard(dest: str) -> Iterator[None]:
        """Every OSError writing to ``dest`` becomes :class:`OutputWriteError` (EPIPE on
        stdout stays a :class:`BrokenPipeError`: the CLI stops quietly)."""
        import errno

        try:
            yield
        except OSError as exc:
            if dest == "stdout" and (isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE):
                _silence_stdout()
                raise
            error = write_error(dest, exc)
            if dest == "stdout":
                _silence_stdout()
            raise error from exc

    def write(self, result: dict[str, Any]) -> None:
        for w, dest in zip(self.writers, self._dests, strict=True):
            with self._guard(dest):
                w.write(result)

    def replay(self, result: dict[str, Any]) -> None:
        """A result kept from the file being resumed: to every output but that file."""
        for w, dest in zip(self.writers, self._dests, strict=True):
            if w is not self._appended:
                with self._guard(dest):
                    w.write(result)

    def close(self, summary: dict[str, Any]) -> None:
        """Write the summaries and keep the files; stdout is flushed here, so a failed
        write is an :class:`OutputWriteError` now, not a lost flush at exit."""
        from fpattr.report.manifest import finish_summary

        summary = finish_summary(summary, self._started)
        for w, dest in zip(self.writers, self._dests, strict=True):
            with self._guard(dest):
                w.close(summary)
        if "stdout" in self._dests:
            flush_stdout()
        with self._guard(", ".join(d for d in self._dests if d != "stdout") or "stdout"):
            self._stack.close()

    def abort(self, exc: BaseException) -> None:
        """Discard file outputs (no half-written report) and re-raise."""
        self._stack.__exit__(type(exc), exc, exc.__traceback__)
