"""Imports fine, but its hook raises and it declares a hook fpattr does not have."""

import fpattr


@fpattr.hookimpl
def fpattr_register_backbones(register):  # noqa: ANN001, ANN201
    register("broken-backbone-ok-before-crash", object)
    raise RuntimeError("this plugin's backbone hook is broken on purpose")


@fpattr.hookimpl
def fpattr_register_report_formats(register):  # noqa: ANN001, ANN201
    register("json", object)  # duplicate of a built-in name: must be rejected, not override
