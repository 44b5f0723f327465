"""Built-in backbones, registered through the same hook as third-party ones."""

from __future__ import annotations

from typing import Any

from fpattr import hookimpl


def _spectrum(**options: Any):
    from fpattr.backbones.spectrum import SpectrumBackbone

    return SpectrumBackbone(**options)


def _marra(**options: Any):
    from fpattr.backbones.baselines import MarraBackbone

    return MarraBackbone(**options)


def _corvi(**options: Any):
    from fpattr.backbones.baselines import CorviBackbone

    return CorviBackbone(**options)


def _dct(**options: Any):
    from fpattr.backbones.baselines import DctBackbone

    return DctBackbone(**options)


def _manifpt(**options: Any):
    from fpattr.backbones.artifact import ManifptBackbone

    return ManifptBackbone(**options)


def _onnx(**options: Any):
    from fpattr.backbones.onnx import OnnxBackbone

    return OnnxBackbone(**options)


def _default(**options: Any):
    from fpattr.backbones.onnx import DefaultBackbone

    return DefaultBackbone(**options)


def _default_int8(**options: Any):
    from fpattr.backbones.onnx import DefaultInt8Backbone

    return DefaultInt8Backbone(**options)


def _shipped(model: str):
    def factory(**options: Any):
        from fpattr.backbones.onnx import ShippedBackbone

        return ShippedBackbone(model=model, **options)

    return factory


@hookimpl
def fpattr_register_backbones(register) -> None:
    register("default", _default, description="learned extractor shipped in models/ (ONNX)")
    register(
        "default-int8",
        _default_int8,
        description="the shipped extractor quantized to INT8 (ONNX QDQ, smaller)",
    )
    register("spectrum", _spectrum, description="training-free residual power spectrum (numpy)")
    register("marra", _marra, description="baseline: averaged noise residual (Marra 2019)")
    register("corvi", _corvi, description="baseline: averaged residual power spectrum (Corvi 2023)")
    register("dct", _dct, description="baseline: log-DCT (Frank 2020) or azimuthal (Durall 2020)")
    register(
        "manifpt",
        _manifpt,
        description="ManiFPT artifact x - nearest real patch: --backbone-opt ref=REF.npz",
    )
    register("onnx", _onnx, description="any exported extractor: --backbone-opt model=CARD.json")
    from fpattr.paths import shipped_models

    for name in shipped_models():  # e.g. v1 kept beside a newer default, for comparison
        register(name, _shipped(name), description=f"extractor shipped as models/{name}.onnx")
