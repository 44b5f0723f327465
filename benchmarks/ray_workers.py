"""`fpattr attribute --engine ray` with 1 and 2 workers against the local engine, one run.

    python benchmarks/ray_workers.py --images 801 --size 128 --rounds 3 \
        --out docs/results/ray_workers.json

Synthetic PNGs of three fake generators and a gallery of them (default extractor) are
written to a temporary folder; then, in interleaved rounds (drift of a shared machine hits
every engine alike), each engine runs `fpattr attribute FOLDER -f jsonl -q` in a
subprocess, timing the whole command and the arrival of its first output lines: the
manifest (the cluster is joined or started) and the first result (the actors are up and a
batch is done). Reported per engine, median over rounds: wall seconds, seconds to the
manifest and to the first result, and images per second once running (a ray run's
``engine.map_seconds``: from the first batch begun on any actor to the last result; a
local run's own seconds); and the best round of each (least disturbed, on a shared
machine). Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GENS = ("nearest", "bilinear", "checker")


def make_world(root: Path, images: int, size: int) -> tuple[Path, Path]:
    """A folder of ``images`` PNGs and a gallery of their generators."""
    from fpattr.testing import run_cli, write_generator_images

    per = -(-images // len(GENS))
    for gen in GENS:
        write_generator_images(root / "refs" / gen, gen, n=5, size=size, seed=0)
        write_generator_images(root / "q", gen, n=per, size=size, seed=100, prefix=f"{gen}_")
        r = run_cli(["gallery", "add", gen, root / "refs" / gen, "-g", root / "gallery", "-q"])
        if r.exit_code != 0:
            raise SystemExit(f"gallery add failed: {r.output}")
    return root / "q", root / "gallery"


def timed_run(folder: Path, gallery: Path, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "fpattr", "attribute", str(folder), "-g", str(gallery)]
    cmd += ["-f", "jsonl", "-q", *extra]
    arrivals: list[tuple[float, dict[str, Any]]] = []
    # stderr to a file, not a pipe: stdout is read line by line (arrival times), and a run
    # writing more than a pipe buffer to an unread stderr pipe would block for ever
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            arrivals.append((time.perf_counter() - t0, json.loads(line)))
        rc = proc.wait()
        wall = time.perf_counter() - t0
        if rc != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed: {err.read()[-1500:]}")
    results = [t for t, x in arrivals if x["type"] == "result"]
    summary = arrivals[-1][1]
    # once running: a ray run from its first batch begun to its last result (summary's
    # engine.map_seconds); a local run from its start (it has no start-up to leave out)
    busy = (summary.get("engine") or {}).get("map_seconds") or summary["seconds"]
    return {
        "wall_s": wall,
        "manifest_s": arrivals[0][0],
        "first_result_s": results[0],
        "running_images_per_s": len(results) / busy,
        "summary_images_per_s": summary["images_per_second"],
        "n": len(results),
        "engine": arrivals[0][1].get("engine"),
        "actors": (summary.get("engine") or {}).get("actors"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=801)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="--ray-workers values to run")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = ap.parse_args()
    engines = {"local": []} | {
        f"ray-{n}": ["--engine", "ray", "--ray-workers", n] for n in args.workers.split(",")
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in engines}
    with tempfile.TemporaryDirectory() as tmp:
        folder, gallery = make_world(Path(tmp), args.images, args.size)
        for _ in range(args.rounds):
            for name, extra in engines.items():
                runs[name].append(timed_run(folder, gallery, extra))

    def med(name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[name]), 2)

    keys = ("wall_s", "manifest_s", "first_result_s", "running_images_per_s")
    table = {
        name: {k: med(name, k) for k in keys} | {"engine": runs[name][0]["engine"]}
        for name in engines
    }
    best = {
        name: {
            "wall_s": round(min(r["wall_s"] for r in runs[name]), 2),
            "running_images_per_s": round(max(r["running_images_per_s"] for r in runs[name]), 1),
        }
        for name in engines
    }
    report = {
        "command": "python benchmarks/ray_workers.py " + " ".join(sys.argv[1:]),
        "images": runs["local"][0]["n"],
        "size": args.size,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "medians": table,
        "best": best,
        "runs": runs,
    }
    print(f"{'engine':8s} {'wall s':>7s} {'first result s':>15s} {'running img/s':>14s} (best)")
    for name, row in table.items():
        print(
            f"{name:8s} {row['wall_s']:7.2f} {row['first_result_s']:15.2f} "
            f"{row['running_images_per_s']:14.1f} ({best[name]['wall_s']:.2f} s, "
            f"{best[name]['running_images_per_s']:.1f} img/s)"
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
