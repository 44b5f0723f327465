"""`fpattr doctor`: is this installation healthy, and what will it use?"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import typer

from fpattr.cli import common


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect() -> tuple[list[dict[str, Any]], int]:
    """Checks as rows {check, status: ok|warn|fail, detail}; returns (rows, n_failures)."""
    from fpattr import __version__
    from fpattr.backbones.onnx import default_card_path
    from fpattr.paths import home, models_dir
    from fpattr.plugins import ENV_LOAD, KINDS, get_host

    rows: list[dict[str, Any]] = []

    def add(check: str, status: str, detail: str) -> None:
        rows.append({"check": check, "status": status, "detail": detail})

    add(
        "fpattr",
        "ok",
        f"{__version__} on Python {platform.python_version()} "
        f"({platform.system()} {platform.machine()})",
    )
    for dist in ("numpy", "pillow", "typer", "rich", "pluggy"):
        v = _version(dist)
        add(dist, "ok" if v else "fail", v or "not installed")
    ort_dist = _version("onnxruntime") or _version("onnxruntime-gpu")
    if importlib.util.find_spec("onnxruntime") is None:
        add(
            "onnxruntime",
            "warn",
            "not installed: only training-free backbones work "
            "(pip install 'fpattr[cpu]' or 'fpattr[gpu]')",
        )
    else:
        try:
            import onnxruntime as ort

            add(
                "onnxruntime",
                "ok",
                f"{ort_dist}; providers: {', '.join(ort.get_available_providers())}",
            )
        except Exception as exc:  # noqa: BLE001
            add("onnxruntime", "fail", f"import failed: {exc}")
    if _version("onnxruntime") and _version("onnxruntime-gpu"):
        add(
            "onnxruntime conflict",
            "fail",
            "both onnxruntime and onnxruntime-gpu are installed; uninstall one",
        )
    add(
        "torch (training only)",
        "ok" if importlib.util.find_spec("torch") else "warn",
        _version("torch") or "not installed (only needed for synth/train/export: fpattr[train])",
    )
    add("models folder", "ok" if models_dir().is_dir() else "warn", str(models_dir()))
    card = default_card_path()  # a missing one fails below, as every shipped model
    for check, status, detail in _model_checks(models_dir(), card):
        add(check, status, detail)
    for check, status, detail in _user_data_checks(home()):
        add(check, status, detail)
    host = get_host()
    for kind in KINDS:
        reg = host.registry(kind)
        label = {"gallery": "galleries", "report_format": "report formats"}.get(kind, kind + "s")
        add(label, "ok", ", ".join(reg.names()) or "-")
    for check, status, detail in _gallery_checks(host.registry("gallery")):
        add(check, status, detail)
    for p in host.plugins.values():
        if not p.builtin:
            add(
                f"plugin {p.name}",
                "fail" if p.error else "ok",
                p.error or f"{p.distribution or ''} {p.version or ''}".strip(),
            )
    for p in host.not_selected:
        add(f"plugin {p.name}", "warn", f"installed, not loaded: not selected by {ENV_LOAD}")
    if host.unmatched_selection:
        add(
            ENV_LOAD,
            "warn",
            "names no installed plugin: " + ", ".join(host.unmatched_selection),
        )
    for f in host.failures:
        if f.plugin in host.plugins and not host.plugins[f.plugin].builtin:
            continue
        add(f"plugin {f.plugin}", "fail", f"{f.stage}: {f.error}")
    return rows, sum(r["status"] == "fail" for r in rows)


def _user_data_checks(folder: Path) -> list[tuple[str, str, str]]:
    """(check, status, detail) for the user's data folder (``FPATTR_HOME``): can galleries
    be made there, and does every gallery in it load. It said "user data ok" while the
    default gallery was damaged (every `attribute` then failed) or the folder could not
    be written (break-it 28)."""
    from fpattr.errors import GalleryError, UsageError
    from fpattr.gallery import Gallery
    from fpattr.io.atomic import check_writable_folder

    try:  # a file written and removed there (or in the parent that would hold it)
        check_writable_folder(folder, "user data")
        rows = [("user data", "ok", str(folder))]
    except UsageError as exc:  # the galleries in it are checked all the same (review 28)
        rows = [
            (
                "user data",
                "warn",
                f"{exc}: `gallery add` without -g cannot enrol (set FPATTR_HOME to a "
                "writable folder, or give -g)",
            )
        ]
    galleries = folder / "galleries"
    try:
        found = sorted(galleries.iterdir()) if galleries.is_dir() else []
    except OSError as exc:
        return [*rows, ("user galleries", "fail", f"cannot list {galleries}: {exc}")]
    for g in found:
        if not (g / "gallery.json").is_file():
            continue
        try:
            loaded = Gallery.load(g)
        except GalleryError as exc:
            rows.append((f"gallery {g.name} (user)", "fail", str(exc)))
            continue
        rows.append((f"gallery {g.name} (user)", "ok", f"{len(loaded.models)} models, {g}"))
    return rows


def _gallery_checks(reg: Any) -> list[tuple[str, str, str]]:
    """(check, status, detail) per registered gallery whose folder holds no gallery.json:
    "galleries ok" was said of one whose folder was missing (break-it 27b)."""
    rows = []
    for name in reg.names():
        try:
            obj = reg.get(name)
            path = Path(obj() if callable(obj) else obj)
        except Exception as exc:  # noqa: BLE001 - a plugin's callable: reported, not raised
            rows.append((f"gallery {name}", "fail", f"its path could not be read: {exc}"))
            continue
        if not (path / "gallery.json").is_file():
            rows.append((f"gallery {name}", "fail", f"no gallery.json in {path}"))
    return rows


def _model_checks(folder: Path, default_card: Path) -> list[tuple[str, str, str]]:
    """(check, status, detail) per model card in ``folder`` (every one, not only the
    default: a truncated default-int8.onnx passed and `-b default-int8` then failed) and
    for the shipped analysis heads (readable, bound to the default extractor)."""
    from fpattr.backbones.onnx import CARD_SCHEMA, read_card
    from fpattr.io.loader import sha256_file
    from fpattr.paths import SHIPPED_EXTRACTORS, SHIPPED_HEADS

    rows: list[tuple[str, str, str]] = []
    default_sha = None
    for name in SHIPPED_EXTRACTORS:  # a missing card would otherwise leave no row at all
        if not (folder / f"{name}.json").is_file():
            label = "default extractor" if name == "default" else f"extractor {name}"
            also = "; `auto` falls back to the spectrum backbone" if name == "default" else ""
            rows.append(
                (label, "fail", f"{name}.json missing from {folder}: `-b {name}` fails{also}")
            )
    if not (folder / SHIPPED_HEADS).is_file():
        rows.append(
            ("analysis heads", "fail", f"{SHIPPED_HEADS} missing: `analyze predict` has no heads")
        )
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            if path.name != "analysis.json":  # reported below
                rows.append((f"model card {path.name}", "fail", f"unreadable: {exc}"))
            continue
        if not isinstance(doc, dict) or doc.get("schema") != CARD_SCHEMA:
            continue  # not a model card (the analysis heads, a gallery index, ...)
        label = "default extractor" if path == default_card else f"extractor {path.stem}"
        try:
            c = read_card(path)
            model = path.parent / c["file"]
            if not model.is_file():
                rows.append((label, "fail", f"{model.name} missing (its card is {path.name})"))
                continue
            ok = sha256_file(model) == c["sha256"]
        except Exception as exc:  # noqa: BLE001 - a check, never a crash
            rows.append((label, "fail", str(exc)))
            continue
        if ok and path == default_card:
            default_sha = c["sha256"]
        rows.append(
            (
                label,
                "ok" if ok else "fail",
                f"{model.name} sha256 {c['sha256'][:16]}... "
                + ("verified" if ok else "MISMATCH: the file is not the one its card describes"),
            )
        )
    heads = folder / "analysis.json"
    if heads.is_file():
        from fpattr.analysis import Heads

        try:
            h = Heads.load(heads)
        except Exception as exc:  # noqa: BLE001
            rows.append(("analysis heads", "fail", str(exc)))
        else:
            bound = h.backbone.get("sha256")
            if default_sha is not None and bound != default_sha:
                rows.append(
                    (
                        "analysis heads",
                        "fail",
                        f"{heads.name} was fitted with extractor {h.backbone.get('id')}, not "
                        "the default (`analyze predict` refuses it)",
                    )
                )
            else:
                rows.append(("analysis heads", "ok", f"{heads.name}: {len(h.heads)} heads"))
    return rows


def doctor(
    fmt: str = common.format_option("table", "json"),
) -> None:
    """Check the environment: versions, execution providers, model files, plugins.

    Exits 1 when something is broken (a failed plugin, a corrupted model file).

    Example: fpattr doctor --format json
    """
    rows, failures = collect()
    if fmt == "json":
        print(json.dumps({"checks": rows, "failures": failures}, indent=2))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        colour = {"ok": "green", "warn": "yellow", "fail": "red"}
        t = Table("check", "status", "detail", title="fpattr doctor")
        for r in rows:
            # details quote extras ("fpattr[train]") and plugin errors: not markup
            status = f"[{colour[r['status']]}]{r['status']}[/]"
            t.add_row(escape(r["check"]), status, escape(r["detail"]))
        Console().print(t)
    if failures:
        print(f"{failures} problem(s) found", file=sys.stderr)
    raise typer.Exit(1 if failures else 0)
