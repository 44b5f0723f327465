"""`fpattr provenance`: what each file's metadata claims about its origin."""

from __future__ import annotations

from pathlib import Path

import typer

from fpattr.cli import common


def register(app: typer.Typer) -> None:
    app.command("provenance", no_args_is_help=True)(provenance)


def provenance(
    paths: list[Path] = typer.Argument(..., help="Image files and/or folders (recursive)."),
    fmt: str = common.FormatOpt,
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="Write rows to this file instead of stdout (format from --format, or the "
        "suffix .json/.jsonl/.csv/.txt).",
    ),
    trust_anchors: Path = typer.Option(
        None,
        "--trust-anchors",
        help="PEM bundle of C2PA trust anchors: a signer is 'trusted' only if its certificate "
        "chains to one (default: $FPATTR_C2PA_TRUST_ANCHORS; none: nobody is trusted).",
    ),
    quiet: bool = common.QuietOpt,
) -> None:
    """Read the origin each image file claims: C2PA manifest (signature, signer, trust),
    IPTC/XMP DigitalSourceType, PNG text of generation tools (Automatic1111/Forge, ComfyUI,
    NovelAI, InvokeAI), EXIF Software/Make/Model/Artist. Pixels are not read and no
    fingerprint is computed: this is a separate line of evidence.

    Example: fpattr provenance ./images -f jsonl -o provenance.jsonl

    C2PA needs `pip install "fpattr[provenance]"`; without it every row says "C2PA not
    checked". Exit status: 0 every input read, 1 some failed, 2 usage error or none read.
    """
    from fpattr.provenance.run import run

    raise typer.Exit(
        run(
            paths,
            fmt=fmt,
            output=output,
            trust_anchors=trust_anchors,
            console=common.stderr_console(quiet),
        )
    )
