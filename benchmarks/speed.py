"""Speed of the default extractor, measured side by side in one run, written to docs/.

Measures on the same batches and the same machine:
- ONNX Runtime vs torch eager (same weights, same batch of views) -> ratio;
- end-to-end `fpattr attribute` images/s on a folder of PNGs vs pure inference on the
  same number of views -> pipeline overhead (decode, views, matching, reporting);
- peak RSS for N and 4N images (memory must stay flat);
- `fpattr --help` wall time.

    python benchmarks/speed.py --model models/default.json \
        --checkpoint runs/default/train/extractor.pt --out docs/results/speed.json

Without --checkpoint, torch runs the weights read back from the ONNX file
(``torch_twin``). benchmarks/performance.py reuses these functions for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def rate(fn: Any, n_items: int, seconds: float) -> float:
    """Items/s of calling ``fn`` (``n_items`` a call) for ``seconds``, after one warm-up
    call; the benchmarks' one timing loop."""
    fn()  # warm-up
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        fn()
        n += n_items
    return n / (time.perf_counter() - t)


def torch_twin(card: Path) -> Any:
    """The extractor of an exported model card as a torch eager module, with the weights
    read back from its ONNX file (no checkpoint needed): the training code's module
    (``fpattr.training``), batch norms set to the identity plus the bias the export
    folded into each convolution. :func:`ort_vs_torch` checks it against ONNX Runtime."""
    import onnx
    import torch
    from onnx import numpy_helper

    from fpattr.training.hybrid import FusedExtractor
    from fpattr.training.model import Extractor, ExtractorConfig

    c = json.loads(Path(card).read_text())
    graph = onnx.load(str(Path(card).parent / c["file"])).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    model: Any = Extractor(ExtractorConfig(**c["architecture"]))
    if c.get("fusion"):
        f = c["fusion"]
        model = FusedExtractor(model, f["theta"], f.get("pool", 2), f.get("radial_weight", 1.0))
    modules = dict(model.named_modules())
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    unset = {k for k, t in model.named_parameters()}
    with torch.no_grad():
        for name, arr in weights.items():
            if name.endswith(".weight_bias"):  # a conv's folded batch norm: its bias
                conv = name.removesuffix(".weight_bias")
                parent, _, last = conv.rpartition(".")
                norm = {"c1": "b1", "c2": "b2"}.get(last) or str(int(last) + 1)
                bn = modules[f"{parent}.{norm}"]
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(arr.copy()))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
                bn.eps = 0.0
                unset -= {f"{parent}.{norm}.weight", f"{parent}.{norm}.bias"}
            elif name in tensors:
                t = tensors[name]
                t.copy_(torch.from_numpy(arr.copy()).reshape(t.shape))
                unset.discard(name)
    if unset:
        raise ValueError(f"{card}: no weights in the ONNX file for {sorted(unset)[:5]}")
    return model.eval()


def ort_vs_torch(
    card: Path,
    ckpt: Path | None,
    batch: int,
    threads: int,
    seconds: float,
    views: np.ndarray | None = None,
) -> dict:
    """ONNX Runtime and torch eager views/s on the same batch (``views``, else random),
    ``threads`` each. Torch runs the checkpoint when given, else :func:`torch_twin`; it
    is left out when torch is not installed."""
    import importlib.util

    import onnxruntime as ort

    c = json.loads(card.read_text())
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(
        str(card.parent / c["file"]), so, providers=["CPUExecutionProvider"]
    )
    size = c["input"]["size"]
    if views is None:
        views = np.random.default_rng(0).random((batch, size, size, 3), dtype=np.float32)
    x = np.ascontiguousarray(views[:batch], dtype=np.float32)
    out = {
        "batch_views": len(x),
        "threads": threads,
        "onnxruntime_views_per_s": rate(lambda: sess.run(None, {"views": x}), len(x), seconds),
    }
    if importlib.util.find_spec("torch") is None:
        return out
    import torch

    torch.set_num_threads(threads)
    if ckpt is not None and ckpt.is_file():
        from fpattr.training.export import load_extractor

        model, out["torch_weights"] = load_extractor(ckpt), str(ckpt)
    else:
        model, out["torch_weights"] = torch_twin(card), f"{card.parent / c['file']} (read back)"
    xt = torch.from_numpy(x)

    def run() -> Any:
        with torch.no_grad():
            return model(xt)

    a, b = sess.run(None, {"views": x})[0], run().numpy()
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    out["parity_min_cosine"] = float(cos.min())
    out["torch_eager_views_per_s"] = rate(run, len(x), seconds)
    out["ratio_ort_over_torch"] = out["onnxruntime_views_per_s"] / out["torch_eager_views_per_s"]
    return out


def help_seconds(n: int = 5) -> float:
    """Mean wall time of ``fpattr --help`` in a fresh interpreter."""
    t = time.perf_counter()
    for _ in range(n):
        subprocess.run([sys.executable, "-m", "fpattr", "--help"], capture_output=True)
    return (time.perf_counter() - t) / n


def make_images(folder: Path, n: int, size: int) -> None:
    from fpattr.testing import write_generator_images

    write_generator_images(folder, "checker", n=n, size=size, seed=1)


#: Peak RSS of the process itself, in KiB: VmHWM, which exec resets (``ru_maxrss`` keeps
#: the forking parent's peak across exec on Linux, so a big benchmark process would read
#: as the child's memory); ``ru_maxrss`` where there is no /proc.
_PEAK_RSS = (
    "def _peak():\n"
    "    try:\n"
    "        with open('/proc/self/status') as f:\n"
    "            return next(int(x.split()[1]) for x in f if x.startswith('VmHWM'))\n"
    "    except (OSError, StopIteration):\n"
    "        import resource\n"
    "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
)


def attribute_run(folder: Path, gallery: Path, env: dict) -> dict:
    code = (
        "import runpy, sys; sys.argv = ['fpattr'] + sys.argv[1:]\n"
        + _PEAK_RSS
        + "try:\n    runpy.run_module('fpattr', run_name='__main__')\n"
        "finally:\n    print('MAXRSS', _peak(), file=sys.stderr)\n"
    )
    t = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "attribute",
            str(folder),
            "-g",
            str(gallery),
            "-f",
            "jsonl",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    summ = lines[-1] if lines else {}
    rss = [int(x.split()[1]) for x in r.stderr.splitlines() if x.startswith("MAXRSS")]
    return {
        "exit": r.returncode,
        "wall_seconds": wall,
        "n": summ.get("n_ok"),
        "pipeline_images_per_s": summ.get("images_per_second"),
        "max_rss_mb": rss[0] / 1024 if rss else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", type=Path, default=Path("models/default.json"))
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--size", type=int, default=128, help="image side (4 views of 64 each)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        }
    }
    res["inference"] = [
        ort_vs_torch(args.model, args.checkpoint, b, 2, args.seconds) for b in (64, 256)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "FPATTR_HOME": str(tmp / "home"), "FPATTR_LOAD_PLUGINS": ""}
        make_images(tmp / "imgs", args.images * 4, args.size)
        ref = tmp / "ref"
        make_images(ref, 5, args.size)
        subprocess.run(
            [sys.executable, "-m", "fpattr", "gallery", "add", "m", str(ref), "-q", "-f", "none"],
            env=env,
            check=True,
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fpattr",
                "gallery",
                "add",
                "m2",
                str(ref),
                "-q",
                "-f",
                "none",
                "--views",
                "1",
            ],
            env=env,
            check=True,
        )
        few = tmp / "few"
        few.mkdir()
        for p in sorted((tmp / "imgs").glob("*.png"))[: args.images]:
            (few / p.name).symlink_to(p)
        gal = Path(env["FPATTR_HOME"]) / "galleries" / "default"
        res["attribute_n"] = attribute_run(few, gal, env)
        res["attribute_4n"] = attribute_run(tmp / "imgs", gal, env)
    card = json.loads(args.model.read_text())
    views = card.get("default_views", 4)
    pure = max(r["onnxruntime_views_per_s"] for r in res["inference"]) / views
    e2e = res["attribute_4n"]["pipeline_images_per_s"] or 0
    res["pure_inference_images_per_s"] = pure
    res["end_to_end_images_per_s"] = e2e
    res["pipeline_overhead"] = 1 - e2e / pure if pure else None
    res["help_seconds"] = help_seconds(5)
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
