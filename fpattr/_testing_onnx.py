"""A tiny ONNX extractor with a model card, for tests (needs the ``onnx`` package).

Re-exported by :mod:`fpattr.testing`. The graph is a real, if untrained,
extractor: NHWC views -> high-pass conv -> |.| -> global mean -> embedding.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def write_tiny_onnx_model(
    folder: Path,
    *,
    name: str = "tiny",
    size: int = 32,
    dim: int = 16,
    seed: int = 0,
    calibration: dict | None = None,
) -> Path:
    """Write ``<name>.onnx`` + ``<name>.json`` (model card) into ``folder``; return the card."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (dim, 3, 3, 3)).astype(np.float32)
    w -= w.mean(axis=(2, 3), keepdims=True)  # zero-mean kernels: a bank of high-pass filters
    nodes = [
        helper.make_node("Transpose", ["views"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["feat"], pads=[1, 1, 1, 1]),
        helper.make_node("Abs", ["feat"], ["mag"]),
        helper.make_node("ReduceMean", ["mag", "axes"], ["pooled"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-extractor",
        [helper.make_tensor_value_info("views", TensorProto.FLOAT, ["N", size, size, 3])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["N", dim])],
        initializer=[
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    blob = model.SerializeToString()
    (folder / f"{name}.onnx").write_bytes(blob)
    card = {
        "schema": "fpattr.model/1",
        "name": name,
        "id": f"{name}-test-s{size}",
        "file": f"{name}.onnx",
        "sha256": hashlib.sha256(blob).hexdigest(),
        "input": {
            "name": "views",
            "layout": "NHWC",
            "size": size,
            "dtype": "float32",
            "range": [0, 1],
        },
        "output": {"name": "pooled", "dim": dim},
        "default_views": 4,
        "opset": 18,
    }
    if calibration:
        card["calibration"] = calibration
    path = folder / f"{name}.json"
    path.write_text(json.dumps(card, indent=2))
    return path
