"""Turn command-line paths into a lazy, ordered stream of input files.

Folders can be huge, deep, or booby-trapped (symlink loops, unreadable subfolders), so the walk
is iterative (no recursion limit), lists one folder at a time, never enters a folder twice, and
reports unusable paths as items with an error instead of raising: one bad path must not end
the batch.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fpattr.io.loader import IMAGE_EXTENSIONS

__all__ = ["InputItem", "iter_inputs"]

_NO_SUCH = "no such file or directory"
_BROKEN_LINK = "broken symbolic link (target does not exist)"
_LINK_LOOP = "symbolic link loop (too many levels of symbolic links)"
_UNLISTABLE = "permission denied: cannot list folder"


@dataclass(frozen=True)
class InputItem:
    """One input as the user will see it in reports."""

    path: Path  #: as given or found (not resolved), so reports show the user's own paths
    error: str | None = None  #: why the path itself is unusable; None means "try to load it"


def iter_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    follow_symlinks: bool = True,
) -> Iterator[InputItem]:
    """Yield the files named in ``paths``, walking folders recursively in name order.

    Files named explicitly are always yielded, whatever their suffix (the loader decides).
    Inside folders only suffixes in ``extensions`` (case-insensitive) are kept, hidden entries
    (".name") are skipped, and each folder is entered at most once per given path, so symlink
    loops end. With ``follow_symlinks=False`` symlinks met inside folders are skipped (paths
    given explicitly are still followed). A path given twice is yielded twice.
    """
    wanted = frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    for given in paths:
        name = os.fsdecode(os.fspath(given))
        try:
            st = os.stat(name)
        except OSError as e:
            yield InputItem(Path(name), _stat_error(name, e))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(name, (st.st_dev, st.st_ino), wanted, follow_symlinks)
        else:
            yield InputItem(Path(name))


def _walk(
    root: str, root_key: tuple[int, int], wanted: frozenset[str], follow: bool
) -> Iterator[InputItem]:
    """Depth-first, name-sorted walk with an explicit stack (deep trees cannot overflow it)."""
    visited = {root_key}
    listing = _list(root)
    if isinstance(listing, InputItem):
        yield listing
        return
    stack = [iter(listing)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        try:
            is_link = entry.is_symlink()
        except OSError:
            is_link = False
        if is_link and not follow:
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:  # e.g. a symlink loop: reported below if its name looks like an image
            is_dir = False
        if is_dir:
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError as e:
                yield InputItem(Path(entry.path), _stat_error(entry.path, e))
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:  # a symlink back into the tree, or two links to one folder
                continue
            visited.add(key)
            sub = _list(entry.path)
            if isinstance(sub, InputItem):
                yield sub
            else:
                stack.append(iter(sub))
            continue
        if os.path.splitext(entry.name)[1].lower() not in wanted:
            continue
        # A dangling or looping link named like an image is reported, not silently dropped.
        yield InputItem(Path(entry.path), _link_target_error(entry.path) if is_link else None)


def _list(folder: str) -> list[os.DirEntry[str]] | InputItem:
    """One folder's entries sorted by name, or an error item if it cannot be listed."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except PermissionError:
        return InputItem(Path(folder), _UNLISTABLE)
    except OSError as e:
        return InputItem(Path(folder), f"cannot list folder: {e.strerror or e}")


def _stat_error(name: str, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return _LINK_LOOP
    if isinstance(e, FileNotFoundError):
        return _BROKEN_LINK if os.path.islink(name) else _NO_SUCH
    if isinstance(e, PermissionError):
        return "permission denied"
    if e.errno == errno.ENOTDIR:
        return f"{_NO_SUCH} (a parent is not a folder)"
    return f"cannot access: {e.strerror or e}"


def _link_target_error(name: str) -> str | None:
    """Error for a symlink whose target is not a usable file (None: let the loader decide)."""
    try:
        os.stat(name)
    except OSError as e:
        return _stat_error(name, e)
    return None
