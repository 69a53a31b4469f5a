import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from limner.data import sources
from limner.data.sources import (
    FONTS,
    METADATA,
    SOURCES,
    Package,
    all_packages,
    fetch,
    fetch_all,
    is_fetched,
    package_dir,
)
from limner.errors import SourceUnavailable

NPM = Package("npm", "@example/tiny-icons")
DEB = Package("deb", "tiny-icons-svg")


def test_package_folders_flatten_scoped_names():
    assert NPM.folder == "npm/example__tiny-icons"
    assert SOURCES["fluent-3d"].package.folder == "npm/lobehub__fluent-emoji-3d"
    assert package_dir(Path("/d"), DEB) == Path("/d/deb/tiny-icons-svg")


def test_all_packages_lists_each_package_once():
    packages = all_packages()
    assert len(packages) == len(set(packages))
    assert set(packages) == {s.package for s in SOURCES.values()} | set(METADATA) | set(FONTS)
    # three fluent styles come from one package
    assert sum(p.name == "fluentui-emoji" for p in packages) == 1


def test_every_source_names_its_licence_and_attribution():
    for s in SOURCES.values():
        assert s.licence and s.attribution and s.homepage.startswith("https://")
    assert SOURCES["openmoji"].licence == "CC BY-SA 4.0"


class FakeRegistry:
    """Stands in for npm, apt-get and dpkg-deb: records calls, writes what they would write."""

    def __init__(self, fail: str | None = None):
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, cmd, cwd=None, capture_output=False, text=False):
        self.calls.append(cmd)
        if self.fail:
            return subprocess.CompletedProcess(cmd, 1, "", f"E: {self.fail}\n")
        if cmd[0] == "npm":
            with tarfile.open(Path(cwd) / "example-tiny-icons-1.0.0.tgz", "w:gz") as tar:
                data = b"<svg/>"
                info = tarfile.TarInfo("package/icons/dot.svg")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            out = json.dumps([{"filename": "@example/tiny-icons-1.0.0.tgz"}])
            return subprocess.CompletedProcess(cmd, 0, out, "")
        if cmd[0] == "apt-get":
            (Path(cwd) / "tiny-icons-svg_1.0_all.deb").write_bytes(b"!<arch>")
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if cmd[0] == "dpkg-deb":
            dest = Path(cmd[3]) / "usr/share/tiny"
            dest.mkdir(parents=True)
            (dest / "dot.svg").write_text("<svg/>")
            return subprocess.CompletedProcess(cmd, 0, "", "")
        raise AssertionError(f"unexpected command {cmd}")


@pytest.fixture
def registry(monkeypatch) -> FakeRegistry:
    fake = FakeRegistry()
    monkeypatch.setattr(sources.shutil, "which", lambda cmd: f"/usr/bin/{cmd}")
    monkeypatch.setattr(sources.subprocess, "run", fake)
    return fake


def test_fetch_npm_unpacks_the_tarball_and_marks_it_fetched(registry, tmp_path):
    dest = fetch(NPM, tmp_path)
    assert dest == tmp_path / "npm" / "example__tiny-icons"
    assert (dest / "package/icons/dot.svg").read_text() == "<svg/>"
    marker = json.loads((dest / ".fetched").read_text())
    assert marker == {"package": "@example/tiny-icons", "archive": "example-tiny-icons-1.0.0.tgz"}
    assert registry.calls == [["npm", "pack", "--silent", "--json", "@example/tiny-icons"]]


def test_fetch_deb_extracts_without_installing(registry, tmp_path):
    dest = fetch(DEB, tmp_path)
    assert (dest / "usr/share/tiny/dot.svg").exists()
    assert [c[0] for c in registry.calls] == ["apt-get", "dpkg-deb"]
    assert registry.calls[1][1] == "-x"
    assert is_fetched(tmp_path, DEB)


def test_fetch_is_idempotent(registry, tmp_path):
    fetch(NPM, tmp_path)
    fetch(NPM, tmp_path)
    assert len(registry.calls) == 1


def test_a_fetched_folder_is_never_downloaded_again(registry, tmp_path):
    dest = package_dir(tmp_path, NPM)
    dest.mkdir(parents=True)
    (dest / ".fetched").write_text("{}")
    (dest / "mine.txt").write_text("kept")
    assert fetch(NPM, tmp_path) == dest
    assert registry.calls == []
    assert (dest / "mine.txt").read_text() == "kept"


def test_a_half_fetched_folder_is_replaced(registry, tmp_path):
    dest = package_dir(tmp_path, NPM)
    dest.mkdir(parents=True)
    (dest / "partial.tmp").write_text("interrupted")
    fetch(NPM, tmp_path)
    assert not (dest / "partial.tmp").exists()
    assert (dest / ".fetched").exists()


def test_missing_tool_raises_source_unavailable_naming_package_and_tool(monkeypatch, tmp_path):
    monkeypatch.setattr(sources.shutil, "which", lambda cmd: None)
    with pytest.raises(SourceUnavailable, match=r"'@example/tiny-icons'.*'npm' is not installed"):
        fetch(NPM, tmp_path)
    assert not package_dir(tmp_path, NPM).exists()


def test_failed_download_raises_source_unavailable_with_the_tools_message(monkeypatch, tmp_path):
    monkeypatch.setattr(sources.shutil, "which", lambda cmd: f"/usr/bin/{cmd}")
    monkeypatch.setattr(sources.subprocess, "run", FakeRegistry(fail="Unable to locate package"))
    with pytest.raises(SourceUnavailable, match=r"'tiny-icons-svg'.*Unable to locate package"):
        fetch(DEB, tmp_path)
    assert not is_fetched(tmp_path, DEB)


def test_apt_get_without_a_deb_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(sources.shutil, "which", lambda cmd: f"/usr/bin/{cmd}")
    monkeypatch.setattr(sources.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, "", ""))
    with pytest.raises(SourceUnavailable, match=r"produced no \.deb file"):
        fetch(DEB, tmp_path)


def test_fetch_all_keeps_going_and_reports_each_failure(monkeypatch, tmp_path):
    monkeypatch.setattr(sources.shutil, "which", lambda cmd: None if cmd == "apt-get" else cmd)
    monkeypatch.setattr(sources.subprocess, "run", FakeRegistry())
    seen = []
    done, failed = fetch_all(tmp_path, [DEB, NPM], on_done=seen.append)
    assert done == [NPM]
    assert list(failed) == [DEB]
    assert "tiny-icons-svg" in failed[DEB] and "apt-get" in failed[DEB]
    assert seen == [DEB, NPM]
