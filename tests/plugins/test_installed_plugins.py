"""Real installed plugins: fpattr-example (pip-installed by the test command) and
fpattr-broken (pip-installed here into a throwaway folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

example_installed = pytest.mark.skipif(
    not any(ep.name == "example" for ep in metadata.entry_points(group="fpattr")),
    reason="fpattr-example is not installed (pip install -e plugins/fpattr-example)",
)


@pytest.fixture(scope="session")
def broken_site(tmp_path_factory) -> Path:
    """pip-install plugins/fpattr-broken into a target folder (offline, no build isolation)."""
    target = tmp_path_factory.mktemp("broken-site")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT / "plugins" / "fpattr-broken"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode:
        pytest.fail(f"cannot pip-install the broken plugin: {r.stderr[-800:]}")
    return target


def fpattr(*args, env=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fpattr", *map(str, args)],
        capture_output=True,
        text=True,
        env=e,
        timeout=120,
    )


@example_installed
def test_example_plugin_is_loaded_and_usable(tmp_path):
    from fpattr.plugins import PluginHost

    host = PluginHost()
    assert host.plugins["example"].error is None
    assert host.registry("backbone").entry("example-colorres").plugin == "example"
    assert host.registry("report_format").entry("markdown").plugin == "example"
    r = fpattr("example-info")
    assert r.returncode == 0 and "fpattr-example" in r.stdout
    from fpattr.testing import write_generator_images

    write_generator_images(tmp_path / "a", "checker", n=3)
    write_generator_images(tmp_path / "b", "nearest", n=3)
    env = {"FPATTR_HOME": str(tmp_path / "home")}
    for name in ("a", "b"):
        assert (
            fpattr(
                "gallery", "add", name, tmp_path / name, "-b", "example-colorres", env=env
            ).returncode
            == 0
        )
    r = fpattr("attribute", tmp_path / "a", "-b", "example-colorres", "-f", "markdown", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("| image | decision") and "3 of 3 inputs" in r.stdout
    # its `extension` (".md") picks it for -o, as the hook reference says (break-it: the
    # table was written, with a note that ".md" names no format)
    out = tmp_path / "r.md"
    r = fpattr("attribute", tmp_path / "a", "-b", "example-colorres", "-o", out, env=env)
    assert r.returncode == 0 and "names no format" not in r.stderr, r.stderr
    assert out.read_text(encoding="utf-8").startswith("| image | decision")


@example_installed
def test_plugin_selection_env(tmp_path):
    # the plugins left out are listed as installed, not loaded (break-it: "no third-party
    # plugins installed"), and a selection naming nothing installed is said
    r = fpattr("plugins", "list", "--format", "json", env={"FPATTR_LOAD_PLUGINS": "exmaple"})
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["example"]["status"] == "not loaded" and rows["example"]["provides"] == {}
    assert "names no installed plugin: exmaple" in r.stderr
    r = fpattr("doctor", env={"FPATTR_LOAD_PLUGINS": "exmaple"})
    assert "installed, not loaded" in r.stdout and "exmaple" in r.stdout
    r = fpattr("plugins", "list", "--format", "json", env={"FPATTR_LOAD_PLUGINS": "example"})
    loaded = [p["name"] for p in json.loads(r.stdout) if p["status"] != "not loaded"]
    assert loaded == ["example"]
    r = fpattr("plugins", "list", "--all", "-f", "json", env={"FPATTR_LOAD_PLUGINS": ""})
    assert {p["name"] for p in json.loads(r.stdout)} >= {"fpattr.backbones.builtin"}


def test_broken_plugins_are_reported_never_fatal(broken_site, tmp_path):
    env = {"PYTHONPATH": str(broken_site), "FPATTR_HOME": str(tmp_path)}
    r = fpattr("plugins", "list", "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    for name in ("broken-import", "broken-hook", "broken-missing", "broken-exit", "broken-hijack"):
        assert rows[name]["status"] == "failed" and rows[name]["error"], rows.get(name)
    assert "broken on purpose" in rows["broken-hook"]["error"]
    assert "SystemExit" in rows["broken-exit"]["error"]  # sys.exit() in a hook: recorded
    assert "attribute exist already" in rows["broken-hijack"]["error"]
    assert rows["broken-runtime"]["status"] == "ok"  # its error comes when it is used:
    r = fpattr("attribute", tmp_path, "-b", "broken-runtime-bb", env=env)
    assert r.returncode == 70 and "internal error" not in r.stderr, r.stderr
    assert "error in plugin 'broken-runtime' (fpattr-broken" in r.stderr
    assert "fails on purpose" in r.stderr
    r = fpattr("attribute", tmp_path, "-b", "broken-exit-bb", env=env)  # sys.exit(4) in it
    assert r.returncode == 70, r.stderr
    assert "error in plugin 'broken-runtime'" in r.stderr and "SystemExit(4)" in r.stderr
    h = fpattr("attribute", "--help", env=env)
    assert h.returncode == 0 and "HIJACKED" not in h.stdout
    doc = fpattr("doctor", "--format", "json", env=env)
    assert doc.returncode == 1
    checks = json.loads(doc.stdout)["checks"]
    assert any(c["check"] == "plugin broken-import" and c["status"] == "fail" for c in checks)
    # every other command still works
    assert fpattr("--help", env=env).returncode == 0
    from fpattr.testing import write_generator_images

    write_generator_images(tmp_path / "r", "checker", n=3)
    r = fpattr("gallery", "add", "c", tmp_path / "r", "-b", "spectrum", env=env)
    assert r.returncode == 0, r.stderr
    r = fpattr("attribute", tmp_path / "r", "-b", "spectrum", "-f", "json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["summary"]["n_ok"] == 3
    # the duplicate 'json' format of the broken plugin did not replace the built-in
    # and recovery works with plugins off:
    assert fpattr("plugins", "list", env={**env, "FPATTR_LOAD_PLUGINS": ""}).returncode == 0


taesd_installed = pytest.mark.skipif(
    not any(ep.name == "taesd" for ep in metadata.entry_points(group="fpattr")),
    reason="fpattr-taesd is not installed (pip install -e plugins/fpattr-taesd)",
)


@taesd_installed
def test_taesd_plugin_family_and_gallery_through_the_cli(tmp_path):
    """A third-party family and a shipped gallery, with no change to fpattr's code."""
    r = fpattr("plugins", "list", "--format", "json")
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["taesd"]["status"] == "ok", rows["taesd"]
    assert rows["taesd"]["provides"] == {"synthesizer": ["taesd"], "gallery": ["taesd"]}
    r = fpattr("synth", "--list")
    assert r.returncode == 0 and "taesd" in {f["name"] for f in json.loads(r.stdout)}
    from fpattr.testing import write_generator_images

    write_generator_images(tmp_path / "q", "nearest", n=2)
    r = fpattr("attribute", tmp_path / "q", "--gallery", "taesd", "-b", "spectrum", "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["n_ok"] == 2 and set(doc["gallery"]["models"]) == {
        "taesd-sd",
        "taesd-flux",
        "taesd-lite",
    }


@taesd_installed
def test_a_named_gallery_picks_its_own_backbone_under_auto(tmp_path):
    """`--gallery taesd` alone works: auto becomes the backbone the gallery is bound to,
    while an explicit other backbone is still refused with the binding in the message."""
    from fpattr.testing import write_generator_images

    write_generator_images(tmp_path / "q", "nearest", n=2)
    r = fpattr("attribute", tmp_path / "q", "--gallery", "taesd", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["backbone"]["name"] == "spectrum"
    r = fpattr("attribute", tmp_path / "q", "--gallery", "taesd", "-b", "default", "-f", "json")
    assert r.returncode == 2 and "was made with backbone spectrum" in r.stderr


@taesd_installed
def test_a_plugins_gallery_is_read_only(tmp_path):
    """break-it 27b: `gallery remove/add -g taesd` rewrote the plugin's own package folder
    (a reinstall drops the edits) and a registered folder that did not exist was created;
    the commands that write a gallery now refuse a registered one and say how to copy it."""
    from fpattr.cli.common import gallery_path
    from fpattr.io.loader import sha256_file
    from fpattr.testing import write_generator_images

    meta = gallery_path("taesd", "spectrum") / "gallery.json"
    before = sha256_file(meta)
    write_generator_images(tmp_path / "refs", "nearest", n=3)
    for args in (
        ("gallery", "remove", "taesd-sd", "-g", "taesd"),
        ("gallery", "add", "new", tmp_path / "refs", "-g", "taesd", "-b", "spectrum"),
    ):
        r = fpattr(*args, env={"FPATTR_HOME": str(tmp_path / "home")})
        assert r.returncode == 2, r.stderr
        assert "is a gallery a plugin registers" in r.stderr and "gallery export" in r.stderr
    assert sha256_file(meta) == before
    # the way out the message gives: an export imported into a folder of one's own
    r = fpattr("gallery", "export", tmp_path / "t.npz", "-g", "taesd")
    assert r.returncode == 0, r.stderr
    r = fpattr("gallery", "import", tmp_path / "t.npz", "-g", tmp_path / "mine")
    assert r.returncode == 0, r.stderr
    r = fpattr("gallery", "remove", "taesd-sd", "-g", tmp_path / "mine")
    assert r.returncode == 0, r.stderr


def test_doctor_flags_a_registered_gallery_without_its_folder(tmp_path):
    from fpattr.cli.doctor_cmd import _gallery_checks
    from fpattr.registry import Registry

    reg: Registry = Registry("gallery")
    reg.add("gone", str(tmp_path / "missing"), plugin="p")
    reg.add("raises", lambda: 1 / 0, plugin="p")
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "gallery.json").write_text("{}", encoding="utf-8")
    reg.add("ok", tmp_path / "ok", plugin="p")
    rows = {name: (status, detail) for name, status, detail in _gallery_checks(reg)}
    assert rows["gallery gone"] == ("fail", f"no gallery.json in {tmp_path / 'missing'}")
    assert rows["gallery raises"][0] == "fail" and "division by zero" in rows["gallery raises"][1]
    assert "gallery ok" not in rows
