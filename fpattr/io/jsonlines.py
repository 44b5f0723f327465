"""JSON Lines parsing shared by fpattr's readers (resumed reports, ``--files-from`` lists)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fpattr.errors import UsageError


def json_objects(
    lines: Iterable[bytes], not_an_object: Callable[[int], str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number from 1, object)`` for each non-blank line of ``lines``.

    A line that is not UTF-8 JSON holding an object raises :class:`UsageError` with
    ``not_an_object(line_number)`` as its message (each reader names its own input).
    """
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            obj = None
        if not isinstance(obj, dict):
            raise UsageError(not_an_object(i))
        yield i, obj
