"""Shards: plain tar files in the webdataset layout (``KEY.webp``, ``KEY.json``, ``KEY.glyph.png``).

Any webdataset reader can stream them; ``iter_records`` reads them without one.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from limner.data.colors import Background, composite


@dataclass
class Record:
    key: str
    meta: dict
    files: dict[str, bytes] = field(default_factory=dict)  # extension → bytes, e.g. "webp"

    def rgba(self) -> Image.Image:
        return Image.open(io.BytesIO(self.files["webp"])).convert("RGBA")

    def image(self) -> Image.Image:
        """The training image: RGBA composited onto the record's background (RGB as is)."""
        with Image.open(io.BytesIO(self.files["webp"])) as im:
            if im.mode != "RGBA" or not self.meta.get("background"):
                return im.convert("RGB")
            return composite(im.convert("RGBA"), Background.from_dict(self.meta["background"]))

    def glyph(self) -> Image.Image | None:
        data = self.files.get("glyph.png")
        return Image.open(io.BytesIO(data)).convert("L") if data else None


class ShardWriter:
    """Writes records into ``{prefix}-{index:05d}.tar`` files of at most ``per_shard`` records."""

    def __init__(self, out_dir: Path, prefix: str, per_shard: int = 1000):
        self.out_dir, self.prefix, self.per_shard = Path(out_dir), prefix, per_shard
        self.paths: list[Path] = []
        self.count = 0
        self._tar: tarfile.TarFile | None = None

    def write(self, record: Record) -> None:
        if "." in record.key:
            raise ValueError(f"shard keys may not contain '.': {record.key!r}")
        if self._tar is None or self.count % self.per_shard == 0:
            self._open_next()
        assert self._tar is not None
        files = {
            "json": json.dumps(record.meta, ensure_ascii=False, sort_keys=True).encode(),
            **record.files,
        }
        for ext, data in files.items():
            info = tarfile.TarInfo(f"{record.key}.{ext}")
            info.size, info.mtime, info.mode = (
                len(data),
                0,
                0o644,
            )  # fixed mtime: same input, same bytes
            self._tar.addfile(info, io.BytesIO(data))
        self.count += 1

    def _open_next(self) -> None:
        self.close()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{self.prefix}-{len(self.paths):05d}.tar"
        self.paths.append(path)
        self._tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115 (closed in close())

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_records(paths: Iterable[Path]) -> Iterator[Record]:
    """Yield the records of each shard in order; a record's files are consecutive tar members."""
    for path in paths:
        current: Record | None = None
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.partition(".")
                f = tar.extractfile(member)
                data = f.read() if f else b""
                if current is None or current.key != key:
                    if current is not None:
                        yield current
                    current = Record(key, {})
                if ext == "json":
                    current.meta = json.loads(data)
                else:
                    current.files[ext] = data
        if current is not None:
            yield current


def shard_paths(corpus_dir: Path, split: str, kind: str = "images") -> list[Path]:
    """The shard files of one split ("train" | "val") of the images or the typography set."""
    prefix = split if kind == "images" else f"typography-{split}"
    return sorted(Path(corpus_dir).glob(f"{prefix}-[0-9][0-9][0-9][0-9][0-9].tar"))
