"""Crash-safe output files and a cross-process lock.

Reports, galleries and caches are rewritten by long runs that can be interrupted or can fail
half-way; readers must see either the old file or the new one, never half of each. Writes go to
a temp file in the same folder (same filesystem, so the rename is atomic), are fsynced, then
``os.replace``-d over the target. ``file_lock`` serialises read-modify-write cycles between
processes that share an output (e.g. two runs adding to one gallery).
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from fpattr.errors import FpattrError

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "file_lock"]

DEFAULT_LOCK_TIMEOUT = 60.0
_UMASK_LOCK = threading.Lock()


@contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing ("w" or "wb") so that it is replaced only on success.

    On any exception (Ctrl-C included) the temp file ``.<name>.tmp-<random>`` is removed and the
    target is untouched. The new file gets the permission bits a plain ``open()`` would leave:
    the existing file's mode, or 0o666 minus the umask (``mkstemp``'s 0600 is not kept).
    A symlink target is written through, like ``open()`` does. Errors are plain OSError.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    target = os.fspath(path)
    if os.path.islink(target):
        target = os.path.realpath(target)
    folder, name = os.path.split(os.path.abspath(target))
    permissions = _mode_for(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.tmp-", dir=folder)
    try:
        try:
            f = os.fdopen(fd, mode, encoding=encoding if mode == "w" else None)
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, permissions)
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


@contextmanager
def file_lock(
    path: str | os.PathLike[str], *, timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Iterator[None]:
    """Hold an exclusive advisory lock guarding ``path``, waiting at most ``timeout`` seconds.

    The lock is taken on ``<path>.lock`` (or on ``path`` itself if it already ends in ".lock"),
    never on the data file: ``atomic_open`` replaces the data file's inode, which would silently
    drop a lock held on it. The lock file is left in place (deleting it would race). Works
    between threads and processes; not re-entrant. Raises FpattrError on timeout.
    """
    target = os.fspath(path)
    lock_path = target if target.endswith(".lock") else target + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise FpattrError(f"cannot create lock file {lock_path}: {e.strerror or e}") from e
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while not _try_lock(fd, lock_path):
            if time.monotonic() >= deadline:
                raise FpattrError(
                    f"timed out after {timeout:g} s waiting for the lock on {target} "
                    f"(another fpattr process is using it; lock file {lock_path})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- internals


def _mode_for(target: str) -> int:
    """Permission bits ``open(target, "w")`` would leave."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (threads race on it)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # no /proc: set-and-restore, with a safe value in between
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (POSIX); best effort elsewhere."""
    if os.name != "posix":
        return
    with suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int, lock_path: str) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int, lock_path: str) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as e:  # e.g. ENOLCK on some network filesystems
            raise FpattrError(f"cannot lock {lock_path}: {e.strerror or e}") from e
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
