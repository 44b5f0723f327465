"""The ``fpattr`` command line (thin: parsing and wiring, no logic).

Errors are turned into one clear line and an exit code in one place,
:class:`fpattr.cli.app.FpattrGroup`; ``FPATTR_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    import sys

    from fpattr.cli.app import build_app

    # a terminal or pipe in a narrow encoding (latin-1, ascii) must not turn a file name or a
    # model name it cannot encode into a crash: such characters print as escapes
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):  # not a TextIOWrapper (tests, embedding)
            pass

    build_app()(args=argv, prog_name="fpattr")
