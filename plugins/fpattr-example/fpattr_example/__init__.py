"""Example fpattr plugin: one backbone, one report format, one command.

It imports only numpy at call time and nothing heavy at import time, as the
plugin guide asks.
"""

from __future__ import annotations

from typing import Any, TextIO

import fpattr
from fpattr.backbones.base import Backbone, config_sha256

__version__ = "0.1.0"


class ColorResidualBackbone(Backbone):
    """Cross-channel statistics of the noise residual (a cheap, weak fingerprint)."""

    name = "example-colorres"

    def __init__(self, size: int = 32, views: int = 4) -> None:
        self.input_size = int(size)
        self.default_views = int(views)
        self._config = {"name": self.name, "version": 1, "size": self.input_size}

    @property
    def id(self) -> str:
        return f"example-colorres-v1-s{self.input_size}"

    @property
    def sha256(self) -> str:
        return config_sha256(self._config)

    def embed(self, views):  # noqa: ANN001, ANN201
        import numpy as np

        from fpattr import signal

        x = np.asarray(views, np.float32).transpose(0, 3, 1, 2)  # N, C, H, W
        r = signal.residual(x).reshape(len(x), 3, -1)
        std = r.std(axis=2)
        rn = r / np.maximum(std[:, :, None], 1e-6)
        corr = np.stack(
            [
                (rn[:, 0] * rn[:, 1]).mean(1),
                (rn[:, 0] * rn[:, 2]).mean(1),
                (rn[:, 1] * rn[:, 2]).mean(1),
            ],
            axis=1,
        )
        p = signal.power_spectrum(signal.to_gray(np.asarray(views, np.float32)))
        radial = signal.azimuthal_average(p, 8)
        bands = np.log(radial[:, 4:] + 1e-8)
        return np.concatenate([np.log(std + 1e-6), corr, bands], axis=1).astype(np.float32)


class MarkdownWriter:
    """Streams a Markdown table; the summary goes in a final paragraph."""

    def __init__(self, stream: TextIO, manifest: dict[str, Any], **_: Any) -> None:
        self.stream = stream
        self.verify = manifest.get("command") == "verify"
        if self.verify:
            stream.write("| A | B | similarity | decision |\n|---|---|---|---|\n")
        else:
            stream.write("| image | decision | top-1 | similarity |\n|---|---|---|---|\n")

    def write(self, result: dict[str, Any]) -> None:
        def cell(v: Any) -> str:
            return str(v if v is not None else "").replace("|", "\\|").replace("\n", " ")

        if self.verify:
            row = [
                result.get("a"),
                result.get("b"),
                _fmt(result.get("similarity")),
                result.get("decision") or result.get("error"),
            ]
        else:
            top = (result.get("top") or [{}])[0]
            row = [
                result.get("path"),
                result.get("decision") or result.get("error"),
                top.get("model"),
                _fmt(top.get("similarity")),
            ]
        self.stream.write("| " + " | ".join(cell(c) for c in row) + " |\n")

    def close(self, summary: dict[str, Any]) -> None:
        self.stream.write(
            f"\n{summary.get('n_ok', 0)} of {summary.get('n_inputs', 0)} inputs processed.\n"
        )
        self.stream.flush()


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


@fpattr.hookimpl
def fpattr_register_backbones(register) -> None:  # noqa: ANN001
    register(
        "example-colorres",
        ColorResidualBackbone,
        description="example plugin: residual colour statistics",
    )


@fpattr.hookimpl
def fpattr_register_report_formats(register) -> None:  # noqa: ANN001
    register(
        "markdown",
        MarkdownWriter,
        description="Markdown table (example plugin)",
        streaming=True,
        extension=".md",
    )


@fpattr.hookimpl
def fpattr_register_commands(app) -> None:  # noqa: ANN001
    @app.command("example-info")
    def example_info() -> None:
        """Print what the example plugin registered.

        Example: fpattr example-info
        """
        print("fpattr-example", __version__, ": backbone example-colorres, format markdown")
