"""mkdocs hooks for the fpattr site (``hooks:`` in mkdocs.yml).

- The performance page's tables are filled from ``docs/results/*.json`` at build time,
  so the published numbers are the measured ones, never a hand-copied stale table.
- Sphinx roles in docstrings (``:class:`x```), which mkdocstrings leaves as text, are
  shown as plain code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):(?=<code>)")


def _results(config: Any, name: str) -> dict[str, Any]:
    path = Path(config["docs_dir"]) / "results" / name
    return json.loads(path.read_text(encoding="utf-8"))


def _speed_table(speed: dict[str, Any]) -> str:
    machine = speed.get("machine", {})
    rows = [
        "| measure | result | target |",
        "|---|---|---|",
    ]
    for run in speed.get("inference", []):
        rows.append(
            f"| ONNX Runtime vs torch eager, batch of {run['batch_views']} views "
            f"({run['threads']} threads) | {run['onnxruntime_views_per_s']:.0f} vs "
            f"{run['torch_eager_views_per_s']:.0f} views/s: "
            f"**{run['ratio_ort_over_torch']:.1f}x** | >= 1.5x |"
        )
    rows.append(
        f"| pure inference (ONNX Runtime) | {speed['pure_inference_images_per_s']:.0f} images/s | |"
    )
    big = speed.get("attribute_4n", {})
    small = speed.get("attribute_n", {})
    rows.append(
        f"| `fpattr attribute` end to end, {big.get('n', '?')} images | "
        f"**{speed['end_to_end_images_per_s']:.0f} images/s** | >= 100 |"
    )
    rows.append(
        f"| pipeline overhead (1 - end-to-end / pure inference) | "
        f"{speed['pipeline_overhead']:.0%} | < 15 % |"
    )
    if small and big:
        rows.append(
            f"| peak RSS, {small['n']} vs {big['n']} images | {small['max_rss_mb']:.0f} MB vs "
            f"{big['max_rss_mb']:.0f} MB | flat |"
        )
    rows.append(f"| `fpattr --help` | {speed['help_seconds']:.2f} s | < 0.3 s |")
    where = (
        f"Measured on {machine.get('cpus', '?')} CPU cores, Python {machine.get('python', '?')}."
    )
    return where + "\n\n" + "\n".join(rows) + "\n"


def _gpu_summary(gpu: dict[str, Any]) -> str:
    synth = gpu.get("synthesis", {})
    lines = [f"- Device: {gpu.get('device', 'unknown')}."]
    if synth:
        lines.append(
            f"- Model synthesis: {synth.get('models_built')} models in "
            f"{synth.get('seconds_budget')} s with {synth.get('workers')} workers "
            f"({synth.get('note', '')})."
        )
    training = gpu.get("training", {})
    if training.get("status"):
        lines.append(f"- Training: {training['status']}.")
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- fpattr:speed-table -->" in markdown:
        markdown = markdown.replace(
            "<!-- fpattr:speed-table -->", _speed_table(_results(config, "speed.json"))
        )
    if "<!-- fpattr:gpu-summary -->" in markdown:
        markdown = markdown.replace(
            "<!-- fpattr:gpu-summary -->", _gpu_summary(_results(config, "gpu_check.json"))
        )
    return markdown


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return _ROLE.sub("", html)
