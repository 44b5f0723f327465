"""C2PA manifests through the optional ``c2pa-python`` package (``pip install
"fpattr[provenance]"``), read offline: no remote manifest, no OCSP request.

What is reported, honestly worded:

- ``validation_state``: the library's verdict, ``Invalid``, ``Valid`` or ``Trusted``;
- ``signature_valid``: the claim signature verifies against the certificate in the file;
- ``signer_trusted``: that certificate chains to an anchor of a configured trust list
  (``FPATTR_C2PA_TRUST_ANCHORS``, a PEM bundle). With no trust list configured nothing is
  trusted: "signature valid, signer not in a trust list" means anyone could have signed it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from fpattr.provenance.generators import clip

NOT_CHECKED = "C2PA not checked (install fpattr[provenance])"
#: Environment variable naming a PEM bundle of trust anchors for C2PA signers.
TRUST_ENV = "FPATTR_C2PA_TRUST_ANCHORS"
_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
    "AVIF": "image/avif",
    "HEIF": "image/heif",
}
_TRUST_CODES = ("signingCredential.untrusted", "signingCredential.trusted")


def available() -> bool:
    """Whether ``c2pa-python`` can be imported."""
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


def not_checked() -> dict[str, Any]:
    """The ``c2pa`` record when the extra is missing: said, never silently absent."""
    return {"checked": False, "present": None, "summary": NOT_CHECKED}


@lru_cache(maxsize=4)
def _context(trust_pem: str | None) -> Any:
    import c2pa

    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_pem:
        settings["trust"] = {"trust_anchors": trust_pem}
    return c2pa.Context(c2pa.Settings.from_dict(settings))


def read_c2pa(
    path: str, kind: str | None, trust_pem: str | None, trust_source: str | None
) -> tuple[dict[str, Any] | None, list[str]]:
    """The ``c2pa`` record of a file (None: no manifest) and errors.

    Needs the extra; call :func:`available` first.
    """
    import c2pa

    errors: list[str] = []
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(_MIME.get(kind or "", ""), f, None, _context(trust_pem))
            if reader is None:
                return None, errors
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        if type(exc).__name__.endswith("NotSupported"):
            return None, errors
        errors.append(f"C2PA: manifest unreadable or malformed: {clip(str(exc), 300)}")
        return {"checked": True, "present": True, "summary": "C2PA manifest unreadable"}, errors
    except (OSError, ValueError) as exc:
        errors.append(f"C2PA: {clip(str(exc), 300)}")
        return None, errors
    return _record(store, trust_source), errors


def _agent(value: Any) -> str | None:
    if isinstance(value, dict):
        value = " ".join(str(value[k]) for k in ("name", "version") if value.get(k))
    return clip(str(value), 200) if value else None


def _record(store: dict[str, Any], trust_source: str | None) -> dict[str, Any]:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    info = active.get("claim_generator_info")
    if isinstance(info, list) and info:
        generator = ", ".join(a for a in (_agent(i) for i in info[:3]) if a)
    else:
        generator = _agent(active.get("claim_generator"))
    actions: list[dict[str, Any]] = []
    for a in active.get("assertions") or []:
        if not str(a.get("label", "")).startswith("c2pa.actions"):
            continue
        for act in (a.get("data") or {}).get("actions") or []:
            if isinstance(act, dict) and len(actions) < 20:
                actions.append(
                    {
                        "action": act.get("action"),
                        "software_agent": _agent(act.get("softwareAgent")),
                        "digital_source_type": act.get("digitalSourceType"),
                    }
                )
    sig = active.get("signature_info") or {}
    state = store.get("validation_state")
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    success = {s.get("code") for s in results.get("success") or []}
    failures = [
        f"{f.get('code')}: {clip(str(f.get('explanation') or ''), 200)}"
        for f in results.get("failure") or []
        if f.get("code") not in _TRUST_CODES
    ]
    if not results:  # an older library: fall back to the flat status list
        failures = [
            f"{s.get('code')}: {clip(str(s.get('explanation') or ''), 200)}"
            for s in store.get("validation_status") or []
            if s.get("code") not in _TRUST_CODES
        ]
    signature_valid = "claimSignature.validated" in success and not any(
        f.startswith("claimSignature.") for f in failures
    )
    if not results:
        signature_valid = state in ("Valid", "Trusted")
    trusted = state == "Trusted"
    rec: dict[str, Any] = {
        "checked": True,
        "present": True,
        "claim_generator": generator or None,
        "title": clip(str(active["title"]), 300) if active.get("title") else None,
        "actions": actions,
        "signer": sig.get("common_name"),
        "issuer": sig.get("issuer"),
        "signature_alg": sig.get("alg"),
        "signed_at": sig.get("time"),
        "validation_state": state,
        "signature_valid": signature_valid,
        "signer_trusted": trusted,
        "trust_list": trust_source or "none configured",
        "validation_failures": failures[:20],
    }
    rec["summary"] = summarize(rec)
    return rec


def summarize(rec: dict[str, Any]) -> str:
    """One line: who signed, whether the signature validates, whether the signer is trusted."""
    who = rec.get("signer") or "an unnamed signer"
    if rec.get("issuer"):
        who += f" (issuer {rec['issuer']})"
    if not rec.get("signature_valid"):
        check = "signature INVALID"
    elif rec.get("validation_failures"):
        check = "signature valid but the manifest does not validate (content changed?)"
    else:
        check = "signature valid"
    if rec.get("signer_trusted"):
        trust = f"signer trusted (trust list: {rec.get('trust_list')})"
    elif rec.get("trust_list") == "none configured":
        trust = "signer not in a trust list (none configured)"
    else:
        trust = "signer not in the configured trust list"
    return f"C2PA manifest signed by {who}: {check}, {trust}"
