"""ONNX Runtime backbone: runs an exported extractor described by a model card.

A model card (``<name>.json`` next to ``<name>.onnx``) gives the file's sha256,
the input spec and the calibration; the file is checked against it before use,
so a swapped or corrupted model is an error, not silently different numbers.
onnxruntime is imported only when a session is created: ``fpattr --help`` and
the training-free backbones never pay for it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.backbones.base import Backbone
from fpattr.errors import BackboneError, ModelFileError
from fpattr.io.loader import sha256_file
from fpattr.paths import models_dir, shipped_models

CARD_SCHEMA = "fpattr.model/1"
DEFAULT_MODEL = "default"
INT8_MODEL = "default-int8"
#: Backbones that run an ONNX file (the CLI gives them threads and a provider); every
#: other model shipped in models/ is one too (:func:`shipped_models`).
ONNX_BACKBONES = ("default", INT8_MODEL, "onnx")


def is_onnx_backbone(name: str) -> bool:
    return name in ONNX_BACKBONES or name in shipped_models()


_SESSIONS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()

#: Views per inference batch on the CPU execution provider when neither the caller nor
#: ``--batch-size`` says: smaller than the cards' 64 (kept for GPU providers) because the
#: activations of a 64-view batch spill out of a core's cache. Measured on 2 cores
#: (ONNX Runtime alone, 2 single-thread sessions at once, the views of 128 px PNGs):
#: FP32 1,700-1,940 views/s at 8-16 views against 1,550-1,640 at 64 and 1,380-1,510 at
#: 128; INT8 2,520-2,670 at 4-16 against 2,210 at 64 (benchmarks/performance.py runs
#: both side by side).
CPU_BATCH_VIEWS = 16


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def default_card_path() -> Path:
    return models_dir() / f"{DEFAULT_MODEL}.json"


def default_model_available() -> bool:
    """True when the shipped extractor and onnxruntime are both present."""
    return default_card_path().is_file() and onnxruntime_available()


def read_card(card_path: Path) -> dict[str, Any]:
    try:
        card = json.loads(Path(card_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"model card not found: {card_path}") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read model card {card_path}: {exc}") from exc
    if card.get("schema") != CARD_SCHEMA:
        raise ModelFileError(
            f"{card_path}: not an fpattr model card (schema {card.get('schema')!r})"
        )
    for key in ("file", "sha256", "input"):
        if key not in card:
            raise ModelFileError(f"{card_path}: model card lacks {key!r}")
    return card


def choose_providers(requested: str = "auto") -> list[str]:
    """Execution providers in preference order: CUDA when onnxruntime-gpu sees a
    GPU (and ``requested`` allows it), then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested == "cpu":
        return ["CPUExecutionProvider"]
    if requested == "cuda" and "CUDAExecutionProvider" not in available:
        raise BackboneError(
            "CUDA requested but this onnxruntime has no CUDAExecutionProvider "
            f"(available: {', '.join(available)}); install fpattr[gpu]"
        )
    order = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in order if p in available] or available


def _session(path: Path, providers: tuple[str, ...], threads: int) -> Any:
    key = (str(path), providers, threads)
    with _LOCK:
        if key not in _SESSIONS:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if threads > 0:
                opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            try:
                _SESSIONS[key] = ort.InferenceSession(
                    str(path), sess_options=opts, providers=list(providers)
                )
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
                raise BackboneError(f"onnxruntime cannot load {path}: {exc}") from exc
        return _SESSIONS[key]


class OnnxBackbone(Backbone):
    """An extractor exported to ONNX, described by its model card."""

    name = "onnx"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        providers: str = "auto",
        threads: int = 0,
        batch_size: int | None = None,
        views: int | None = None,
        verify_sha256: bool = True,
    ) -> None:
        if model is None:
            raise BackboneError("the onnx backbone needs a model card: --backbone-opt model=PATH")
        card_path = Path(model)
        if card_path.suffix == ".onnx":
            card_path = card_path.with_suffix(".json")
        if not onnxruntime_available():
            raise BackboneError(
                "onnxruntime is not installed: pip install 'fpattr[cpu]' (or 'fpattr[gpu]')"
            )
        self.card = read_card(card_path)
        self.card_path = card_path
        self.model_path = (card_path.parent / self.card["file"]).resolve()
        if not self.model_path.is_file():
            raise ModelFileError(f"model file not found: {self.model_path}")
        self._sha = sha256_file(self.model_path) if verify_sha256 else self.card["sha256"]
        if self._sha != self.card["sha256"]:
            raise ModelFileError(
                f"{self.model_path} sha256 {self._sha[:12]}... does not match its model card "
                f"({self.card['sha256'][:12]}...): the file was changed or corrupted"
            )
        spec = self.card["input"]
        self.input_size = int(spec["size"])
        self.input_name = spec.get("name", "views")
        self.layout = spec.get("layout", "NHWC")
        self.default_views = int(views or self.card.get("default_views", 4))
        self.providers = tuple(choose_providers(providers))
        self.threads = int(threads)
        self.session = _session(self.model_path, self.providers, self.threads)
        self.active_providers = list(self.session.get_providers())
        card_batch = int(self.card.get("batch_size", 64))
        on_cpu = self.active_providers[:1] == ["CPUExecutionProvider"]
        self.batch_size = int(
            batch_size or (min(card_batch, CPU_BATCH_VIEWS) if on_cpu else card_batch)
        )

    @property
    def id(self) -> str:
        return str(self.card.get("id") or self.card.get("name") or self.model_path.stem)

    @property
    def sha256(self) -> str:
        return self._sha

    def embed(self, views: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(views, dtype=np.float32)
        if self.layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        out = self.session.run(None, {self.input_name: x})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(views), -1)

    def calibration(self) -> dict[str, Any] | None:
        return self.card.get("calibration")

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "model_file": str(self.model_path),
            "model_card": str(self.card_path),
            "providers": self.active_providers,
            "opset": self.card.get("opset"),
        }


class ShippedBackbone(OnnxBackbone):
    """An extractor shipped in ``models/`` under the name of its class's ``model``."""

    model = DEFAULT_MODEL

    def __init__(self, model: str | None = None, **options: Any) -> None:
        """``model``: the file stem in ``models/`` (default: the class's :attr:`model`)."""
        if model is not None and not isinstance(self, (DefaultBackbone, DefaultInt8Backbone)):
            self.model = self.name = str(model)
        card = models_dir() / f"{self.model}.json"
        if not card.is_file():
            raise BackboneError(
                f"the shipped extractor {self.model!r} is missing ({card}); use --backbone "
                "spectrum or reinstall fpattr"
            )
        super().__init__(card, **options)


class DefaultBackbone(ShippedBackbone):
    """The extractor shipped in ``models/`` (see docs/model-card.md)."""

    name = "default"
    model = DEFAULT_MODEL


class DefaultInt8Backbone(ShippedBackbone):
    """The shipped extractor quantized to INT8 (``fpattr quantize``; models/default-int8.json)."""

    name = INT8_MODEL
    model = INT8_MODEL
