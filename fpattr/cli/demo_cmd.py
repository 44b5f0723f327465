"""`fpattr demo`: the whole job end to end on bundled data, in one command."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import typer

from fpattr.cli import common


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    report: Path = typer.Option(
        Path("fpattr-demo-report.html"), "--report", help="Where to write the HTML report."
    ),
    backbone: str = common.BackboneOpt,
    fmt: str = common.FormatOpt,
    workdir: Path = typer.Option(
        None, "--workdir", help="Keep the demo gallery here (default: a temporary folder)."
    ),
    quiet: bool = common.QuietOpt,
) -> None:
    """Enrol the bundled reference sets, attribute the bundled queries, write a report.

    The bundled images come from small generative models this project trained
    itself (fpattr/data/demo/MANIFEST.json, scripts/make_demo_data.py). Query
    files are named MODEL_NN.png (real photos: real_NN.png, which should come
    out "unknown"), so the demo also prints how many it got right.

    Example: fpattr demo --report demo.html
    """
    from fpattr.cli import attribute_cmd, gallery_cmd
    from fpattr.errors import FpattrError
    from fpattr.paths import data_dir

    root = data_dir() / "demo"
    refs = sorted(p for p in (root / "refs").glob("*") if p.is_dir()) if root.is_dir() else []
    if not refs:
        raise FpattrError(f"bundled demo data is missing ({root}); reinstall fpattr")
    from rich.markup import escape

    from fpattr.report.outputs import check_output_paths

    # before enrolling: an unwritable --report was refused only after the enrolment
    # (break-it 28); attribute checks it again, against its inputs
    check_output_paths(report)
    console = common.stderr_console(quiet)
    with tempfile.TemporaryDirectory(prefix="fpattr-demo-") as tmp:
        gdir = Path(workdir) if workdir else Path(tmp) / "gallery"
        refs_dir = escape(str(root / "refs"))  # paths are text, never markup
        console.print(f"[bold]1/2[/] enrolling {len(refs)} models from {refs_dir}")
        for ref in refs:
            try:
                gallery_cmd.add(
                    ref.name,
                    [ref],
                    backbone=backbone,
                    backbone_opt=None,
                    device="auto",
                    gallery=str(gdir),
                    replace=True,
                    append=False,
                    views=None,
                    fmt="none",
                    quiet=True,
                )
            except typer.Exit as exc:
                if exc.exit_code:
                    raise
        console.print(f"[bold]2/2[/] attributing {escape(str(root / 'queries'))}")
        known = {r.name for r in refs}
        tally = {"correct": 0, "total": 0}

        def score(res: dict[str, Any]) -> None:
            truth = Path(res["path"]).stem.rsplit("_", 1)[0]
            truth = truth if truth in known else "unknown"
            tally["total"] += res["status"] == "ok"
            tally["correct"] += res["decision"] == truth

        code = attribute_cmd.run(
            [root / "queries"],
            backbone=backbone,
            gallery=str(gdir),
            fmt=fmt,
            report=report,
            quiet=quiet,
            on_result=score,
        )
    console.print(
        f"demo: {tally['correct']}/{tally['total']} queries attributed correctly "
        f"(ground truth from file names); report: {report.resolve()}",
        markup=False,
    )
    raise typer.Exit(code)
