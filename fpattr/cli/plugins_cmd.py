"""`fpattr plugins list|install|uninstall|new`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer

from fpattr.cli import common

plugins_app = typer.Typer(
    help="Show, install and remove plugins (entry-point group 'fpattr').\n\n"
    "Recovery if a plugin breaks start-up: FPATTR_LOAD_PLUGINS='' fpattr plugins uninstall NAME",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")


def plugin_rows(include_builtin: bool) -> list[dict]:
    """Plugins with what each registered (names per registry) and any failure."""
    from fpattr.plugins import ENV_LOAD, KINDS, get_host

    host = get_host()
    provided: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        for entry in host.registry(kind):
            provided.setdefault(entry.plugin, {}).setdefault(kind, []).append(entry.name)
    rows = []
    for p in host.plugins.values():
        if p.builtin and not include_builtin:
            continue
        rows.append(
            {
                "name": p.name,
                "module": p.module,
                "builtin": p.builtin,
                "distribution": p.distribution,
                "version": p.version,
                "hooks": p.hooks,
                "provides": provided.get(p.name, {}),
                "status": "failed" if p.error else "ok",
                "error": p.error,
            }
        )
    for p in host.not_selected:  # installed, left out by the user's selection
        rows.append(
            {
                "name": p.name,
                "module": p.module,
                "builtin": False,
                "distribution": p.distribution,
                "version": p.version,
                "hooks": [],
                "provides": {},
                "status": "not loaded",
                "error": f"not selected by {ENV_LOAD}",
            }
        )
    return rows


@plugins_app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="Include the built-in plugins."),
    fmt: str = common.format_option("table", "json"),
) -> None:
    """List installed plugins, what they provide, and the ones that failed to load.

    Example: fpattr plugins list --all --format json
    """
    from fpattr.plugins import ENV_LOAD, get_host

    rows = plugin_rows(all_)
    unmatched = get_host().unmatched_selection
    if unmatched:  # a typo in the selection loads nothing, silently otherwise
        print(
            f"note: {ENV_LOAD} names no installed plugin: {', '.join(unmatched)}",
            file=sys.stderr,
        )
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table("plugin", "distribution", "version", "provides", "status", title="fpattr plugins")
    for r in rows:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["provides"].items())
        # an error message is the plugin's text: "[...]" in it is not rich markup
        status = {
            "ok": "[green]ok[/]",
            "not loaded": f"[yellow]not loaded[/] {escape(r['error'] or '')}",
        }.get(r["status"], f"[red]failed[/] {escape(r['error'] or '')}")
        t.add_row(
            r["name"],
            r["distribution"] or ("fpattr" if r["builtin"] else "?"),
            r["version"] or ("built-in" if r["builtin"] else "?"),
            provides,
            status,
        )
    Console().print(t)
    if not rows:
        print("no third-party plugins installed (use --all to see the built-ins)", file=sys.stderr)


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    print("running:", " ".join(cmd), file=sys.stderr)
    rc = subprocess.call(cmd)
    if rc:
        raise typer.Exit(rc)


@plugins_app.command("install", no_args_is_help=True)
def install(
    packages: list[str] = typer.Argument(..., help="pip requirement(s) or local paths."),
    editable: bool = typer.Option(False, "--editable", "-e", help="Install a local path editable."),
    upgrade: bool = typer.Option(False, "--upgrade", "-U", help="Upgrade if installed."),
) -> None:
    """Install plugin distributions with pip into fpattr's own environment.

    Example: fpattr plugins install ./plugins/fpattr-example
    """
    args = ["install"]
    if upgrade:
        args.append("--upgrade")
    for p in packages:
        args += ["-e", p] if editable else [p]
    _pip(*args)


@plugins_app.command("uninstall", no_args_is_help=True)
def uninstall(
    packages: list[str] = typer.Argument(
        ..., help="Plugin name(s) as `fpattr plugins list` shows them, or distribution name(s)."
    ),
) -> None:
    """Uninstall plugin distributions from fpattr's environment.

    A plugin name (the entry point, e.g. `taesd`) is mapped to the distribution that
    provides it (`fpattr-taesd`); any other name is refused (exit 2) before pip runs.

    Example: fpattr plugins uninstall example
    """
    from fpattr.plugins import distribution_of

    dists = list(dict.fromkeys(distribution_of(p) for p in packages))  # all known, or none
    _pip("uninstall", "-y", *dists)


@plugins_app.command("new", no_args_is_help=True)
def new(
    name: str = typer.Argument(
        ..., help="Plugin name, e.g. acme-detector (-> fpattr-acme-detector)."
    ),
    dir_: Path = typer.Option(Path("."), "--dir", "-d", help="Folder to create the plugin in."),
) -> None:
    """Create a plugin distribution that installs and passes its own tests at once.

    It has one working example per extension point (backbone, report format, synthesizer
    family, command; a gallery hook commented out), a pyproject.toml with the entry
    point, a README and tests using fpattr.testing.

    Example: fpattr plugins new acme-detector --dir ~/src && cd ~/src/fpattr-acme-detector
    && fpattr plugins install -e . && pytest
    """
    from fpattr.io.atomic import check_writable_folder
    from fpattr.scaffold import create, plugin_names

    check_writable_folder(dir_, "--dir")  # a file for a folder was exit 70 (break-it 27d)
    root = create(name, dir_)
    names = plugin_names(name)
    print(root)
    print(
        f"created {names['dist']} (package {names['pkg']}, entry point {names['name']!r}); "
        f"next: cd {root} && fpattr plugins install -e . && pytest",
        file=sys.stderr,
    )
