"""Run manifest and summary timing: what a report needs to be reproduced and trusted.

The manifest pins the exact backbone, gallery and calibration (by sha256) and the
settings, so an analyst can show which model files produced an attribution.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import datetime, timezone
from typing import Any

import fpattr

SCHEMA = "fpattr.report/1"


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with a ``Z`` suffix, to the second."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def build_manifest(
    command: str,
    *,
    backbone: dict,
    gallery: dict | None,
    calibration: dict | None,
    settings: dict,
    plugins: list[dict],
) -> dict:
    """The report header: tool, environment, model provenance, settings, start time."""
    return {
        "schema": SCHEMA,
        "command": command,
        "tool": {"name": "fpattr", "version": fpattr.__version__},
        "python": f"{platform.python_version()} ({sys.implementation.name})",
        "platform": platform.platform(),
        "started": utc_now_iso(),
        "backbone": dict(backbone),
        "gallery": dict(gallery) if gallery is not None else None,
        "calibration": dict(calibration) if calibration is not None else None,
        "settings": dict(settings),
        "plugins": [dict(p) for p in plugins],
    }


def finish_summary(summary: dict, started_monotonic: float) -> dict:
    """A copy of ``summary`` with ``finished`` (UTC) and wall-clock ``seconds``.

    ``started_monotonic`` is a :func:`time.monotonic` reading taken at start, so
    the duration is immune to clock changes. ``images_per_second`` is filled in
    from ``n_inputs`` only when the summary has no such key (the pipeline did not measure
    it); a ``None`` there means measured and nothing was read (no speed to show).
    """
    seconds = max(0.0, time.monotonic() - started_monotonic)
    out: dict[str, Any] = dict(summary)
    out["finished"] = utc_now_iso()
    out["seconds"] = round(seconds, 3)
    if "images_per_second" not in out:
        n = out.get("n_inputs")
        out["images_per_second"] = round(n / seconds, 3) if n and seconds > 0 else None
    return out
