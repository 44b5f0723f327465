"""INT8 quantization of an exported extractor with ONNX Runtime's static quantizer.

``quantize`` turns an FP32 model (card + ``.onnx``, as written by
:mod:`fpattr.training.export`) into a QDQ model with per-channel signed INT8 weights and
unsigned 8-bit activations (U8S8; ``onnxruntime.quantization.quantize_static``, MinMax
calibration on views of real photos). U8S8, not ONNX Runtime's default S8S8: on x86 its
CPU provider fuses only some S8S8 Q/DQ-Conv patterns into QLinearConv, leaving the others
as FP32 convolutions wrapped in (de)quantization, which ran *slower* than FP32 (0.87x on
one thread); with U8S8 every screened convolution fused and the model ran 1.46-1.54x FP32
on one thread (batch 64, the project's 2-core AVX-512 VNNI machine: docs/results/int8.md,
docs/performance.md).

Not every node survives 8 bits: the residual filter subtracts a low-pass copy of the
image, so 8-bit activations there erase the sub-LSB traces a generator leaves; the
DFT-as-matmul and the log spectrum amplify small errors; layers after global pooling
see wider ranges on generated images than on calibration photos (see :data:`DEFAULT_OPS`).
Rather than naming nodes of one graph, every candidate node (weight-carrying, of
``op_types``) is *screened*: quantized alone, and kept in FP32 if that alone moves the
embedding of a calibration view below ``node_min_cosine``. The combined model is then
accepted only if its embeddings stay within ``min_cosine`` of FP32 on views of held-out
images (every ``holdout_every``-th calibration image, never used for calibration or
screening) and of ``parity_images``; otherwise nothing is written (as the FP32 export's gate).

Weights use 7 of their 8 bits by default (``reduce_range``): x86 CPUs without VNNI
(AVX2, AVX-512F) multiply U8S8 pairs with ``vpmaddubsw``, whose 16-bit sums of two
255 x 127 products saturate, and a model screened on a VNNI machine can then lose
accuracy on another (OpenVINO, "Saturation (overflow) issue workaround"; onnxruntime's
``quantize_static(reduce_range=...)``). 255 x 63 x 2 < 32767 cannot saturate. Measured:
the test suite's tiny model (one convolution on raw pixels) kept min cosine 0.912
against FP32 with 8-bit weights on a 2-core AMD EPYC (AVX2, no VNNI), 0.989 with 7.
``full_range_weights=True`` gives the 8-bit weights (for VNNI-only deployments; the card
says which). The shipped ``default-int8`` was made with 8-bit weights on a VNNI machine;
on the AVX2 machine its embeddings of 80 views of BSDS500 val photos kept min cosine
0.997 against FP32 (its screening had left the raw-pixel front end in FP32).

The card keeps the FP32 model's score calibration (the scores are cosine-based and the
parity gate bounds the drift; the card says where it came from) and adds the quantization
recipe, the screening and its own parity figures. Same inputs and ONNX Runtime version on
the same machine give the same bytes (no timestamps; calibration sessions run on one
thread, sorted images, protobuf's deterministic serialisation).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.errors import FpattrError
from fpattr.io.atomic import atomic_write_bytes, atomic_write_text
from fpattr.io.loader import IMAGE_EXTENSIONS, load_image, sha256_file
from fpattr.views import make_views

#: Op types screened by default. Gemm / MatMul nodes (the DFT, the spectral ring projections,
#: the embedding head) can be screened with ``op_types``, but the ones after global pooling
#: passed the photo screening and still cost up to 0.01 cosine on generated images (min 0.990 vs
#: 0.999 with convolutions only on runs/realbench): their input ranges on generated images
#: exceed those of the calibration photos. They hold < 15 % of the weights and little compute.
DEFAULT_OPS = ("Conv",)
#: A node quantized alone must keep every screening view's embedding this close to FP32.
NODE_MIN_COSINE = 0.999
#: The whole INT8 model must keep every held-out view's embedding this close to FP32.
MIN_COSINE = 0.98
CALIB_BATCH = 64
SCREEN_VIEWS = 256

Log = Callable[[str], None]


def find_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, sorted (the order fixes calibration and split)."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def _shown(path: Path) -> str:
    """``path`` as the card records it: relative to the working folder when inside it
    (no user's home folder in a shipped card)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def views_of(images: Sequence[Path], size: int, n_views: int) -> np.ndarray:
    """Pipeline views (native-resolution grid crops) of ``images``, concatenated."""
    out = [make_views(load_image(p).pixels, size, n_views)[0] for p in images]
    if not out:
        raise FpattrError("no images to make views of")
    return np.concatenate(out)


def _session(path: Path | bytes, threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    model = str(path) if isinstance(path, Path) else path
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def embed(session: Any, views: np.ndarray, input_name: str = "views") -> np.ndarray:
    """Embeddings of ``views`` in batches of :data:`CALIB_BATCH`."""
    return np.concatenate(
        [
            session.run(None, {input_name: views[s : s + CALIB_BATCH]})[0]
            for s in range(0, len(views), CALIB_BATCH)
        ]
    ).reshape(len(views), -1)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity (zero rows count as cosine 0, i.e. as a failure)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, np.sum(a * b, axis=1) / np.maximum(den, 1e-300), 0.0)


def parity_figures(ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """What the card records of one parity set."""
    c = cosines(ref, got)
    return {
        "n_views": int(len(c)),
        "min_cosine": round(float(c.min()), 6),
        "p01_cosine": round(float(np.quantile(c, 0.01)), 6),
        "mean_cosine": round(float(c.mean()), 6),
        "max_abs_diff": round(float(np.abs(ref - got).max()), 6),
    }


def name_unnamed_nodes(model: Any) -> int:
    """Give every unnamed node of ``model`` a unique name (``<op>_<index>``), in place;
    returns how many were named. Screening quantizes one node at a time by name: with
    unnamed nodes every candidate was the name "" and ONNX Runtime 1.32's
    ``nodes_to_quantize=[""]`` matches none of them (nothing could be quantized)."""
    taken = {n.name for n in model.graph.node if n.name}
    count = 0
    for k, n in enumerate(model.graph.node):
        if n.name:
            continue
        name, j = f"{n.op_type}_{k}", 0
        while name in taken:
            j += 1
            name = f"{n.op_type}_{k}_{j}"
        n.name = name
        taken.add(name)
        count += 1
    return count


def candidate_nodes(model: Any, op_types: Sequence[str] = DEFAULT_OPS) -> list[str]:
    """Nodes of ``op_types`` with a constant operand (weights: the only ones whose
    quantization shrinks the file and lets ONNX Runtime use integer kernels)."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [
        n.name
        for n in model.graph.node
        if n.op_type in op_types and any(i in consts for i in n.input)
    ]


class _Reader:
    """A ``CalibrationDataReader`` over fixed views (batches in a fixed order)."""

    def __init__(self, views: np.ndarray, input_name: str) -> None:
        self.views = views
        self.input_name = input_name
        self._it: Iterator[dict[str, np.ndarray]] | None = None
        self.rewind()

    def rewind(self) -> None:
        self._it = (
            {self.input_name: self.views[s : s + CALIB_BATCH]}
            for s in range(0, len(self.views), CALIB_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None) if self._it is not None else None


def _strip(blob: bytes) -> bytes:
    """Drop per-node debug metadata (the exporter's stack traces and names): ~8 % of the
    file, never read by ONNX Runtime. Serialised deterministically."""
    import onnx

    m = onnx.load_from_string(blob)
    for n in m.graph.node:
        n.doc_string = ""
        del n.metadata_props[:]
    del m.graph.value_info[:]  # shapes are re-inferred by the runtime
    onnx.checker.check_model(m)
    return m.SerializeToString(deterministic=True)


def _quantize_bytes(
    src: Path,
    ranges: Path,
    nodes: Sequence[str],
    *,
    reader: _Reader | None,
    tmp: Path,
    per_channel: bool,
    op_types: Sequence[str],
    reduce_range: bool = True,
) -> bytes:
    """One ``quantize_static`` run: only ``nodes`` quantized; ranges from / to the cache."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    out = tmp / "q.onnx"
    if reader is not None:
        reader.rewind()
    quantize_static(
        str(src),
        str(out),
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,  # U8S8: see the module docstring
        weight_type=QuantType.QInt8,
        nodes_to_quantize=list(nodes),
        # calibration needs the ranges of every candidate, screening then reuses them
        op_types_to_quantize=list(op_types),
        calibrate_method=CalibrationMethod.MinMax,
        calibration_cache_path=str(ranges),
    )
    blob = out.read_bytes()
    out.unlink()
    return blob


def _one_thread_calibration() -> Any:
    """Calibration sessions on one thread: min/max of an activation must not depend on
    how many cores split a convolution (byte-identical output run to run)."""
    from onnxruntime.quantization import calibrate

    original = calibrate.CalibraterBase.create_inference_session

    def create(self: Any) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.infer_session = ort.InferenceSession(
            self.augmented_model_path, sess_options=opts, providers=self.execution_providers
        )

    calibrate.CalibraterBase.create_inference_session = create
    return original


def quantize(
    card_path: Path,
    out_dir: Path,
    *,
    name: str,
    calib_images: Path,
    n_views: int = 16,
    max_images: int = 200,
    holdout_every: int = 5,
    parity_images: Path | None = None,
    node_min_cosine: float = NODE_MIN_COSINE,
    min_cosine: float = MIN_COSINE,
    per_channel: bool = True,
    op_types: Sequence[str] = DEFAULT_OPS,
    full_range_weights: bool = False,
    command: str = "",
    log: Log | None = None,
) -> dict[str, Any]:
    """Quantize the model of ``card_path`` to ``out_dir/name.onnx`` + ``name.json``.

    ``calib_images``: real photos; sorted, the first ``max_images`` are used, every
    ``holdout_every``-th of them is held out for the parity check, the rest calibrate.
    ``parity_images``: a second parity set (e.g. generated images).
    ``full_range_weights``: 8-bit weights instead of 7 (see the module docstring: they
    can saturate on x86 CPUs without VNNI). Returns the card;
    raises :class:`FpattrError` (and writes nothing) when parity fails.
    """
    import onnx
    import onnxruntime as ort

    from fpattr import __version__
    from fpattr.backbones.onnx import read_card

    say = log or (lambda _m: None)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", name or ""):
        raise FpattrError(f"invalid model name {name!r}: letters, digits, '.', '_', '+', '-'")
    if n_views < 1 or holdout_every < 2:
        raise FpattrError("n_views must be >= 1 and holdout_every >= 2")
    src_card = read_card(card_path)
    src = (Path(card_path).parent / src_card["file"]).resolve()
    if sha256_file(src) != src_card["sha256"]:
        raise FpattrError(f"{src} does not match its model card's sha256: refusing to quantize")
    spec = src_card["input"]
    size, input_name = int(spec["size"]), spec.get("name", "views")

    images = find_images(calib_images)[:max_images]
    held = images[holdout_every - 1 :: holdout_every]
    calib = [p for i, p in enumerate(images) if (i + 1) % holdout_every]
    if len(calib) < 2 or not held:
        raise FpattrError(
            f"{calib_images}: need at least {holdout_every} images, found {len(images)}"
        )
    calib_views = views_of(calib, size, n_views)
    sets = {"held_out": views_of(held, size, n_views)}
    par_list = find_images(parity_images) if parity_images else []
    if par_list:
        sets["parity_images"] = views_of(par_list, size, int(src_card.get("default_views", 4)))
    screen = calib_views[:: max(1, len(calib_views) // SCREEN_VIEWS)][:SCREEN_VIEWS]
    say(f"calibration: {len(calib)} images, {len(calib_views)} views; held out: {len(held)}")

    fp32 = _session(src)
    ref_screen = embed(fp32, screen, input_name)
    refs = {k: embed(fp32, v, input_name) for k, v in sets.items()}
    model = onnx.load(str(src))
    renamed = name_unnamed_nodes(model)
    candidates = candidate_nodes(model, op_types)
    if not candidates:
        raise FpattrError(f"{src.name} has no weight-carrying node of {list(op_types)}")
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # ORT's advice

    original = _one_thread_calibration()
    try:
        with tempfile.TemporaryDirectory(prefix="fpattr-quantize-") as tmp_s:
            tmp = Path(tmp_s)
            ranges = tmp / "ranges.json"
            q_src = src
            if renamed:  # quantize a copy whose nodes can be named one by one
                q_src = tmp / "named.onnx"
                onnx.save(model, str(q_src))
            reader = _Reader(calib_views, input_name)
            # first run calibrates all candidates (cached); later runs only re-quantize
            opts = {
                "tmp": tmp,
                "per_channel": per_channel,
                "op_types": op_types,
                "reduce_range": not full_range_weights,
            }
            _quantize_bytes(q_src, ranges, candidates[:1], reader=reader, **opts)
            screening = []
            for node in candidates:
                blob = _quantize_bytes(q_src, ranges, [node], reader=None, **opts)
                c = cosines(ref_screen, embed(_session(blob), screen, input_name))
                ok = bool(c.min() >= node_min_cosine)
                op = next(n.op_type for n in model.graph.node if n.name == node)
                screening.append(
                    {"node": node, "op": op, "min_cosine": round(float(c.min()), 6), "int8": ok}
                )
                say(
                    f"  {node:28s} {op:7s} alone: min cos {c.min():.5f} -> "
                    + ("int8" if ok else "fp32")
                )
            chosen = [s["node"] for s in screening if s["int8"]]
            if not chosen:
                raise FpattrError("no node can be quantized within node_min_cosine")
            blob = _strip(_quantize_bytes(q_src, ranges, chosen, reader=None, **opts))
    finally:
        from onnxruntime.quantization import calibrate

        calibrate.CalibraterBase.create_inference_session = original

    q = _session(blob)
    parity = {k: parity_figures(refs[k], embed(q, v, input_name)) for k, v in sets.items()}
    worst = min(p["min_cosine"] for p in parity.values())
    if worst < min_cosine:
        raise FpattrError(
            f"INT8 parity failed: min cosine {worst:.4f} < {min_cosine} against FP32 "
            f"({json.dumps(parity)}); nothing was written"
        )
    sha = hashlib.sha256(blob).hexdigest()
    qm = onnx.load_from_string(blob)
    keep = (
        "input", "output", "preprocessing_in_graph", "architecture", "fusion", "parameters",
        "default_views", "batch_size",
    )  # fmt: skip
    card: dict[str, Any] = {
        "schema": src_card["schema"],
        "name": name,
        "id": f"{name}-{sha[:12]}",
        "file": f"{name}.onnx",
        "sha256": sha,
        "size_bytes": len(blob),
        **{k: src_card[k] for k in keep if k in src_card},
        "opset": max(o.version for o in qm.opset_import if o.domain in ("", "ai.onnx")),
        "quantization": {
            "source": {
                "name": src_card.get("name"),
                "id": src_card.get("id"),
                "file": src_card["file"],
                "sha256": src_card["sha256"],
                "size_bytes": src.stat().st_size,
            },
            "tool": f"onnxruntime.quantization.quantize_static (onnxruntime {ort.__version__})",
            "format": "QDQ",
            "weights": "int8, symmetric, "
            + ("per-channel" if per_channel else "per-tensor")
            + (
                ", full 8-bit range (may saturate on x86 CPUs without VNNI)"
                if full_range_weights
                else ", 7-bit range (reduce_range: no U8S8 saturation on x86 without VNNI)"
            ),
            "activations": "uint8 (U8S8), MinMax calibration",
            "calibration_images": {
                "folder": str(calib_images),  # as given: ../shared/... stays readable
                "what": "real photographs (no generated images): activation ranges only",
                "n_images": len(calib),
                "n_views": int(len(calib_views)),
                "views_per_image": n_views,
                "held_out_images": len(held),
                "split": f"sorted file names, every {holdout_every}th of the first "
                f"{max_images} held out",
            },
            "screening": {
                "op_types": list(op_types),
                "rule": f"each weight-carrying {'/'.join(op_types)} node quantized alone; FP32 "
                f"kept if any of {len(screen)} calibration views falls below cosine "
                f"{node_min_cosine} against FP32",
                "int8_nodes": len(chosen),
                "fp32_nodes": len(screening) - len(chosen),
                "nodes": screening,
            },
            "command": command,
        },
        "parity": {
            "against": f"{src_card['file']} (FP32), ONNX Runtime CPU",
            "threshold": min_cosine,
            **parity,
            "parity_images_from": _shown(parity_images) if parity_images and par_list else None,
            "onnxruntime": ort.__version__,
        },
        "calibration": src_card.get("calibration"),
        "calibration_source": f"copied from {src_card['file']} (sha256 {src_card['sha256'][:12]}"
        "...): scores are cosine-based and the parity figures bound the drift",
        "validation_of_source": src_card.get("validation"),
        "exported_with": {"fpattr": __version__},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / f"{name}.onnx", blob)
    atomic_write_text(out_dir / f"{name}.json", json.dumps(card, indent=2) + "\n")
    return card
