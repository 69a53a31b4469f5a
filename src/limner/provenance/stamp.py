"""Provenance for the images one process makes: it marks each image once (registering the mark),
and gives it a stamp that signs every encoding of it (PNG, JPEG, WebP) with a C2PA manifest.
``GeneratedImage.encode`` applies the stamp, so every door (API, Image Creator, CLI) gets it."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from limner.provenance import credentials, ledger, watermark
from limner.provenance.credentials import Chain, Claim, Signer
from limner.version import __version__


@dataclass(frozen=True)
class Stamp:
    """Signs one image's encodings (what ``engine.request.Stamp`` asks for)."""

    signer: Signer
    claim: Claim

    def sign(self, data: bytes, fmt: str) -> bytes:
        return self.signer.sign(data, fmt, self.claim)


class Provenance:
    """What this process stamps with: a signer (None when manifests are off), whether to mark,
    and the cipher of the marks' payloads."""

    def __init__(self, chain: Chain | None, secret: str, *, watermark: bool = True):
        self.chain = chain
        self.signer = Signer(chain) if chain is not None else None
        self.watermark = watermark
        self.cipher = ledger.Cipher(secret)

    @classmethod
    def from_settings(cls, settings) -> Provenance:
        """From the service's ``Settings`` (the chain made or read in its data folder)."""
        chain = (
            credentials.load_chain(Path(settings.data_dir), settings.c2pa_certificate, settings.c2pa_private_key)
            if settings.content_credentials
            else None
        )
        return cls(chain, settings.resolved_secret(), watermark=settings.watermark)

    def sign(self, data: bytes, fmt: str, model: str) -> bytes:
        """A finished file signed as made by ``model`` (the arena's images, once voted on: before
        the vote nothing in them may name the model); ``data`` unchanged when manifests are off."""
        return data if self.signer is None else self.signer.sign(data, fmt, Claim(model, __version__))

    def mark(self, session: Session, images: list, request_id: str) -> None:
        """The watermark alone (the arena's images: before the vote nothing readable in them may name
        the model, so the manifest waits for ``sign``), when the server marks at all."""
        if self.watermark:
            for im in images:
                self._mark_one(session, im, request_id, None, None)

    def _mark_one(
        self, session: Session, im, request_id: str, key_id: int | None, user_id: int | None,
        source: Image.Image | None = None,
    ) -> None:  # fmt: skip
        """Register ``im`` in the marks table and embed that row's (enciphered) id in its pixels;
        what an edit kept exactly from ``source`` stays untouched."""
        mark_id = ledger.register(
            session, model=im.model, request_id=request_id, key_id=key_id, user_id=user_id, seed=im.seed,
            fingerprint=fingerprint(im.image, im.model, key_id, user_id),
        )  # fmt: skip
        im.image = watermark.embed(im.image, self.cipher.encrypt(mark_id), keep=kept(im.image, source))

    def trusted_roots(self) -> bytes | None:
        return self.chain.root if self.chain is not None else None

    def stamp(
        self,
        session: Session,
        images: list,
        *,
        request_id: str,
        key=None,
        user_id: int | None = None,
        source: Image.Image | None = None,
    ) -> None:
        """Mark each of ``images`` (GeneratedImage) and attach its stamp, as this server and
        ``key``'s own switches (None: the server's) say."""
        mark = self.watermark if key is None or key.watermark is None else key.watermark
        sign = self.signer is not None and (key is None or key.content_credentials is not False)
        source_png = _png(source) if source is not None and sign else None
        key_id = key.id if key is not None else None
        for im in images:
            if mark:
                self._mark_one(session, im, request_id, key_id, user_id, source)
            if sign and self.signer is not None:
                claim = Claim(im.model, __version__, im.parameters, source=source_png)
                im.stamp = Stamp(self.signer, claim)


def fingerprint(image: Image.Image, model: str, key_id: int | None, user_id: int | None) -> str:
    """Who made which picture (its pixels before marking), with which model."""
    h = hashlib.sha256(f"{key_id}|{user_id}|{model}|{image.mode}|{image.size}|".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def kept(image: Image.Image, source: Image.Image | None) -> np.ndarray | None:
    """The pixels an edit kept exactly from its source (an inpainting's unmasked area): the mark
    leaves them alone — they are the caller's, not the model's — and an edit keeps its promise."""
    if source is None or source.size != image.size:
        return None
    same = (np.asarray(image.convert("RGB")) == np.asarray(source.convert("RGB"))).all(axis=-1)  # (H, W)
    return same if same.any() else None


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
