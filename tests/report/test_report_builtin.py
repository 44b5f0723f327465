"""Built-in formats register through the plugin hook, like third-party plugins."""

from __future__ import annotations

import time
from datetime import datetime

import fpattr
from fpattr.plugins import PluginHost
from fpattr.report.manifest import SCHEMA, build_manifest, finish_summary

FORMATS = {"table", "json", "jsonl", "csv", "html"}


def test_builtin_registers_exactly_the_five_formats():
    host = PluginHost(load_entry_points=False)
    reg = host.registry("report_format")
    assert set(reg.names()) == FORMATS
    assert not [f for f in host.failures if f.plugin == "fpattr.report.builtin"]
    for entry in reg:
        assert entry.plugin == "fpattr.report.builtin"
        assert entry.description
        assert entry.meta["binary"] is False
        assert entry.meta["extension"].startswith(".")
        assert callable(entry.obj)
    assert reg.entry("jsonl").meta["streaming"] is True
    assert reg.entry("csv").meta["streaming"] is True
    assert reg.entry("json").meta["streaming"] is False
    assert reg.entry("html").meta["extension"] == ".html"


def test_build_manifest():
    m = build_manifest(
        "attribute",
        backbone={"id": "b", "sha256": "0" * 64},
        gallery=None,
        calibration={"method": "temperature"},
        settings={"top_k": 3},
        plugins=[{"name": "x", "version": "1"}],
    )
    assert list(m) == [
        "schema",
        "command",
        "tool",
        "python",
        "platform",
        "started",
        "backbone",
        "gallery",
        "calibration",
        "settings",
        "plugins",
    ]
    assert m["schema"] == SCHEMA == "fpattr.report/1"
    assert m["tool"] == {"name": "fpattr", "version": fpattr.__version__}
    assert m["gallery"] is None
    started = datetime.fromisoformat(m["started"].replace("Z", "+00:00"))
    assert started.utcoffset().total_seconds() == 0


def test_finish_summary():
    base = {"n_inputs": 10, "n_ok": 10, "n_failed": 0}
    out = finish_summary(base, time.monotonic() - 2.0)
    assert out is not base and "finished" not in base
    assert 2.0 <= out["seconds"] < 10
    assert out["images_per_second"] == round(10 / out["seconds"], 3)
    assert datetime.fromisoformat(out["finished"].replace("Z", "+00:00")).tzinfo is not None
    kept = finish_summary({**base, "images_per_second": 99.0}, time.monotonic())
    assert kept["images_per_second"] == 99.0
    # None: measured, and nothing was read (verify of two empty folders showed a speed)
    none = finish_summary({**base, "images_per_second": None}, time.monotonic() - 2.0)
    assert none["images_per_second"] is None
