"""Output paths are checked before any work: a clear exit-2 message, never an internal error.

`attribute -o` / `--report`, and `gallery export` / `gallery import`: a folder that does not
exist, a "folder" that is a regular file, a path that is a folder, a read-only folder, an
unwritable file. The gallery given to `attribute` does not exist: the output error must come
first, proving that nothing was loaded or computed. Internal errors exit 70, not 2.
"""

from __future__ import annotations

import errno
import os

import pytest

from fpattr.errors import ExitCode, UsageError
from fpattr.io import atomic
from fpattr.io.atomic import check_writable, check_writable_folder
from fpattr.testing import run_cli, write_generator_images

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def queries(tmp_path):
    write_generator_images(tmp_path / "q", "checker", n=2, size=64)
    return tmp_path / "q"


def _attribute(queries, tmp_path, *extra):
    gallery = tmp_path / "no-gallery"  # would fail later: the output check must come first
    return run_cli(["attribute", queries, "-g", gallery, "-b", "spectrum", "-q", *extra])


def _only(tmp_path, *names):
    return sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


@pytest.mark.parametrize("flag", ["-o", "--report"])
def test_parent_is_a_regular_file(queries, tmp_path, flag):
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    name = "r.jsonl" if flag == "-o" else "r.html"
    r = _attribute(queries, tmp_path, flag, tmp_path / "file.txt" / name)
    assert r.exit_code == 2, r.output
    assert "is a file, not a folder" in r.stderr and "file.txt" in r.stderr
    assert "internal error" not in r.stderr and "no gallery" not in r.stderr
    assert (tmp_path / "file.txt").read_text(encoding="utf-8") == "x"


@pytest.mark.parametrize("flag", ["-o", "--report"])
def test_missing_folder(queries, tmp_path, flag):
    r = _attribute(queries, tmp_path, flag, tmp_path / "nope" / "deeper" / "r.html")
    assert r.exit_code == 2 and "not found" in r.stderr and "no gallery" not in r.stderr
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("flag", ["-o", "--report"])
def test_a_link_into_a_missing_folder_is_refused_before_any_work(queries, tmp_path, flag):
    # break-it: the link's own folder was checked, the run scored every image and failed
    # only when writing (exit 74)
    link = tmp_path / ("r.json" if flag == "-o" else "r.html")
    link.symlink_to(tmp_path / "nope" / "x.json")
    r = _attribute(queries, tmp_path, flag, link)
    assert r.exit_code == 2, r.output
    assert "not found" in r.stderr and "no gallery" not in r.stderr
    assert link.is_symlink() and not (tmp_path / "nope").exists()


def test_output_is_a_folder(queries, tmp_path):
    (tmp_path / "out.jsonl").mkdir()
    r = _attribute(queries, tmp_path, "-o", tmp_path / "out.jsonl")
    assert r.exit_code == 2 and "it is a folder" in r.stderr and "no gallery" not in r.stderr


def test_every_path_is_checked_before_any_file_is_opened(queries, tmp_path):
    """A bad --report must not leave -o truncated (it is streamed once opened)."""
    out = tmp_path / "r.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    r = _attribute(queries, tmp_path, "-o", out, "--report", tmp_path / "nope" / "r.html")
    assert r.exit_code == 2 and "not found" in r.stderr
    assert out.read_text(encoding="utf-8") == "previous\n"


@pytest.mark.skipif(ROOT or os.name != "posix", reason="root ignores permission bits")
def test_read_only_folder(queries, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = _attribute(queries, tmp_path, "-o", ro / "r.jsonl")
        assert r.exit_code == 2 and "not writable" in r.stderr and "permission denied" in r.stderr
        r = run_cli(["gallery", "export", ro / "g.npz", "-b", "spectrum"])
        assert r.exit_code == 2 and "not writable" in r.stderr
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


@pytest.mark.skipif(ROOT or os.name != "posix", reason="root ignores permission bits")
def test_unwritable_file(queries, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("keep\n", encoding="utf-8")
    f.chmod(0o444)
    r = _attribute(queries, tmp_path, "-o", f)
    assert r.exit_code == 2 and "permission denied" in r.stderr
    assert f.read_text(encoding="utf-8") == "keep\n"


@pytest.mark.parametrize(
    ("err", "why"),
    [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system")],
)
def test_read_only_folder_as_the_os_reports_it(queries, tmp_path, monkeypatch, err, why):
    """The same refusal whoever runs the tests (root ignores chmod): the probe fails."""

    def refuse(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    r = _attribute(queries, tmp_path, "-o", tmp_path / "r.jsonl")
    assert r.exit_code == 2, r.output
    assert f"is not writable ({why})" in r.stderr and "no gallery" not in r.stderr
    with pytest.raises(UsageError, match=why):
        check_writable_folder(tmp_path / "new-gallery", "gallery")


def test_check_writable_leaves_nothing(tmp_path):
    check_writable(tmp_path / "r.jsonl")
    existing = tmp_path / "old.csv"
    existing.write_text("old", encoding="utf-8")
    check_writable(existing)
    check_writable("-")
    assert _only(tmp_path, "old.csv") and existing.read_text(encoding="utf-8") == "old"


def test_gallery_export_and_import_paths(tmp_path):
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    r = run_cli(["gallery", "export", tmp_path / "file.txt" / "g.npz", "-b", "spectrum"])
    assert r.exit_code == 2 and "is a file, not a folder" in r.stderr, r.output
    r = run_cli(["gallery", "export", tmp_path / "nope" / "g.npz", "-b", "spectrum"])
    assert r.exit_code == 2 and "not found" in r.stderr, r.output

    refs = write_generator_images(tmp_path / "refs", "checker", n=3, size=64)
    g = tmp_path / "g"
    assert run_cli(["gallery", "add", "checker", *refs, "-g", g, "-b", "spectrum"]).exit_code == 0
    npz = tmp_path / "g.npz"
    r = run_cli(["gallery", "export", npz, "-g", g, "-b", "spectrum"])
    assert r.exit_code == 0 and npz.is_file(), r.output
    r = run_cli(["gallery", "import", npz, "-g", tmp_path / "file.txt" / "g2"])
    assert r.exit_code == 2 and "is a file, not a folder" in r.stderr, r.output
    r = run_cli(["gallery", "import", npz, "-g", tmp_path / "file.txt"])
    assert r.exit_code == 2 and "is a file, not a folder" in r.stderr, r.output
    r = run_cli(["gallery", "import", npz, "-g", tmp_path / "new" / "g2"])
    assert r.exit_code == 0 and (tmp_path / "new" / "g2" / "gallery.json").is_file(), r.output


def test_internal_errors_have_their_own_exit_code(monkeypatch, tmp_path):
    from fpattr.cli import attribute_cmd

    def boom(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(attribute_cmd, "run", boom)
    r = run_cli(["attribute", tmp_path])
    assert r.exit_code == ExitCode.INTERNAL == 70
    assert "internal error: ZeroDivisionError: a bug" in r.stderr
    assert int(ExitCode.USAGE) == 2


def test_gallery_add_checks_its_folder_before_any_work(tmp_path):
    from fpattr.testing import run_cli, write_generator_images

    write_generator_images(tmp_path / "refs", "checker", n=2, size=64, seed=0)
    (tmp_path / "afile").write_text("x")
    r = run_cli(
        ["gallery", "add", "m", tmp_path / "refs", "-g", tmp_path / "afile" / "g", "-b", "spectrum"]
    )
    assert r.exit_code == 2 and "is a file, not a folder" in r.output
    assert "enrolling" not in r.output and "leave-one-out" not in r.output


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(queries, tmp_path):
    # `-o` on an input image used to replace it with the report and drop its record
    img = sorted(queries.glob("*.png"))[0]
    before = img.read_bytes()
    for args in (
        [queries, "-o", img, "-f", "json"],  # an image inside an input folder
        [img, "-o", img, "-f", "csv"],  # the input file itself
        [queries, "--report", img],
    ):
        r = run_cli(["attribute", *args, "-g", tmp_path / "no-gallery", "-b", "spectrum", "-q"])
        assert r.exit_code == 2, r.output
        assert "is one of the inputs" in r.stderr and "no gallery" not in r.stderr
        assert img.read_bytes() == before
    other = sorted(queries.glob("*.png"))[1]
    r = run_cli(["verify", img, other, "-o", other, "-b", "spectrum", "-q"])
    assert r.exit_code == 2 and "is one of the inputs" in r.stderr, r.output
    assert img.read_bytes() == before


def test_a_results_file_inside_the_input_folder_is_allowed(queries, tmp_path):
    # the common `fpattr attribute . -o results.jsonl`: not an image, never an input
    from fpattr.report.outputs import check_output_paths

    check_output_paths(queries / "results.jsonl", queries / "report.html", inputs=[queries])


def test_output_and_report_on_one_path_are_refused(queries, tmp_path):
    same = tmp_path / "same.json"
    r = _attribute(queries, tmp_path, "-o", same, "--report", same)
    assert r.exit_code == 2 and "are the same file" in r.stderr, r.output
    assert not same.exists()
    # two names of one existing file (a hard link): the report replaced the results file
    out = tmp_path / "results.json"
    out.write_text("{}", encoding="utf-8")
    os.link(out, tmp_path / "report.html")
    r = _attribute(queries, tmp_path, "-o", out, "--report", tmp_path / "report.html")
    assert r.exit_code == 2 and "are the same file" in r.stderr, r.output
    assert out.read_text(encoding="utf-8") == "{}"


def test_explicit_table_to_a_file_of_any_suffix(tmp_path):
    # `-f table -o r.out` was refused: "cannot tell the report format ... pass it explicitly"
    from fpattr.report.outputs import output_format

    assert output_format("table", tmp_path / "r.out") == "table"
    assert output_format("table", tmp_path / "r.csv") == "csv"


def test_an_unknown_suffix_says_the_table_is_written_and_report_defaults_to_html(queries, tmp_path):
    # break-it: "-o x.weird" wrote the table silently; "--report /dev/full" (no suffix) was
    # refused, offering json and csv for what is the HTML report
    g = tmp_path / "g"
    refs = write_generator_images(tmp_path / "refs", "checker", n=3, size=64)
    assert run_cli(["gallery", "add", "checker", *refs, "-g", g, "-b", "spectrum"]).exit_code == 0
    out, rep = tmp_path / "x.weird", tmp_path / "report"
    r = run_cli(["attribute", queries, "-g", g, "-b", "spectrum", "-o", out, "--report", rep])
    assert r.exit_code == 0, r.output
    assert "the suffix '.weird' names no format, so the table is written" in " ".join(
        r.stderr.split()
    )
    assert rep.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert "Path" in out.read_text(encoding="utf-8")


def test_an_input_reached_by_another_name_is_never_overwritten(queries, tmp_path):
    # second break-it pass: a hard link to an input as a streamed .jsonl output wrote
    # through to the image, and a symlink inside an input folder let -o replace its target
    img = sorted(queries.glob("*.png"))[0]
    before = img.read_bytes()
    hard = tmp_path / "out.jsonl"
    os.link(img, hard)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "r.png"
    target.write_bytes(before)
    (queries / "link.png").symlink_to(target)
    for out in (hard, target):
        for cmd in (["attribute", queries], ["verify", img, queries]):
            r = run_cli([*cmd, "-o", out, "-b", "spectrum", "-q"])
            assert r.exit_code == 2 and "is one of the inputs" in r.stderr, r.output
    assert img.read_bytes() == before and target.read_bytes() == before


def test_a_previous_results_file_in_the_input_folder_can_be_rewritten(queries, tmp_path):
    from fpattr.report.outputs import check_output_paths

    (queries / "results.jsonl").write_text("{}\n", encoding="utf-8")
    check_output_paths(queries / "results.jsonl", inputs=[queries])


def test_a_folder_that_takes_no_new_files_is_named_so(tmp_path, monkeypatch):
    # break-it finding: `-o /proc/x.json` said "folder '/proc' is not writable (no such
    # file or directory)": a virtual file system answers ENOENT for a folder that exists
    def refuse(*args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(UsageError) as info:
        check_writable(tmp_path / "x.json", "output")
    assert "takes no new files" in str(info.value) and "no such file" not in str(info.value)


def test_an_output_symlinked_to_an_image_of_a_walked_folder_is_refused(queries, tmp_path):
    # break-it 27: "-o results.json" a symlink to an image inside the walked folder passed
    # for the run's own output (left out of the walk) and the image became the report
    img = sorted(queries.glob("*.png"))[1]
    before = img.read_bytes()
    link = tmp_path / "results.json"
    link.symlink_to(img)
    rep = tmp_path / "report.html"
    rep.symlink_to(img)
    for cmd, flag, out in (
        (["attribute", queries], "-o", link),
        (["attribute", queries], "--report", rep),
        (["verify", queries, img], "-o", link),
        (["provenance", queries], "-o", link),
    ):
        r = run_cli(
            [*cmd, flag, out, "-b", "spectrum", "-q"]
            if cmd[0] != "provenance"
            else [*cmd, flag, out, "-q"]
        )
        assert r.exit_code == 2 and "is one of the inputs" in r.stderr, (cmd, r.output)
        assert img.read_bytes() == before
    # the entry itself, a results file of the folder, stays allowed
    from fpattr.io.walk import names_entry
    from fpattr.report.outputs import check_output_paths

    (queries / "results.json").write_text("{}", encoding="utf-8")
    check_output_paths(queries / "results.json", inputs=[queries])
    assert names_entry(queries / "results.json", queries / "results.json")
    assert not names_entry(img, link)


def test_a_format_given_against_the_suffix_is_said(queries, tmp_path):
    # break-it 27: "-f jsonl -o report.html" wrote JSONL under .html and said nothing
    g = tmp_path / "g"
    refs = write_generator_images(tmp_path / "refs", "checker", n=3, size=64)
    assert run_cli(["gallery", "add", "checker", *refs, "-g", g, "-b", "spectrum"]).exit_code == 0
    out = tmp_path / "report.html"
    r = run_cli(["attribute", queries, "-g", g, "-b", "spectrum", "-f", "jsonl", "-o", out])
    assert r.exit_code == 0, r.output
    assert "written as jsonl (--format), not the html its suffix names" in " ".join(
        r.stderr.split()
    )
    assert out.read_text(encoding="utf-8").startswith('{"type":"manifest"')
    # agreeing or default: no note
    r = run_cli(["attribute", queries, "-g", g, "-b", "spectrum", "-o", tmp_path / "r.jsonl"])
    assert r.exit_code == 0 and "its suffix names" not in r.stderr


def test_an_output_inside_the_gallery_in_use_or_over_the_model_is_refused(queries, tmp_path):
    # break-it 28: `gallery export G/gallery.json -g G` and `attribute -o G/gallery.json`
    # exited 0 and left a gallery no command could read
    g = tmp_path / "g"
    refs = write_generator_images(tmp_path / "refs", "checker", n=3, size=64)
    assert run_cli(["gallery", "add", "checker", *refs, "-g", g, "-b", "spectrum"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in g.rglob("*") if p.is_file()}
    img = sorted(queries.glob("*.png"))[0]
    (tmp_path / "link").symlink_to(g, target_is_directory=True)
    for cmd in (
        ["attribute", queries, "-o", g / "gallery.json"],
        ["attribute", queries, "--report", g / "emb" / "x.html"],
        ["attribute", queries, "-f", "csv", "-o", tmp_path / "link" / "gallery.json"],
        ["verify", img, img, "-o", g / "gallery.json"],
        ["gallery", "export", g / "gallery.json"],
        ["gallery", "export", g / "backup.npz"],
    ):
        r = run_cli([*cmd, "-g", g, "-b", "spectrum"])
        assert r.exit_code == 2 and "inside the gallery in use" in r.stderr, (cmd, r.output)
    assert {p.name: p.read_bytes() for p in g.rglob("*") if p.is_file()} == before
    assert run_cli(["gallery", "export", tmp_path / "backup.npz", "-g", g]).exit_code == 0


def test_an_output_over_the_extractors_model_or_card_is_refused(queries, tmp_path):
    import shutil

    from fpattr.backbones.onnx import default_card_path, read_card

    card = default_card_path()
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(card, models / card.name)
    shutil.copy(card.parent / read_card(card)["file"], models / read_card(card)["file"])
    mine = models / card.name
    g = tmp_path / "g"
    refs = write_generator_images(tmp_path / "refs", "checker", n=3, size=64)
    opt = ["-b", "onnx", "--backbone-opt", f"model={mine}"]
    assert run_cli(["gallery", "add", "checker", *refs, "-g", g, *opt]).exit_code == 0
    was = mine.read_bytes()
    r = run_cli(["attribute", queries, "-g", g, *opt, "-f", "json", "-o", mine])
    assert r.exit_code == 2 and "extractor's model or card" in r.stderr, r.output
    assert mine.read_bytes() == was
    os.link(mine, tmp_path / "alias.json")  # another name of the card (review 28)
    r = run_cli(["attribute", queries, "-g", g, *opt, "-f", "json", "-o", tmp_path / "alias.json"])
    assert r.exit_code == 2 and "extractor's model or card" in r.stderr, r.output
    # evaluate and analyze predict too (review 28): the results replaced the card, exit 0
    bench = tmp_path / "bench"
    for gen in ("checker", "nearest"):
        write_generator_images(bench / gen, gen, n=4, size=64)
    r = run_cli(["evaluate", bench, "--refs", "2", *opt, "-f", "json", "-o", mine, "-q"])
    assert r.exit_code == 2 and "a file this run reads" in r.stderr, r.output
    assert mine.read_bytes() == was
    from fpattr.paths import SHIPPED_HEADS, models_dir

    heads = tmp_path / "heads.json"
    shutil.copy(models_dir() / SHIPPED_HEADS, heads)
    kept = heads.read_bytes()
    r = run_cli(["analyze", "predict", queries, "--heads", heads, "-f", "json", "-o", heads])
    assert r.exit_code == 2 and "a file this run reads" in r.stderr, r.output
    assert heads.read_bytes() == kept
