"""`fpattr attribute --engine ray`: the same outputs as the local engine, record for record.

One local Ray cluster (2 CPUs) is started for the module and shared: the in-process runs
use it as the caller's cluster (``RayEngine`` sees Ray initialised). Subprocess runs that
join or start clusters are in test_ray_interrupt.py. Skipped only when the ``[ray]`` extra
is not installed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from fpattr.io.walk import iter_inputs
from fpattr.pipeline import ONNX_THREADS
from fpattr.testing import run_cli, write_generator_images

ray = pytest.importorskip("ray", reason="Ray Data not installed: pip install 'fpattr[ray]'")
pytest.importorskip("ray.data", reason="Ray Data not installed: pip install 'fpattr[ray]'")

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
GENS = ("nearest", "bilinear", "checker")


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    """The module's 2-CPU local cluster (tests/cli/conftest.py)."""
    return ray_cluster


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> dict[str, Any]:
    """A gallery and a folder of queries with every kind of bad input mixed in."""
    root = tmp_path_factory.mktemp("ray")
    for gen in GENS:
        write_generator_images(root / "refs" / gen, gen, n=5, size=64, seed=0)
        write_generator_images(root / "queries", gen, n=4, size=64, seed=100, prefix=f"{gen}_")
        r = run_cli(
            ["gallery", "add", gen, root / "refs" / gen, "-g", root / "gallery", "-b", "spectrum"]
        )
        assert r.exit_code == 0, r.output
    q = root / "queries"
    (q / "notes.txt").write_text("not an image\n", encoding="utf-8")  # skipped in a folder
    (q / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # fails to decode
    good = (q / "checker_000.png").read_bytes()
    (q / "truncated.png").write_bytes(good[: len(good) // 2])  # cut short
    (q / "dangling.png").symlink_to(root / "gone.png")  # unreadable: no target
    (q / ".hidden.png").write_bytes(good)  # skipped: hidden
    if not ROOT:  # root reads through permission bits
        locked = q / "locked.png"
        locked.write_bytes(good)
        locked.chmod(0o000)
    os.mkfifo(root / "fifo.png")  # named explicitly: refused, never opened
    # relative paths, as a user types them; a missing one and a FIFO named explicitly
    paths = ["queries", "missing/nope.png", "fifo.png"]
    return {"root": root, "gallery": root / "gallery", "paths": paths}


def _records(text: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(x) for x in text.splitlines() if x]
    manifest = [x for x in lines if x.get("type") == "manifest"]
    summary = [x for x in lines if x.get("type") == "summary"]
    assert len(manifest) == 1 and len(summary) == 1 and lines[-1] is summary[0]
    return manifest[0], [x for x in lines if x.get("type") == "result"], summary[0]


def _rounded(x: Any) -> Any:
    """Probabilities and scores compared to 1e-6 (floats only; structure exactly)."""
    if isinstance(x, float):
        return round(x, 6)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def _same_run(local: dict[str, Any], remote: dict[str, Any]) -> None:
    """Manifests or summaries equal but for timing, host and the engine's own block."""
    a, b = dict(local), dict(remote)
    if "schema" in a:  # a manifest: the local engine records its threads too
        assert a.pop("engine")["name"] == "local"
    else:
        assert "engine" not in a
    b.pop("engine")
    for m in (a, b):
        for k in ("created", "started", "finished", "timing", "host", "seconds"):
            m.pop(k, None)
        m.pop("images_per_second", None)
    assert _rounded(a) == _rounded(b)


def _attribute(mixed, monkeypatch, *args: Any) -> Any:
    monkeypatch.chdir(mixed["root"])  # relative input paths, as a user types them
    common = ["-g", mixed["gallery"], "-b", "spectrum"]
    return run_cli(["attribute", *args, *common])


@pytest.fixture(scope="module")
def local(mixed) -> dict[str, Any]:
    """The local engine's outputs for the mixed inputs: JSONL + HTML, and CSV."""
    out, rep = mixed["root"] / "local.jsonl", mixed["root"] / "local.html"
    cwd = os.getcwd()
    os.chdir(mixed["root"])
    try:
        common = ["-g", mixed["gallery"], "-b", "spectrum", *mixed["paths"]]
        r = run_cli(["attribute", *common, "-o", out, "--report", rep, "--as-set"])
        c = run_cli(["attribute", *common, "-f", "csv"])
    finally:
        os.chdir(cwd)
    assert r.exit_code == 1 and c.exit_code == 1, r.output + c.output
    return {"jsonl": out.read_text(), "html": rep.read_text(), "csv": c.stdout, "stderr": r.stderr}


def _html_parts(page: str) -> tuple[str, str]:
    """The results section exactly, and the summary without its time tile."""
    results = re.search(r'<section id="results">.*?</section>', page, re.S)
    summary = re.search(r'<section class="panel" id="summary">.*?</section>', page, re.S)
    assert results and summary
    return results.group(0), re.sub(r"[\d.]+ s\b|[\d.]+ images/s", "T", summary.group(0))


def _csv_rows(text: str) -> list[list[Any]]:
    def cell(x: str) -> Any:
        try:
            return round(float(x), 6)
        except ValueError:
            return x

    return [[cell(x) for x in row] for row in csv.reader(io.StringIO(text))]


def test_ray_outputs_equal_local_with_failures(cluster, mixed, local, tmp_path, monkeypatch):
    """JSONL, HTML and CSV of a ray run equal the local run's; a corrupt, a truncated and
    unreadable inputs fail with the same per-file reasons; exit 1; every input counted."""
    out, rep = tmp_path / "ray.jsonl", tmp_path / "ray.html"
    ray_args = ["--engine", "ray", "--ray-workers", 2]
    r = _attribute(
        mixed, monkeypatch, *mixed["paths"], "-o", out, "--report", rep, "--as-set", *ray_args
    )
    assert r.exit_code == 1, r.output
    assert r.stderr == local["stderr"]  # progress and notes on stderr as in a local run
    r2 = _attribute(mixed, monkeypatch, *mixed["paths"], "-f", "csv", *ray_args)
    assert r2.exit_code == 1, r2.output

    lm, lrec, ls = _records(local["jsonl"])
    rm, rrec, rs = _records(out.read_text())
    assert rrec == lrec  # record for record, bit for bit, in the same order
    _same_run(lm, rm)
    _same_run(ls, rs)
    assert _html_parts(rep.read_text()) == _html_parts(local["html"])
    assert _csv_rows(r2.stdout) == _csv_rows(local["csv"])

    # every input accounted for: one record per walked input, each failure with a reason
    walked = [str(it.path) for it in iter_inputs([mixed["root"] / p for p in mixed["paths"]])]
    assert len(rrec) == len(walked) == rs["n_inputs"] + rs["n_skipped"]
    why = {Path(x["path"]).name: x["error"] for x in rrec if x["status"] == "error"}
    assert set(why) >= {"broken.png", "truncated.png", "dangling.png", "nope.png", "fifo.png"}
    assert all(why.values())
    assert "broken symbolic link" in why["dangling.png"] and "no such" in why["nope.png"]
    assert "not a regular file" in why["fifo.png"]
    skipped = {Path(x["path"]).name for x in rrec if x["status"] == "skipped"}
    assert skipped == {"notes.txt", ".hidden.png"}
    assert rs["n_ok"] == 12 and rs["n_failed"] == len(why)
    assert rs["as_set"]["n_images"] == ls["as_set"]["n_images"] == 12

    # the manifest records the plan; the summary what each actor ran and did
    eng = rm["engine"]
    assert eng["name"] == "ray" and eng["cluster"] == "connected" and eng["actors"] == 2
    assert eng["cpus_per_actor"] == 1 and eng["decode_workers_per_actor"] == 1
    assert eng["onnx_threads_per_lane"] is None  # spectrum: no ONNX Runtime
    actors = rs["engine"]["actors"]
    assert sum(a["inputs"] for a in actors) == len(rrec) and rs["engine"]["worker_failures"] == 0


def test_files_from_list_and_manifest(cluster, mixed, local, tmp_path, monkeypatch):
    """A list of paths and a manifest (CSV; an earlier JSONL results file) are read as the
    same inputs: the ray run's records equal the local run's given the paths directly."""
    lst = mixed["root"] / "inputs.txt"
    lst.write_text("".join(f"{p}\n" for p in mixed["paths"]), encoding="utf-8")
    _, lrec, _ = _records(local["jsonl"])
    man = mixed["root"] / "inputs.csv"
    man.write_text("path,label\n" + "".join(f"{x['path']},x\n" for x in lrec), encoding="utf-8")
    prior = mixed["root"] / "local.jsonl"  # an fpattr results file lists its inputs too

    for source in (lst, man, prior):  # reading the file is the driver's: ray once
        out = tmp_path / f"{source.suffix[1:]}.jsonl"
        engine = ["--engine", "ray"] if source is lst else []
        r = _attribute(mixed, monkeypatch, "--files-from", source.name, "-o", out, *engine)
        assert r.exit_code == 1, r.output
        m, rec, _ = _records(out.read_text())
        assert m["settings"]["files_from"] == source.name and m["settings"]["inputs"] == []
        if source is lst:  # the folder listed is walked as on the command line
            assert rec == lrec
            continue
        was_skipped = {x["path"] for x in lrec if x["status"] == "skipped"}
        if source is prior:
            # a results file re-runs the same inputs: what its walk skipped on purpose
            # is passed over, not named (break-it: a loop link was walked again)
            assert rec == [x for x in lrec if x["path"] not in was_skipped]
            continue
        # a manifest of one's own names each file: what a folder's walk skipped is read
        # (a hidden image) or failed (a text file named explicitly), as on the command line
        assert [x["path"] for x in rec] == [x["path"] for x in lrec]
        assert [x for x in rec if x["path"] not in was_skipped] == [
            x for x in lrec if x["path"] not in was_skipped
        ]
        now = {Path(x["path"]).name: x["status"] for x in rec if x["path"] in was_skipped}
        assert now == {"notes.txt": "error", ".hidden.png": "ok"}


def test_python_api_fatal_worker_error_names_the_node(cluster, mixed):
    """An actor that cannot open the gallery stops the run with the reason (exit 2), not a
    Ray traceback; nothing is yielded after it."""
    from fpattr import engine_ray
    from fpattr.pipeline import RunStats, Settings

    eng = engine_ray.RayEngine.start(
        address=None,
        workers=1,
        backbone="spectrum",
        backbone_opt=[],
        device="auto",
        decode_workers=2,
    )
    spec = eng.spec("spectrum", [], "auto", str(mixed["root"] / "no-gallery"), Settings())
    items = list(iter_inputs([mixed["root"] / "queries"]))
    with pytest.raises(engine_ray.RayEngineError) as err:
        list(eng.attribute(items, RunStats(), spec, session=None))
    assert err.value.exit_code == 2
    assert "on Ray node" in str(err.value) and "no gallery at" in str(err.value)
    eng.close()
    assert ray.is_initialized()  # the caller's cluster is left as it was


def test_onnx_threads_times_actors_fit_the_cores(cluster, tmp_path, monkeypatch):
    """With the ONNX extractor each actor gets its share of the CPUs as ONNX Runtime
    threads (actors x threads <= CPUs), the manifest records it and the actors report
    using it; records still equal the local engine's."""
    from fpattr.backbones.onnx import default_model_available

    if not default_model_available():
        pytest.skip("the shipped ONNX extractor or onnxruntime is missing")
    for gen in GENS[:2]:
        write_generator_images(tmp_path / "refs" / gen, gen, n=3, size=64, seed=0)
        write_generator_images(tmp_path / "q", gen, n=3, size=64, seed=9, prefix=gen)
        r = run_cli(["gallery", "add", gen, tmp_path / "refs" / gen, "-g", tmp_path / "g"])
        assert r.exit_code == 0, r.output
    monkeypatch.chdir(tmp_path)
    common = ["attribute", "q", "-g", "g", "-b", "default", "-f", "jsonl", "-q"]
    loc = run_cli(common)
    assert loc.exit_code == 0, loc.output
    _, lrec, _ = _records(loc.stdout)
    r = run_cli([*common, "--engine", "ray", "--ray-workers", 2])  # other clusters' plans:
    assert r.exit_code == 0, r.output  # test_plan_actors
    m, rec, s = _records(r.stdout)
    eng = m["engine"]
    assert (eng["actors"], eng["cpus_per_actor"], eng["decode_workers_per_actor"]) == (2, 1, 1)
    per_actor = eng["onnx_threads_per_lane"] * eng["lanes_per_actor"]
    assert eng["actors"] * per_actor <= eng["cluster_cpus"] == 2
    ran = s["engine"]["actors"]  # what each actor really ran with
    assert 1 <= len(ran) <= 2
    assert all(a["onnx_threads"] * a["lanes"] == per_actor == 1 for a in ran)
    assert all(a["decode_workers"] == 1 for a in ran)
    assert _rounded(rec) == _rounded(lrec)


@pytest.mark.parametrize(
    ("cpus", "workers", "threads", "want"),
    [
        ([2], None, None, (2, 1, 1, 1, 1)),  # one actor per CPU by default
        ([2], 1, None, (1, 2, 1, 2, 2)),  # one actor: 2 lanes of 1 thread, 2 decoders
        ([8, 8], 3, None, (3, 4, 1, 4, 2)),  # 4 CPUs each: 2 fit on a node, 3 on two
        ([8, 4], 3, 2, (3, 4, 2, 2, 2)),  # threads=2: 2 lanes of 2 in 4 CPUs
        ([16, 2], 2, None, (2, 8, 1, 8, 2)),  # both fit on the big node: never span
        ([2], 2, 3, (2, 1, 3, 1, 1)),  # the user's threads are kept (and noted)
        ([2], 1, 0, (1, 2, 0, 1, 2)),  # threads=0 (ORT's every core) as given: one lane
    ],
)
def test_plan_actors(cpus, workers, threads, want):
    from fpattr.engine_ray import plan_actors

    assert ONNX_THREADS == 1  # the expectations below assume the pipeline's default
    p = plan_actors(cpus, workers, 2, onnx=True, threads=threads)
    got = (
        p.actors,
        p.cpus_per_actor,
        p.onnx_threads_per_lane,
        p.lanes_per_actor,
        p.decode_workers_per_actor,
    )
    assert got == want
    if threads in (None, 2):  # actors x lanes x threads fit the cores
        assert p.actors * p.lanes_per_actor * p.onnx_threads_per_lane <= sum(cpus)
    spectrum = plan_actors(cpus, workers, 2, onnx=False)
    assert (spectrum.onnx_threads_per_lane, spectrum.lanes_per_actor) == (None, 1)


@pytest.mark.parametrize(("cpus", "workers", "want"), [([2], None, 1), ([16], 1, 4), ([16], 2, 2)])
def test_plan_default_decoders_follow_the_actors_share(cpus, workers, want):
    """No --workers: each actor gets the local default for its CPUs (one per 4)."""
    from fpattr.engine_ray import plan_actors

    assert plan_actors(cpus, workers, None, onnx=True).decode_workers_per_actor == want


def test_plan_refuses_more_actors_than_cpus():
    from fpattr.engine_ray import plan_actors
    from fpattr.errors import UsageError

    with pytest.raises(UsageError, match="at most 4 actors"):
        plan_actors([2, 2], 5, 2, onnx=True)


def test_ray_engine_flags_need_ray_engine(mixed):
    q, g = mixed["root"] / "queries", mixed["gallery"]
    r = run_cli(["attribute", q, "-g", g, "--ray-workers", 2])
    assert r.exit_code == 2
    assert "--engine ray" in r.output


def test_cuda_is_refused_before_any_work(mixed):
    """Actors reserve no GPU: --device cuda is a usage error (exit 2), not a CPU run."""
    q, g = mixed["root"] / "queries", mixed["gallery"]
    r = run_cli(["attribute", q, "-g", g, "-b", "spectrum", "--engine", "ray", "--device", "cuda"])
    assert r.exit_code == 2 and "use the local engine for --device cuda" in r.stderr
