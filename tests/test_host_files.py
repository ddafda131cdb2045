"""The seam for a host's files: LocalFiles itself, and images / Host.create reaching every file and program through
a HostFiles. The one used for the seam keeps its "host's" files under a directory of its own, so a path such as
/srv/vmhost/images/web1.qcow2 exists only there: anything that bypassed the seam would not find it.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import virtkit
from virtkit import DiskFormat, ImageError, InvalidSpec, OperationTimeout, VMSpec, images
from virtkit.backends.base.files import NOT_FOUND, CompletedRun, FileStat
from virtkit.backends.libvirt.host import LibvirtHost
from virtkit.remote.local import LocalFiles

ROOT = Path("/srv/vmhost/images")  # does not exist on this machine: only inside ElsewhereTool


class ElsewhereTool:
    """A HostFiles for a "host" whose file system is ``base`` here: every absolute path is moved under it."""

    local = False

    def __init__(self, base: Path, *, fail_creates_after: int | None = None) -> None:
        self.base = base
        self.here = LocalFiles()
        self.commands: list[tuple[str, ...]] = []
        self.fail_creates_after = fail_creates_after
        self.closed = False

    def _here(self, path: Path) -> Path:
        return self.base / path.relative_to("/")

    @property
    def where(self) -> str:
        return "the elsewhere host"

    def run(
        self, args: Sequence[str], *, timeout: float, on_stdout: Callable[[bytes], None] | None = None
    ) -> CompletedRun:
        self.commands.append(tuple(args))
        creates = sum(1 for c in self.commands if c[:2] == ("qemu-img", "create"))
        if self.fail_creates_after is not None and creates > self.fail_creates_after:
            return CompletedRun(tuple(args), 1, "", "qemu-img: injected failure")
        moved = [str(self._here(Path(a))) if a.startswith("/") else a for a in args]
        return self.here.run(moved, timeout=timeout, on_stdout=on_stdout)

    def stat(self, path: Path, *, follow_symlinks: bool = True) -> FileStat | None:
        return self.here.stat(self._here(path), follow_symlinks=follow_symlinks)

    def read(self, path: Path, *, offset: int, size: int) -> bytes:
        return self.here.read(self._here(path), offset=offset, size=size)

    def resolve(self, path: Path) -> Path:
        real = self.here.resolve(self._here(path))
        base = self.base.resolve()
        return Path("/") / real.relative_to(base) if real.is_relative_to(base) else Path("/outside") / real.name

    def link(self, src: Path, dst: Path) -> None:
        self.here.link(self._here(src), self._here(dst))

    def unlink(self, path: Path) -> bool:
        return self.here.unlink(self._here(path))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def elsewhere(tmp_path: Path) -> ElsewhereTool:
    tool = ElsewhereTool(tmp_path / "vmhost")
    (tool.base / ROOT.relative_to("/")).mkdir(parents=True)
    return tool


def test_local_tool_runs_programs_from_argument_lists() -> None:
    tool = LocalFiles()
    done = tool.run(["printf", "%s|", "a b", "$HOME"], timeout=10)
    assert done == CompletedRun(("printf", "%s|", "a b", "$HOME"), 0, "a b|$HOME|", "")
    assert tool.run(["sh", "-c", "echo oops >&2; exit 3"], timeout=10).returncode == 3
    assert tool.run(["sh", "-c", "echo oops >&2; exit 3"], timeout=10).stderr == "oops\n"
    assert tool.run(["/nonexistent/program"], timeout=10).returncode == NOT_FOUND


def test_local_tool_kills_what_runs_too_long_or_is_cancelled() -> None:
    tool = LocalFiles()
    start = time.monotonic()
    with pytest.raises(OperationTimeout, match="sleep 30"):
        tool.run(["sleep", "30"], timeout=0.3)
    assert time.monotonic() - start < 5

    def cancel(_chunk: bytes) -> None:
        raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        tool.run(["sh", "-c", "echo go; sleep 30"], timeout=60, on_stdout=cancel)
    assert time.monotonic() - start < 5


def test_local_tool_files(tmp_path: Path) -> None:
    tool = LocalFiles()
    a, b = tmp_path / "a", tmp_path / "b"
    assert tool.stat(a) is None and not tool.unlink(a)
    a.write_text("x")
    tool.link(a, b)
    found = tool.stat(b)
    assert found is not None and stat.S_ISREG(found.mode) and found.size == 1
    assert tool.read(b, offset=0, size=10) == b"x"
    with pytest.raises(FileExistsError):
        tool.link(a, b)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert tool.stat(tmp_path / "dangling") is None
    assert tool.stat(tmp_path / "dangling", follow_symlinks=False) is not None
    assert tool.unlink(a) and tool.stat(a) is None


def test_local_read_refuses_what_is_no_regular_file_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    start = time.monotonic()
    with pytest.raises(OSError, match="not a regular file"):
        LocalFiles().read(fifo, offset=0, size=512)
    assert time.monotonic() - start < 5
    with pytest.raises(OSError):
        LocalFiles().read(tmp_path, offset=0, size=512)


def test_images_work_on_the_tools_host_only(elsewhere: ElsewhereTool) -> None:
    path = ROOT / "disk.qcow2"
    made = images.create(path, "64MiB", roots=[ROOT], tool=elsewhere)
    assert made.path == path and made.virtual_size == 64 * 2**20 and made.format is DiskFormat.QCOW2
    assert not path.exists() and (elsewhere.base / "srv/vmhost/images/disk.qcow2").is_file()
    assert [c[:2] for c in elsewhere.commands] == [("qemu-img", "create"), ("qemu-img", "info")]
    assert images.info(path, roots=[ROOT], tool=elsewhere) == made
    assert images.create(path, "64MiB", roots=[ROOT], tool=elsewhere, exist_ok=True) == made
    with pytest.raises(virtkit.AlreadyExists):
        images.create(path, "64MiB", roots=[ROOT], tool=elsewhere)
    assert images.remove(path, roots=[ROOT], tool=elsewhere)
    assert not images.remove(path, roots=[ROOT], tool=elsewhere)
    assert os.listdir(elsewhere.base / "srv/vmhost/images") == []  # no staging file left


def test_images_check_paths_on_the_tools_host(elsewhere: ElsewhereTool, tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="directory /srv/vmhost/images/sub does not exist"):
        images.create(ROOT / "sub" / "disk.qcow2", "1MiB", roots=[ROOT], tool=elsewhere)
    outside = elsewhere.base / "etc"
    outside.mkdir()
    (elsewhere.base / "srv/vmhost/images/link").symlink_to(outside)  # a symlink out of the roots, on that host
    with pytest.raises(InvalidSpec, match="outside the storage roots"):
        images.create(ROOT / "link" / "disk.qcow2", "1MiB", roots=[ROOT], tool=elsewhere)
    assert os.listdir(outside) == []


def test_a_missing_qemu_img_on_the_host_is_named(elsewhere: ElsewhereTool) -> None:
    def missing(args: Sequence[str], *, timeout: float, on_stdout: object = None) -> CompletedRun:
        return CompletedRun(tuple(args), NOT_FOUND, "", "qemu-img: not found")

    elsewhere.run = missing  # type: ignore[method-assign]
    with pytest.raises(ImageError, match="not installed on the elsewhere host"):
        images.create(ROOT / "disk.qcow2", "1MiB", roots=[ROOT], tool=elsewhere)


def _spec(name: str, **extra: object) -> VMSpec:
    return VMSpec.from_dict(
        {
            "name": name,
            "memory": "256MiB",
            "disks": [{"path": str(ROOT / f"{name}.qcow2"), "size": "64MiB"}],
            "serial_log": str(ROOT / f"{name}.log"),
            **extra,
        }
    )


def _host(tmp_path: Path, tool: ElsewhereTool) -> virtkit.Host:
    node = tmp_path / "node.xml"
    shutil.copy(Path(__file__).parent / "data" / "node.xml", node)
    return virtkit.Host(LibvirtHost(f"test://{node}", storage_roots=(ROOT,)), files=tool)


def test_host_create_makes_images_through_the_tool(tmp_path: Path, elsewhere: ElsewhereTool) -> None:
    with _host(tmp_path, elsewhere) as host:
        assert host.storage.files is elsewhere
        change = host.create(_spec("web1"), start=True)
        assert change.changed and host.exists("web1")
        assert (elsewhere.base / "srv/vmhost/images/web1.qcow2").is_file()
        assert not host.create(_spec("web1"), start=True).changed  # idempotent
        with pytest.raises(InvalidSpec, match="size"):
            host.create(_spec("web2", disks=[{"path": str(ROOT / "web1.qcow2"), "size": "128MiB"}]))
        with pytest.raises(InvalidSpec, match="does not exist on the elsewhere host"):
            host.create(_spec("web3", serial_log="/srv/vmhost/images/none/web3.log"))
    assert elsewhere.closed


def test_host_create_rolls_back_images_through_the_tool(tmp_path: Path, elsewhere: ElsewhereTool) -> None:
    elsewhere.fail_creates_after = 1
    two = [{"path": str(ROOT / "a.qcow2"), "size": "1MiB"}, {"path": str(ROOT / "b.qcow2"), "size": "1MiB"}]
    with _host(tmp_path, elsewhere) as host:
        with pytest.raises(ImageError, match="injected"):
            host.create(_spec("db1", disks=two))
        assert not host.exists("db1")
    assert os.listdir(elsewhere.base / "srv/vmhost/images") == []
