"""Content Credentials (C2PA) with the official ``c2pa-python``: the signing chain Limner makes on
first start, the manifest it writes into every image, and the reading of any image's manifest.

The chain made here is Limner's own: a self-signed root and an end-entity certificate with the key
usages C2PA asks of a signer (digitalSignature, critical; the emailProtection and documentSigning
purposes; not a CA). Limner's own reader trusts that root, so it reports its own images as
``Trusted``; public verifiers do not know it and report an untrusted signer until the operator
configures a chain from a certificate authority (``LIMNER_C2PA_CERTIFICATE`` and
``LIMNER_C2PA_PRIVATE_KEY``, docs/provenance.md).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from limner.errors import LimnerError

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# Reading must never reach the network: a manifest may name a remote store or an OCSP responder
# (an upload would make the server fetch an address of the uploader's choosing).
READ_SETTINGS: dict = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
SIGN_SETTINGS: dict = {"builder": {"thumbnail": {"enabled": False}}, **READ_SETTINGS}


# -- the signing chain -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """A signer's certificate chain (PEM, end-entity first) and private key (PEM), and the root
    Limner's own reader trusts (None for an organisation's chain: its CA is in public trust lists)."""

    certificates: bytes
    private_key: bytes
    root: bytes | None = None

    def algorithm(self) -> c2pa.C2paSigningAlg:
        key = serialization.load_pem_private_key(self.private_key, password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return {
                "secp256r1": c2pa.C2paSigningAlg.ES256,
                "secp384r1": c2pa.C2paSigningAlg.ES384,
                "secp521r1": c2pa.C2paSigningAlg.ES512,
            }[key.curve.name]
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

        if isinstance(key, ed25519.Ed25519PrivateKey):
            return c2pa.C2paSigningAlg.ED25519
        if isinstance(key, rsa.RSAPrivateKey):
            return c2pa.C2paSigningAlg.PS256
        raise LimnerError(f"a C2PA signing key must be EC (P-256/384/521), Ed25519 or RSA, not {type(key).__name__}")


def make_chain(organisation: str = "Limner", days: int = 3650) -> Chain:
    """A new self-signed root and an end-entity signing certificate it issued (ECDSA P-256)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} content credentials root"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )
    usage = dict.fromkeys(
        (
            "digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
            "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
        ),
        False,
    )  # fmt: skip
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**{**usage, "key_cert_sign": True, "crl_sign": True}), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} image signer"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                ]
            )
        )
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**{**usage, "digital_signature": True}), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Chain(
        certificates=leaf.public_bytes(pem) + root.public_bytes(pem),
        private_key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        root=root.public_bytes(pem),
    )


def load_chain(folder: Path, certificate: Path | None = None, private_key: Path | None = None) -> Chain:
    """An organisation's chain when both files are given; else Limner's own in ``folder``
    (``c2pa-chain.pem``, ``c2pa-key.pem``, ``c2pa-root.pem``), made on first use, mode 600."""
    if (certificate is None) != (private_key is None):
        raise LimnerError(
            "set both LIMNER_C2PA_CERTIFICATE (the chain, PEM, signer first) and LIMNER_C2PA_PRIVATE_KEY, or neither"
        )
    if certificate is not None and private_key is not None:
        try:
            return Chain(certificate.read_bytes(), private_key.read_bytes())
        except OSError as e:
            raise LimnerError(f"cannot read the C2PA signing files: {e}") from None
    paths = [folder / "c2pa-chain.pem", folder / "c2pa-key.pem", folder / "c2pa-root.pem"]
    if not all(p.exists() for p in paths):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        chain = make_chain()
        for path, data in zip(paths, (chain.certificates, chain.private_key, chain.root), strict=True):
            fd = os.open(path.with_suffix(".tmp"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data or b"")
            path.with_suffix(".tmp").replace(path)  # two processes starting at once: one chain wins whole
    return Chain(*(p.read_bytes() for p in paths))


# -- writing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What a manifest says about one image: its generator and, for an edit or a variation, the
    image it started from (bytes in any of the three formats)."""

    model: str
    version: str
    parameters: dict = field(default_factory=dict)
    source: bytes | None = None
    source_format: str = "png"

    def manifest(self, fmt: str) -> dict:
        agent = {"name": "Limner", "version": self.version}
        created = {
            "action": "c2pa.created",
            "digitalSourceType": TRAINED,
            "softwareAgent": agent,
            "description": f"generated by the model {self.model}",
        }
        actions = [created]
        if self.source is not None:
            actions = [
                {"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}},
                {
                    "action": "c2pa.edited",
                    "digitalSourceType": TRAINED,
                    "softwareAgent": agent,
                    "description": f"{self.parameters.get('mode', 'img2img')} by the model {self.model}",
                    "parameters": {"ingredientIds": ["source"]},
                },
            ]
        return {
            "claim_generator_info": [{"name": "Limner", "version": self.version}],
            "title": f"limner-{self.parameters.get('seed', 'image')}.{fmt}",
            "format": MIME[fmt],
            "assertions": [
                {"label": "c2pa.actions.v2", "data": {"actions": actions}},
                {
                    "label": "org.limner.generator",
                    "data": {"name": "Limner", "version": self.version, "model": self.model},
                },
            ],
        }


class Signer:
    """Signs encoded images with one chain; safe to share between threads (one native signer,
    one lock: a signature takes a few milliseconds)."""

    def __init__(self, chain: Chain):
        self.chain = chain
        info = c2pa.C2paSignerInfo(
            alg=chain.algorithm(), sign_cert=chain.certificates, private_key=chain.private_key, ta_url=None
        )
        self._signer = c2pa.Signer.from_info(info)
        self._context = c2pa.Context.from_dict(SIGN_SETTINGS)
        self._lock = threading.Lock()

    def sign(self, data: bytes, fmt: str, claim: Claim) -> bytes:
        """``data`` (an encoded image of format ``fmt``) with a signed manifest embedded."""
        out = io.BytesIO()
        with self._lock, c2pa.Builder(claim.manifest(fmt), self._context) as builder:
            if claim.source is not None:
                builder.add_ingredient(
                    {"title": f"source.{claim.source_format}", "relationship": "parentOf", "instance_id": "source"},
                    MIME[claim.source_format],
                    io.BytesIO(claim.source),
                )
            builder.sign(self._signer, MIME[fmt], io.BytesIO(data), out)
        return out.getvalue()


# -- reading -----------------------------------------------------------------------------------------


@dataclass
class ManifestReport:
    """What an image's manifest says, as c2pa's reader validated it."""

    present: bool
    valid: bool = False  # the signature and every hash check out
    tampered: bool = False  # a hash does not match: the image or the manifest changed after signing
    trusted: bool = False  # the signer chains to a root this server trusts
    state: str | None = None  # c2pa's validation state: Trusted, Valid or Invalid
    failures: list[str] = field(default_factory=list)  # validation codes that failed
    signer: str | None = None  # the signing certificate's issuer and common name
    claim_generator: str | None = None
    actions: list[dict] = field(default_factory=list)
    ingredients: list[str] = field(default_factory=list)
    generator: dict | None = None  # Limner's own assertion (model, version) when present
    error: str | None = None  # why the manifest could not be read

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# codes that mean "this is not what was signed" (the rest: expired or untrusted signers and the like)
TAMPER_CODES = (
    "dataHash.mismatch",
    "hashedURI.mismatch",
    "boxesHash.mismatch",
    "bmffHash.mismatch",
    "claimSignature.mismatch",
)


def read(data: bytes, fmt: str, trusted_roots: bytes | None = None) -> ManifestReport:
    """Read and validate the manifest of ``data`` (``fmt``: png, jpeg or webp) with c2pa's reader."""
    settings = dict(READ_SETTINGS)
    if trusted_roots:
        settings["trust"] = {"user_anchors": trusted_roots.decode()}
    try:
        with (
            c2pa.Context.from_dict(settings) as ctx,
            c2pa.Reader(MIME[fmt], io.BytesIO(data), context=ctx) as reader,
        ):
            store = json.loads(reader.json())
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as e:
        text = str(e)
        if "ManifestNotFound" in type(e).__name__ or "no JUMBF" in text or "not found" in text.lower():
            return ManifestReport(present=False)
        return ManifestReport(present=True, state="Invalid", tampered=True, error=f"unreadable manifest: {text[:200]}")
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    failures = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
    tampered = any(code.endswith(TAMPER_CODES) for code in failures)
    actions: list[dict] = []
    generator = None
    for assertion in active.get("assertions", []):
        label = assertion.get("label", "")
        if label.startswith("c2pa.actions"):
            for a in assertion.get("data", {}).get("actions", []):
                actions.append({k: a[k] for k in ("action", "digitalSourceType", "description") if k in a})
        elif label == "org.limner.generator":
            generator = assertion.get("data")
    sig = active.get("signature_info") or {}
    info = active.get("claim_generator_info") or []
    return ManifestReport(
        present=True,
        valid=state in ("Valid", "Trusted") and not tampered,
        tampered=tampered,
        trusted=state == "Trusted",
        state=state,
        failures=failures,
        signer=" / ".join(x for x in (sig.get("issuer"), sig.get("common_name")) if x) or None,
        claim_generator=" ".join(str(x) for x in (info[0].get("name"), info[0].get("version")) if x) if info else None,
        actions=actions,
        ingredients=[i.get("title", "") for i in active.get("ingredients", [])],
        generator=generator,
    )
