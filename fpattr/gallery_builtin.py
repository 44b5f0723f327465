"""Galleries shipped in ``models/galleries/<name>/``, registered through the same
hook a third-party plugin would use to ship the references of known models."""

from __future__ import annotations

import json

from fpattr import hookimpl
from fpattr.paths import models_dir


@hookimpl
def fpattr_register_galleries(register) -> None:
    root = models_dir() / "galleries"
    if not root.is_dir():
        return
    for sub in sorted(p for p in root.iterdir() if (p / "gallery.json").is_file()):
        try:
            doc = json.loads((sub / "gallery.json").read_text(encoding="utf-8"))
            backbone = doc.get("backbone", {}).get("name", "")
            desc = doc.get("description", "")
        except (OSError, ValueError):
            backbone, desc = "", "(unreadable gallery.json)"
        register(sub.name, sub, description=desc, backbone=backbone)
