"""atomic_open / file_lock: no half files, no temp leftovers, no lost updates."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import stat
import threading
from pathlib import Path

import pytest

from fpattr.errors import FpattrError
from fpattr.io.atomic import atomic_open, atomic_write_bytes, atomic_write_text, file_lock

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def increment(counter: Path, times: int) -> None:
    """Read-modify-write a JSON counter under the lock (module level: picklable for processes)."""
    for _ in range(times):
        with file_lock(counter):
            value = json.loads(counter.read_text()) if counter.exists() else 0
            atomic_write_text(counter, json.dumps(value + 1))


def test_write_text_and_bytes(tmp_path):
    atomic_write_text(tmp_path / "a.json", '{"é": 1}\n')
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == '{"é": 1}\n'
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert leftovers(tmp_path) == []


def test_temp_file_is_recognisable_and_target_appears_only_at_the_end(tmp_path):
    target = tmp_path / "report.json"
    with atomic_open(target) as f:
        f.write("partial")
        tmp = leftovers(tmp_path)
        assert len(tmp) == 1 and re.fullmatch(r"\.report\.json\.tmp-\w+", tmp[0])
        assert not target.exists()
    assert target.read_text() == "partial" and leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_failure_leaves_target_untouched_and_no_temp_file(tmp_path, error):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(error):
        with atomic_open(target) as f:
            f.write("half of the new")
            raise error("crash mid-write")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_failure_without_existing_target_creates_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "new.bin", "wb") as f:
            f.write(b"x")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_bad_mode_and_bad_folder(tmp_path):
    with pytest.raises(ValueError):
        with atomic_open(tmp_path / "x", "a"):
            pass
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "missing" / "x.json", "{}")


@posix_only
@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_permissions_follow_umask(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == expected


@posix_only
def test_existing_file_permissions_are_kept(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() == "new"


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX symlinks")
def test_symlinked_target_is_written_through(tmp_path):
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_lock_serialises_threads(tmp_path):
    counter = tmp_path / "count.json"
    threads = [threading.Thread(target=increment, args=(counter, 25)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads(counter.read_text()) == 100
    assert (tmp_path / "count.json.lock").exists() and leftovers(tmp_path) == []


def test_lock_serialises_processes(tmp_path):
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    counter = tmp_path / "count.json"
    procs = [ctx.Process(target=increment, args=(counter, 20)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert json.loads(counter.read_text()) == 40


def test_lock_timeout_raises_clear_error(tmp_path):
    target = tmp_path / "gallery.npz"
    errors: list[BaseException] = []

    def contender() -> None:
        try:
            with file_lock(target, timeout=0.2):
                pass
        except FpattrError as e:
            errors.append(e)

    with file_lock(target):
        t = threading.Thread(target=contender)
        t.start()
        t.join()
    (error,) = errors
    assert "timed out after 0.2 s waiting for the lock on" in str(error)
    assert str(tmp_path / "gallery.npz.lock") in str(error)
    with file_lock(target, timeout=0.5):  # released after use
        pass


def test_lock_is_released_when_the_body_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with file_lock(tmp_path / "x"):
            raise RuntimeError
    with file_lock(tmp_path / "x", timeout=0.5):
        pass


def test_lock_path_naming_and_missing_folder(tmp_path):
    with file_lock(tmp_path / "explicit.lock"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explicit.lock"]
    with pytest.raises(FpattrError, match="cannot create lock file"):
        with file_lock(tmp_path / "missing" / "x.json"):
            pass


def test_claim_output_holds_a_file_by_any_name_and_passes_errors_through(tmp_path):
    # review 28: a hard link got past the claim, and an OSError inside the claim of a
    # non-regular output became "generator didn't stop after throw()"
    from fpattr.errors import UsageError
    from fpattr.io.atomic import claim_output

    out = tmp_path / "r.jsonl"
    out.write_text("", encoding="utf-8")
    os.link(out, tmp_path / "hard.jsonl")
    (tmp_path / "sym.jsonl").symlink_to(out)
    with claim_output(out):
        for other in ("hard.jsonl", "sym.jsonl", "./r.jsonl"):
            with pytest.raises(UsageError, match="being written by another fpattr run"):
                with claim_output(tmp_path / other):
                    pass
        with claim_output(tmp_path / "other.jsonl"):  # another file: no conflict
            pass
    with claim_output(out):  # released at the end of the first claim
        pass
    with pytest.raises(OSError, match="No space left"):
        with claim_output(os.devnull):
            raise OSError(28, "No space left on device")
    with claim_output(None), claim_output("-"):
        pass
