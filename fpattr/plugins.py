"""Plugin manager: built-ins by module path, then entry points one by one.

A plugin that fails to import, fails validation or raises inside a hook is
recorded in :attr:`PluginHost.failures` and reported by ``fpattr plugins list``
and ``fpattr doctor``; it never stops the other commands.

``FPATTR_LOAD_PLUGINS`` picks the third-party plugins to load: unset = all
installed, ``""`` = none, ``"a,b"`` = only those distributions or entry-point
names. Built-ins always load. ``FPATTR_RAISE_ERRORS=1`` re-raises plugin errors
(useful when developing a plugin).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from fpattr import hookspecs
from fpattr.registry import Registry

ENTRY_POINT_GROUP = "fpattr"
ENV_LOAD = "FPATTR_LOAD_PLUGINS"
ENV_RAISE = "FPATTR_RAISE_ERRORS"
#: What a plugin's import or hook may raise and have recorded as its failure: anything but
#: Ctrl-C (KeyboardInterrupt) -- sys.exit() included, which would otherwise end every
#: command, `plugins list` and `doctor` too.
PLUGIN_FAILURES = (Exception, SystemExit)

#: Built-in plugins, registered through the same hooks as third-party ones.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "fpattr.backbones.builtin",
    "fpattr.report.builtin",
    "fpattr.synthesis.builtin",
    "fpattr.gallery_builtin",
)

KINDS = ("backbone", "synthesizer", "gallery", "report_format")
_HOOK_FOR_KIND = {
    "backbone": "fpattr_register_backbones",
    "synthesizer": "fpattr_register_synthesizers",
    "gallery": "fpattr_register_galleries",
    "report_format": "fpattr_register_report_formats",
}


@dataclass
class PluginInfo:
    """What ``fpattr plugins list`` shows for one plugin."""

    name: str
    module: str
    builtin: bool
    version: str | None = None
    distribution: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PluginFailure:
    plugin: str
    stage: str  # "import", "register", "hook:<name>"
    error: str
    detail: str = ""


def _raise_errors() -> bool:
    return os.environ.get(ENV_RAISE, "") not in ("", "0") or hasattr(sys, "_fpattr_raise_errors")


class PluginHost:
    """Owns the pluggy manager, the registries and the record of failures."""

    def __init__(self, *, load_entry_points: bool = True, builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager("fpattr")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        #: installed plugins left out by FPATTR_LOAD_PLUGINS, and the names in it that
        #: match no installed plugin (shown by `plugins list` and `doctor`)
        self.not_selected: list[PluginInfo] = []
        self.unmatched_selection: list[str] = []
        self._registries: dict[str, Registry[Any]] = {}
        if builtins:
            for modname in DEFAULT_PLUGINS:
                self._register_module(modname, builtin=True)
        if load_entry_points:
            self._load_entry_points()

    # -- loading -------------------------------------------------------------------------------

    def _record(self, plugin: str, stage: str, exc: BaseException) -> None:
        if _raise_errors():
            raise exc
        msg = f"{type(exc).__name__}: {exc}"
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.failures.append(PluginFailure(plugin, stage, msg, detail))
        if plugin in self.plugins and self.plugins[plugin].error is None:
            self.plugins[plugin].error = f"{stage}: {msg}"

    def _register_module(self, modname: str, *, builtin: bool, name: str | None = None) -> None:
        name = name or modname
        info = PluginInfo(name=name, module=modname, builtin=builtin)
        self.plugins[name] = info
        try:
            module = importlib.import_module(modname)
        except PLUGIN_FAILURES as exc:
            self._record(name, "import", exc)
            return
        self.register(module, name=name, info=info)

    def register(self, plugin: object, *, name: str, info: PluginInfo | None = None) -> None:
        """Register a plugin object or module (tests use this directly)."""
        info = info or self.plugins.setdefault(
            name, PluginInfo(name=name, module=getattr(plugin, "__name__", name), builtin=False)
        )
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._record(name, "register", exc)
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        self._registries.clear()  # rebuilt lazily with the new plugin

    def _selected(self) -> set[str] | None:
        raw = os.environ.get(ENV_LOAD)
        if raw is None:
            return None
        return {p.strip() for p in raw.split(",") if p.strip()}

    def _load_entry_points(self) -> None:
        selected = self._selected()
        try:
            eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # noqa: BLE001 - broken metadata must not kill the CLI
            self._record("<entry points>", "import", exc)
            return
        matched: set[str] = set()
        for ep in sorted(eps, key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else None
            info = PluginInfo(
                name=ep.name,
                module=getattr(ep, "value", ep.name),
                builtin=False,
                distribution=dist,
                version=ep.dist.version if ep.dist is not None else None,
            )
            if selected is not None and ep.name not in selected and dist not in selected:
                self.not_selected.append(info)  # installed: said so, not "not installed"
                continue
            matched |= {ep.name, dist} if dist else {ep.name}
            self.plugins[ep.name] = info
            try:
                obj = ep.load()
            except PLUGIN_FAILURES as exc:
                self._record(ep.name, "import", exc)
                continue
            self.register(obj, name=ep.name, info=info)
        if selected is not None:
            self.unmatched_selection = sorted(selected - matched)

    # -- registries ----------------------------------------------------------------------------

    def registry(self, kind: str) -> Registry[Any]:
        """The registry of one kind, filled by calling every plugin's hook once."""
        if kind not in _HOOK_FOR_KIND:
            raise ValueError(f"unknown registry kind {kind!r}; expected one of {KINDS}")
        if kind not in self._registries:
            reg: Registry[Any] = Registry(kind.replace("_", " "))
            hookname = _HOOK_FOR_KIND[kind]
            for impl in self._impls(hookname):
                # Stage a plugin's registrations: a hook that raises contributes nothing.
                staged: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
                try:
                    impl.function(register=lambda *a, _s=staged, **k: _s.append((a, k)))
                except PLUGIN_FAILURES as exc:
                    self._record(impl.plugin_name, f"hook:{hookname}", exc)
                    continue
                add = reg.callback(impl.plugin_name)
                for args, kwargs in staged:
                    try:
                        add(*args, **kwargs)
                    except Exception as exc:  # noqa: BLE001 - duplicate or bad name
                        self._record(impl.plugin_name, f"hook:{hookname}", exc)
            self._registries[kind] = reg
        return self._registries[kind]

    def _impls(self, hookname: str) -> Iterator[Any]:
        caller = getattr(self.pm.hook, hookname)
        # pluggy calls LIFO; registration order (built-ins first) reads better in listings.
        yield from caller.get_hookimpls()

    def add_commands(self, app: Any) -> None:
        """Every plugin's commands on ``app`` (a ``typer.Typer``). A hook that raises
        (``SystemExit`` included: a ``sys.exit()`` in one ended ``fpattr --help``) or that
        names a command that exists already (a plugin had replaced ``attribute``
        unnoticed, break-it) adds nothing and is recorded as the plugin's failure."""
        hook = "hook:fpattr_register_commands"
        for impl in self._impls("fpattr_register_commands"):
            commands, groups = list(app.registered_commands), list(app.registered_groups)
            taken = _command_names(commands, groups)
            try:
                impl.function(app=app)
                added = _command_names(
                    app.registered_commands[len(commands) :], app.registered_groups[len(groups) :]
                )
                clash = sorted(added & taken)
                if clash:
                    raise PluginCommandClash(
                        f"command(s) {', '.join(clash)} exist already: a plugin cannot "
                        "replace a command; its commands were not added"
                    )
            except PLUGIN_FAILURES as exc:
                app.registered_commands[:] = commands  # nothing of this plugin's stays
                app.registered_groups[:] = groups
                self._record(impl.plugin_name, hook, exc)


class PluginCommandClash(ValueError):
    """A plugin's command has the name of a command that exists already."""


def _command_names(commands: list[Any], groups: list[Any]) -> set[str]:
    """The names typer gives ``commands`` (``CommandInfo``) and ``groups`` (``TyperInfo``):
    the given name, else the function's with "_" as "-"."""
    names = set()
    for c in commands:
        fn = getattr(c, "callback", None)
        names.add(c.name or (fn.__name__.lower().replace("_", "-") if fn else ""))
    for g in groups:
        sub = getattr(g, "typer_instance", None)
        name = g.name or getattr(getattr(sub, "info", None), "name", None)
        if name:
            names.add(name)
        elif sub is not None:  # a group without a name: typer merges its commands in
            names |= _command_names(sub.registered_commands, sub.registered_groups)
    return names - {""}


def _canonical(name: str) -> str:
    """PEP 503 normalised distribution name (``Fpattr_TAESD`` -> ``fpattr-taesd``)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_distributions() -> dict[str, str]:
    """Entry-point name (what ``fpattr plugins list`` shows) -> installed distribution.

    Read from the installed metadata without loading any plugin, so it works with
    ``FPATTR_LOAD_PLUGINS=""`` when a plugin breaks start-up.
    """
    out: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None:
            out.setdefault(ep.name, ep.dist.name)
    return out


def distribution_of(name: str) -> str:
    """The distribution to uninstall for a plugin named by entry point or distribution.

    Raises :class:`~fpattr.errors.UsageError` for any other name: pip would only print
    "not installed" and succeed, leaving the plugin (or uninstall something that is not a
    plugin, fpattr itself included).
    """
    from fpattr.errors import UsageError

    dists = plugin_distributions()
    if name in dists:
        return dists[name]
    by_dist = {_canonical(d): d for d in dists.values()}
    if _canonical(name) in by_dist:
        return by_dist[_canonical(name)]
    if name in DEFAULT_PLUGINS:
        raise UsageError(f"{name!r} is built into fpattr and cannot be uninstalled")
    known = ", ".join(f"{ep} ({d})" for ep, d in sorted(dists.items())) or "none"
    raise UsageError(f"no installed plugin {name!r}; installed plugins (distribution): {known}")


def plugin_in_traceback(tb: Any) -> PluginInfo | None:
    """The loaded third-party plugin whose code raised, or None: the innermost of ``tb``'s
    frames whose module is the one a plugin's entry point names, or inside it (the longest
    such, so plugins of one distribution are told apart). What the CLI names instead of
    calling a plugin's bug its own (break-it: a plugin backbone's error read "fpattr:
    internal error ... please report it")."""
    for frame in reversed([frame for frame, _ in traceback.walk_tb(tb)]):
        owner = _plugin_of_module(str(frame.f_globals.get("__name__", "")))
        if owner is not None:
            return owner
    return None


def plugin_of(obj: Any) -> PluginInfo | None:
    """The loaded third-party plugin whose module defines ``obj``'s class, or None (a
    built-in, or no plugin host yet): who to name when a plugin's object returns something
    wrong without raising."""
    return _plugin_of_module(str(getattr(type(obj), "__module__", "") or ""))


def _plugin_of_module(name: str) -> PluginInfo | None:
    """The plugin whose entry point's module is ``name`` or contains it (the longest)."""
    if _HOST is None:
        return None
    owners = {
        info.module.split(":")[0]: info
        for info in _HOST.plugins.values()
        if not info.builtin and info.module
    }
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        owner = owners.get(".".join(parts[:k]))
        if owner is not None:
            return owner
    return None


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def set_host(host: PluginHost | None) -> None:
    """Replace the process-wide host (tests, embedding applications)."""
    global _HOST
    _HOST = host


def backbones() -> Registry[Any]:
    return get_host().registry("backbone")


def synthesizers() -> Registry[Any]:
    return get_host().registry("synthesizer")


def galleries() -> Registry[Any]:
    return get_host().registry("gallery")


def report_formats() -> Registry[Any]:
    return get_host().registry("report_format")
