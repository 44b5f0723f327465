"""fpattr: attribute images to the generative model that made them.

The public API stays small on purpose: the CLI and plugins build on these names.
Heavy modules (numpy pipelines, onnxruntime, torch) are imported lazily so that
``import fpattr`` and ``fpattr --help`` stay fast.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Decorator for plugin hook implementations (``@fpattr.hookimpl``).
hookimpl = pluggy.HookimplMarker("fpattr")

__all__ = ["__version__", "hookimpl"]
