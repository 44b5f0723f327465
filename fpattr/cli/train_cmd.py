"""`fpattr train`, `fpattr export` (need the [train] extra: torch, onnx, onnxscript) and
`fpattr quantize` (onnx + onnxruntime, no torch)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from fpattr.cli import common


def register(app: typer.Typer) -> None:
    app.command("train", no_args_is_help=True)(train)
    app.command("export", no_args_is_help=True)(export)
    app.command("quantize", no_args_is_help=True)(quantize)


def _need_export_deps() -> None:
    """Fail before any work when the exporter or the parity check cannot run."""
    import importlib.util

    from fpattr.errors import UsageError

    common.need_torch("export")
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"export needs {' and '.join(missing)} (torch.onnx.export(dynamo=True)): "
            "pip install 'fpattr[train]'"
        )
    if importlib.util.find_spec("onnxruntime") is None:
        raise UsageError("the export parity check needs ONNX Runtime: pip install 'fpattr[cpu]'")


def train(
    zoo: Path = typer.Argument(..., help="A zoo made by `fpattr synth` (folder per model)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (checkpoints, results)."),
    preset: str = typer.Option("compact", "--preset", help="tiny | compact (CPU) | gpu."),
    steps: int = typer.Option(None, "--steps", min=1, help="Override the preset's steps."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0 = default)."),
    seed: int = typer.Option(0, "--seed"),
    set_: list[str] = typer.Option(
        None,
        "--set",
        help="Override a config field KEY=VALUE, e.g. --set lr=1e-3 "
        "--set extractor.dim=64 (repeatable).",
    ),
    quiet: bool = common.QuietOpt,
) -> None:
    """Train the fingerprint extractor on a synthetic zoo (resumable: rerun to continue).

    Several GPUs: torchrun --nproc_per_node N -m fpattr train ... (DDP; each process
    draws its own P x K batches, rank 0 evaluates and saves).

    Example: fpattr train runs/zoo --out runs/extractor --preset compact
    """
    common.need_torch("train")
    from fpattr.errors import UsageError
    from fpattr.training.presets import preset as get_preset
    from fpattr.training.train import TrainConfig
    from fpattr.training.train import train as run_train

    d = get_preset(preset)
    d.update({"zoo": str(zoo), "out": str(out), "device": device, "threads": threads, "seed": seed})
    if steps:
        d["steps"] = steps
    for key, value in common.parse_opts(set_, "--set").items():
        head, _, tail = key.partition(".")
        if tail:
            group = d.setdefault(head, {})
            if not isinstance(group, dict):
                raise UsageError(f"--set {key}: {head} is a single setting, not a group")
            group[tail] = value
        else:
            d[head] = value
    cfg = TrainConfig.from_dict(d)
    console = common.stderr_console(quiet)
    command = "fpattr " + shlex.join(sys.argv[1:]) + "\n"

    def record_command() -> None:
        # only once the run is accepted (checks passed, run folder locked): a refused
        # invocation must not replace the command that made the checkpoint (export's card)
        from fpattr.io.atomic import atomic_write_text

        atomic_write_text(out / "command.txt", command)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"),
        console=console,
        disable=quiet or not console.is_terminal,
    ) as prog:
        task = prog.add_task("train", total=cfg.steps, loss="")

        def progress(step: int, total: int, losses: dict[str, float]) -> None:
            prog.update(
                task, completed=step, loss=" ".join(f"{k} {v:.3f}" for k, v in losses.items())
            )

        result = run_train(
            cfg,
            log=lambda s: console.print(s, markup=False, highlight=False),
            progress=progress,
            on_start=record_command,
        )
    if "rank" in result:  # a non-zero torchrun rank: rank 0 reports
        return
    keys = ("steps", "seconds", "validation", "split_sizes")
    print(json.dumps({k: result[k] for k in keys}, indent=2))


def export(
    run: Path = typer.Argument(..., help="A training run folder (has extractor.pt)."),
    out: Path = typer.Option(Path("models"), "--out", "-o", help="Where to write the model."),
    name: str = typer.Option("default", "--name", help="Model name (file stem)."),
    parity_images: Path = typer.Option(
        None,
        "--parity-images",
        help="Real images for the parity check (default: the bundled demo images).",
    ),
    min_cosine: float = typer.Option(0.9999, "--min-cosine", help="Parity acceptance."),
    views: int = typer.Option(4, "--views", min=1, help="Default views per image."),
    fuse_spectrum: bool = typer.Option(
        False,
        "--fuse-spectrum",
        help="Fuse the learned embedding with the spectral "
        "fingerprint; the weight and the calibration are fitted on the run's held-out "
        "calibration models.",
    ),
    replace_shipped: bool = typer.Option(
        False,
        "--replace-shipped",
        help="Allow replacing a shipped extractor (default, default-int8, v2) in the "
        "shipped models folder: galleries and analysis heads bound to it stop working.",
    ),
) -> None:
    """Export a trained extractor to ONNX, check parity with torch, write the model card.

    Example: fpattr export runs/extractor --out models --name my-extractor
    """
    common.check_export_target(out, name, replace_shipped)  # before any work
    _need_export_deps()
    from fpattr.paths import data_dir
    from fpattr.training.export import export as run_export
    from fpattr.training.export import find_images

    ckpt = run / "extractor.pt"
    tr_file = run / "train_result.json"
    train_result = json.loads(tr_file.read_text()) if tr_file.is_file() else None
    if fuse_spectrum:
        from fpattr.training.hybrid import fuse_run

        _, train_result = fuse_run(run, n_views=views, log=lambda m: print(m, file=sys.stderr))
        ckpt = run / "fused.pt"
    images = find_images(parity_images or data_dir() / "demo")
    command = (run / "command.txt").read_text().strip() if (run / "command.txt").is_file() else ""
    card = run_export(
        ckpt,
        out,
        name=name,
        parity_images=images,
        train_result=train_result,
        min_cosine=min_cosine,
        default_views=views,
        command=command,
    )
    print(
        json.dumps(
            {
                "model": str(out / card["file"]),
                "sha256": card["sha256"],
                "size_bytes": card["size_bytes"],
                "parity": card["parity"],
                "exporter": card["exporter"],
            },
            indent=2,
        )
    )


def quantize(
    card: Path = typer.Argument(
        ..., help="Model card of the FP32 model (e.g. models/default.json)."
    ),
    out: Path = typer.Option(Path("models"), "--out", "-o", help="Where to write the model."),
    name: str = typer.Option("default-int8", "--name", help="Model name (file stem)."),
    calib_images: Path = typer.Option(
        ...,
        "--calib-images",
        help="Real photos for the activation ranges; every --holdout-every-th is held out "
        "for the parity check.",
    ),
    n_views: int = typer.Option(16, "--n-views", min=1, help="Views per calibration image."),
    max_images: int = typer.Option(200, "--max-images", min=2, help="First N images (sorted)."),
    holdout_every: int = typer.Option(5, "--holdout-every", min=2),
    parity_images: Path = typer.Option(
        None,
        "--parity-images",
        help="A second parity set (default: the bundled demo images, generated).",
    ),
    op_types: str = typer.Option(
        "Conv", "--op-types", help="Op types screened for INT8, comma-separated (Conv,Gemm,MatMul)."
    ),
    node_min_cosine: float = typer.Option(0.999, "--node-min-cosine"),
    min_cosine: float = typer.Option(0.98, "--min-cosine", help="Parity acceptance (min)."),
    full_range_weights: bool = typer.Option(
        False,
        "--full-range-weights",
        help="8-bit weights instead of 7: a little more precise, but their U8S8 products can "
        "saturate on x86 CPUs without VNNI (AVX2), so the model may lose accuracy there.",
    ),
    quiet: bool = common.QuietOpt,
    replace_shipped: bool = typer.Option(
        False,
        "--replace-shipped",
        help="Allow replacing a shipped extractor (e.g. default-int8) in the shipped models "
        "folder.",
    ),
) -> None:
    """Quantize an exported extractor to INT8 (ONNX Runtime QDQ, per-channel weights).

    Deterministic: the same inputs give the same bytes. Nothing is written unless the INT8
    embeddings stay within --min-cosine of FP32 on held-out views.

    Example: fpattr quantize models/default.json --out models --name default-int8
    --calib-images ../shared/data/bsds500/train --replace-shipped
    """
    import importlib.util

    common.check_export_target(out, name, replace_shipped)  # before any work

    from fpattr.errors import UsageError

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"quantize needs {' and '.join(missing)}: pip install 'fpattr[train,cpu]'")
    from fpattr.paths import data_dir
    from fpattr.training.quantize import quantize as run_quantize

    console = common.stderr_console(quiet)
    result = run_quantize(
        card,
        out,
        name=name,
        calib_images=calib_images,
        n_views=n_views,
        max_images=max_images,
        holdout_every=holdout_every,
        parity_images=parity_images or data_dir() / "demo",
        op_types=tuple(t.strip() for t in op_types.split(",") if t.strip()),
        node_min_cosine=node_min_cosine,
        min_cosine=min_cosine,
        full_range_weights=full_range_weights,
        command="fpattr " + shlex.join(sys.argv[1:]),
        log=lambda m: console.print(m, markup=False, highlight=False),
    )
    q = result["quantization"]
    print(
        json.dumps(
            {
                "model": str(out / result["file"]),
                "sha256": result["sha256"],
                "size_bytes": result["size_bytes"],
                "source_size_bytes": q["source"]["size_bytes"],
                "int8_nodes": q["screening"]["int8_nodes"],
                "fp32_nodes": q["screening"]["fp32_nodes"],
                "parity": result["parity"],
            },
            indent=2,
        )
    )
