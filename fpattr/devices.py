"""The torch device a ``--device`` option names, checked before any work (``fpattr synth``
and ``fpattr train`` share it). torch is imported when called, never at import."""

from __future__ import annotations

from fpattr.errors import UsageError


def resolve_device(name: str, kinds: tuple[str, ...] = ("cpu", "cuda")) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; otherwise ``name`` itself once it
    is a device of one of ``kinds`` ("cpu", "cuda", "mps") that this machine has.

    Raises :class:`UsageError` for a name torch does not read, another kind, an absent
    CUDA or MPS, and a ``cuda:N`` beyond the devices present.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in kinds:
        listed = ["cpu", "cuda", "cuda:N"] + (["mps"] if "mps" in kinds else [])
        raise UsageError(
            f"--device must be auto, {', '.join(listed[:-1])} or {listed[-1]}, not {name!r}"
        )
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                f"--device {name}: CUDA is not available here (no GPU, or torch built "
                "without CUDA); use --device cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {name}: this machine has {torch.cuda.device_count()} CUDA "
                "device(s), numbered from 0"
            )
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"--device {name}: torch sees no MPS device (use cpu or auto)")
    return name
