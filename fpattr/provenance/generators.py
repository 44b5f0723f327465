"""What generation tools write into files: Automatic1111/Forge parameters, ComfyUI graphs,
NovelAI and InvokeAI metadata, and the names of known generators in free text.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Longest text kept from one value (prompts, unknown keys).
MAX_TEXT_CHARS = 2000

#: Lower-case fragments that name an image generator (or a tool that only runs one), used
#: to decide whether free text (EXIF Software, XMP CreatorTool) is a generator claim: an
#: editor such as "GIMP 2.10" names no generator.
KNOWN_GENERATORS: tuple[str, ...] = (
    "stable diffusion", "stablediffusion", "sdxl", "sd3", "dall-e", "dall\u00b7e", "dalle",
    "midjourney", "firefly", "imagen", "novelai", "comfyui", "invokeai", "automatic1111",
    "flux", "gpt-4o", "gpt-image", "chatgpt", "openai", "ideogram", "leonardo", "gemini",
    "nano banana", "runway", "kandinsky", "playground", "stylegan", "dreamstudio", "fooocus",
    "draw things", "bing image creator", "sora", "recraft", "krea", "hunyuan",
    "qwen-image", "seedream", "kling", "pixart", "wuerstchen", "deepfloyd",
)  # fmt: skip

_A1111_PARAM = re.compile(r'\s*([\w][\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_A1111_KEYS = ("Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "Version")
_COMFY_LOADERS: dict[str, tuple[str, ...]] = {
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CheckpointLoader": ("ckpt_name",),
    "CheckpointLoaderNF4": ("ckpt_name",),
    "ImageOnlyCheckpointLoader": ("ckpt_name",),
    "unCLIPCheckpointLoader": ("ckpt_name",),
    "UNETLoader": ("unet_name",),
    "UnetLoaderGGUF": ("unet_name",),
    "DiffusersLoader": ("model_path",),
}
_COMFY_SAMPLERS = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    return text if len(text) <= limit else text[:limit] + f"... (truncated, {len(text)} chars)"


def names_generator(text: str | None) -> bool:
    """Whether free text names a known image generator."""
    low = (text or "").lower()
    return any(k in low for k in KNOWN_GENERATORS)


def parse_a1111(text: str) -> dict[str, Any]:
    """Automatic1111/Forge ``parameters``: prompt, negative prompt, then a settings line
    ``Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: x, ...``."""
    lines = text.strip().split("\n")
    settings: dict[str, str] = {}
    if lines and lines[-1].lstrip().startswith("Steps:"):
        for key, value in _A1111_PARAM.findall(lines.pop()):
            value = value.strip()
            if value.startswith('"') and value.endswith('"') and len(value) > 1:
                value = value[1:-1]
            settings[key.strip()] = clip(value, 500)
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].lstrip()
        (negative if in_negative else prompt).append(line)
    out: dict[str, Any] = {"prompt": clip("\n".join(prompt).strip())}
    if in_negative:
        out["negative_prompt"] = clip("\n".join(negative).strip())
    out.update({k: settings[k] for k in _A1111_KEYS if k in settings})
    out.update({k: v for k, v in settings.items() if k not in out and len(out) < 60})
    return out


def a1111_generator(params: dict[str, Any]) -> str:
    """``Stable Diffusion (model: NAME)`` from parsed parameters (Forge says so)."""
    tool = "Stable Diffusion"
    version = str(params.get("Version") or "")
    if version.startswith("f"):  # Forge writes versions like "f2.0.1v1.10.1"
        tool = "Stable Diffusion (Forge)"
    if params.get("Model"):
        return f"{tool} (model: {params['Model']})"
    if params.get("Model hash"):
        return f"{tool} (model hash: {params['Model hash']})"
    return tool


def load_json(text: str) -> Any:
    """JSON from a metadata value; ValueError for bad or absurdly nested JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def comfy_models(prompt: Any = None, workflow: Any = None) -> tuple[list[str], list[dict]]:
    """Checkpoint/UNet names and sampler settings from a ComfyUI API ``prompt`` (node id ->
    {class_type, inputs}) or UI ``workflow`` ({nodes: [{type, widgets_values}]})."""
    models: list[str] = []
    samplers: list[dict] = []
    if isinstance(prompt, dict):
        for node in list(prompt.values())[:5000]:
            if not isinstance(node, dict):
                continue
            kind, inputs = node.get("class_type"), node.get("inputs")
            if not isinstance(inputs, dict):
                continue
            for key in _COMFY_LOADERS.get(str(kind), ()):
                if isinstance(inputs.get(key), str):
                    models.append(clip(inputs[key], 300))
            if kind in _COMFY_SAMPLERS and len(samplers) < 10:
                keep = ("seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler")
                samplers.append(
                    {k: inputs[k] for k in keep if isinstance(inputs.get(k), (int, float, str))}
                )
    if not models and isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list):
        for node in workflow["nodes"][:5000]:
            if isinstance(node, dict) and str(node.get("type")) in _COMFY_LOADERS:
                values = node.get("widgets_values")
                if isinstance(values, list) and values and isinstance(values[0], str):
                    models.append(clip(values[0], 300))
    return list(dict.fromkeys(models)), samplers


def is_comfy_graph(key: str, value: Any) -> bool:
    """Whether parsed JSON has ComfyUI's shape: an API ``prompt`` maps node ids to nodes
    with a ``class_type`` and an ``inputs`` object; a UI ``workflow`` has a ``nodes`` list
    of objects with a ``type``. One such node is enough."""
    if key == "prompt":
        return isinstance(value, dict) and any(
            isinstance(n, dict) and isinstance(n.get("class_type"), str)
            and isinstance(n.get("inputs"), dict)
            for n in list(value.values())[:5000]
        )  # fmt: skip
    nodes = value.get("nodes") if isinstance(value, dict) else None
    return isinstance(nodes, list) and any(
        isinstance(n, dict) and isinstance(n.get("type"), str) for n in nodes[:5000]
    )


def read_png_texts(
    texts: dict[str, str], errors: list[str], notes: list[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The ``png_text`` record and the generator claims its keys make, best first.

    Known keys are interpreted (a malformed one is an error and kept raw; ComfyUI keys
    whose JSON is not a node graph are kept raw with a note in ``notes``); every other
    key is kept raw, truncated.
    """
    rec: dict[str, Any] = {"format": None}
    claims: list[str] = []
    raw: dict[str, str] = {}
    used: set[str] = set()
    if "parameters" in texts:
        params = parse_a1111(texts["parameters"])
        rec.update(format="automatic1111", parameters=params)
        claims.append(a1111_generator(params))
        used.add("parameters")
    if "prompt" in texts or "workflow" in texts:
        parsed: dict[str, Any] = {}
        for key in ("prompt", "workflow"):
            if key in texts:
                try:
                    parsed[key] = load_json(texts[key])
                    used.add(key)
                except ValueError as exc:
                    errors.append(f"PNG text {key!r}: not valid ComfyUI JSON ({exc})")
        for key in list(parsed):
            if not is_comfy_graph(key, parsed[key]):
                # valid JSON is not a ComfyUI claim: "prompt" is a common key for plain
                # text or other tools' data; kept raw (below), with a note
                del parsed[key]
                used.discard(key)
                if notes is not None:
                    notes.append(
                        f"PNG text {key!r}: JSON but not a ComfyUI node graph: kept raw, "
                        "no ComfyUI claim"
                    )
        if parsed:
            models, samplers = comfy_models(parsed.get("prompt"), parsed.get("workflow"))
            rec["format"] = rec["format"] or "comfyui"
            rec["models"] = models
            if samplers:
                rec["samplers"] = samplers
            claims.append("ComfyUI" + (f" (model: {', '.join(models[:3])})" if models else ""))
    if "invokeai_metadata" in texts:
        try:
            meta = load_json(texts["invokeai_metadata"])
            used.add("invokeai_metadata")
            model = meta.get("model") if isinstance(meta, dict) else None
            name = model.get("name") if isinstance(model, dict) else model
            rec["format"] = rec["format"] or "invokeai"
            if isinstance(meta, dict):
                keep = ("positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale")
                rec["parameters"] = {
                    k: clip(str(meta[k]), MAX_TEXT_CHARS) for k in keep if k in meta
                } | ({"model": str(name)} if name else {})
            claims.append("InvokeAI" + (f" (model: {name})" if name else ""))
        except (ValueError, AttributeError) as exc:
            errors.append(f"PNG text 'invokeai_metadata': not valid JSON ({exc})")
    software = texts.get("Software", "")
    if "novelai" in software.lower():
        rec["format"] = rec["format"] or "novelai"
        source = texts.get("Source", "").strip()
        claims.append("NovelAI" + (f" ({clip(source, 200)})" if source else ""))
        if "Comment" in texts:
            try:
                meta = load_json(texts["Comment"])
                used.add("Comment")
                if isinstance(meta, dict):
                    keep = ("prompt", "uc", "steps", "scale", "seed", "sampler")
                    rec["parameters"] = {k: clip(str(meta[k])) for k in keep if k in meta}
            except ValueError as exc:
                errors.append(f"PNG text 'Comment': not valid NovelAI JSON ({exc})")
    elif names_generator(software) and not claims:
        claims.append(f"{clip(software.strip(), 200)} (PNG Software)")
    for key, text in texts.items():
        if key not in used and len(raw) < 50:
            raw[clip(key, 80)] = clip(text)
    if raw:
        rec["raw"] = raw
    return rec, claims
