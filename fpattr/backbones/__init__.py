"""Backbones turn views into embeddings; see :mod:`fpattr.backbones.base`."""

from fpattr.backbones.base import Backbone
from fpattr.backbones.resolve import create_backbone, resolve_backbone_name

__all__ = ["Backbone", "create_backbone", "resolve_backbone_name"]
