"""Deterministic Notary Project signatures of the sample release manifest (test-side signer).

The fixture PKI (a root and a code-signing leaf, EC P-256) is made at run time from fixed seeds,
never committed; every signature uses deterministic ECDSA (RFC 6979) and a fixed signing time,
so the same release always gets byte-identical signature manifests. Envelopes follow the Notary
Project specification (notaryproject/specifications: signature-envelope-jws.md, -cose.md); the
verifier they are checked by (src/notary/) shares no code with this file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SIGNATURE_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
PAYLOAD_MEDIA_TYPE = "application/vnd.cncf.notary.payload.v1+json"
JWS = "application/jose+json"
COSE = "application/cose"
EMPTY_CONFIG = b"{}"
SIGNING_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.timezone.utc)
SIGNING_AGENT = "vibedata-sample-release/1"
LEAF_SUBJECT = [("C", "US"), ("ST", "WA"), ("O", "Vibedata Sample Publisher"), ("CN", "Vibedata Sample Release")]
TRUSTED_IDENTITY = "x509.subject: " + ", ".join(f"{k}={v}" for k, v in LEAF_SUBJECT)
_OIDS = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "O": NameOID.ORGANIZATION_NAME,
         "CN": NameOID.COMMON_NAME}


def _key(label: str) -> ec.EllipticCurvePrivateKey:
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the P-256 order
    seed = int.from_bytes(hashlib.sha256(b"vibedata-sample-release/notary\0" + label.encode()).digest(), "big")
    return ec.derive_private_key(seed % (n - 1) + 1, ec.SECP256R1())


def _name(pairs) -> x509.Name:
    return x509.Name([x509.NameAttribute(_OIDS[k], v) for k, v in pairs])


def _key_usage(**bits: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names})


@lru_cache(maxsize=1)
def fixture_pki() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """(root, leaf, leaf key), the same on every run."""
    root_key, leaf_key = _key("root"), _key("leaf")
    root_name = _name([("O", "Vibedata Sample Publisher"), ("CN", "Vibedata Sample Root")])
    root = (x509.CertificateBuilder()
            .subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(1)
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .sign(root_key, hashes.SHA256(), ecdsa_deterministic=True))
    leaf = (x509.CertificateBuilder()
            .subject_name(_name(LEAF_SUBJECT)).issuer_name(root_name)
            .public_key(leaf_key.public_key()).serial_number(2)
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .sign(root_key, hashes.SHA256(), ecdsa_deterministic=True))
    return root, leaf, leaf_key


def trust_store_pem() -> str:
    return fixture_pki()[0].public_bytes(serialization.Encoding.PEM).decode()


def _chain_der() -> list[bytes]:
    root, leaf, _ = fixture_pki()
    return [leaf.public_bytes(serialization.Encoding.DER), root.public_bytes(serialization.Encoding.DER)]


def _es256(data: bytes) -> bytes:
    der = fixture_pki()[2].sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def payload(subject: dict) -> bytes:
    target = {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]}
    return json.dumps({"targetArtifact": target}, separators=(",", ":"), sort_keys=True).encode()


def jws_envelope(subject: dict) -> bytes:
    protected = {
        "alg": "ES256",
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": PAYLOAD_MEDIA_TYPE,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": SIGNING_TIME.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    ph = _b64url(json.dumps(protected, separators=(",", ":"), sort_keys=True).encode())
    pl = _b64url(payload(subject))
    env = {
        "payload": pl,
        "protected": ph,
        "header": {"x5c": [base64.b64encode(c).decode() for c in _chain_der()],
                   "io.cncf.notary.signingAgent": SIGNING_AGENT},
        "signature": _b64url(_es256(f"{ph}.{pl}".encode())),
    }
    return json.dumps(env, separators=(",", ":"), sort_keys=True).encode()


# A minimal deterministic CBOR encoder (RFC 8949): what COSE_Sign1 needs, nothing more.
def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for code, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | code]) + struct.pack(fmt, n)
    raise ValueError(n)


class Tag:
    def __init__(self, tag: int, value) -> None:
        self.tag, self.value = tag, value


def cbor(v) -> bytes:
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, bytes):
        return _head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    if isinstance(v, list):
        return _head(4, len(v)) + b"".join(cbor(i) for i in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    if isinstance(v, Tag):
        return _head(6, v.tag) + cbor(v.value)
    raise TypeError(type(v))


def cose_envelope(subject: dict) -> bytes:
    protected = cbor({
        1: -7,  # ES256
        2: ["io.cncf.notary.signingScheme"],
        3: PAYLOAD_MEDIA_TYPE,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": Tag(1, int(SIGNING_TIME.timestamp())),
    })
    body = payload(subject)
    to_be_signed = cbor(["Signature1", protected, b"", body])
    unprotected = {33: _chain_der(), "io.cncf.notary.signingAgent": SIGNING_AGENT}
    return cbor(Tag(18, [protected, unprotected, body, _es256(to_be_signed)]))


def _digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def signature_manifest(subject: dict, envelope: bytes, media_type: str) -> bytes:
    m = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": SIGNATURE_ARTIFACT_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": _digest(EMPTY_CONFIG), "size": 2},
        "layers": [{"mediaType": media_type, "digest": _digest(envelope), "size": len(envelope)}],
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
        "annotations": {"io.cncf.notary.x509chain.thumbprint#S256":
                        json.dumps([hashlib.sha256(c).hexdigest() for c in _chain_der()], separators=(",", ":"))},
    }
    return json.dumps(m, separators=(",", ":"), sort_keys=True).encode()


def signatures(subject: dict) -> list[tuple[bytes, dict[str, bytes]]]:
    """The JWS and the COSE signature of ``subject``: (manifest, its blobs by digest) each."""
    out = []
    for env, mt in ((jws_envelope(subject), JWS), (cose_envelope(subject), COSE)):
        out.append((signature_manifest(subject, env, mt), {_digest(EMPTY_CONFIG): EMPTY_CONFIG, _digest(env): env}))
    return out


def referrers_index(manifests: list[bytes]) -> bytes:
    """The referrers tag schema's index (OCI distribution-spec 1.1) listing ``manifests``."""
    entries = []
    for raw in manifests:
        m = json.loads(raw)
        entries.append({"mediaType": m["mediaType"], "digest": _digest(raw), "size": len(raw),
                        "artifactType": m["artifactType"], "annotations": m.get("annotations", {})})
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": entries}, separators=(",", ":"), sort_keys=True).encode()


def tag_schema(digest: str) -> str:
    alg, hexpart = digest.split(":", 1)
    return f"{alg[:32]}-{hexpart[:64]}"
