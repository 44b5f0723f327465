"""`--engine ray` stopped mid-run (Ctrl-C, SIGTERM, a worker process killed) in real
subprocesses: the output stays valid, `--resume` completes it, a lost worker is redone.

One 2-CPU local Ray cluster is started here for the module; the runs join it with
``--ray-address`` (a CLI run joining an existing cluster), except the resume, which starts
its own local cluster (no address). Skipped without the ``[ray]`` extra or off Linux (the
worker is found through /proc).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fpattr.testing import run_cli, write_generator_images

ray = pytest.importorskip("ray", reason="Ray Data not installed: pip install 'fpattr[ray]'")
pytest.importorskip("ray.data", reason="Ray Data not installed: pip install 'fpattr[ray]'")
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

GENS = ("nearest", "bilinear", "checker")
N_PER_GEN = 100  # 300 inputs: about 10 map batches, so a run is caught mid-way
# slow enough per image (~10 ms) that a run is surely caught mid-way
SLOW = ["-b", "spectrum", "--batch-size", "1", "--workers", "1", "--views", "16", "-q"]


@pytest.fixture(scope="module")
def address(ray_cluster) -> Any:
    """The module's 2-CPU cluster (tests/cli/conftest.py) the subprocess runs join: its GCS
    address."""
    return ray_cluster


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ray-interrupt")
    for gen in GENS:
        write_generator_images(root / "refs" / gen, gen, n=3, size=64, seed=0)
        write_generator_images(
            root / "queries", gen, n=N_PER_GEN, size=128, seed=100, prefix=f"{gen}_"
        )
        r = run_cli(
            ["gallery", "add", gen, root / "refs" / gen, "-g", root / "gallery", "-b", "spectrum"]
        )
        assert r.exit_code == 0, r.output
    w = {"root": root, "queries": root / "queries", "gallery": root / "gallery"}
    r = run_cli(_args(w)[3:] + ["-f", "jsonl"])  # the local engine's records, in-process
    assert r.exit_code == 0, r.output
    w["local"] = {x["path"]: x for x in _parse(r.stdout) if x["type"] == "result"}
    assert len(w["local"]) == len(GENS) * N_PER_GEN
    return w


def _args(world: dict[str, Any], *extra: Any) -> list[str]:
    cmd = [sys.executable, "-m", "fpattr", "attribute", world["queries"], "-g", world["gallery"]]
    return [str(a) for a in (*cmd, *SLOW, *extra)]


def _parse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]  # every line whole JSON


def _lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the last line is incomplete"
    return _parse(data.decode("utf-8"))


def _n_results(path: Path) -> int:
    """Whole result lines in ``path`` (a line still being written does not count: the run
    drops it when interrupted, and a signal sent on seeing its start found no result)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return sum(line.startswith(b'{"type":"result"') for line in data.split(b"\n")[:-1])


def _env_without_ray_address() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}


def _stop_mid_run(cmd: list[str], out: Path, signum: int) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _n_results(out) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _descendants(pid: int) -> list[int]:
    """Processes started (directly or not) by ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _map_workers() -> list[int]:
    """The Ray Data actors of this module's cluster (our own descendants only)."""
    found = []
    for pid in _descendants(os.getpid()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"MapWorker" in cmd:
            found.append(pid)
    return found


def _check_interrupted(p: subprocess.CompletedProcess, out: Path, world, signum: int) -> int:
    """Exit 128 + signum; the JSONL holds whole lines (manifest, results, no summary) and
    nothing else is left in its folder (no temp file, no half HTML report)."""
    assert p.returncode == 128 + signum, p.stderr.decode()
    assert "interrupted" in p.stderr.decode()
    assert sorted(x.name for x in out.parent.iterdir()) == [out.name]
    lines = _lines(out)
    kinds = [x["type"] for x in lines]
    assert kinds[0] == "manifest" and set(kinds[1:]) == {"result"}  # no summary: incomplete
    assert lines[0]["engine"]["cluster"] == "joined"
    done = lines[1:]
    assert 1 <= len(done) < len(world["local"])
    assert all(x == world["local"][x["path"]] for x in done)  # the finished ones are whole
    return len(done)


def test_sigterm_leaves_valid_output(address, world, tmp_path):
    """SIGTERM (Ray replaces its handler with a plain exit; fpattr's is kept): exit 143,
    whole lines, no half report."""
    out = tmp_path / "r.jsonl"
    cmd = _args(world, "--engine", "ray", "--ray-address", address, "-o", out)
    p = _stop_mid_run([*cmd, "--report", str(tmp_path / "r.html")], out, signal.SIGTERM)
    _check_interrupted(p, out, world, signal.SIGTERM)


def test_ctrl_c_then_ray_resume_completes_the_run(address, world, tmp_path):
    """Ctrl-C leaves a valid JSONL; `--resume --engine ray` on a local cluster started for
    the run (no --ray-address) completes it: every input exactly once, equal to the local
    engine's records."""
    out = tmp_path / "r.jsonl"
    cmd = _args(world, "--engine", "ray", "--ray-address", address, "-o", out)
    n_done = _check_interrupted(_stop_mid_run(cmd, out, signal.SIGINT), out, world, signal.SIGINT)

    env = _env_without_ray_address()
    resume = _args(world, "--engine", "ray", "-o", out, "--resume")
    r = subprocess.run(resume, capture_output=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr.decode()
    lines = _lines(out)
    manifests = [x for x in lines if x["type"] == "manifest"]
    assert [m["engine"]["cluster"] for m in manifests] == ["joined", "started"]
    assert manifests[1]["resumed"]["kept"] == n_done
    results = [x for x in lines if x["type"] == "result"]
    assert sorted(x["path"] for x in results) == sorted(world["local"])  # each exactly once
    assert all(x == world["local"][x["path"]] for x in results)
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["n_ok"] == len(world["local"])
    assert summary["resumed"]["kept"] == n_done
    assert summary["resumed"]["new"] == len(world["local"]) - n_done


def test_a_killed_worker_is_redone(address, world, tmp_path):
    """SIGKILL to one actor mid-run: its inputs are redone on new actors, the run ends
    with exit 0 and every record equal to the local engine's; stdout holds only the
    results (Ray's notice of the dead worker goes to stderr)."""
    cmd = _args(world, "--engine", "ray", "--ray-address", address, "-f", "jsonl")
    cmd.remove("-q")  # the lost worker is reported on stderr
    with open(tmp_path / "stderr", "wb") as err:  # a file: a full stderr pipe would block
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        try:
            assert proc.stdout is not None
            head = proc.stdout.readline()  # the manifest: the cluster is joined
            # the first actor, killed before its work is done (once results stream back,
            # an actor may already have finished its last batch: its death then costs
            # nothing and is never noticed)
            deadline = time.monotonic() + 60
            while not (workers := _map_workers()) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert workers, "no Ray Data actor found"
            os.kill(workers[0], signal.SIGKILL)
            rest = proc.stdout.read()
            proc.wait(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, stderr
    lines = _parse((head + rest).decode("utf-8"))
    results = [x for x in lines if x["type"] == "result"]
    assert [x["path"] for x in results] == sorted(world["local"])  # input order, each once
    assert all(x == world["local"][x["path"]] for x in results)
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["n_ok"] == len(world["local"])
    assert summary["engine"]["worker_failures"] >= 1
    assert "a Ray worker was lost" in stderr


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def test_ctrl_c_while_the_cluster_starts_leaves_no_ray_process(world, tmp_path):
    """Ctrl-C in the middle of starting the local cluster: it is held until the start is
    done, then the cluster is shut down (no orphaned Ray process) and the run exits 130."""
    out = tmp_path / "r.jsonl"
    cmd = _args(world, "--engine", "ray", "-o", out)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, env=_env_without_ray_address())
    started: set[int] = set()  # every process the run started, seen by polling
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _descendants(proc.pid)
            started |= set(kids)
            if any(b"raylet" in _cmdline(k) for k in kids):
                break  # the cluster is being started: its node manager is up
            time.sleep(0.01)
        assert not out.exists(), "the cluster was up before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        while proc.poll() is None and time.monotonic() < deadline:
            started |= set(_descendants(proc.pid))
            time.sleep(0.01)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr.decode()
    time.sleep(3)  # ray.shutdown has signalled them; let them go
    assert not [pid for pid in started if _alive(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_unreachable_address_is_a_usage_error_at_once(world):
    """Ray retries a dead address for minutes; fpattr refuses it in seconds (exit 2)."""
    cmd = _args(world, "--engine", "ray", "--ray-address", "127.0.0.1:1")
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    assert r.returncode == 2, r.stderr.decode()
    assert "cannot join the Ray cluster at 127.0.0.1:1" in r.stderr.decode()
