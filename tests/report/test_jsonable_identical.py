"""The JSON writers' fast paths write the same bytes as the general conversion."""

from __future__ import annotations

import io
import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from enum import IntEnum
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from fpattr.report.base import (
    dumps,
    escape_surrogates,
    has_surrogates,
    json_default,
    raw_bytes,
    strip_result,
    to_jsonable,
)
from fpattr.report.jsonfmt import JsonlWriter


def _reference(obj: Any) -> Any:
    """to_jsonable as first written (no fast paths): the bytes every writer must keep."""
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return escape_surrogates(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = escape_surrogates(str(k))
            if isinstance(v, bytes):
                v = v.decode("utf-8", errors="surrogateescape")
            out[key] = _reference(v)
            if isinstance(v, str) and has_surrogates(v) and f"{key}_bytes_hex" not in obj:
                out[f"{key}_bytes_hex"] = raw_bytes(v).hex()
        return out
    if isinstance(obj, (list, tuple)):
        return [_reference(v) for v in obj]
    return _reference(json_default(obj))


class _Level(IntEnum):
    LOW = 1


class _Text(str):
    pass


_TRICKY: list[Any] = [
    None,
    True,
    0,
    -0.0,
    1.5,
    float("nan"),
    float("inf"),
    -float("inf"),
    "plain",
    "caf\udce9.png",
    "\ud800 lone",
    "\u00e9t\u00e9 \u2014 \u6f22",
    b"raw \xff bytes",
    _Level.LOW,
    _Text("sub\udcff"),
    np.float32(0.91),
    np.float64("nan"),
    np.int64(7),
    np.array([0.5, np.nan], dtype=np.float32),
    (1, "two", 3.0),
    PurePosixPath("/x/y.png"),
    {3, 1, 2},
    OrderedDict([("b", 1), ("a", float("nan"))]),
    {1: "int key", None: "none key", 2.5: "float key"},
    {False: "bool key"},
    {"caf\udce9": "key with bytes", "v": "value \udce9", "v_bytes_hex": "kept"},
    {"path": "p\udcff", "name": b"n\xfe", "nested": [{"x": "\udc80", "y": [1, None]}]},
]


def test_to_jsonable_matches_the_reference_on_tricky_values():
    for obj in _TRICKY:
        want = json.dumps(_reference(obj), ensure_ascii=False, allow_nan=False)
        assert json.dumps(to_jsonable(obj), ensure_ascii=False, allow_nan=False) == want
        assert dumps({"k": obj, "list": [obj]}) == json.dumps(
            _reference({"k": obj, "list": [obj]}),
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        )


def test_jsonl_result_line_is_unchanged():
    result = {
        "path": "a\udce9.png",
        "type": "dropped: the record's own type wins",
        "thumbnail": "data:image/png;base64,xx",
        "top": [{"model": "m", "similarity": np.float32(0.25), "probability": float("nan")}],
        "image": {"width": 8, "conversions": []},
        "decision": None,
    }
    buf = io.StringIO()
    w = JsonlWriter(buf, {"command": "attribute"})
    w.write(result)
    stripped = strip_result(result)
    stripped.pop("type")
    want = json.dumps(
        _reference({"type": "result", **stripped}),
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    )
    assert buf.getvalue().splitlines()[1] == want
