"""The corpus's sources: what each one is, its licence, and how to bring it into a local folder.

Every source installs by name from a package registry (npm or Debian) and is unpacked into
``DEST/<manager>/<package>/`` without touching the system. Fetching is idempotent: a source
whose folder carries a ``.fetched`` marker is left alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from limner.errors import SourceUnavailable
from limner.typography.fonts import FONT_PACKAGES


@dataclass(frozen=True)
class Package:
    """One package in a registry; several sources may share one (metadata, fonts)."""

    manager: str  # "npm" | "deb"
    name: str

    @property
    def folder(self) -> str:
        return f"{self.manager}/{self.name.replace('/', '__').lstrip('@')}"


@dataclass(frozen=True)
class Source:
    """An image source of the corpus, with the licence its records carry."""

    name: str
    package: Package
    licence: str
    attribution: str
    homepage: str
    style: str  # how captions name the look of its images


FLUENT_3D = Package("npm", "@lobehub/fluent-emoji-3d")
FLUENT_SVG = Package("npm", "fluentui-emoji")
OPENMOJI = Package("npm", "openmoji")
EMOJIBASE = Package("npm", "emojibase-data")
OPENCLIPART = Package("deb", "openclipart-svg")
NOTO_EMOJI = Package("deb", "fonts-noto-color-emoji")

_FLUENT_ATTRIBUTION = "Fluent Emoji by Microsoft Corporation, MIT licence (github.com/microsoft/fluentui-emoji)"

SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "fluent-3d",
            FLUENT_3D,
            "MIT",
            _FLUENT_ATTRIBUTION,
            "https://github.com/lobehub/fluent-emoji",
            "3D render",
        ),
        Source(
            "fluent-color",
            FLUENT_SVG,
            "MIT",
            _FLUENT_ATTRIBUTION,
            "https://github.com/microsoft/fluentui-emoji",
            "glossy colour icon",
        ),
        Source(
            "fluent-flat",
            FLUENT_SVG,
            "MIT",
            _FLUENT_ATTRIBUTION,
            "https://github.com/microsoft/fluentui-emoji",
            "flat icon",
        ),
        Source(
            "fluent-high-contrast",
            FLUENT_SVG,
            "MIT",
            _FLUENT_ATTRIBUTION,
            "https://github.com/microsoft/fluentui-emoji",
            "black and white line icon",
        ),
        Source(
            "openmoji",
            OPENMOJI,
            "CC BY-SA 4.0",
            "OpenMoji, the open-source emoji and icon project, CC BY-SA 4.0 (openmoji.org)",
            "https://openmoji.org",
            "outlined flat emoji",
        ),
        Source(
            "noto",
            NOTO_EMOJI,
            "OFL-1.1",
            "Noto Color Emoji by Google, SIL Open Font License 1.1",
            "https://github.com/googlefonts/noto-emoji",
            "cartoon emoji",
        ),
        Source(
            "openclipart",
            OPENCLIPART,
            "public domain (CC0)",
            "Openclipart contributors, released into the public domain",
            "https://openclipart.org",
            "clip art",
        ),
    ]
}

# Packages that carry no images of their own but feed captions and typography.
METADATA = [EMOJIBASE]
FONTS = [Package("deb", name) for name in FONT_PACKAGES]  # the typography layer says which
FONT_LICENCES = "OFL-1.1 / Apache-2.0 / GPL with font exception (each package's copyright file)"


def all_packages() -> list[Package]:
    """Every package the corpus needs, each once, in a stable order."""
    seen: dict[Package, None] = {}
    for p in [s.package for s in SOURCES.values()] + METADATA + FONTS:
        seen.setdefault(p)
    return list(seen)


def package_dir(root: Path, package: Package) -> Path:
    return Path(root) / package.folder


def is_fetched(root: Path, package: Package) -> bool:
    return (package_dir(root, package) / ".fetched").exists()


def fetch(package: Package, root: Path) -> Path:
    """Download and unpack one package under ``root``; return its folder. Idempotent."""
    dest = package_dir(root, package)
    if is_fetched(root, package):
        return dest
    with tempfile.TemporaryDirectory(prefix="limner-fetch-") as tmp:
        archive = _download(package, Path(tmp))
        staging = Path(tmp) / "unpacked"
        staging.mkdir()
        _unpack(package, archive, staging)
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), dest)
    (dest / ".fetched").write_text(json.dumps({"package": package.name, "archive": archive.name}))
    return dest


def _run(cmd: list[str], cwd: Path, package: Package) -> str:
    if shutil.which(cmd[0]) is None:
        raise SourceUnavailable(
            f"cannot fetch {package.manager} package {package.name!r}: the command {cmd[0]!r} "
            f"is not installed on this machine"
        )
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SourceUnavailable(f"cannot fetch {package.manager} package {package.name!r}: {' / '.join(detail)}")
    return proc.stdout


def _download(package: Package, tmp: Path) -> Path:
    if package.manager == "npm":
        out = _run(["npm", "pack", "--silent", "--json", package.name], tmp, package)
        return tmp / json.loads(out)[0]["filename"].replace("/", "-").lstrip("@")
    if package.manager == "deb":
        _run(["apt-get", "download", "-q", package.name], tmp, package)
        debs = sorted(tmp.glob("*.deb"))
        if not debs:
            raise SourceUnavailable(f"apt-get download {package.name} produced no .deb file")
        return debs[0]
    raise ValueError(f"unknown package manager {package.manager!r}")


def _unpack(package: Package, archive: Path, dest: Path) -> None:
    if package.manager == "npm":
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    else:
        _run(["dpkg-deb", "-x", str(archive), str(dest)], dest, package)


def fetch_all(
    root: Path,
    packages: list[Package] | None = None,
    on_done: Callable[[Package], None] | None = None,
) -> tuple[list[Package], dict[Package, str]]:
    """Fetch every package; return those fetched and, for those that failed, why."""
    done: list[Package] = []
    failed: dict[Package, str] = {}
    for package in packages or all_packages():
        try:
            fetch(package, root)
            done.append(package)
        except SourceUnavailable as e:
            failed[package] = str(e)
        if on_done:
            on_done(package)
    return done, failed
