"""open_report / format_for_path: atomic report files (real fpattr.io.atomic) and suffixes."""

from __future__ import annotations

import json

import pytest

from fpattr.errors import RegistryError, UsageError
from fpattr.registry import Registry
from fpattr.report import builtin
from fpattr.report.files import format_for_path, open_report


@pytest.fixture
def registry() -> Registry:
    reg: Registry = Registry("report format")
    builtin.fpattr_register_report_formats(reg.callback("fpattr.report.builtin"))
    return reg


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("r.json", "json"),
        ("r.JSONL", "jsonl"),
        ("dir.v2/r.csv", "csv"),
        ("r.html", "html"),
        ("r.htm", "html"),
        ("r.txt", "table"),
    ],
)
def test_format_for_path(name, fmt):
    assert format_for_path(name) == fmt


@pytest.mark.parametrize("name", ["report.xlsx", "report", "report.json.gz"])
def test_format_for_path_unknown_suffix(name):
    with pytest.raises(UsageError, match=r"\.jsonl \(jsonl\)"):
        format_for_path(name)


def test_format_for_path_plugin_extension(registry):
    registry.add("parquet", object(), plugin="p", extension=".parquet", binary=True)
    assert format_for_path("x.parquet", registry=registry) == "parquet"


def test_open_report_writes_file(tmp_path, registry, manifest, results, summary):
    target = tmp_path / "run.jsonl"
    with open_report(target, None, manifest, registry=registry, thumbnails=True) as writer:
        for r in results:
            writer.write(r)
        writer.close(summary)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["type"] == "manifest"
    assert json.loads(lines[-1])["type"] == "summary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv", "html"])
def test_open_report_leaves_nothing_on_error(tmp_path, registry, manifest, results, fmt):
    target = tmp_path / "out" / "report.any"
    target.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with open_report(target, fmt, manifest, registry=registry) as writer:
            writer.write(results[0])  # streaming formats have written bytes by now
            raise KeyboardInterrupt
    assert list(target.parent.iterdir()) == []


def test_open_report_keeps_previous_report_on_error(tmp_path, registry, manifest, results):
    target = tmp_path / "report.csv"
    target.write_text("previous run\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="boom"):
        with open_report(target, None, manifest, registry=registry) as writer:
            writer.write(results[0])
            raise RuntimeError("boom")
    assert target.read_text(encoding="utf-8") == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_open_report_requires_close(tmp_path, registry, manifest, results):
    target = tmp_path / "report.json"
    with pytest.raises(RuntimeError, match="not closed"):
        with open_report(target, None, manifest, registry=registry) as writer:
            writer.write(results[0])
    assert list(tmp_path.iterdir()) == []


def test_open_report_errors(tmp_path, registry, manifest):
    with pytest.raises(UsageError, match="not found"):
        with open_report(tmp_path / "missing" / "r.json", None, manifest, registry=registry):
            pass
    with pytest.raises(RegistryError, match="did you mean json"):
        with open_report(tmp_path / "r.json", "jsn", manifest, registry=registry):
            pass
    with pytest.raises(UsageError, match="cannot tell the report format"):
        with open_report(tmp_path / "r.pdf", None, manifest, registry=registry):
            pass
    assert list(tmp_path.iterdir()) == []


def test_open_report_stdout(capsys, registry, manifest, results, summary):
    with open_report("-", "jsonl", manifest, registry=registry) as writer:
        writer.write(results[0])
        writer.close(summary)
    assert len(capsys.readouterr().out.splitlines()) == 3
