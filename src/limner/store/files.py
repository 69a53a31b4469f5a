"""Generated images kept on disk, and the signed, expiring links that serve them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

from sqlalchemy.orm import Session

from limner.store.db import StoredFile

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class FileStore:
    def __init__(self, root: Path, secret: str):
        self.root = Path(root)
        self.secret = secret.encode()

    def save(
        self,
        session: Session,
        data: bytes,
        fmt: str,
        key_id: int | None = None,
        user_id: int | None = None,
        meta: dict | None = None,
    ) -> StoredFile:
        file_id = "file-" + secrets.token_hex(16)
        path = self.root / file_id[5:7] / f"{file_id}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # a reader never sees half a file
        row = StoredFile(
            id=file_id,
            key_id=key_id,
            user_id=user_id,
            mime=MIME[fmt],
            path=str(path),
            bytes=len(data),
            meta=meta or {},
        )
        session.add(row)
        session.flush()
        return row

    def signature(self, file_id: str, expires: int) -> str:
        return hmac.new(self.secret, f"{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:40]

    def signed_path(self, file_id: str, minutes: int, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + minutes * 60)
        return f"/v1/files/{file_id}/content?expires={expires}&signature={self.signature(file_id, expires)}"

    def check(self, file_id: str, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(self.signature(file_id, expires), signature)
