"""`fpattr plugins new`: the scaffolded distribution installs and passes its own tests."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fpattr.scaffold import plugin_names, render
from fpattr.testing import run_cli


def test_names_and_files():
    assert plugin_names("fpattr-Acme-Detector") == {
        "name": "acme-detector",
        "pkg": "fpattr_acme_detector",
        "dist": "fpattr-acme-detector",
        "family": "acme_detector",
    }
    files = render("acme")
    assert set(files) == {
        "pyproject.toml",
        "README.md",
        "conftest.py",
        "fpattr_acme/__init__.py",
        "fpattr_acme/family.py",
        "tests/test_plugin.py",
    }
    assert '[project.entry-points.fpattr]\nacme = "fpattr_acme"' in files["pyproject.toml"]
    assert "__" + "NAME__" not in "".join(files.values())
    for kind in ("backbones", "report_formats", "synthesizers", "galleries", "commands"):
        assert f"def fpattr_register_{kind}" in files["fpattr_acme/__init__.py"]


@pytest.mark.parametrize(
    "name", ["", "1abc", "Bad Name", "a--b", "x/y", "a" * 41, "auto", "fpattr-AUTO"]
)
def test_bad_names_are_usage_errors(name, tmp_path):
    r = run_cli(["plugins", "new", name, "--dir", tmp_path])
    assert r.exit_code == 2 and not any(tmp_path.iterdir())


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "fpattr-acme").mkdir()
    (tmp_path / "fpattr-acme" / "keep.txt").write_text("mine")
    r = run_cli(["plugins", "new", "acme", "--dir", tmp_path])
    assert r.exit_code == 2 and "not empty" in r.stderr
    assert [p.name for p in (tmp_path / "fpattr-acme").iterdir()] == ["keep.txt"]


def test_scaffold_installs_and_its_tests_pass(tmp_path):
    r = run_cli(["plugins", "new", "acme-detector", "--dir", tmp_path])
    assert r.exit_code == 0, r.output
    root = tmp_path / "fpattr-acme-detector"
    assert r.stdout.strip() == str(root)
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--target", str(site), str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr[-800:]
    env = {**os.environ, "PYTHONPATH": str(site), "FPATTR_LOAD_PLUGINS": "acme-detector"}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-1000:]
    assert "6 passed" in tests.stdout and "skipped" not in tests.stdout, tests.stdout[-1000:]


@pytest.mark.parametrize(
    ("name", "registry"),
    [
        ("spectrum", "backbone 'spectrum'"),
        ("default", "backbone 'default'"),
        ("autoencoder", "synthesizer 'autoencoder'"),
        ("json", "report format 'json'"),
    ],
)
def test_names_taken_by_a_registry_are_refused(name, registry, tmp_path):
    """A duplicate registration is refused at load time, so such a plugin would install
    and then fail to load: refuse it here, naming the registry."""
    r = run_cli(["plugins", "new", name, "--dir", tmp_path])
    assert r.exit_code == 2, r.output
    assert f"collides with registered names: {registry}" in r.stderr
    assert not any(tmp_path.iterdir())


def test_derived_names_and_installed_plugins_are_checked(tmp_path):
    import fpattr
    from fpattr.errors import UsageError
    from fpattr.plugins import PluginHost
    from fpattr.scaffold import check_names_free, registered_names

    assert registered_names("acme-x") == {
        "plugin": "acme-x",
        "backbone": "acme-x",
        "report_format": "acme-x-tsv",
        "synthesizer": "acme_x_ae",
        "gallery": "acme-x",
    }

    class Other:
        @fpattr.hookimpl
        def fpattr_register_report_formats(self, register):
            register("acme-x-tsv", object, description="taken")

        @fpattr.hookimpl
        def fpattr_register_galleries(self, register):
            register("shipped", tmp_path, backbone="spectrum")

    host = PluginHost(load_entry_points=False)
    host.register(Other(), name="other")
    with pytest.raises(UsageError, match=r"report format 'acme-x-tsv' \(registered by other\)"):
        check_names_free("acme-x", host)
    with pytest.raises(UsageError, match=r"gallery 'shipped'"):
        check_names_free("shipped", host)
    with pytest.raises(UsageError, match=r"plugin 'other' \(already installed\)"):
        check_names_free("other", host)
    check_names_free("acme-y", host)  # free


def test_a_file_given_as_the_folder_is_a_usage_error(tmp_path):
    # break-it 27d: `plugins new zz --dir afile` was exit 70 "internal error"
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    r = run_cli(["plugins", "new", "zz", "--dir", afile])
    assert r.exit_code == 2 and "internal error" not in r.stderr, r.output
    assert afile.read_text(encoding="utf-8") == "x"
