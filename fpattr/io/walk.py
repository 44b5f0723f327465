"""Turn command-line paths into a lazy, ordered stream of input files.

Folders can be huge, deep, or booby-trapped (symlink loops, unreadable subfolders), so the walk
is iterative (no recursion limit), lists one folder at a time, never enters a folder twice, and
reports unusable paths as items with an error instead of raising: one bad path must not end
the batch.

Nothing found in a folder is dropped without a word: every file is yielded (the loader decides
by content whether it is an image), and what the walk itself leaves out (hidden entries,
symlinks with ``follow_symlinks=False``) comes back as a *skipped* item with its reason.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["NOT_REGULAR", "InputItem", "NotRegularFileError", "iter_inputs", "open_regular"]

_NO_SUCH = "no such file or directory"
_BROKEN_LINK = "broken symbolic link (target does not exist)"
_LINK_LOOP = "symbolic link loop (too many levels of symbolic links)"
_SEEN_DIR = "link to a folder already searched (a loop or a second link): not searched again"
_UNLISTABLE = "permission denied: cannot list folder"


_HIDDEN = "skipped: hidden (name starts with '.'), not searched"
_HIDDEN_DIR = "skipped: hidden folder (name starts with '.'), not searched"
_NOT_FOLLOWED = "skipped: symbolic link not followed"
#: Why a FIFO, character/block device or socket is refused, by every command: reading one
#: can block forever (a FIFO without a writer) or read a stream that cannot be re-read
#: (process substitution), so it is never opened for reading.
NOT_REGULAR = "not a regular file (device, pipe or socket)"
#: The reason a path holding a NUL byte fails (no file system name can hold one).
NUL_IN_PATH = "the path holds a NUL byte: no file can be named so"
#: The reason an empty path ("") fails: an unset shell variable, most often.
EMPTY_PATH = "empty path: it names no file or folder (an unset variable?)"
_SPECIAL = f"skipped: {NOT_REGULAR}"


class NotRegularFileError(OSError):
    """:func:`open_regular` refused a path that is not a regular file."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.EINVAL, NOT_REGULAR, path)


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``open(path, "rb")`` for regular files only, without ever blocking.

    Opened with O_NONBLOCK (opening a FIFO without a writer would hang), then checked with
    fstat on the open descriptor (no race with a path swapped after a stat): a directory
    raises IsADirectoryError, anything else not regular :class:`NotRegularFileError`. A
    path holding a NUL byte raises OSError (EINVAL), as every other unopenable path does,
    not os.open's ValueError (an internal error where callers catch OSError).
    """
    name = os.fsdecode(os.fspath(path))
    if "\0" in name:
        raise OSError(errno.EINVAL, NUL_IN_PATH, name)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", os.fsdecode(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(os.fsdecode(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: ordinary reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class InputItem:
    """One input as the user will see it in reports."""

    path: Path  #: as given or found (not resolved), so reports show the user's own paths
    error: str | None = None  #: why the path itself is unusable; None means "try to load it"
    #: True: left out on purpose (``error`` says why), to be reported as skipped, not failed
    skipped: bool = False
    #: True: found by walking a folder (not named explicitly): a non-image is skipped
    in_folder: bool = False


def iter_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    extensions: Iterable[str] | None = None,
    follow_symlinks: bool = True,
    exclude: Iterable[str | os.PathLike[str]] = (),
) -> Iterator[InputItem]:
    """Yield the files named in ``paths``, walking folders recursively in name order.

    Files named explicitly are always yielded, whatever their suffix (the loader decides).
    Inside folders every file is yielded with ``in_folder=True`` (the loader decides by content;
    a non-image is skipped, not failed); ``extensions`` (case-insensitive, e.g.
    ``IMAGE_EXTENSIONS``) restricts that to those suffixes and drops the rest silently, for
    internal callers that want only images. Hidden entries (".name") are not searched and come
    back as one skipped item each (a hidden folder: one item). Each folder is entered at most
    once per given path, so symlink loops end. With ``follow_symlinks=False`` symlinks met
    inside folders are skipped items (paths given explicitly are still followed). A path given
    twice is yielded twice (:func:`once_per_path` keeps one per file).

    ``exclude``: files left out entirely, not yielded at all (a run's own output files, which
    may lie in the folder it scans), together with their atomic-write temp files
    (``.<name>.tmp-*`` next to them).

    A single ``str``, ``bytes`` or path object is one path, not an iterable of characters
    (``Session.attribute("one.png")`` walked "/" once, one input per character).
    """
    if isinstance(paths, str | bytes | os.PathLike):
        paths = [paths]  # type: ignore[list-item]
    if isinstance(exclude, str | bytes | os.PathLike):
        exclude = [exclude]  # type: ignore[list-item]
    skip = _Exclude(exclude)
    wanted = (
        None
        if extensions is None
        else frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    )
    for given in paths:
        name = os.fsdecode(os.fspath(given))
        if skip and skip.matches(name):
            continue
        if not name:  # os.stat("") fails as "no such file", and the record showed "."
            yield InputItem(Path(name), EMPTY_PATH)
            continue
        if "\0" in name:  # os.stat raises ValueError: an internal error, exit 70, before
            yield InputItem(Path(name), NUL_IN_PATH)
            continue
        try:
            st = os.stat(name)
        except OSError as e:
            yield InputItem(Path(name), _stat_error(name, e))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(name, (st.st_dev, st.st_ino), wanted, follow_symlinks, skip)
        elif not stat.S_ISREG(st.st_mode):
            # named explicitly (a FIFO, /dev/stdin, <(cmd)): failed with the reason, and
            # never opened, so no command can hang on it or read it as an empty file
            yield InputItem(Path(name), NOT_REGULAR)
        else:
            yield InputItem(Path(name))


def once_per_path(
    items: Iterable[InputItem], on_repeat: Callable[[InputItem], None] | None = None
) -> Iterator[InputItem]:
    """``items`` without a file already yielded under any spelling: ``attribute`` writes one
    record per input, and a file named twice, named and found in a folder, or reached
    again through a symlinked folder (``dir``, ``./dir``, ``$PWD/dir``, ``dir/../dir``,
    ``dir/loop`` with ``loop -> .``) is one input. The record keeps the path as first
    given (so ``--resume`` still matches records by that path). ``on_repeat`` sees each
    item left out.

    The key is the resolved path (:func:`_identity`: symlinks and ``.``/``..`` resolved),
    not the (st_dev, st_ino) pair: two hard links are two names the user may have filed
    apart (two model folders, two cases), so each keeps its record (copies of one file
    get the same numbers anyway), and an inode pair is not an identity everywhere (0 or
    reused on some network, FUSE and FAT filesystems) where merging two different files
    would drop one without a word.

    Why here, for every engine (local, Ray, ``--resume``): a fresh run wrote a record per
    repetition while ``--resume`` kept one per path, so the two disagreed on the same
    command (break-it). (:func:`iter_inputs` itself yields a path given twice twice:
    ``verify`` pairs folders and reports repeated content itself.)
    """
    seen: set[str] = set()
    folders: dict[str, str] = {}
    for it in items:
        # a skipped link is keyed where it lies, not by its target: a link left out
        # (not followed, or back into a folder) must not shadow the file it points at
        key = _identity(os.fspath(it.path), folders, follow=not it.skipped)
        if key in seen:
            if on_repeat is not None:
                on_repeat(it)
            continue
        seen.add(key)
        yield it


def names_entry(path: str | os.PathLike[str], entry: str | os.PathLike[str]) -> bool:
    """True when ``path`` is the directory entry ``entry`` names (its folder resolved, its
    own name as given; not whatever a symlink of that name points at): what
    :func:`iter_inputs`'s ``exclude`` leaves out of a walk."""
    return _Exclude([entry]).matches(os.fsdecode(os.fspath(path)))


def _identity(path: str, folders: dict[str, str], *, follow: bool = True) -> str:
    """``os.path.realpath(path)``, with each folder resolved once (``folders``: a cache);
    ``follow=False``: a symlink's own location (its folder resolved, its name kept).

    realpath walks every component in Python (tens of microseconds a file); a file that is
    not itself a symlink resolves to its resolved folder plus its name, which costs one
    lstat, so a walk of a million files keeps its speed.
    """
    folder, name = os.path.split(path)
    if name in ("", ".", "..") or (follow and os.path.islink(path)):
        return os.path.realpath(path)
    real = folders.get(folder)
    if real is None:
        real = folders[folder] = os.path.realpath(folder or os.curdir)
    return os.path.join(real, name)


class _Exclude:
    """Paths (and their ``.<name>.tmp-*`` temp files) to leave out of the walk."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self._by_name: dict[str, set[str]] = {}
        for p in paths:
            text = os.fsdecode(os.fspath(p))
            if text == "-":
                continue
            folder, name = os.path.split(os.path.abspath(text))
            self._by_name.setdefault(name, set()).add(os.path.realpath(folder))

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def matches(self, path: str) -> bool:
        folder, name = os.path.split(os.path.abspath(path))
        key = name
        if key not in self._by_name and name.startswith(".") and ".tmp-" in name:
            key = name[1 : name.rindex(".tmp-")]
        folders = self._by_name.get(key)
        return bool(folders) and os.path.realpath(folder) in folders  # type: ignore[operator]


def _walk(
    root: str,
    root_key: tuple[int, int],
    wanted: frozenset[str] | None,
    follow: bool,
    skip: _Exclude | None = None,
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
        try:
            is_link = entry.is_symlink()
        except OSError:
            is_link = False
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:  # e.g. a symlink loop: reported below
            is_dir = False
        if wanted is not None and not is_dir and _ext(entry.name) not in wanted:
            continue  # the caller asked for these suffixes only
        if skip and not is_dir and skip.matches(entry.path):
            continue  # one of the run's own output files (or its temp file)
        if entry.name.startswith("."):
            if wanted is None:
                reason = _HIDDEN_DIR if is_dir else _HIDDEN
                yield InputItem(Path(entry.path), reason, skipped=True, in_folder=True)
            continue
        if is_link and not follow:
            if wanted is None:
                yield InputItem(Path(entry.path), _NOT_FOLLOWED, skipped=True, in_folder=True)
            continue
        if is_dir:
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError as e:
                yield InputItem(Path(entry.path), _stat_error(entry.path, e))
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:  # a symlink back into the tree, or two links to one folder
                if wanted is None:
                    yield InputItem(Path(entry.path), _SEEN_DIR, skipped=True, in_folder=True)
                continue
            visited.add(key)
            sub = _list(entry.path)
            if isinstance(sub, InputItem):
                yield sub
            else:
                stack.append(iter(sub))
            continue
        # A dangling or looping link is reported, not silently dropped.
        error = _link_target_error(entry.path) if is_link else None
        if error is None and not _is_file(entry):
            yield InputItem(Path(entry.path), _SPECIAL, skipped=True, in_folder=True)
            continue
        yield InputItem(Path(entry.path), error, in_folder=True)


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=True)
    except OSError:
        return True  # let the loader say what is wrong


def _ext(name: str) -> str:
    return os.path.splitext(name)[1].lower()


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
