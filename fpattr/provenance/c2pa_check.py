"""C2PA manifests through the optional ``c2pa-python`` package (``pip install
"fpattr[provenance]"``), read offline: no remote manifest, no OCSP request.

What is reported is what the library says, nothing inferred:

- ``present``: a C2PA container was found in the file (a JUMBF store in a PNG ``caBX``
  chunk, a JPEG APP11 segment, a WebP ``C2PA`` chunk, the TIFF C2PA tag, or anywhere in a
  format fpattr does not walk) or the library read a manifest. A library parse error on a
  file without one is not a manifest: the record is None ("none");
- ``validation_state``: the library's verdict, ``Invalid``, ``Valid`` or ``Trusted``;
- ``signature_valid``: the manifest validates (state ``Valid`` or ``Trusted``): the claim
  signature verifies against the certificate in the file *and* every hash matches. Never
  true when the state is ``Invalid``, even if the claim signature alone verified;
- ``validation_failures``: the failing validation codes (``assertion.dataHash.mismatch``,
  ...), trust codes left out;
- ``signer_trusted``: the library's trust status of the signing certificate:
  ``signingCredential.trusted`` -> True, ``signingCredential.untrusted`` -> False, neither
  reported -> None. With no trust list configured (``--trust-anchors``,
  ``FPATTR_C2PA_TRUST_ANCHORS``) nothing is trusted.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, BinaryIO

from fpattr.provenance.generators import clip

NOT_CHECKED = "C2PA not checked (install fpattr[provenance])"
#: Said instead when the file visibly carries a C2PA container the extra could check.
PRESENT_NOT_CHECKED = "C2PA present, not checked (install fpattr[provenance])"
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


def not_checked(present: bool = False) -> dict[str, Any]:
    """The ``c2pa`` record when the extra is missing: said, never silently absent.
    ``present``: the file carries a C2PA container (found without the library)."""
    if present:
        return {"checked": False, "present": True, "summary": PRESENT_NOT_CHECKED}
    return {"checked": False, "present": None, "summary": NOT_CHECKED}


@lru_cache(maxsize=4)
def _context(trust_pem: str | None) -> Any:
    import c2pa

    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_pem:
        settings["trust"] = {"trust_anchors": trust_pem}
    return c2pa.Context(c2pa.Settings.from_dict(settings))


def read_c2pa(
    f: BinaryIO,
    kind: str | None,
    trust_pem: str | None,
    trust_source: str | None,
    *,
    container: bool,
) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """The ``c2pa`` record of an open file (None: no manifest), errors and notes.

    ``container``: whether a C2PA container was found in the file. The library fails the
    same way on a damaged manifest and on a damaged file with no manifest at all, so its
    errors mean "manifest unreadable" only when there is a container; otherwise they are
    a note about the file and the record is None. Needs the extra (:func:`available`).
    """
    import c2pa

    errors: list[str] = []
    notes: list[str] = []
    try:
        f.seek(0)
        reader = c2pa.Reader.try_create(_MIME.get(kind or "", ""), f, None, _context(trust_pem))
        if reader is None:
            if container:
                errors.append("C2PA: a C2PA container is present but holds no manifest")
                return _unreadable("C2PA container present, no manifest in it"), errors, notes
            return None, errors, notes
        with reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError, OSError, ValueError) as exc:
        unsupported = type(exc).__name__.endswith("NotSupported")
        if not container:
            if not unsupported:
                notes.append(f"C2PA library could not parse the file: {clip(str(exc), 300)}")
            return None, errors, notes
        errors.append(f"C2PA: manifest unreadable or malformed: {clip(str(exc), 300)}")
        return _unreadable("C2PA manifest unreadable"), errors, notes
    return _record(store, trust_source), errors, notes


def _unreadable(summary: str) -> dict[str, Any]:
    return {"checked": True, "present": True, "validation_state": None, "summary": summary}


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
    # "Valid"/"Trusted" is the library's word that the signature verifies and every hash
    # matches; "Invalid" is never reported as a valid signature, whichever part failed.
    signature_valid = state in ("Valid", "Trusted")
    if results:
        signature_valid = signature_valid and "claimSignature.validated" in success
    trust_failed = {f.get("code") for f in results.get("failure") or []}
    if not results:
        trust_failed = {s.get("code") for s in store.get("validation_status") or []}
    # trust is the library's trust status of the certificate, not inferred from the state:
    # a tampered file signed by a trusted signer is "Invalid" and still "trusted"
    trusted: bool | None = None
    if "signingCredential.trusted" in success or state == "Trusted":
        trusted = True
    elif "signingCredential.untrusted" in trust_failed:
        trusted = False
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
    """One line: who signed, the validation state with its failing codes, and the trust
    status the library reported."""
    who = rec.get("signer") or "an unnamed signer"
    if rec.get("issuer"):
        who += f" (issuer {rec['issuer']})"
    codes = [str(f).split(":", 1)[0] for f in rec.get("validation_failures") or []]
    if rec.get("signature_valid") and not codes:
        check = "signature valid"
    else:
        check = f"INVALID (validation state {rec.get('validation_state') or 'unknown'}"
        check += f": {', '.join(dict.fromkeys(codes))})" if codes else ")"
    if rec.get("signer_trusted") is True:
        trust = f"signer trusted (trust list: {rec.get('trust_list')})"
    elif rec.get("signer_trusted") is None:
        trust = "signer trust not reported by the library"
    elif rec.get("trust_list") == "none configured":
        trust = "signer not in a trust list (none configured)"
    else:
        trust = "signer not in the configured trust list"
    return f"C2PA manifest signed by {who}: {check}, {trust}"
