"""Contract checks: one function per extension point, asserting what fpattr relies on.

Each check takes an implementation (or its registered factory), exercises it on tiny
inputs and raises ``AssertionError`` with a message naming the broken rule. fpattr runs
them over every registered implementation (``tests/plugins/test_contracts.py``), and a
plugin's own tests call them on what the plugin registers::

    from fpattr.testing import check_backbone, check_family

    def test_my_backbone():
        check_backbone(MyBackbone())

Checks are cheap by default (a few views, 32-px models trained 2 steps) so a plugin's
test suite stays fast; torch is imported only by :func:`check_family`.
"""

from __future__ import annotations

import copy
import io
import itertools
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "check_backbone",
    "check_family",
    "check_gallery",
    "check_writer",
    "sample_report",
    "tiny_photos",
]

_HEX = re.compile(r"[0-9a-f]{16,}")


def _fail(what: str, rule: str) -> AssertionError:
    return AssertionError(f"{what}: {rule}")


# --- backbones --------------------------------------------------------------------------------


def check_backbone(backbone: Any, *, n_views: int = 3, seed: int = 0) -> dict[str, Any]:
    """Assert the backbone contract of :mod:`fpattr.backbones.base` on random views.

    Identity (``id``, hex ``sha256``, ``info()``), sizes, ``embed`` giving finite float32
    ``(N, D)`` rows, deterministic, independent of the other views in the batch and not
    constant, ``embedding_dim == D``, and a flat view that may give a non-finite row but
    never an exception or a wrong shape. Returns ``{"dim": D}``.
    """
    from fpattr.backbones.base import Backbone

    what = f"backbone {getattr(backbone, 'name', type(backbone).__name__)!r}"
    if not isinstance(backbone, Backbone):
        raise _fail(what, f"must subclass fpattr.backbones.base.Backbone, not {type(backbone)}")
    if not (isinstance(backbone.name, str) and backbone.name):
        raise _fail(what, "needs a non-empty class attribute `name`")
    for attr in ("id", "sha256"):
        value = getattr(backbone, attr)
        if not (isinstance(value, str) and value):
            raise _fail(what, f"`{attr}` must be a non-empty string, got {value!r}")
    if not _HEX.fullmatch(backbone.sha256):
        raise _fail(what, f"`sha256` must be a lowercase hex digest, got {backbone.sha256!r}")
    info = backbone.info()
    for key in ("name", "id", "sha256"):
        if info.get(key) != getattr(backbone, key):  # galleries are bound to these
            raise _fail(what, f"info()[{key!r}] must equal the backbone's `{key}`")
    size = backbone.input_size
    for attr, low in (("input_size", 8), ("default_views", 1), ("batch_size", 1)):
        value = getattr(backbone, attr)
        if not (isinstance(value, int) and value >= low):
            raise _fail(what, f"`{attr}` must be an int >= {low}, got {value!r}")

    rng = np.random.default_rng(seed)
    views = rng.random((n_views, size, size, 3), dtype=np.float32)
    emb = backbone.embed(views.copy())
    if not isinstance(emb, np.ndarray) or emb.dtype != np.float32:
        raise _fail(what, f"embed() must return a float32 numpy array, got {_describe(emb)}")
    if emb.ndim != 2 or emb.shape[0] != n_views or emb.shape[1] < 1:
        raise _fail(what, f"embed() of {n_views} views must be ({n_views}, D), got {emb.shape}")
    if not np.isfinite(emb).all():
        raise _fail(what, "embed() gave non-finite values for random (non-flat) views")
    again = backbone.embed(views.copy())
    if not np.allclose(emb, again, rtol=1e-5, atol=1e-6):
        raise _fail(what, "embed() is not deterministic (same views, different embeddings)")
    alone = backbone.embed(views[:1].copy())
    if _cosine(alone[0], emb[0]) < 0.9999:  # batching must not mix views (e.g. batch norm)
        raise _fail(what, "a view's embedding depends on the other views in its batch")
    if np.allclose(_unit(emb[0]), _unit(emb[1]), atol=1e-6):
        raise _fail(what, "two different random views gave the same embedding")
    if backbone.embedding_dim != emb.shape[1]:
        raise _fail(what, f"embedding_dim {backbone.embedding_dim} != embed() width {emb.shape}")
    flat = backbone.embed(np.full((1, size, size, 3), 0.5, np.float32))
    if np.asarray(flat).shape != (1, emb.shape[1]):
        raise _fail(what, f"a flat view must still give a (1, D) row, got {np.shape(flat)}")
    return {"dim": int(emb.shape[1])}


def _unit(v: np.ndarray) -> np.ndarray:
    from fpattr.views import l2_normalize

    return l2_normalize(v)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(_unit(a.astype(np.float64)) @ _unit(b.astype(np.float64)))


def _describe(x: Any) -> str:
    return f"{type(x).__name__} {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}".strip()


# --- synthesizer families ---------------------------------------------------------------------


def tiny_photos(n: int = 8, size: int = 32, seed: int = 0) -> Any:
    """(n, 3, size, size) float32 torch tensor of smooth random 'photos' in [0, 1]."""
    import torch

    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((n, 3, 4, 4)).astype(np.float32))
    fine = torch.from_numpy(rng.random((n, 3, size, size)).astype(np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear")
    return (0.9 * smooth + 0.1 * fine).clamp(0, 1)  # a little texture, like real crops


def check_family(
    family: Any,
    *,
    width: int = 8,
    image_size: int = 32,
    steps: int = 2,
    batch_size: int = 4,
    arch: Mapping[str, str] | None = None,
    photos: Any = None,
) -> dict[str, Any]:
    """Assert the :class:`fpattr.synthesis.base.SynthesizerFamily` contract.

    Design-space bookkeeping (ordered product, first choice slowest, unique short ids,
    a ``loss`` choice limited to :data:`fpattr.synthesis.losses.LOSSES`, unknown values
    refused), picklability without trained state, and for ``arch`` (default: the first
    architecture) build -> ``train`` (gradients per step, ``steps`` steps with a zero
    floor, deterministic given the seed) -> ``generate`` (uint8 ``(n, S, S, 3)``,
    deterministic given the seed). Torch runs on the CPU. Returns the training stats.
    """
    import torch

    from fpattr.errors import UsageError
    from fpattr.synthesis.base import SynthesizerFamily

    what = f"family {getattr(family, 'name', type(family).__name__)!r}"
    if not isinstance(family, SynthesizerFamily):
        raise _fail(what, "does not follow fpattr.synthesis.base.SynthesizerFamily")
    for attr in ("name", "description"):
        if not (isinstance(getattr(family, attr), str) and getattr(family, attr)):
            raise _fail(what, f"`{attr}` must be a non-empty string")
    if not isinstance(family.needs_photos, bool):
        raise _fail(what, "`needs_photos` must be a bool")

    space = family.design_space()
    _check_space(what, space)
    archs = family.architectures()
    if archs != family.architectures():
        raise _fail(what, "architectures() is not deterministic")
    keys = list(space)
    expected = [dict(zip(keys, c, strict=True)) for c in itertools.product(*space.values())]
    if archs != expected:
        raise _fail(what, "architectures() must be the ordered product (first choice slowest)")
    ids = [family.arch_id(a) for a in archs]
    if len(set(ids)) != len(ids):
        raise _fail(what, "arch_id() is not unique within the family")
    bad = [i for i in ids if not (i.isascii() and i and len(i) <= 64 and _safe_name(i))]
    if bad:
        raise _fail(what, f"arch ids name folders: ascii, no '/' or spaces, <= 64 chars: {bad[:3]}")
    first_key = keys[0]
    try:
        family.architectures(where={first_key: ["<no such value>"]})
    except UsageError:
        pass
    else:
        raise _fail(what, "architectures(where=...) must refuse unknown values (UsageError)")

    # The zoo sends families to spawned workers through multiprocessing's pickler: serialise
    # with that same pickler (nothing is ever deserialised here), and rebuild a copy through
    # the same __reduce_ex__ protocol with copy.deepcopy.
    from multiprocessing.reduction import ForkingPickler

    try:
        ForkingPickler.dumps(family)
    except Exception as exc:  # noqa: BLE001 - any failure means workers cannot receive it
        raise _fail(what, f"cannot be sent to worker processes: {exc}") from exc
    clone = copy.deepcopy(family)
    if clone.design_space() != space or [clone.arch_id(a) for a in archs[:3]] != ids[:3]:
        raise _fail(what, "a copy has another design space or arch ids")
    state = getattr(family, "__dict__", {}).items()
    held = [k for k, v in state if isinstance(v, (torch.nn.Module, torch.Tensor))]
    if held:
        raise _fail(what, f"holds trained state {held}: keep it in the built module")

    arch = dict(arch or archs[0])
    if photos is None:
        photos = tiny_photos(size=image_size)

    def run() -> tuple[dict[str, Any], np.ndarray]:
        torch.manual_seed(0)
        model = family.build(arch, width=width, image_size=image_size)
        if not isinstance(model, torch.nn.Module):
            raise _fail(what, f"build() must return a torch.nn.Module, got {type(model)}")
        stats = family.train(
            model,
            photos,
            seed=1,
            loss_floor=0.0,
            max_steps=steps,
            batch_size=batch_size,
            device="cpu",
        )
        source = photos[:3] if family.needs_photos else None
        images = family.generate(model, source, 3, seed=2, device="cpu")
        again = family.generate(model, source, 3, seed=2, device="cpu")
        if not np.array_equal(images, again):
            raise _fail(what, "generate() is not deterministic given the seed")
        return stats, images

    with _adam_counter() as calls:
        stats, images = run()
    if calls["zero"] < calls["step"]:
        raise _fail(what, f"train() zeroed gradients {calls['zero']}x for {calls['step']} steps")
    if not isinstance(stats, dict) or "final_loss" not in stats or "steps" not in stats:
        raise _fail(what, f"train() must return {{'final_loss', 'steps', ...}}, got {stats}")
    if stats["steps"] != steps or not math.isfinite(float(stats["final_loss"])):
        raise _fail(what, f"train() with a zero floor must run {steps} finite steps: {stats}")
    want = (3, image_size, image_size, 3)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape != want:
        raise _fail(what, f"generate() must return uint8 {want}, got {_describe(images)}")
    stats2, images2 = run()
    if stats2 != stats or not np.array_equal(images, images2):
        raise _fail(what, "training is not deterministic given the seed")
    if family.needs_photos:
        try:
            family.generate(family.build(arch, width=width, image_size=image_size), None, 1, seed=0)
        except UsageError:
            pass
        else:
            raise _fail(what, "generate() without photos must raise UsageError (needs_photos)")
    return stats


def _check_space(what: str, space: Any) -> None:
    if not isinstance(space, dict) or not space:
        raise _fail(what, "design_space() must be a non-empty dict of choice -> values")
    for key, values in space.items():
        if not (isinstance(key, str) and key and isinstance(values, list) and values):
            raise _fail(what, f"design choice {key!r} needs a non-empty list of values")
        if not all(isinstance(v, str) and v for v in values) or len(set(values)) != len(values):
            raise _fail(what, f"values of {key!r} must be distinct non-empty strings: {values}")
    if "loss" in space:
        from fpattr.synthesis.losses import LOSSES  # imports torch: only when there is a loss

        unknown = [v for v in space["loss"] if v not in LOSSES]
        if unknown:
            raise _fail(what, f"loss values {unknown} are not fpattr losses {LOSSES}")


def _safe_name(text: str) -> bool:
    return "/" not in text and "\\" not in text and " " not in text and text not in (".", "..")


class _adam_counter:
    """Counts ``zero_grad`` and ``step`` calls of every torch optimiser while active."""

    def __enter__(self) -> dict[str, int]:
        import torch
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        calls = self.calls = {"zero": 0, "step": 0}
        self._zero = zero = torch.optim.Optimizer.zero_grad

        def counting_zero(opt: Any, *a: Any, **k: Any) -> Any:
            calls["zero"] += 1
            return zero(opt, *a, **k)

        def count_step(*_: Any) -> None:
            calls["step"] += 1

        torch.optim.Optimizer.zero_grad = counting_zero  # type: ignore[method-assign]
        self._hook = register_optimizer_step_pre_hook(count_step)
        return calls

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.optim.Optimizer.zero_grad = self._zero  # type: ignore[method-assign]
        self._hook.remove()


# --- galleries --------------------------------------------------------------------------------


def check_gallery(gallery: Any, *, backbone: Any = None) -> dict[str, Any]:
    """Assert a shipped gallery loads and can be matched against.

    ``gallery``: a folder, or the registered object (a ``Path`` or a zero-argument callable
    returning one). The folder must load with fpattr's own reader (integrity hash, no
    pickle), hold at least one model with finite, unit-norm float32 reference embeddings
    of one dimension, and carry a backbone binding (name, id, sha256). With ``backbone``
    (a Backbone, or a registered name) the binding must match it and its embeddings must
    have the gallery's dimension. Returns ``gallery.info()``.
    """
    from fpattr.gallery import Gallery

    path = Path(gallery() if callable(gallery) else gallery)
    what = f"gallery {str(path)!r}"
    if not (path / "gallery.json").is_file():
        raise _fail(what, "must be a folder holding gallery.json")
    g = Gallery.load(path)
    binding = g.backbone
    for key in ("name", "id", "sha256"):
        if not (isinstance(binding.get(key), str) and binding[key]):
            raise _fail(what, f"backbone binding lacks {key!r}: {binding}")
    if not g.models:
        raise _fail(what, "holds no model")
    dims = set()
    for name, model in g.models.items():
        emb = model.embeddings
        if emb.dtype != np.float32 or emb.ndim != 2 or len(emb) < 1:
            raise _fail(what, f"model {name!r}: embeddings must be float32 (n_refs >= 1, D)")
        if not np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-3):
            raise _fail(what, f"model {name!r}: reference embeddings must be unit rows")
        dims.add(emb.shape[1])
    names, sims = g.similarities(next(iter(g.models.values())).embeddings)
    if not (np.isfinite(sims).all() and np.abs(sims).max() <= 1.0 + 1e-4):
        raise _fail(what, "similarities of its own references are not cosines")
    if backbone is not None:
        if isinstance(backbone, str):
            from fpattr.backbones.resolve import create_backbone

            backbone = create_backbone(backbone)
        g.check_backbone(backbone.info())
        if backbone.embedding_dim not in dims:
            raise _fail(what, f"dimension {dims} != backbone's {backbone.embedding_dim}")
    return g.info()


# --- report writers ---------------------------------------------------------------------------

_PARSERS: dict[str, Callable[[str], dict[str, Any]]] = {}


def sample_report(command: str = "attribute") -> tuple[dict[str, Any], list[dict], dict]:
    """(manifest, results, summary) shaped like fpattr's own, for ``attribute`` or ``verify``.

    Includes what real runs produce and writers must survive: an error result, a path with
    a newline and non-ASCII text, a numpy float32 score, a NaN similarity and a
    thumbnail (which only the HTML report may show).
    """
    manifest: dict[str, Any] = {
        "schema": "fpattr.report/1",
        "command": command,
        "tool": {"name": "fpattr", "version": "0"},
        "started": "2026-01-01T00:00:00Z",
        "backbone": {"name": "spectrum", "id": "spectrum-v1-s64-p2", "sha256": "0" * 64},
        "settings": {"top_k": 2, "target_far": 0.01},
    }
    if command == "verify":
        results = [
            _verify_row("a/1.png", "b/1.png", np.float32(0.91), "same"),
            _verify_row("a/2.png", "c/2.png", -0.12, "different"),
            _verify_row("a/3.png", "odd\nname-é.png", float("nan"), "insufficient signal"),
            {"a": "a/4.png", "b": "bad.png", "status": "error", "error": "cannot decode"},
        ]
    else:
        results = [
            _attr_row("imgs/one.png", "model-a", np.float32(0.93), 0.97),
            _attr_row("imgs/two.png", "unknown", 0.12, 0.80),
            _attr_row("imgs/odd\nname-é.png", "model-b", float("nan"), None),
            {"path": "imgs/broken.png", "status": "error", "error": "truncated file"},
        ]
    n_ok = sum(r["status"] == "ok" for r in results)
    summary = {"n_inputs": len(results), "n_ok": n_ok, "n_failed": len(results) - n_ok}
    return manifest, results, summary


def _attr_row(path: str, decision: str, sim: Any, prob: float | None) -> dict[str, Any]:
    return {
        "path": path,
        "sha256": "ab" * 32,
        "status": "ok",
        "error": None,
        "top": [
            {"model": "model-a", "similarity": sim, "probability": prob},
            {"model": "model-b", "similarity": 0.01, "probability": 0.01},
        ],
        "decision": decision,
        "probability": prob,
        "thumbnail": "data:image/png;base64,AAAA",
    }


def _verify_row(a: str, b: str, sim: Any, decision: str) -> dict[str, Any]:
    return {"a": a, "b": b, "status": "ok", "similarity": sim, "decision": decision}


def check_writer(
    factory: Callable[..., Any],
    *,
    streaming: bool = False,
    binary: bool = False,
    parse: Callable[[str], dict[str, Any]] | None = None,
    name: str = "",
) -> dict[str, str]:
    """Assert the report-writer contract of :mod:`fpattr.report.base` for both commands.

    The factory accepts (and ignores) options it does not know; the writer has
    ``write``/``close``; it survives :func:`sample_report`'s rows without mutating them;
    its output is strict UTF-8, deterministic and names every simple input path and
    decision; a ``streaming`` writer has written the first result before the second
    arrives. Round trip: ``parse(text) -> {"results": [...]}`` (built in for json,
    jsonl and csv) must give back the paths, statuses and decisions, never the
    thumbnail. Returns the text written per command.
    """
    from fpattr.report.base import ReportWriter, escape_surrogates

    what = f"report format {name or getattr(factory, '__name__', factory)!r}"
    parse = parse or _PARSERS.get(name)
    texts = {}
    for command in ("attribute", "verify"):
        manifest, results, summary = sample_report(command)
        before = copy.deepcopy(results)
        outputs = []
        for _ in range(2):
            stream: Any = io.BytesIO() if binary else io.StringIO()
            writer = factory(stream, copy.deepcopy(manifest), thumbnails=False, no_such_opt=1)
            if not isinstance(writer, ReportWriter):
                raise _fail(what, "the factory must return an object with write() and close()")
            for k, result in enumerate(results):
                writer.write(result)
                if streaming and k == 0 and not _text(stream, binary):
                    raise _fail(what, "is registered streaming=True but wrote nothing per result")
            writer.close(dict(summary))
            outputs.append(_text(stream, binary))
        if not _same_ignoring_numbers(results, before):
            raise _fail(what, "write() must not modify the result dicts")
        text = outputs[0]
        if not text:
            raise _fail(what, f"wrote nothing for a {command} run")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _fail(what, f"output is not valid UTF-8: {exc}") from None
        if outputs[1] != text:
            raise _fail(what, "output is not deterministic (same input, different text)")
        keys = ("a", "b") if command == "verify" else ("path",)
        shown = _squash(_unescape(text))  # tables wrap long cells onto more lines
        for r in results:
            for key in keys:
                if "\n" not in r[key] and _squash(escape_surrogates(r[key])) not in shown:
                    raise _fail(what, f"{command} output does not name the input {r[key]!r}")
            if r.get("decision") and _squash(r["decision"]) not in shown:
                raise _fail(what, f"{command} output does not state decision {r['decision']!r}")
        if parse is not None:
            _check_round_trip(what, command, parse(text), results)
        texts[command] = text
    return texts


def _text(stream: Any, binary: bool) -> str:
    value = stream.getvalue()
    return value.decode("utf-8", errors="surrogateescape") if binary else value


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def _same_ignoring_numbers(a: Any, b: Any) -> bool:
    # NaN != NaN: compare the JSON-able view, which maps NaN to None.
    from fpattr.report.base import dumps

    return dumps(a) == dumps(b)


def _check_round_trip(what: str, command: str, doc: dict[str, Any], results: list[dict]) -> None:
    from fpattr.report.base import printable

    rows = doc.get("results")
    if not isinstance(rows, list) or len(rows) != len(results):
        raise _fail(what, f"{command}: parsed {len(rows or [])} results, wrote {len(results)}")
    keys = ("a", "b") if command == "verify" else ("path",)
    for got, want in zip(rows, results, strict=True):
        # status may be implied (csv has an error column instead): compared when present
        for key in (*keys, *(("status",) if "status" in got else ())):
            # exact, or as fpattr.report.base.printable shows it (text formats escape "\n")
            if str(got.get(key)) not in (want[key], printable(want[key])):
                raise _fail(what, f"{command}: {key} {want[key]!r} came back as {got.get(key)!r}")
        if (got.get("decision") or None) != (want.get("decision") or None):
            raise _fail(what, f"{command}: decision {want.get('decision')!r} did not come back")
        if any("thumbnail" in str(k) for k in got):
            raise _fail(what, "machine-readable output must not carry the thumbnail")


def _parse_json(text: str) -> dict[str, Any]:
    import json

    return {"results": json.loads(text)["results"]}


def _parse_jsonl(text: str) -> dict[str, Any]:
    import json

    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {"results": [x for x in lines if x.get("type") == "result"]}


def _parse_csv(text: str) -> dict[str, Any]:
    import csv

    return {"results": list(csv.DictReader(io.StringIO(text)))}


_PARSERS.update(json=_parse_json, jsonl=_parse_jsonl, csv=_parse_csv)
