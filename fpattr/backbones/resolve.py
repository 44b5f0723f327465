"""How a backbone name becomes a backbone: ``auto`` resolved, then the registry's factory.

Dependencies run one way: :mod:`fpattr.backbones.base` (the contract) <-
:mod:`fpattr.backbones.onnx` <- this module. ONNX (and with it numpy) is imported only
when ``auto`` has to be resolved, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

from fpattr.backbones.base import Backbone
from fpattr.errors import BackboneError

#: The backbone name the resolver reads itself: no registered backbone (a plugin's, an
#: exported model) can be reached under it, so none may take it.
AUTO = "auto"


def resolve_backbone_name(name: str | None) -> str:
    """``auto``/None -> the shipped learned extractor when usable, else ``spectrum``."""
    if name not in (None, "", AUTO):
        return name
    from fpattr.backbones.onnx import default_model_available

    return "default" if default_model_available() else "spectrum"


def create_backbone(name: str | None = "auto", **options: Any) -> Backbone:
    """Instantiate a registered backbone by name (plugins included)."""
    from fpattr.plugins import backbones

    real = resolve_backbone_name(name)
    factory = backbones().get(real)
    try:
        bb = factory(**options)
    except BackboneError:
        raise
    except TypeError as exc:
        raise BackboneError(f"backbone {real!r} does not accept these options: {exc}") from exc
    if not isinstance(bb, Backbone):
        raise BackboneError(f"backbone {real!r} returned {type(bb).__name__}, not a Backbone")
    return bb
