"""Every extension point of fpattr, grouped by pipeline stage.

Each ``register_*`` hook receives a ``register`` callback owned by the host:
``register(name, obj, description="", **meta)``. Registering the same name twice
is an error. Hooks are called when a registry is first used or when the CLI is
built, never at import time, and a plugin module must not import torch or
onnxruntime at import time (do it inside the factory).

Built-in synthesizers, backbones, galleries and report formats register through
these very hooks (see ``fpattr.plugins.DEFAULT_PLUGINS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("fpattr")

Register = Callable[..., None]


# --- training: synthetic generative models ----------------------------------------------------


@hookspec
def fpattr_register_synthesizers(register: Register) -> None:
    """Register synthesizer families (model synthesis).

    ``obj`` is a zero-argument callable returning a family object that follows
    :class:`fpattr.synthesis.base.SynthesizerFamily` (``design_space()``,
    ``architectures()``, ``arch_id()``, ``build(arch, width=, image_size=)``,
    ``train(...)``, ``generate(...)``); subclassing ``FamilyBase`` is the easy way.
    The callable is where torch gets imported. Pass the family's design space as
    ``design_space={choice: [values]}`` metadata (kept in a torch-free module, see
    :mod:`fpattr.synthesis.spaces`) so ``fpattr synth --list`` needs neither torch nor
    building the family.
    """


# --- inference: image -> embedding ------------------------------------------------------------


@hookspec
def fpattr_register_backbones(register: Register) -> None:
    """Register backbones: ``obj(**options) -> fpattr.backbones.base.Backbone``.

    A backbone turns views (N, S, S, 3 float32 in [0, 1]) into embeddings.
    """


# --- matching: reference galleries ------------------------------------------------------------


@hookspec
def fpattr_register_galleries(register: Register) -> None:
    """Register ready-made reference galleries: ``obj`` is the gallery folder
    (a ``pathlib.Path``) or a zero-argument callable returning it.

    Pass ``backbone="name"`` as meta so ``fpattr gallery list --all`` can tell
    which backbone the gallery needs.
    """


# --- output: report formats -------------------------------------------------------------------


@hookspec
def fpattr_register_report_formats(register: Register) -> None:
    """Register report formats: ``obj(stream, manifest) -> ReportWriter``.

    A writer gets ``write(result)`` once per input as results stream in, then
    ``close(summary)``; see ``fpattr.report.base``.
    """


# --- CLI --------------------------------------------------------------------------------------


@hookspec
def fpattr_register_commands(app: Any) -> None:
    """Add commands to the ``fpattr`` Typer app (``app.command()(fn)`` or
    ``app.add_typer(sub, name=...)``). Import heavy modules inside the commands."""
