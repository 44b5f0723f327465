"""Gallery search at scale: exact vs faiss HNSW on synthetic galleries, written to docs/.

For each size N (default 1e4, 1e5, 1e6 entries; clustered unit vectors in the extractor's
dimension, so nearest neighbours are not trivial), measures:
- build time of the HNSW index (the exact one has none);
- top-5 latency per query, one query at a time and in a batch of queries;
- recall@5 of HNSW against exact search, for several efSearch values, and the smallest
  efSearch reaching --target-recall;
- resident memory: process RSS before and after building each index (psutil when
  installed, else /proc/self/statm) and the peak (resource.getrusage).
It also times the exact search at small sizes to locate the crossover behind
``fpattr.index.EXACT_MAX_ENTRIES``.

    python benchmarks/gallery_index.py --out docs/results/gallery_index.json
    python benchmarks/gallery_index.py --sizes 10000,100000 --threads 2

The 1e6 size needs ~3 GB for the vectors (694 dimensions) plus the HNSW graph: run it
on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path


def _early_threads(argv: list[str]) -> None:
    """--threads also caps BLAS (the exact search), which reads its env only at import."""
    for i, a in enumerate(argv):
        n = a.split("=", 1)[1] if a.startswith("--threads=") else None
        if a == "--threads" and i + 1 < len(argv):
            n = argv[i + 1]
        if n and n != "0":
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = n


_early_threads(sys.argv[1:])

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fpattr.index import (  # noqa: E402
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    build_index,
    clustered_unit_vectors,
    recall_at_k,
)

K = 5


def rss_mb() -> float:
    """Current resident set size in MiB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def default_dim() -> int:
    card = ROOT / "models" / "default.json"
    try:
        return int(json.loads(card.read_text())["output"]["dim"])
    except (OSError, KeyError, ValueError):
        return 128


def queries_near(vectors: np.ndarray, n: int, spread: float, seed: int) -> np.ndarray:
    """Queries drawn like new members of the gallery's clusters (around random entries)."""
    rng = np.random.default_rng(seed)
    d = vectors.shape[1]
    q = vectors[rng.integers(0, len(vectors), n)]
    q = q + rng.standard_normal(q.shape, dtype=np.float32) * (spread / np.sqrt(d))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def per_query_ms(index, queries: np.ndarray, repeat_s: float) -> float:
    """Mean latency of single-query searches, cycling through ``queries``."""
    index.search(queries[0], K)  # warm-up
    t, n = time.perf_counter(), 0
    while n < len(queries) and (time.perf_counter() - t < repeat_s or n < 10):
        index.search(queries[n], K)
        n += 1
    return (time.perf_counter() - t) / n * 1e3


def batch_ms(index, queries: np.ndarray) -> float:
    """Latency per query of one batched search over all ``queries``."""
    t = time.perf_counter()
    index.search(queries, K)
    return (time.perf_counter() - t) / len(queries) * 1e3


def crossover(dim: int, sizes: list[int], args: argparse.Namespace) -> list[dict]:
    """Single-query latency of exact vs HNSW at small sizes."""
    rows = []
    for n in sizes:
        v, _ = clustered_unit_vectors(n, dim, seed=1)
        q = queries_near(v, 200, args.spread, seed=2)
        ex = build_index(v, "exact")
        h = build_index(v, "hnsw", ef_search=args.ef_search[0])
        rows.append(
            {
                "n": n,
                "exact_ms": round(per_query_ms(ex, q, 0.5), 4),
                "hnsw_ms": round(per_query_ms(h, q, 0.5), 4),
                "hnsw_build_s": round(h.build_seconds, 3),
            }
        )
        print(f"crossover n={n}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def one_size(n: int, dim: int, args: argparse.Namespace) -> dict:
    base = rss_mb()
    t = time.perf_counter()
    v, _ = clustered_unit_vectors(n, dim, spread=args.spread, seed=1)
    gen_s = time.perf_counter() - t
    q = queries_near(v, args.queries, args.spread, seed=2)
    after_vectors = rss_mb()
    ex = build_index(v, "exact")
    exact_single = per_query_ms(ex, q, args.seconds)
    t = time.perf_counter()
    _, truth = ex.search(q, K)
    exact_batch = (time.perf_counter() - t) / len(q) * 1e3
    before = rss_mb()
    h = build_index(v, "hnsw", ef_search=args.ef_search[0])
    hnsw_mb = rss_mb() - before
    sweep = []
    for ef in args.ef_search:
        h.params["ef_search"] = ef
        _, ids = h.search(q, K)
        sweep.append(
            {
                "ef_search": ef,
                "recall_at_5": round(recall_at_k(ids, truth), 5),
                "single_ms": round(per_query_ms(h, q, args.seconds), 4),
                "batch_ms": round(batch_ms(h, q), 4),
            }
        )
        print(f"n={n} {sweep[-1]}", file=sys.stderr, flush=True)
    ok = [s for s in sweep if s["recall_at_5"] >= args.target_recall]
    row = {
        "n": n,
        "dim": dim,
        "generate_s": round(gen_s, 2),
        "vectors_mb": round(v.nbytes / 2**20, 1),
        "rss_vectors_mb": round(after_vectors - base, 1),
        "hnsw_build_s": round(h.build_seconds, 2),
        "hnsw_rss_mb": round(hnsw_mb, 1),
        "exact_single_ms": round(exact_single, 4),
        "exact_batch_ms": round(exact_batch, 4),
        "hnsw": sweep,
        "chosen_ef_search": ok[0]["ef_search"] if ok else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    del h, ex, v
    return row


def table(rows: list[dict]) -> str:
    out = [
        "| N | build s | HNSW MB | exact ms/q | efSearch | recall@5 | HNSW ms/q | batch ms/q |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        best = next((s for s in r["hnsw"] if s["ef_search"] == r["chosen_ef_search"]), None)
        best = best or r["hnsw"][-1]
        out.append(
            f"| {r['n']:,} | {r['hnsw_build_s']} | {r['hnsw_rss_mb']} | "
            f"{r['exact_single_ms']} | {best['ef_search']} | {best['recall_at_5']} | "
            f"{best['single_ms']} | {best['batch_ms']} |"
        )
    return "\n".join(out)


def settings(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options, parsed: what :func:`one_size` and :func:`crossover` take
    (benchmarks/performance.py passes its own)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated N")
    ap.add_argument("--dim", type=int, default=default_dim(), help="default: the extractor's")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef-search", default="32,64,128,256", help="efSearch values to sweep")
    ap.add_argument("--target-recall", type=float, default=0.99)
    ap.add_argument("--spread", type=float, default=0.6, help="cluster noise (see fpattr.index)")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per single-query timing")
    ap.add_argument("--threads", type=int, default=0, help="faiss/BLAS threads (0: default)")
    ap.add_argument("--crossover", default="1000,2000,5000,10000,20000,50000")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "gallery_index.json")
    args = ap.parse_args(argv)
    args.ef_search = [int(x) for x in args.ef_search.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = settings(argv)
    sizes = [int(float(x)) for x in args.sizes.split(",") if x]
    if args.threads:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    cross = crossover(args.dim, [int(x) for x in args.crossover.split(",") if x], args)
    rows = [one_size(n, args.dim, args) for n in sizes]
    doc = {
        "benchmark": "gallery_index",
        "k": K,
        "hnsw": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
        "threads": args.threads or None,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "faiss": __import__("faiss").__version__,
        "numpy": np.__version__,
        "spread": args.spread,
        "queries": args.queries,
        "crossover": cross,
        "sizes": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(rows))
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
