"""The plugin host: built-ins via hooks, entry points one by one, failures recorded."""

from __future__ import annotations

import pytest

import fpattr
from fpattr.plugins import DEFAULT_PLUGINS, PluginHost


class GoodPlugin:
    @fpattr.hookimpl
    def fpattr_register_backbones(self, register):
        register("good-bb", lambda **kw: None, description="test")


class RaisingPlugin:
    @fpattr.hookimpl
    def fpattr_register_backbones(self, register):
        register("half-registered", object)
        raise RuntimeError("boom")


class TypoPlugin:
    @fpattr.hookimpl
    def fpattr_register_backbonez(self, register):  # typo: must be caught by check_pending
        pass


def test_builtins_register_through_hooks():
    host = PluginHost(load_entry_points=False)
    assert set(DEFAULT_PLUGINS) <= set(host.plugins)
    assert {"default", "spectrum", "onnx"} <= set(host.registry("backbone").names())
    assert {"table", "json", "jsonl", "csv", "html"} <= set(host.registry("report_format").names())
    for name in ("spectrum", "json"):
        kind = "backbone" if name == "spectrum" else "report_format"
        assert host.registry(kind).entry(name).plugin.startswith("fpattr.")


def test_good_plugin_registers():
    host = PluginHost(load_entry_points=False)
    host.register(GoodPlugin(), name="good")
    assert host.registry("backbone").entry("good-bb").plugin == "good"
    assert host.plugins["good"].hooks == ["fpattr_register_backbones"]


def test_raising_hook_is_recorded_and_contributes_nothing():
    host = PluginHost(load_entry_points=False)
    host.register(RaisingPlugin(), name="bad")
    reg = host.registry("backbone")
    assert "half-registered" not in reg and "spectrum" in reg
    assert any(f.plugin == "bad" and "boom" in f.error for f in host.failures)
    assert "boom" in host.plugins["bad"].error


def test_unknown_hook_is_rejected_at_register():
    host = PluginHost(load_entry_points=False)
    host.register(TypoPlugin(), name="typo")
    assert not host.pm.is_registered(TypoPlugin)
    assert any(f.plugin == "typo" and f.stage == "register" for f in host.failures)


def test_raise_errors_env(monkeypatch):
    host = PluginHost(load_entry_points=False)
    monkeypatch.setenv("FPATTR_RAISE_ERRORS", "1")
    host.register(RaisingPlugin(), name="bad")
    with pytest.raises(RuntimeError, match="boom"):
        host.registry("backbone")


def test_duplicate_name_from_plugin_does_not_override_builtin():
    class Dup:
        @fpattr.hookimpl
        def fpattr_register_report_formats(self, register):
            register("json", object)

    host = PluginHost(load_entry_points=False)
    host.register(Dup(), name="dup")
    assert host.registry("report_format").entry("json").plugin == "fpattr.report.builtin"
    assert any(f.plugin == "dup" and "already registered" in f.error for f in host.failures)
