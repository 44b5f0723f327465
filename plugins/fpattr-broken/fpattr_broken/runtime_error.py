"""Registers fine; its backbones raise, or call sys.exit, when made: the error names this
plugin."""

import fpattr


def _make(**options):  # noqa: ANN003, ANN202
    raise RuntimeError("broken-runtime's backbone fails on purpose")


@fpattr.hookimpl
def fpattr_register_backbones(register):  # noqa: ANN001, ANN201
    register("broken-runtime-bb", _make, description="raises when made")
    register("broken-exit-bb", _exit, description="calls sys.exit when made")


def _exit(**options):  # noqa: ANN003, ANN202
    import sys

    sys.exit(4)
