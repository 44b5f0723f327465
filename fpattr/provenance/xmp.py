"""XMP packets parsed with the standard library, defused: DOCTYPE and ENTITY are refused.

``xml.etree`` (expat) expands internal entities, so a "billion laughs" packet would eat
memory; XMP never needs a DTD, so any packet that declares one is rejected before parsing.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from fpattr.provenance.containers import MAX_BLOCK_BYTES

#: Longest text kept from one XMP value.
MAX_VALUE_CHARS = 2000

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#: (namespace, local name) -> the key it is reported under.
FIELDS: dict[tuple[str, str], str] = {
    ("http://iptc.org/std/Iptc4xmpExt/2008-02-29/", "DigitalSourceType"): "DigitalSourceType",
    ("http://ns.adobe.com/xap/1.0/", "CreatorTool"): "CreatorTool",
    ("http://ns.adobe.com/photoshop/1.0/", "Credit"): "Credit",
    ("http://ns.adobe.com/tiff/1.0/", "Software"): "Software",
    ("http://ns.adobe.com/tiff/1.0/", "Make"): "Make",
    ("http://ns.adobe.com/tiff/1.0/", "Model"): "Model",
}
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class XmpError(ValueError):
    """An XMP packet that cannot or must not be parsed."""


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _clip(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_VALUE_CHARS:
        return text[:MAX_VALUE_CHARS] + f"... (truncated, {len(text)} chars)"
    return text


def parse_xmp(packet: bytes) -> dict[str, str]:
    """The fields of :data:`FIELDS` found in ``packet`` (attribute or element form).

    Raises :class:`XmpError` for a packet over the size cap, one that declares a DOCTYPE
    or ENTITY, or XML that does not parse.
    """
    if len(packet) > MAX_BLOCK_BYTES:
        raise XmpError(f"XMP packet of {len(packet)} bytes, over the cap: not read")
    packet = packet.strip(b"\x00 \t\r\n")
    if _DTD.search(packet):
        raise XmpError("XMP rejected: it declares a DOCTYPE/ENTITY (entity expansion attack?)")
    try:
        root = ET.fromstring(packet)
    except ET.ParseError as exc:
        raise XmpError(f"XMP does not parse: {exc}") from None
    out: dict[str, str] = {}
    for el in root.iter():
        for name, value in el.attrib.items():
            key = FIELDS.get(_split(name))
            if key and key not in out and value.strip():
                out[key] = _clip(value)
        key = FIELDS.get(_split(el.tag)) if isinstance(el.tag, str) else None
        if key and key not in out:
            value = el.attrib.get(f"{{{_RDF}}}resource") or "".join(el.itertext())
            if value.strip():
                out[key] = _clip(value)
    return out
