"""``fpattr plugins new NAME``: a plugin distribution that installs and passes its tests.

The files are templates with ``__NAME__`` (entry-point and registered names), ``__PKG__``
(import package) and ``__DIST__`` (distribution) filled in. The generated plugin has one
working example per extension point (backbone, report format, synthesizer family,
command) and a commented gallery hook, and tests that run fpattr's contract checks
(:mod:`fpattr.testing.contracts`) through the pytest plugin
:mod:`fpattr.testing.pytest_plugin`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fpattr.errors import UsageError

_NAME_RE = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


def plugin_names(name: str) -> dict[str, str]:
    """``{"name", "pkg", "dist", "family"}`` for a plugin name (``fpattr-`` prefix optional).

    Raises :class:`~fpattr.errors.UsageError` unless the name is letters (read in
    lowercase) and digits, words joined by single ``-`` or ``_``, starting with a letter,
    and not ``auto``, the name ``-b`` resolves itself (:data:`fpattr.backbones.resolve.AUTO`).
    """
    base = name.strip().lower()  # read in lowercase, as the error says
    for prefix in ("fpattr-", "fpattr_"):
        base = base.removeprefix(prefix)
    if not _NAME_RE.fullmatch(base) or len(base) > 40:
        raise UsageError(
            f"invalid plugin name {name!r}: use letters and digits (read in lowercase), words "
            "joined by '-' or '_', starting with a letter (e.g. 'acme-detector')"
        )
    from fpattr.backbones.resolve import AUTO

    if base == AUTO:
        # `-b auto` never reaches a backbone registered as "auto" (break-it 28b)
        raise UsageError(
            f"invalid plugin name {name!r}: {base!r} is a word of the command line (`-b "
            f"{base}` picks the default extractor), so the plugin's backbone could never "
            "be selected; pick another name"
        )
    snake = base.replace("-", "_")
    return {"name": base, "pkg": f"fpattr_{snake}", "dist": f"fpattr-{base}", "family": snake}


def registered_names(name: str) -> dict[str, str]:
    """Registry kind -> the name the generated plugin registers in it (and its entry point).

    The gallery hook is commented out in the template but registers ``name`` once enabled,
    so that name is reserved too.
    """
    n = plugin_names(name)
    return {
        "plugin": n["name"],
        "backbone": n["name"],
        "report_format": f"{n['name']}-tsv",
        "synthesizer": f"{n['family']}_ae",
        "gallery": n["name"],
    }


def check_names_free(name: str, host: Any = None) -> None:
    """Refuse (UsageError) a plugin name whose generated names are taken.

    fpattr refuses a duplicate registration (it never replaces a backbone, family, format or
    gallery), so a plugin named after a built-in or an installed plugin (``spectrum``,
    ``taesd``) would install but fail to load. Checked against every registry of ``host``
    (default: this process's plugins, built-ins and installed ones).
    """
    from fpattr.plugins import KINDS, get_host

    host = host or get_host()
    n = plugin_names(name)
    wanted = registered_names(name)
    taken: list[str] = []
    if wanted["plugin"] in host.plugins:
        taken.append(f"plugin {wanted['plugin']!r} (already installed)")
    for kind in KINDS:
        registry = host.registry(kind)
        # the plugin's own name is checked in every registry: galleries and backbones are
        # picked by the same `-b`/`--gallery` names users see in `plugins list`
        for candidate in dict.fromkeys([wanted[kind], n["name"]]):
            if candidate in registry:
                owner = registry.entry(candidate).plugin
                taken.append(f"{kind.replace('_', ' ')} {candidate!r} (registered by {owner})")
    if taken:
        raise UsageError(
            f"plugin name {name!r} collides with registered names: {'; '.join(taken)}; "
            "pick another name (fpattr refuses duplicate names, so the plugin would not load)"
        )


def render(name: str) -> dict[str, str]:
    """Relative path -> file text of the distribution for ``name``."""
    n = plugin_names(name)
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        "conftest.py": _CONFTEST,
        "__PKG__/__init__.py": _INIT,
        "__PKG__/family.py": _FAMILY,
        "tests/test_plugin.py": _TESTS,
    }
    out = {}
    for rel, text in files.items():
        for token, key in (("__NAME__", "name"), ("__PKG__", "pkg"), ("__DIST__", "dist")):
            rel, text = rel.replace(token, n[key]), text.replace(token, n[key])
        out[rel] = text.replace("__FAMILY__", n["family"])
    return out


def create(name: str, parent: Path) -> Path:
    """Write the distribution into ``parent/fpattr-NAME`` and return that folder.

    Refuses (UsageError) a folder that exists and is not empty: nothing is overwritten;
    and a name that collides with a registered one (:func:`check_names_free`).
    """
    check_names_free(name)
    files = render(name)
    root = Path(parent) / plugin_names(name)["dist"]
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{root} already exists and is not empty: pick another --dir or name")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "__DIST__"
version = "0.1.0"
description = "fpattr plugin __NAME__: a backbone, a report format, a synthesizer family."
requires-python = ">=3.10"
dependencies = ["fpattr"]

[project.optional-dependencies]
test = ["pytest>=8"]

# fpattr finds plugins through this entry-point group: name = module with the hooks
[project.entry-points.fpattr]
__NAME__ = "__PKG__"

[tool.hatch.build.targets.wheel]
packages = ["__PKG__"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP"]
"""

_README = """\
# __DIST__

An fpattr plugin (made by `fpattr plugins new __NAME__`). It registers:

- backbone `__NAME__`: residual statistics and a radial spectrum (numpy only);
- report format `__NAME__-tsv`: tab-separated values, streamed;
- synthesizer family `__FAMILY___ae`: a tiny conv autoencoder (torch, imported lazily);
- command `fpattr __NAME__-info`;
- a gallery hook, commented out in `__PKG__/__init__.py` until you ship a gallery.

Install into fpattr's environment and run the tests:

    fpattr plugins install -e .
    fpattr plugins list
    pytest

Use it:

    fpattr gallery add mymodel refs/ -b __NAME__
    fpattr attribute images/ -b __NAME__ -f __NAME__-tsv
    fpattr synth zoo --family __FAMILY___ae --models 4 --size 32

The tests call fpattr's contract checks (`fpattr.testing.check_backbone`,
`check_writer`, `check_family`, `check_gallery`) and use the fixtures of
`fpattr.testing.pytest_plugin` (enabled in `conftest.py`). See fpattr's
docs/plugin-guide.md for every hook and rule.
"""

_CONFTEST = """\
# fpattr's fixtures: an isolated FPATTR_HOME per test, plugin_host, tiny_images,
# tiny_gallery, tiny_photos, cli. Keep this at the project root (pytest only reads
# pytest_plugins from the root conftest).
pytest_plugins = ["fpattr.testing.pytest_plugin"]
"""

_INIT = '''\
"""fpattr plugin __NAME__: one example per extension point.

fpattr imports this module whenever the CLI starts, so import only light modules
here; numpy, torch and onnxruntime are imported inside the functions that need them.
Every name you register must be new: a taken name is refused, never replaced.
"""

from __future__ import annotations

from typing import Any, TextIO

import fpattr
from fpattr.backbones.base import Backbone, config_sha256
from fpattr.synthesis.spaces import LOSSES

__version__ = "0.1.0"


# --- backbone: views (N, S, S, 3) float32 in [0, 1] -> embeddings (N, D) float32 ---------


class ResidualBackbone(Backbone):
    """Per-channel residual spread and a radial power spectrum of the residual."""

    name = "__NAME__"

    def __init__(self, size: int = 32, views: int = 4) -> None:
        self.input_size = int(size)
        self.default_views = int(views)
        # everything that changes the embeddings goes into the identity
        self._config = {"name": self.name, "version": 1, "size": self.input_size}

    @property
    def id(self) -> str:
        return f"__NAME__-v1-s{self.input_size}"

    @property
    def sha256(self) -> str:
        return config_sha256(self._config)

    def embed(self, views: Any) -> Any:
        import numpy as np
        from fpattr import signal

        x = np.asarray(views, np.float32)
        r = signal.residual(x.transpose(0, 3, 1, 2))  # N, 3, S, S
        spread = np.log(r.reshape(len(x), 3, -1).std(axis=2) + 1e-6)
        radial = signal.azimuthal_average(signal.power_spectrum(signal.to_gray(x)), 8)
        return np.concatenate([spread, np.log(radial + 1e-8)], axis=1).astype(np.float32)


@fpattr.hookimpl
def fpattr_register_backbones(register: Any) -> None:
    register("__NAME__", ResidualBackbone, description="__NAME__: residual statistics")


# --- report format: write(result) per input as results stream in, then close(summary) ----


class TsvWriter:
    """Tab-separated values: one header line, one line per result."""

    def __init__(self, stream: TextIO, manifest: dict[str, Any], **_: Any) -> None:
        # **_: fpattr passes the same options to every format; ignore unknown ones
        self.stream = stream
        self.verify = manifest.get("command") == "verify"
        self.keys = ["a", "b"] if self.verify else ["path"]
        stream.write("\\t".join([*self.keys, "status", "decision", "error"]) + "\\n")

    def write(self, result: dict[str, Any]) -> None:
        from fpattr.report.base import printable  # escapes tabs, newlines, odd bytes

        row = [result.get(k) for k in self.keys]
        row += [result.get("status"), result.get("decision"), result.get("error")]
        self.stream.write("\\t".join(printable(v) for v in row) + "\\n")
        self.stream.flush()  # streaming: a killed run keeps what was written

    def close(self, summary: dict[str, Any]) -> None:
        self.stream.flush()


def parse_tsv(text: str) -> dict[str, Any]:
    """Read a TSV report back: ``{"results": [row dicts]}`` (used by the tests)."""
    lines = text.splitlines()
    header = lines[0].split("\\t")
    rows = [dict(zip(header, line.split("\\t"), strict=True)) for line in lines[1:]]
    return {"results": [{k: v or None for k, v in r.items()} for r in rows]}


@fpattr.hookimpl
def fpattr_register_report_formats(register: Any) -> None:
    register(
        "__NAME__-tsv",
        TsvWriter,
        description="tab-separated values (__NAME__)",
        streaming=True,
        extension=".tsv",
    )


# --- synthesizer family: the factory is where torch gets imported ------------------------

# The design space lives here, torch-free, so `fpattr synth --list` shows it without
# building the family; family.py uses the same dict.
DESIGN_SPACE: dict[str, list[str]] = {"upsampling": ["nearest", "bilinear"], "loss": list(LOSSES)}


def make_family() -> Any:
    from __PKG__.family import TinyAutoencoderFamily

    return TinyAutoencoderFamily()


@fpattr.hookimpl
def fpattr_register_synthesizers(register: Any) -> None:
    register(
        "__FAMILY___ae",
        make_family,
        description="tiny conv autoencoders (__NAME__)",
        design_space=DESIGN_SPACE,
    )


# --- gallery: ship a folder made by `fpattr gallery add ... -g FOLDER` in the package ----
# and uncomment (the folder holds gallery.json + emb/*.npy; pass the backbone it is bound to).
#
# from pathlib import Path
#
# GALLERY_DIR = Path(__file__).resolve().parent / "gallery"
#
#
# @fpattr.hookimpl
# def fpattr_register_galleries(register: Any) -> None:
#     register(
#         "__NAME__", GALLERY_DIR, description="references of ...", backbone="__NAME__"
#     )


# --- command: added to the `fpattr` Typer app ---------------------------------------------


@fpattr.hookimpl
def fpattr_register_commands(app: Any) -> None:
    @app.command("__NAME__-info")
    def info() -> None:
        """Print what the __NAME__ plugin registers.

        Example: fpattr __NAME__-info
        """
        print(f"__DIST__ {__version__}")
        print("backbone: __NAME__")
        print("report format: __NAME__-tsv")
        print("synthesizer family: __FAMILY___ae")
'''

_FAMILY = '''\
"""Synthesizer family __FAMILY___ae (imports torch: only the factory imports this module).

A shallow conv autoencoder: stride-2 conv encoder, x2 up-sampling decoder. Its
design choices are the labels the extractor learns from; ``loss`` comes with
FamilyBase (see fpattr.synthesis.losses) as soon as forward_pair is implemented.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from fpattr.errors import UsageError
from fpattr.synthesis.base import FamilyBase, random_crops
from torch import nn

from __PKG__ import DESIGN_SPACE


class TinyAutoencoder(nn.Module):
    def __init__(self, arch: Mapping[str, str], width: int) -> None:
        super().__init__()
        self.mode = arch["upsampling"]
        self.loss_kind = arch["loss"]  # read by FamilyBase's training loop
        self.encode = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.ReLU())
        self.decode = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(), nn.Conv2d(width, 3, 3, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.encode(x), scale_factor=2.0, mode=self.mode)
        return self.decode(h)


class TinyAutoencoderFamily(FamilyBase):
    name = "__FAMILY___ae"
    description = "tiny conv autoencoders: stride-2 encoder, x2 up-sampling decoder"
    needs_photos = True
    DESIGN_SPACE = DESIGN_SPACE  # the dict registered as design_space= in __init__.py
    ID_PREFIX = "__FAMILY__"
    ID_CODES = {"upsampling": "U", "loss": "L"}

    def build(self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 64) -> nn.Module:
        self.check_arch(arch)
        if image_size % 2 or width < 1:
            raise UsageError(f"{self.name}: image size must be even, width positive")
        return TinyAutoencoder(arch, width)

    def forward_pair(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, _, _ = random_crops(photos, idx, crop - crop % 2, gen, align=2)
        x = x.to(device)
        return model(x), x

    def sample(
        self,
        model: nn.Module,
        photos: torch.Tensor | None,
        n: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor:
        if photos is None:
            raise UsageError(f"{self.name}: needs photos to transform")
        return model(photos[:n].to(device))
'''

_TESTS = '''\
"""Tests of the __NAME__ plugin, with fpattr's contract checks and fixtures."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from fpattr.testing import check_backbone, check_family, check_gallery, check_writer

import __PKG__ as plugin

installed = pytest.mark.skipif(
    not any(ep.name == "__NAME__" for ep in metadata.entry_points(group="fpattr")),
    reason="not installed: fpattr plugins install -e .",
)


def test_hooks_register_and_load(plugin_host):
    plugin_host.register(plugin, name="__NAME__")
    assert not plugin_host.failures
    assert plugin_host.registry("backbone").entry("__NAME__").plugin == "__NAME__"
    assert "__NAME__-tsv" in plugin_host.registry("report_format")
    assert "__FAMILY___ae" in plugin_host.registry("synthesizer")


def test_backbone_contract():
    check_backbone(plugin.ResidualBackbone())


def test_report_format_contract():
    check_writer(plugin.TsvWriter, streaming=True, parse=plugin.parse_tsv)


def test_family_contract(tiny_photos):
    family = plugin.make_family()
    check_family(family, photos=tiny_photos)
    assert family.design_space() == plugin.DESIGN_SPACE  # what synth --list shows


def test_gallery_with_this_backbone(tiny_gallery):
    check_gallery(tiny_gallery(backbone=plugin.ResidualBackbone()))


@installed
def test_cli_end_to_end(tiny_images, cli, tmp_path):
    for kind in ("checker", "nearest"):
        r = cli(["gallery", "add", kind, tiny_images(kind), "-b", "__NAME__"])
        assert r.exit_code == 0, r.output
    r = cli(["attribute", tiny_images("checker", seed=9), "-b", "__NAME__", "-f", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["summary"]["n_ok"] == 3
    r = cli(["attribute", tiny_images("nearest"), "-b", "__NAME__", "-f", "__NAME__-tsv"])
    assert r.exit_code == 0 and r.stdout.startswith("path\\tstatus"), r.output
    assert cli(["__NAME__-info"]).exit_code == 0
'''
