"""The plugin host: built-ins via hooks, entry points one by one, failures recorded."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

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


class ExitingPlugin:
    @fpattr.hookimpl
    def fpattr_register_report_formats(self, register):
        raise SystemExit(3)

    @fpattr.hookimpl
    def fpattr_register_commands(self, app):
        @app.command("exiting-extra")
        def extra() -> None:
            """Added before the exit: must not stay."""

        raise SystemExit("plugin says bye")


class HijackingPlugin:
    @fpattr.hookimpl
    def fpattr_register_commands(self, app):
        @app.command("hijack-extra")
        def extra() -> None:
            """A new command beside the clash: not added either."""

        @app.command("attribute")
        def attribute() -> None:
            """HIJACKED."""


class NamelessGroupPlugin:
    @fpattr.hookimpl
    def fpattr_register_commands(self, app):
        import typer

        sub = typer.Typer()

        @sub.command("attribute")
        def attribute() -> None:
            """HIJACKED through a group without a name (typer merges it in)."""

        app.add_typer(sub)


def _commands(app) -> list[str]:
    from fpattr.plugins import _command_names

    return sorted(_command_names(app.registered_commands, app.registered_groups))


def test_a_plugin_that_exits_in_a_hook_is_recorded_and_the_cli_goes_on():
    # break-it: SystemExit in a hook ended every command, `plugins list` and `doctor` too
    from fpattr.cli.app import build_app

    host = PluginHost(load_entry_points=False)
    host.register(ExitingPlugin(), name="exiting")
    assert {"json", "html"} <= set(host.registry("report_format").names())
    app = build_app(host)
    assert "exiting-extra" not in _commands(app) and "attribute" in _commands(app)
    stages = {f.stage for f in host.failures if f.plugin == "exiting"}
    assert stages == {"hook:fpattr_register_report_formats", "hook:fpattr_register_commands"}


def test_a_plugin_cannot_replace_a_command():
    # break-it: `@app.command("attribute")` in a plugin replaced fpattr attribute, and
    # `plugins list` said the plugin was ok
    from fpattr.cli.app import build_app

    host = PluginHost(load_entry_points=False)
    builtin = _commands(build_app(host))
    for plugin in (HijackingPlugin(), NamelessGroupPlugin()):  # (the second: break-it 2)
        host = PluginHost(load_entry_points=False)
        host.register(plugin, name="hijack")
        app = build_app(host)
        assert _commands(app) == builtin
        (fail,) = [f for f in host.failures if f.plugin == "hijack"]
        assert "command(s) attribute exist already" in fail.error
        assert host.plugins["hijack"].error
        r = CliRunner().invoke(app, ["attribute", "--help"])
        assert r.exit_code == 0 and "HIJACKED" not in r.output
