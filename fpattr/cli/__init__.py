"""The ``fpattr`` command line (thin: parsing and wiring, no logic).

Errors are turned into one clear line and an exit code in one place,
:class:`fpattr.cli.app.FpattrGroup`; ``FPATTR_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    from fpattr.cli.app import build_app

    build_app()(args=argv, prog_name="fpattr")
