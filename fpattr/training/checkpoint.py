"""Checkpoints that load with ``torch.load(..., weights_only=True)``.

A checkpoint file is code-free data: tensors, dicts, lists, tuples, ints, floats,
bools, strings and None. :func:`save` converts what the training code may hand it
(numpy scalars and arrays, dataclasses) and refuses anything else, so every file
this project writes loads with :func:`load`. :func:`load` never unpickles
arbitrary objects: a file that needs a class to be constructed (a tampered or
foreign checkpoint, or an old one holding non-plain objects) is refused with a
clear error instead of running its code.
"""

from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fpattr.errors import FpattrError

_SCALARS = (bool, int, float, str, type(None))


def to_plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` made of plain types only (see module docstring); raises TypeError otherwise."""
    if isinstance(obj, np.generic):  # before the scalars: np.float64 is a float subclass
        return obj.item()
    if isinstance(obj, torch.Tensor) or isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj).copy())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain(dataclasses.asdict(obj), where)
    if isinstance(obj, dict):
        out: dict[Any, Any] = OrderedDict() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            if not isinstance(k, str | int):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            out[k] = to_plain(v, f"{where}[{k!r}]")
        meta = getattr(obj, "_metadata", None)  # module versions of a state_dict
        if meta is not None and isinstance(out, OrderedDict):
            out._metadata = to_plain(dict(meta), f"{where}._metadata")  # type: ignore[attr-defined]
        return out
    if isinstance(obj, list | tuple):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"{where}: {type(obj).__module__}.{type(obj).__qualname__} cannot go into a checkpoint "
        "(only tensors, dicts, lists, tuples, ints, floats, bools, strings, None)"
    )


def save(obj: Any, path: Path) -> None:
    """Write ``obj`` (converted by :func:`to_plain`) atomically to ``path``."""
    path = Path(path)
    plain = to_plain(obj, path.name)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(plain, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _reason(exc: Exception) -> str:
    """The informative line of torch's (long) refusal message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "WeightsUnpickler error:" in ln:
            return ln.split("WeightsUnpickler error:", 1)[1].split(". Please use", 1)[0].strip()
    return lines[0] if lines else type(exc).__name__


def load(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a file that would need arbitrary
    objects (code) to load is refused with :class:`FpattrError`, never executed."""
    path = Path(path)
    if not path.is_file():
        raise FpattrError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any refusal is reported as one clear error
        first = _reason(exc)
        raise FpattrError(
            f"refusing to load {path}: it is not a plain-tensor fpattr checkpoint "
            f"(torch.load(weights_only=True) rejected it: {first}). fpattr only loads "
            "tensors, dicts, lists and numbers, never objects that run code; re-create the "
            "checkpoint with this version of fpattr"
        ) from exc
    if not isinstance(blob, dict):
        raise FpattrError(f"{path} is not an fpattr checkpoint (holds {type(blob).__name__})")
    return blob
