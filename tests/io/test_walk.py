"""iter_inputs: every file found, ordering, skipped entries, symlink loops, unusable paths."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

import pytest

from fpattr.io import walk as walk_mod
from fpattr.io.loader import IMAGE_EXTENSIONS
from fpattr.io.walk import InputItem, iter_inputs
from fpattr.testing import make_hostile_inputs

needs_symlinks = pytest.mark.skipif(
    not hasattr(os, "symlink") or os.name == "nt", reason="needs POSIX symlinks"
)


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def rel(items: list[InputItem], root: Path) -> list[str]:
    return [item.path.relative_to(root).as_posix() for item in items]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    touch(
        root,
        "b.png",
        "a.JPG",
        "z.PNG",
        "notes.txt",
        "noext",
        ".hidden.png",
        ".git/e.png",
        "sub/c.webp",
        "sub/deeper/d.tif",
        "sub/deeper/readme.md",
        "sub2/f.jpeg",
    )
    return root


HIDDEN = "skipped: hidden (name starts with '.'), not searched"
HIDDEN_DIR = "skipped: hidden folder (name starts with '.'), not searched"


def test_every_file_is_yielded_sorted_and_hidden_entries_are_skipped_items(tree):
    items = list(iter_inputs([tree]))
    assert rel(items, tree) == [
        ".git",
        ".hidden.png",
        "a.JPG",
        "b.png",
        "noext",
        "notes.txt",
        "sub/c.webp",
        "sub/deeper/d.tif",
        "sub/deeper/readme.md",
        "sub2/f.jpeg",
        "z.PNG",
    ]
    assert [(i.error, i.skipped) for i in items[:2]] == [(HIDDEN_DIR, True), (HIDDEN, True)]
    assert all(i.error is None and not i.skipped for i in items[2:])
    assert all(i.in_folder and isinstance(i.path, Path) for i in items)


def test_custom_extensions_with_or_without_dot_drop_the_rest(tree):
    assert rel(list(iter_inputs([tree], extensions=["png", ".TIF"])), tree) == [
        "b.png",
        "sub/deeper/d.tif",
        "z.PNG",
    ]


def test_explicit_files_always_yielded(tree):
    given = [tree / "notes.txt", tree / ".hidden.png", tree / "noext"]
    items = list(iter_inputs(given))
    assert [item.path for item in items] == given
    assert not any(i.in_folder or i.skipped or i.error for i in items)


def test_paths_are_kept_as_given(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    items = list(iter_inputs(["root/sub", Path("root") / "b.png"]))
    assert [str(item.path) for item in items] == [
        os.path.join("root", "sub", "c.webp"),
        os.path.join("root", "sub", "deeper", "d.tif"),
        os.path.join("root", "sub", "deeper", "readme.md"),
        os.path.join("root", "b.png"),
    ]


def test_duplicates_are_yielded_twice(tree):
    assert len(list(iter_inputs([tree, tree]))) == 22
    assert len(list(iter_inputs([tree / "b.png", tree / "b.png"]))) == 2


@needs_symlinks
def test_once_per_path_keys_on_the_resolved_file_not_its_spelling(tmp_path, monkeypatch):
    # break-it: ./q was one input with q, but $PWD/q, q/../q/x.png and a folder reached
    # again through a link (loop -> .) were attributed again, n_repeated 0
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "q/a.png", "q/b.png", "odd/ok.png", "elsewhere/h.png")
    (tmp_path / "odd" / "loop").symlink_to(".", target_is_directory=True)
    (tmp_path / "odd" / "same.png").symlink_to("ok.png")
    os.link(tmp_path / "elsewhere" / "h.png", tmp_path / "q" / "hard.png")  # another name
    given = ["q", "./q", str(tmp_path / "q"), "q/../q/a.png", "odd/ok.png", "odd/loop", "odd"]
    repeats: list[InputItem] = []
    kept = list(walk_mod.once_per_path(iter_inputs(given), repeats.append))
    # each file once, under the path as first given; a hard link is its own name
    assert [str(i.path) for i in kept if not i.skipped] == [
        os.path.join("q", "a.png"),
        os.path.join("q", "b.png"),
        os.path.join("q", "hard.png"),
        os.path.join("odd", "ok.png"),
    ]
    assert [str(i.path) for i in kept if i.skipped] == [os.path.join("odd", "loop", "loop")]
    assert sorted(str(i.path) for i in repeats) == sorted(
        [
            *(os.path.join("q", n) for n in ("a.png", "b.png", "hard.png")),  # ./q
            *(os.path.join(str(tmp_path), "q", n) for n in ("a.png", "b.png", "hard.png")),
            os.path.join("q", "..", "q", "a.png"),
            os.path.join("odd", "loop", "ok.png"),
            os.path.join("odd", "loop", "same.png"),  # a link to ok.png: that file again
            os.path.join("odd", "loop"),  # walking odd: the link back into it, seen before
            os.path.join("odd", "ok.png"),
            os.path.join("odd", "same.png"),
        ]
    )
    hard = [tmp_path / "q" / "hard.png", tmp_path / "elsewhere" / "h.png"]
    assert len(list(walk_mod.once_per_path(iter_inputs(hard)))) == 2
    # a link left out (not followed) does not shadow the file it points at
    (tmp_path / "q" / "0link.png").symlink_to("a.png")
    walked = walk_mod.once_per_path(iter_inputs(["q"], follow_symlinks=False))
    assert [(i.path.name, i.skipped) for i in walked] == [
        ("0link.png", True),
        ("a.png", False),
        ("b.png", False),
        ("hard.png", False),
    ]


def test_missing_path_yields_error_item(tmp_path):
    (item,) = iter_inputs([tmp_path / "missing.png"])
    assert item == InputItem(tmp_path / "missing.png", "no such file or directory")


@needs_symlinks
def test_broken_and_looping_symlinks_given_explicitly(tmp_path):
    (tmp_path / "broken.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "loop.png").symlink_to("loop.png")
    errors = [item.error for item in iter_inputs([tmp_path / "broken.png", tmp_path / "loop.png"])]
    assert errors == [
        "broken symbolic link (target does not exist)",
        "symbolic link loop (too many levels of symbolic links)",
    ]


@needs_symlinks
def test_symlink_loop_terminates_and_visits_each_folder_once(tmp_path):
    root = tmp_path / "root"
    touch(root, "a.png", "sub/b.png", "sub/inner/c.png")
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)
    (root / "sub" / "inner" / "self").symlink_to(".", target_is_directory=True)
    items = list(iter_inputs([root]))
    assert rel([i for i in items if not i.skipped], root) == [
        "a.png",
        "sub/b.png",
        "sub/inner/c.png",
    ]
    # the links back into the tree are accounted for, not silently dropped
    assert sorted(rel([i for i in items if i.skipped], root)) == ["sub/inner/self", "sub/up"]
    assert all("already searched" in i.error for i in items if i.skipped)


@needs_symlinks
def test_two_links_to_one_folder_enter_it_once_per_given_path(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    touch(outside, "x.png")
    (root).mkdir()
    (root / "l1").symlink_to(outside, target_is_directory=True)
    (root / "l2").symlink_to(outside, target_is_directory=True)
    items = list(iter_inputs([root]))
    assert rel([i for i in items if not i.skipped], root) == ["l1/x.png"]
    assert rel([i for i in items if i.skipped], root) == ["l2"]
    twice = [i for i in iter_inputs([root, root]) if not i.skipped]
    assert rel(twice, root) == ["l1/x.png", "l1/x.png"]


@needs_symlinks
def test_follow_symlinks_false_skips_links_inside_folders(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    touch(outside, "x.png")
    touch(root, "real.png")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "link.png").symlink_to(outside / "x.png")
    assert rel(list(iter_inputs([root])), root) == ["link.png", "linkdir/x.png", "real.png"]
    items = list(iter_inputs([root], follow_symlinks=False))
    assert [(i.path.name, i.error, i.skipped) for i in items] == [
        ("link.png", "skipped: symbolic link not followed", True),
        ("linkdir", "skipped: symbolic link not followed", True),
        ("real.png", None, False),
    ]
    assert rel(list(iter_inputs([root], extensions=["png"], follow_symlinks=False)), root) == [
        "real.png"
    ]


@needs_symlinks
def test_dangling_link_inside_folder_is_reported(tmp_path):
    touch(tmp_path, "ok.png")
    (tmp_path / "dead.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "dead.txt").symlink_to(tmp_path / "gone.txt")
    items = list(iter_inputs([tmp_path]))
    assert [(i.path.name, i.error) for i in items] == [
        ("dead.png", "broken symbolic link (target does not exist)"),
        ("dead.txt", "broken symbolic link (target does not exist)"),
        ("ok.png", None),
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_pipe_inside_folder_is_a_skipped_item(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (item,) = iter_inputs([tmp_path])
    assert item.error == "skipped: not a regular file (device, pipe or socket)" and item.skipped


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_folder_yields_error_item(tmp_path):
    touch(tmp_path, "a.png", "locked/b.png", "z.png")
    locked = tmp_path / "locked"
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything
            pytest.skip("running as root: chmod 000 does not stop listing")
        items = list(iter_inputs([tmp_path]))
    finally:
        locked.chmod(0o755)
    assert [(i.path.name, i.error) for i in items] == [
        ("a.png", None),
        ("locked", "permission denied: cannot list folder"),
        ("z.png", None),
    ]


def test_walk_is_lazy(tree, monkeypatch):
    calls: list[str] = []
    real = os.scandir

    def counting(path):
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(walk_mod.os, "scandir", counting)
    items = iter_inputs([tree])
    assert calls == []
    assert next(items).path.name == ".git"
    assert calls == ["root"]  # sub/, sub2/ are not listed yet


def test_deep_tree_needs_no_recursion(tmp_path):
    # A tree deeper than the frames left to the walk: a recursive walker would fail. Kept
    # shallow on disk (shutil.rmtree, used by pytest's cleanup, recurses itself).
    deep = tmp_path.joinpath(*["d"] * 120)
    deep.mkdir(parents=True)
    (deep / "x.png").write_bytes(b"x")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)
    try:
        (item,) = iter_inputs([tmp_path])
    finally:
        sys.setrecursionlimit(limit)
    assert item.path == deep / "x.png"


def test_hostile_folder_walk(tmp_path):
    folder = tmp_path / "hostile"
    cases = make_hostile_inputs(folder)
    items = list(iter_inputs([folder]))
    seen_again = [i for i in items if i.skipped and "already searched" in (i.error or "")]
    items = [i for i in items if i not in seen_again]
    if "symlink_loop" in cases:  # loop/parent -> .. : reported once, not re-entered
        assert [i.path.name for i in seen_again] == ["parent"]
    names = [i.path.name for i in items]
    assert names == sorted(names) and "notes.txt" in names
    assert len(names) == len(set(names))
    errors = {i.path.name: i.error for i in items if i.error}
    if "broken_symlink" in cases:
        assert errors.pop("broken.png").startswith("broken symbolic link")
        assert errors.pop("self.png").startswith("symbolic link loop")
    assert errors == {}
    assert {i.path.suffix.lower() for i in items} - IMAGE_EXTENSIONS == {".txt"}
