"""Shared fixtures: isolated FPATTR_HOME, a fresh plugin host per test."""

from __future__ import annotations

import signal
import sys

import pytest

# A background job of a non-interactive shell (`pytest ... &`, nohup) starts with SIGINT
# ignored, and an ignored signal stays ignored across exec: the interrupt tests' child
# processes would never see their Ctrl-C. Handled (not ignored) here, children start with
# the default action whatever launched pytest.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Plugin errors are recorded, not raised, in normal runs; tests that want raising set
# FPATTR_RAISE_ERRORS themselves.


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("fpattr-home")
    monkeypatch.setenv("FPATTR_HOME", str(home))
    monkeypatch.delenv("FPATTR_RAISE_ERRORS", raising=False)
    monkeypatch.delenv("FPATTR_DEBUG", raising=False)
    yield home


@pytest.fixture(autouse=True)
def _fresh_host():
    """Every test starts with a new process-wide plugin host."""
    from fpattr import plugins

    plugins.set_host(None)
    yield
    plugins.set_host(None)


@pytest.fixture
def no_entry_points(monkeypatch):
    """Load only the built-ins (like FPATTR_LOAD_PLUGINS='')."""
    monkeypatch.setenv("FPATTR_LOAD_PLUGINS", "")


def pytest_report_header(config):
    return f"python {sys.version.split()[0]}"
