"""docs/model-card.md is what scripts/model_card_md.py renders from the shipped cards (the
page had drifted: a hand-written INT8 section quoted speeds of an older quantization)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_model_card_page_is_rendered_from_the_cards() -> None:
    card, int8 = ROOT / "models" / "default.json", ROOT / "models" / "default-int8.json"
    if not card.is_file() or not int8.is_file():
        pytest.skip("shipped model cards not in this checkout")
    script = ROOT / "scripts" / "model_card_md.py"
    spec = importlib.util.spec_from_file_location("model_card_md", script)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    read = lambda p: json.loads(p.read_text(encoding="utf-8"))  # noqa: E731
    page = (ROOT / "docs" / "model-card.md").read_text(encoding="utf-8")
    assert page == mod.render(read(card), None, read(int8)), (
        "docs/model-card.md is stale: python scripts/model_card_md.py models/default.json "
        "docs/model-card.md --int8 models/default-int8.json"
    )
