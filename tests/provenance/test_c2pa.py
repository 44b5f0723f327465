"""C2PA through c2pa-python: a test image signed here with a certificate chain made here."""

from __future__ import annotations

import datetime
import io

import pytest
from PIL import Image

from fpattr.provenance import NOT_CHECKED, TRUST_ENV, c2pa_check, read_provenance, with_decision

c2pa = pytest.importorskip("c2pa", reason="c2pa-python not installed (fpattr[provenance])")
x509 = pytest.importorskip("cryptography.x509", reason="cryptography not installed")

DST = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _chain() -> tuple[bytes, bytes, bytes]:
    """(leaf + CA PEM chain, leaf private key PEM, CA PEM): ES256, the leaf with the
    digitalSignature key usage, the emailProtection EKU and the authority key id that
    c2pa-rs requires of a signer ("the certificate is invalid" without them)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fpattr tests"),
            ]
        )

    def usage(**on: bool) -> x509.KeyUsage:
        names = (
            "digital_signature content_commitment key_encipherment data_encipherment "
            "key_agreement key_cert_sign crl_sign encipher_only decipher_only"
        ).split()
        return x509.KeyUsage(**{n: on.get(n, False) for n in names})

    def cert(subject, issuer, key, signer, ca: bool):
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if ca:
            b = b.add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        else:
            b = b.add_extension(usage(digital_signature=True), critical=True)
            eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION])
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
            b = b.add_extension(eku, critical=False).add_extension(aki, critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("fpattr test root"), name("fpattr test root"), ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = cert(name("fpattr test signer"), ca.subject, key, ca_key, False)
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return leaf.public_bytes(pem) + ca.public_bytes(pem), key_pem, ca.public_bytes(pem)


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> dict:
    """A JPEG signed with a C2PA manifest that says DALL·E 3 created it."""
    chain, key, ca = _chain()
    src = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(src, "JPEG")
    src.seek(0)
    manifest = {
        "claim_generator_info": [{"name": "OpenAI", "version": "1"}],
        "title": "image.jpg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": DST,
                            "softwareAgent": {"name": "DALL\u00b7E 3"},
                        }
                    ]
                },
            }
        ],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    out = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, "image/jpeg", src, out)
    folder = tmp_path_factory.mktemp("c2pa")
    (folder / "signed.jpg").write_bytes(out.getvalue())
    (folder / "ca.pem").write_bytes(ca)
    tampered = bytearray(out.getvalue())
    tampered[-100] ^= 0xFF  # a pixel byte after signing
    (folder / "tampered.jpg").write_bytes(bytes(tampered))
    return {"dir": folder, "ca": ca.decode()}


def test_signed_valid_but_untrusted(signed, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    rec = read_provenance(signed["dir"] / "signed.jpg")
    c2 = rec["c2pa"]
    assert c2["checked"] and c2["present"] and rec["errors"] == []
    assert c2["claim_generator"] == "OpenAI 1"
    assert c2["actions"][0] == {
        "action": "c2pa.created",
        "software_agent": "DALL\u00b7E 3",
        "digital_source_type": DST,
    }
    assert (c2["signer"], c2["issuer"]) == ("fpattr test signer", "fpattr tests")
    assert c2["validation_state"] == "Valid"
    assert c2["signature_valid"] is True and c2["signer_trusted"] is False
    assert c2["trust_list"] == "none configured"
    assert "signature valid, signer not in a trust list" in c2["summary"]
    assert rec["claimed_generator"] == "DALL\u00b7E 3 (C2PA)"
    assert rec["digital_source_type"] == DST


def test_trusted_with_our_anchor(signed, monkeypatch):
    rec = read_provenance(signed["dir"] / "signed.jpg", trust_anchors=signed["ca"])
    assert rec["c2pa"]["validation_state"] == "Trusted" and rec["c2pa"]["signer_trusted"]
    assert "signer trusted" in rec["c2pa"]["summary"]
    monkeypatch.setenv(TRUST_ENV, str(signed["dir"] / "ca.pem"))
    rec = read_provenance(signed["dir"] / "signed.jpg")
    assert rec["c2pa"]["signer_trusted"] and rec["c2pa"]["trust_list"].endswith("ca.pem")


def test_tampered_image_does_not_validate(signed, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    rec = read_provenance(signed["dir"] / "tampered.jpg", trust_anchors=signed["ca"])
    c2 = rec["c2pa"]
    # what c2pa says: Invalid (the data hash), and the signer IS in the given trust list
    assert c2["validation_state"] == "Invalid" and c2["signature_valid"] is False
    assert c2["signer_trusted"] is True
    assert any(f.startswith("assertion.dataHash.mismatch") for f in c2["validation_failures"])
    assert "INVALID (validation state Invalid: assertion.dataHash.mismatch)" in c2["summary"]
    assert "signer trusted" in c2["summary"] and "not in" not in c2["summary"]
    assert rec["claimed_generator"] == "DALL\u00b7E 3 (C2PA, manifest INVALID)"
    monkeypatch.setattr(c2pa_check, "available", lambda: True)
    from fpattr.report.provenance import c2pa_word
    from fpattr.report.table import provenance_note

    assert c2pa_word(c2).startswith("INVALID (assertion.dataHash.mismatch)")
    note = provenance_note(with_decision(rec, None))
    assert note is not None and "[C2PA INVALID]" in note.plain and "trusted]" not in note.plain


def test_tampered_without_trust_list_is_invalid_and_untrusted(signed, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    c2 = read_provenance(signed["dir"] / "tampered.jpg")["c2pa"]
    assert c2["signature_valid"] is False and c2["signer_trusted"] is False
    assert "signer not in a trust list (none configured)" in c2["summary"]


def test_disagreement_is_stated(signed):
    rec = with_decision(read_provenance(signed["dir"] / "signed.jpg"), "stylegan2-ffhq")
    assert rec["agrees_with_fingerprint"] is False and "DISAGREE" in rec["summary"]
    rec = with_decision(read_provenance(signed["dir"] / "signed.jpg"), "dall-e-3")
    assert rec["agrees_with_fingerprint"] is True


def test_missing_extra_is_said(signed, monkeypatch):
    monkeypatch.setattr(c2pa_check, "available", lambda: False)
    rec = read_provenance(signed["dir"] / "signed.jpg")
    # the APP11 JUMBF store is found without the library: said, and shown in the table
    present = "C2PA present, not checked (install fpattr[provenance])"
    assert rec["c2pa"] == {"checked": False, "present": True, "summary": present}
    assert present in rec["notes"]
    from fpattr.report.table import provenance_note

    note = provenance_note(with_decision(rec, None))
    assert note is not None and present in note.plain
    # a file with no C2PA block: "not checked", and nothing to show
    plain = signed["dir"] / "plain.jpg"
    Image.new("RGB", (16, 16)).save(plain, "JPEG")
    rec = read_provenance(plain)
    assert rec["c2pa"] == {"checked": False, "present": None, "summary": NOT_CHECKED}
    assert provenance_note(with_decision(rec, None)) is None
