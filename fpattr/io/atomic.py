"""Crash-safe output files and a cross-process lock.

Reports, galleries and caches are rewritten by long runs that can be interrupted or can fail
half-way; readers must see either the old file or the new one, never half of each. Writes go to
a temp file in the same folder (same filesystem, so the rename is atomic), are fsynced, then
``os.replace``-d over the target. ``file_lock`` serialises read-modify-write cycles between
processes that share an output (e.g. two runs adding to one gallery).

Signals: :func:`graceful_signals` turns SIGTERM and SIGHUP into the same unwinding as Ctrl-C (an
:class:`fpattr.errors.Interrupted`), so temp files are removed whichever signal stops a run,
and :func:`uninterrupted` holds a signal back until the record being written is complete.
:func:`check_writable` and :func:`check_writable_folder` refuse an unusable output path before
any work starts.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from fpattr.errors import FpattrError, Interrupted, UsageError

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "check_writable_folder",
    "file_lock",
    "graceful_signals",
    "uninterrupted",
]

DEFAULT_LOCK_TIMEOUT = 60.0
_UMASK_LOCK = threading.Lock()


def write_target(path: str | os.PathLike[str]) -> str:
    """The file a write to ``path`` lands in: a symlink's target, dangling or not (as
    ``open()`` follows it). :func:`atomic_open` writes there and :func:`check_writable`
    checks there: checking the link's own folder passed a link into a missing folder, and
    the run failed only after all its work (break-it)."""
    target = os.fspath(path)
    return os.path.realpath(target) if os.path.islink(target) else target


@contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing ("w" or "wb") so that it is replaced only on success.

    On any exception (Ctrl-C included) the temp file ``.<name>.tmp-<random>`` is removed and the
    target is untouched. The new file gets the permission bits a plain ``open()`` would leave:
    the existing file's mode, or 0o666 minus the umask (``mkstemp``'s 0600 is not kept).
    A symlink target is written through, like ``open()`` does. A target that exists and is
    not a regular file (a device such as ``/dev/full``, a FIFO) is written directly: a temp
    file renamed over it would replace the device itself. Errors are plain OSError.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    target = write_target(path)
    if _is_special(target):  # /dev/full, a FIFO, /dev/stdout: write to it, never replace it
        with open(target, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
            f.flush()
        return
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


@contextmanager
def claim_output(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Hold the output file ``path`` for one run: a second fpattr run given the same file
    (by any name) meanwhile gets :class:`UsageError` (exit 2) instead of writing into it.

    Why: two ``attribute --resume -o r.jsonl`` at once each planned the same leftovers and
    appended them, so every remaining input was written twice (break-it 28). The locks
    (:func:`_try_lock`, no waiting) are on files in a per-user folder of the temp
    directory, not on the output (``--resume`` may replace the output's inode, and nothing
    is left beside the user's files), named by the output's folder's identity (device,
    inode) and its name (``os.path.normcase``), and, when the file exists, by its own
    identity too (another hard link to it). Not covered: a case-insensitive file system
    on a system whose ``normcase`` keeps case (macOS), and two runs with different temp
    directories (``TMPDIR``). ``None``, ``"-"`` and non-regular files (``/dev/stdout``)
    are not held; where no lock can be taken the run goes on unguarded.
    """
    import hashlib

    keys = [] if path is None or str(path) == "-" else _claim_keys(os.fspath(path))
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = os.path.join(tempfile.gettempdir(), f"fpattr-{uid}", "output-locks")
    held: list[int] = []
    try:
        if keys:
            try:
                os.makedirs(folder, mode=0o700, exist_ok=True)
            except OSError:
                keys = []  # no place for locks: unguarded
        for key in keys:
            name = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
            lock_path = os.path.join(folder, name + ".lock")
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                continue
            try:
                ok = _try_lock(fd, lock_path)
            except FpattrError:  # no locks on this file system: unguarded
                os.close(fd)
                continue
            if not ok:
                os.close(fd)
                raise UsageError(
                    f"{str(path)!r} is being written by another fpattr run: wait for it to "
                    "finish (or stop it), then run again"
                )
            held.append(fd)
        yield
    finally:
        for fd in held:
            with suppress(OSError):
                _unlock(fd)
            os.close(fd)


def _claim_keys(path: str) -> list[str]:
    """What names the output file ``path`` for :func:`claim_output`: its folder's (device,
    inode) and its name, and its own (device, inode) when it exists; [] for a file that
    is not regular (a device, a pipe: never claimed)."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        return []
    folder, name = os.path.split(real)
    try:
        fst = os.stat(folder)
        keys = [f"entry {fst.st_dev}:{fst.st_ino}:{os.path.normcase(name)}"]
    except OSError:
        keys = [f"path {os.path.normcase(real)}"]
    if st is not None:
        keys.append(f"file {st.st_dev}:{st.st_ino}")
    return keys


# --------------------------------------------------------------------------- output paths


def check_writable(path: str | os.PathLike[str], what: str = "output") -> None:
    """Raise :class:`UsageError` unless a file can be written at ``path`` (``"-"``: stdout).

    Checked for real, before any work starts, without touching an existing file's content: its
    folder must exist and be a folder (not a regular file), ``path`` must not be a folder, an
    existing file must open for appending, and a new one must be creatable in its folder (a
    probe temp file is created and removed; this also catches read-only filesystems and root's
    read-only mounts, which ``os.access`` does not).
    """
    if os.fspath(path) == "-":
        return
    target = write_target(path)
    shown = os.fspath(path)
    if os.path.isdir(target):
        raise UsageError(f"cannot write {what} {shown!r}: it is a folder")
    folder = os.path.dirname(os.path.abspath(target))
    _check_folder(folder, f"cannot write {what} {shown!r}")
    if os.path.exists(target):
        try:
            with open(target, "ab"):
                pass
        except OSError as e:
            raise UsageError(f"cannot write {what} {shown!r}: {_why(e)}") from None
    _probe(folder, f"cannot write {what} {shown!r}")


def check_writable_folder(path: str | os.PathLike[str], what: str = "folder") -> None:
    """Raise :class:`UsageError` unless files can be written in folder ``path``, which may not
    exist yet (then its nearest existing ancestor must be a writable folder, to create it)."""
    shown = os.fspath(path)
    folder = os.path.abspath(shown)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"cannot write {what} {shown!r}: it is a file, not a folder")
    existing = _nearest_existing(folder, os.path.exists)
    if not os.path.isdir(existing):
        raise UsageError(f"cannot write {what} {shown!r}: {existing!r} is a file, not a folder")
    _probe(existing, f"cannot write {what} {shown!r}")


def _nearest_existing(folder: str, exists: Any) -> str:
    """``folder`` or its nearest ancestor for which ``exists`` holds (the root at worst)."""
    existing = folder
    while not exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    return existing


def _check_folder(folder: str, prefix: str) -> None:
    if os.path.isdir(folder):
        return
    existing = _nearest_existing(folder, os.path.lexists)
    if os.path.lexists(existing) and not os.path.isdir(existing):
        raise UsageError(f"{prefix}: {existing!r} is a file, not a folder")
    raise UsageError(f"{prefix}: folder {folder!r} not found")


def _probe(folder: str, prefix: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".fpattr-probe-", dir=folder)
    except OSError as e:
        why = f"({_why(e)})"
        if e.errno == errno.ENOENT and os.path.isdir(folder):
            # the folder is there but takes no new file: a virtual file system (/proc,
            # /sys) answers ENOENT, and "no such file or directory" read as a lie
            why = "- it takes no new files (a virtual file system, such as /proc?)"
        raise UsageError(f"{prefix}: folder {folder!r} is not writable {why}") from None
    os.close(fd)
    with suppress(OSError):
        os.unlink(probe)


def _why(e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "read-only file system"
    if e.errno == errno.ENOENT:
        return "no such file or directory"
    return e.strerror or str(e)


# --------------------------------------------------------------------------- signals

_pending: list[int] = []
_depth = 0
#: Signals that end a run gracefully (SIGHUP: the terminal was closed).
_GRACEFUL = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _on_signal(signum: int, frame: Any) -> None:
    if _depth > 0:  # a record is being written: finish it first (see uninterrupted)
        _pending.append(signum)
        return
    raise Interrupted(signum)


@contextmanager
def graceful_signals() -> Iterator[None]:
    """While active, SIGINT, SIGTERM and SIGHUP raise :class:`fpattr.errors.Interrupted` (a
    KeyboardInterrupt) in the main thread, so ``finally`` blocks run, temp files are removed and
    streamed outputs are closed whichever signal arrived. A signal the process ignores (SIG_IGN,
    e.g. under ``nohup``) stays ignored. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for signum in _GRACEFUL:
        with suppress(ValueError, OSError):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            with suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP (under :func:`graceful_signals`) until the block ends, then
    raise.

    Wrap the writing of one record in it: an interrupted run then ends with the record complete
    and flushed, never half a line. Re-entrant.
    """
    global _depth
    _depth += 1
    try:
        yield
    except BaseException:  # already unwinding: that exception ends the run
        _depth -= 1
        if _depth == 0:
            _pending.clear()
        raise
    _depth -= 1
    if _depth == 0 and _pending:
        signum = _pending[0]
        _pending.clear()
        raise Interrupted(signum)


# --------------------------------------------------------------------------- internals


def _is_special(target: str) -> bool:
    """True for an existing path that is not a regular file (device, FIFO, socket)."""
    try:
        st = os.stat(target)
    except OSError:
        return False
    return not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


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
