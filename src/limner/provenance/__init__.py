"""Provenance of Limner's images: Content Credentials (C2PA manifests, ``credentials``), an
invisible watermark (``watermark``), the mark's payload ↔ database (``ledger``), stamping at
generation (``stamp``) and reading it all back (``verify``)."""

from limner.provenance.stamp import Provenance, Stamp

__all__ = ["Provenance", "Stamp"]
