"""fpattr: attribute images to the generative model that made them.

The public API stays small on purpose: the CLI and plugins build on these names.
Heavy modules (numpy pipelines, onnxruntime, torch) are imported lazily so that
``import fpattr`` and ``fpattr --help`` stay fast: :class:`Session` is imported from
:mod:`fpattr.session` on first access (``from fpattr import Session``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fpattr.session import Session

__version__ = "0.1.0"

#: Decorator for plugin hook implementations (``@fpattr.hookimpl``).
hookimpl = pluggy.HookimplMarker("fpattr")

__all__ = ["Session", "__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    """Lazy exports: ``fpattr.Session`` imports numpy, so only when it is asked for."""
    if name == "Session":
        from fpattr.session import Session

        globals()["Session"] = Session
        return Session
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
