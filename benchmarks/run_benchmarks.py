"""Every backbone on both benchmarks, clean and processed, in one run: the table, the
robustness curves and the design-choice analysis of docs/benchmarks.md.

    python benchmarks/run_benchmarks.py          # about 10 minutes on 2 CPU cores

Benchmarks (``fpattr evaluate --compare`` over every backbone, one call per condition):

* ``real``: the project's own generators (benchmarks/make_real_benchmark.py), 10
  references per model; clean, JPEG 95/85/75/50, down-scaled x0.75/x0.5 (all its images
  are 64 px, so down-scaling pads every image alike: no size cue).
* ``public``: ../shared/data/public-generators, 5 references per model; clean and JPEG.
* ``public-sc``: size-controlled down-scaling on the public generators. Their images range
  from 32 to 512 px, and padding a too-small image marks its size, which a backbone can
  then "recognise" instead of a fingerprint. Only generators whose images are all at least
  128 px are kept and every image is center-cropped to 64 px *after* resizing (x1, x0.75,
  x0.5), so every condition sees the same models and the same image size.

Inputs are built when missing (both resumable): the real benchmark (~90 min on 2 CPU
cores) and the ManiFPT real-patch reference. Each condition's result is cached under
--cache, keyed by the command, the shipped model's hash and the fpattr source's hash, so
re-running the same code only redraws.
Writes docs/results/benchmarks.json, docs/figures/bench_*.png and the generated section
of docs/benchmarks.md (between its ``benchmarks:begin``/``end`` markers).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eval_default import evaluate as run_evaluate  # same folder: run as a script
from eval_default import summary

ROOT = Path(__file__).resolve().parents[1]
BACKBONES = ["default", "manifpt", "spectrum", "marra", "corvi", "dct"]
LABEL = {
    "default": "default (learned)",
    "manifpt": "ManiFPT artifacts",
    "spectrum": "spectrum (training-free)",
    "marra": "Marra et al. (residual)",
    "corvi": "Corvi et al. (residual spectrum)",
    "dct": "Frank et al. (DCT)",
}
JPEG = [95, 85, 75, 50]
SCALES = [0.75, 0.5]
SC_MIN_SIDE, SC_CROP = 128, 64
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"


def suites(real: Path, public: Path) -> list[dict]:
    """(name, folder, refs, conditions) of every evaluation; conditions map to CLI flags."""
    jpeg = {f"jpeg{q}": ["--jpeg", str(q)] for q in JPEG}
    return [
        {
            "name": "real",
            "title": "real generators (10 refs)",
            "bench": real,
            "refs": 10,
            "conditions": {"clean": []}
            | jpeg
            | {f"resize{s}": ["--resize", str(s)] for s in SCALES},
        },
        {
            "name": "public",
            "title": "public generators (5 refs)",
            "bench": public,
            "refs": 5,
            "conditions": {"clean": []} | jpeg,
        },
        {
            "name": "public-sc",
            "title": f"public generators >= {SC_MIN_SIDE} px, center {SC_CROP} px (5 refs)",
            "bench": None,  # made from `public` at run time
            "refs": 5,
            "conditions": {
                f"resize{s}": ["--crop", str(SC_CROP)] + (["--resize", str(s)] if s != 1 else [])
                for s in [1, *SCALES]
            },
        },
    ]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    log("+ " + " ".join(map(str, cmd)))
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)


def ensure_inputs(args: argparse.Namespace) -> None:
    """Build the real benchmark and the ManiFPT reference when they are missing."""
    photos = args.photos
    if not (args.real_bench / "manifest.json").is_file():
        cmd = [sys.executable, ROOT / "benchmarks/make_real_benchmark.py", args.real_bench]
        cmd += ["--real", photos, "--images-per-model", "60"]
        log("real benchmark missing: training it (resumable; ~90 min on 2 CPU cores)")
        if subprocess.run([str(c) for c in cmd]).returncode != 0:
            raise SystemExit("make_real_benchmark.py failed")
    if "manifpt" in args.backbones and not args.manifpt_ref.is_file():
        cmd = [sys.executable, "-m", "fpattr", "artifacts", "index", photos / "val"]
        cmd += ["--out", args.manifpt_ref, "--space", "pixel", "--size", "64"]
        cmd += ["--patches", "20000"]
        r = run(cmd)
        if r.returncode != 0:
            raise SystemExit(f"fpattr artifacts index failed: {r.stderr[-2000:]}")


def size_controlled(public: Path, tmp: Path) -> Path:
    """Symlinked subset of `public`: folders whose images are all >= SC_MIN_SIDE px."""
    from PIL import Image

    out = tmp / "public-sc"
    out.mkdir()
    for d in sorted(p for p in public.iterdir() if p.is_dir()):
        sides = []
        for f in sorted(d.iterdir()):
            try:
                with Image.open(f) as im:
                    sides.append(min(im.size))
            except OSError:
                continue
        if sides and min(sides) >= SC_MIN_SIDE:
            (out / d.name).symlink_to(d.resolve(), target_is_directory=True)
    return out


@functools.cache
def model_hash() -> str:
    """Hash of the shipped extractor and its card (read once per run)."""
    h = hashlib.sha256()
    for name in ("default.onnx", "default.json"):
        p = ROOT / "models" / name
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def code_hash() -> str:
    """Hash of the fpattr package's source: a cached result is only reused by the code that
    made it (views, decoding, backbones and metrics all shape the figures)."""
    h = hashlib.sha256()
    for p in sorted((ROOT / "fpattr").rglob("*.py")):
        h.update(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def evaluate(
    suite: dict, cond: str, flags: list[str], args: argparse.Namespace
) -> tuple[dict, bool]:
    """One `fpattr evaluate --compare` call (eval_default's runner), or its cached result;
    returns (result, from the cache?)."""
    extra = list(flags)
    if "manifpt" in args.backbones:
        extra += ["--backbone-opt", f"manifpt:ref={args.manifpt_ref}"]
    backbones = ",".join(args.backbones)
    # keyed by what defines the result; the size-controlled bench lives in a temp folder
    key = {"suite": suite["name"], "refs": suite["refs"], "backbones": backbones}
    key |= {"extra": extra, "model": model_hash(), "code": code_hash()}
    cache = args.cache / f"{suite['name']}_{cond}.json"
    if not args.fresh and cache.is_file():
        doc = json.loads(cache.read_text())
        if doc.get("key") == key:
            log(f"cached: {suite['name']} {cond}")
            return doc["result"], True
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # manifpt's many small matmuls
    out = run_evaluate(suite["bench"], suite["refs"], backbones, extra, env=env)
    result = {"runs": [summary(x) for x in out["runs"]], "skipped": out.get("skipped")}
    args.cache.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "result": result}, indent=1) + "\n")
    return result, False


def analyze(args: argparse.Namespace) -> dict | None:
    """Design-choice heads (fitted on the synthetic zoo) scored on the real benchmark."""
    heads = ROOT / "models" / "analysis.json"
    if not heads.is_file():
        return None
    r = run([sys.executable, "-m", "fpattr", "analyze", "score", args.real_bench, "--heads", heads])
    if r.returncode != 0:
        log(f"analyze score failed: {r.stderr[-1000:]}")
        return None
    res = json.loads(r.stdout)
    res["synthetic"] = json.loads(heads.read_text()).get("metrics", {})
    return res


# --------------------------------------------------------------------------- output


def _cell(rows: list[dict], bb: str, metric: str, best: float) -> str:
    v = next((r[metric] for r in rows if r["backbone"] == bb), None)
    if v is None:
        return "-"
    s = f"{100 * v:.1f}" if metric == "top1" or metric.startswith("tar") else f"{v:.3f}"
    return f"**{s}**" if abs(v - best) < 1e-12 else s


def table_main(res: dict, backbones: list[str]) -> str:
    cols = [("real", "clean"), ("public", "clean")]
    metrics = [("top1", "top-1 %"), ("roc_auc", "AUC"), ("tar_at_far_1e-2", "TAR@1% %")]
    head = "| backbone | " + " | ".join(
        f"{'real' if s == 'real' else 'public'} {m}" for s, _ in cols for _, m in metrics
    )
    lines = [head + " |", "|---" * (1 + len(cols) * len(metrics)) + "|"]
    for bb in backbones:
        cells = []
        for s, c in cols:
            rows = res[s][c]["runs"]
            for m, _ in metrics:
                best = max(r[m] for r in rows)
                cells.append(_cell(rows, bb, m, best))
        lines.append(f"| {LABEL.get(bb, bb)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_conditions(res: dict, suite: str, backbones: list[str]) -> str:
    conds = list(res[suite])
    lines = [
        "| backbone | " + " | ".join(conds) + " |",
        "|---" * (1 + len(conds)) + "|",
    ]
    for bb in backbones:
        cells = []
        for c in conds:
            rows = res[suite][c]["runs"]
            b1, ba = max(r["top1"] for r in rows), max(r["roc_auc"] for r in rows)
            cells.append(f"{_cell(rows, bb, 'top1', b1)} / {_cell(rows, bb, 'roc_auc', ba)}")
        lines.append(f"| {LABEL.get(bb, bb)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wins(res: dict, backbones: list[str]) -> list[str]:
    """Which backbone is best on each (suite, condition, metric): the 'where each wins'."""
    out = []
    for suite, conds in res.items():
        for c, r in conds.items():
            rows = r["runs"]
            for m in ("top1", "roc_auc"):
                best = max(rows, key=lambda x: x[m])
                out.append(f"{suite}/{c}/{m}: {best['backbone']}")
    return out


def table_analysis(an: dict) -> str:
    syn = an.get("synthetic", {})
    lines = [
        "| choice | synthetic unseen models (per image) | synthetic unseen architectures "
        "| real benchmark per image | real per model (balanced; chance) | real NMI |",
        "|---|---|---|---|---|---|",
    ]
    for c in ("family", "upsampling", "norm", "activation"):
        v = syn.get("val", {}).get("per_image", {}).get(c)
        va = syn.get("val_arch", {}).get("per_image", {}).get(c)
        pi, pm = an["per_image"].get(c), an["per_model"].get(c)
        nmi = an.get("cluster_nmi", {}).get(c)
        lines.append(
            f"| {c} | "
            + (f"{100 * v['accuracy']:.1f} % (chance {100 * v['chance']:.1f})" if v else "-")
            + " | "
            + (f"{100 * va['accuracy']:.1f} % (chance {100 * va['chance']:.1f})" if va else "-")
            + " | "
            + (f"{100 * pi['accuracy']:.1f} % (chance {100 * pi['chance']:.1f})" if pi else "-")
            + " | "
            + (
                f"{100 * pm['balanced_accuracy']:.1f} % ({100 * pm['balanced_chance']:.1f})"
                if pm
                else "-"
            )
            + " | "
            + (f"{nmi:.2f}" if nmi is not None else "-")
            + " |"
        )
    return "\n".join(lines)


def plots(res: dict, backbones: list[str], figdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figdir.mkdir(parents=True, exist_ok=True)
    colors = dict(zip(BACKBONES, plt.cm.tab10.colors, strict=False))
    names = []

    def value(suite: str, cond: str, bb: str, m: str) -> float:
        rows = res[suite][cond]["runs"]
        return next((r[m] for r in rows if r["backbone"] == bb), float("nan"))

    # 1. overview: grouped bars, clean, both benchmarks
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (m, title) in zip(
        axes, [("top1", "identification top-1"), ("roc_auc", "pair ROC-AUC")], strict=True
    ):
        x = np.arange(2)
        w = 0.8 / len(backbones)
        for i, bb in enumerate(backbones):
            vals = [value("real", "clean", bb, m), value("public", "clean", bb, m)]
            ax.bar(
                x + (i - len(backbones) / 2 + 0.5) * w, vals, w, label=LABEL[bb], color=colors[bb]
            )
        ax.set_xticks(x, ["real generators (10 refs)", "public generators (5 refs)"])
        ax.set_title(title)
        ax.set_ylim(0.5 if m == "roc_auc" else 0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(figdir / "bench_overview.png", dpi=110)
    plt.close(fig)
    names.append("bench_overview.png")

    # 2. robustness curves: JPEG (real, public) and size-controlled down-scaling
    panels = [
        (
            "real",
            ["clean"] + [f"jpeg{q}" for q in JPEG],
            ["none"] + [str(q) for q in JPEG],
            "JPEG quality",
        ),
        (
            "public",
            ["clean"] + [f"jpeg{q}" for q in JPEG],
            ["none"] + [str(q) for q in JPEG],
            "JPEG quality",
        ),
        (
            "real",
            ["clean"] + [f"resize{s}" for s in SCALES],
            ["1"] + [str(s) for s in SCALES],
            "scale",
        ),
        (
            "public-sc",
            [f"resize{s}" for s in [1, *SCALES]],
            ["1"] + [str(s) for s in SCALES],
            "scale (crop 64)",
        ),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.5), sharey="row")
    for j, (suite, conds, ticks, xl) in enumerate(panels):
        for i, m in enumerate(("top1", "roc_auc")):
            ax = axes[i, j]
            for bb in backbones:
                ax.plot(
                    ticks,
                    [value(suite, c, bb, m) for c in conds],
                    "o-",
                    label=LABEL[bb],
                    color=colors[bb],
                )
            ax.set_xlabel(xl)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(suite)
            if j == 0:
                ax.set_ylabel("top-1" if m == "top1" else "pair ROC-AUC")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figdir / "bench_robustness.png", dpi=110)
    plt.close(fig)
    names.append("bench_robustness.png")
    return names


def plot_analysis(an: dict, figdir: Path) -> str:
    """Design-choice heads: accuracy vs chance (synthetic and real), and the real
    benchmark's up-sampling confusion, where the transfer shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    choices = ["family", "upsampling", "norm", "activation"]
    syn = an.get("synthetic", {}).get("val", {}).get("per_image", {})
    real = an.get("per_model", {})
    fig, (ax, cx) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.4, 1]})
    x = np.arange(len(choices))
    bars = [
        ("synthetic unseen models (per image)", syn, "balanced_accuracy", "balanced_chance"),
        ("real generators (per model)", real, "balanced_accuracy", "balanced_chance"),
    ]
    for i, (label, d, acc, chance) in enumerate(bars):
        vals = [d.get(c, {}).get(acc, np.nan) for c in choices]
        ch = [d.get(c, {}).get(chance, np.nan) for c in choices]
        ax.bar(x + (i - 0.5) * 0.38, vals, 0.38, label=label)
        ax.scatter(x + (i - 0.5) * 0.38, ch, marker="_", s=300, color="k", zorder=3)
    ax.set_xticks(x, choices)
    ax.set_ylim(0, 1.25)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("balanced accuracy (bar) / chance (-)")
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    conf = an.get("confusion", {}).get("upsampling", {})
    labels = sorted(set(conf) | {p for row in conf.values() for p in row})
    m = np.array([[conf.get(t, {}).get(p, 0) for p in labels] for t in labels])
    cx.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        if v:
            cx.text(j, i, str(v), ha="center", va="center", color="w" if v > m.max() / 2 else "k")
    cx.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
    cx.set_yticks(range(len(labels)), labels, fontsize=8)
    cx.set_xlabel("predicted")
    cx.set_ylabel("true")
    cx.set_title("up-sampling, real generators (models)")
    fig.tight_layout()
    fig.savefig(figdir / "bench_analysis.png", dpi=110)
    plt.close(fig)
    return "bench_analysis.png"


def write_docs(doc: Path, res: dict, an: dict | None, backbones: list[str], meta: dict) -> None:
    parts = [
        BEGIN,
        "<!-- generated by benchmarks/run_benchmarks.py; edit the script, not this section -->",
        f"`{meta['command']}` ({meta['seconds']:.0f} s, {meta['conditions_cached']} of "
        f"{meta['conditions']} conditions from the cache, {meta['date']}, shipped model "
        f"`{meta['model']}`). Bold: best in the column.",
        "",
        "### The table: clean images",
        "",
        f"Real generators: {res['real']['clean']['runs'][0]['n_models']} models, "
        f"{res['real']['clean']['runs'][0]['n_queries']} queries; public generators: "
        f"{res['public']['clean']['runs'][0]['n_models']} models, "
        f"{res['public']['clean']['runs'][0]['n_queries']} queries "
        "(top-1 and TAR@FAR=1 % in %, ROC-AUC on single-image pairs).",
        "",
        table_main(res, backbones),
        "",
        "![overview](figures/bench_overview.png)",
        "",
        "### Robustness (top-1 % / ROC-AUC)",
        "",
    ]
    for suite, title in [
        ("real", "Real generators, 10 references"),
        ("public", "Public generators, 5 references"),
        (
            "public-sc",
            f"Public generators with images >= {SC_MIN_SIDE} px, "
            f"center {SC_CROP} px after resizing (size-controlled), 5 references",
        ),
    ]:
        n = res[suite][next(iter(res[suite]))]["runs"][0]["n_models"]
        parts += [f"{title} ({n} models):", "", table_conditions(res, suite, backbones), ""]
    parts += ["![robustness](figures/bench_robustness.png)", ""]
    if an:
        parts += [
            "### Design-choice analysis on the real benchmark (`fpattr analyze score`)",
            "",
            f"Heads fitted on the synthetic zoo's training models, scored on the "
            f"{an['n_models']} real generators ({an['n_images']} images) they never saw. "
            "Chance per image is the majority-class rate; per model the balanced accuracy "
            "(mean recall per value) against 1 / values present.",
            "",
            table_analysis(an),
            "",
            "![analysis](figures/bench_analysis.png)",
            "",
            "Per-model confusion (truth -> predicted: models): "
            + "; ".join(
                f"{c}: "
                + ", ".join(
                    f"{t} -> " + "/".join(f"{p} {k}" for p, k in sorted(row.items()))
                    for t, row in sorted(conf.items())
                )
                for c, conf in an["confusion"].items()
            ),
            "",
        ]
    parts.append(END)
    text = doc.read_text() if doc.is_file() else "# Benchmarks\n\n"
    block = "\n".join(parts)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n## Every backbone, both benchmarks (one run)\n\n" + block + "\n"
    from fpattr.io.atomic import atomic_write_text

    atomic_write_text(doc, text)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--real-bench", type=Path, default=ROOT / "runs/realbench")
    ap.add_argument("--public", type=Path, default=ROOT.parent / "shared/data/public-generators")
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared/data/bsds500")
    ap.add_argument("--manifpt-ref", type=Path, default=ROOT / "runs/manifpt_ref.npz")
    ap.add_argument("--backbones", default=",".join(BACKBONES))
    ap.add_argument("--cache", type=Path, default=ROOT / "runs/benchmarks")
    ap.add_argument("--fresh", action="store_true", help="ignore cached conditions")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/results/benchmarks.json")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs/benchmarks.md")
    ap.add_argument("--figures", type=Path, default=ROOT / "docs/figures")
    args = ap.parse_args()
    args.backbones = [b for b in args.backbones.split(",") if b]
    if not args.public.is_dir():
        raise SystemExit(f"public generators not found: {args.public} (see --public)")
    t0 = time.time()
    ensure_inputs(args)
    res: dict = {}
    n_cached = n_conditions = 0
    with tempfile.TemporaryDirectory() as tmp:
        for s in suites(args.real_bench, args.public):
            if s["bench"] is None:
                s["bench"] = size_controlled(args.public, Path(tmp))
            res[s["name"]] = {}
            for c, flags in s["conditions"].items():
                res[s["name"]][c], cached = evaluate(s, c, flags, args)
                n_cached += cached
                n_conditions += 1
    an = analyze(args)
    meta = {
        "command": "python benchmarks/run_benchmarks.py",
        "argv": sys.argv[1:],
        "seconds": time.time() - t0,
        "conditions": n_conditions,
        "conditions_cached": n_cached,
        "date": time.strftime("%Y-%m-%d"),
        "model": model_hash(),
        "backbones": args.backbones,
    }
    doc = {"meta": meta, "results": res, "wins": wins(res, args.backbones), "analysis": an}
    from fpattr.io.atomic import atomic_write_text

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    plots(res, args.backbones, args.figures)
    if an:
        plot_analysis(an, args.figures)
    write_docs(args.docs, res, an, args.backbones, meta)
    log(f"done in {time.time() - t0:.0f} s: {args.out}, {args.docs}")
    print(json.dumps({"wins": doc["wins"]}, indent=1))


if __name__ == "__main__":
    main()
