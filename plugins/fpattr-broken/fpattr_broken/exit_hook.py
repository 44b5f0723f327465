"""Calls sys.exit() in its hooks: recorded as a failure, never the end of fpattr."""

import sys

import fpattr


@fpattr.hookimpl
def fpattr_register_report_formats(register):  # noqa: ANN001, ANN201
    sys.exit(3)


@fpattr.hookimpl
def fpattr_register_commands(app):  # noqa: ANN001, ANN201
    sys.exit("broken-exit says bye")
