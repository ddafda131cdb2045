"""The rule for every path the API takes, on libvirt's test:// driver and real image files: the real path (symlinks
resolved) lies inside a storage root, only regular files (and block devices for pass-through) are accepted, backing
chains stay inside the roots, and a saved state's embedded VM is checked like a spec. Each refusal changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import DiskFormat, InvalidSpec, images


def _files(storage: Path) -> list[str]:
    return sorted(p.name for p in storage.iterdir())


def _qcow2_over(storage: Path, name: str, backing: str, fmt: str = "raw") -> Path:
    """A qcow2 image whose header names ``backing`` (written unchecked, as any program could)."""
    path = storage / name
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", fmt, str(path), "16M"], check=True
    )
    return path


def _spec(name: str, disk: Path, **extra: Any) -> dict[str, Any]:
    return {"name": name, "memory": "128MiB", "disks": [{"path": str(disk), **extra}]}


@pytest.mark.parametrize(
    ("backing", "reason"),
    [
        ("/etc/passwd", "outside the storage roots"),
        ('json:{"driver": "nbd", "server": {"type": "inet", "host": "192.0.2.1", "port": "10809"}}', "json:"),
        ("nbd://192.0.2.1:10809/export", "protocol"),
        ("../../../../../../etc/shadow", "outside the storage roots"),
        ("missing.qcow2", "does not exist"),
    ],
)
def test_a_backing_chain_that_leaves_the_roots_is_refused_before_anything_opens_it(
    host: virtkit.Host, storage: Path, backing: str, reason: str
) -> None:
    overlay = _qcow2_over(storage, "evil.qcow2", backing)
    before = _files(storage)
    with pytest.raises(InvalidSpec, match=reason) as err:
        host.create(_spec("evil", overlay))
    assert err.value.field == "disks[0].path"
    assert not host.exists("evil") and _files(storage) == before
    for call in (
        lambda: images.convert(overlay, storage / "copy.raw", DiskFormat.RAW, roots=[storage]),
        lambda: images.compare(overlay, overlay, roots=[storage]),
        lambda: images.resize(overlay, "32MiB", roots=[storage]),
    ):
        with pytest.raises(InvalidSpec, match=reason):
            call()
    assert _files(storage) == before


def test_a_chain_inside_the_roots_is_followed_and_accepted(host: virtkit.Host, storage: Path) -> None:
    base = images.create(storage / "base.qcow2", "16MiB", roots=[storage]).path
    (storage / "sub").mkdir()
    middle = images.create(storage / "sub" / "middle.qcow2", None, roots=[storage], backing=base).path
    _qcow2_over(storage, "top.qcow2", "sub/middle.qcow2", fmt="qcow2")  # relative to the image's directory
    assert host.create(_spec("chained", storage / "top.qcow2")).changed
    assert middle.is_file()


def test_a_qcow2_with_an_external_data_file_is_refused(host: virtkit.Host, storage: Path, tmp_path: Path) -> None:
    data = tmp_path / "elsewhere.raw"
    path = storage / "split.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={data}", str(path), "16M"], check=True)
    with pytest.raises(InvalidSpec, match="external file"):
        host.create(_spec("split", path))


def test_a_backing_chain_that_loops_is_refused(host: virtkit.Host, storage: Path) -> None:
    _qcow2_over(storage, "a.qcow2", "b.qcow2", fmt="qcow2")
    _qcow2_over(storage, "b.qcow2", "a.qcow2", fmt="qcow2")
    with pytest.raises(InvalidSpec, match="loops"):
        host.create(_spec("loop", storage / "a.qcow2"))


@pytest.mark.parametrize("kind", ["fifo", "directory", "character device", "socket"])
def test_what_is_no_regular_file_is_refused_at_once_without_opening_it(
    host: virtkit.Host, storage: Path, kind: str
) -> None:
    path = storage / "odd"
    if kind == "fifo":
        os.mkfifo(path)  # opening it to read a header would wait for a writer forever
    elif kind == "directory":
        path.mkdir()
    elif kind == "character device":
        path.symlink_to("/dev/null")
        host = virtkit.connect(host.uri, storage_roots=[storage, Path("/dev")])
    else:
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    start = time.monotonic()
    with pytest.raises(InvalidSpec, match="not an image file") as err:
        host.create(_spec("odd", path, format="raw"))
    assert err.value.field == "disks[0].path" and time.monotonic() - start < 5
    with pytest.raises(InvalidSpec):
        host.create({"name": "odd", "memory": "128MiB", "kernel": {"kernel": str(path)}})
    assert not host.exists("odd")
    if kind == "character device":
        host.close()


def test_a_pass_through_disk_must_be_a_block_device(host: virtkit.Host, storage: Path) -> None:
    image = images.create(storage / "plain.raw", "1MiB", DiskFormat.RAW, roots=[storage]).path
    with pytest.raises(InvalidSpec, match="regular file, not a block device"):
        host.create(_spec("pt", image, kind="block", format="raw"))
    (storage / "dev").symlink_to("/dev/loop-control")  # a character device, even through a link inside /dev
    with virtkit.connect(host.uri, storage_roots=[storage, Path("/dev")]) as with_dev, pytest.raises(InvalidSpec):
        with_dev.create(_spec("pt", storage / "dev", kind="block", format="raw"))


def test_a_link_out_of_the_roots_is_refused_for_reading_writing_and_removing(
    host: virtkit.Host, storage: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(secret), "16M"], check=True)
    (storage / "door").symlink_to(outside)
    (storage / "link.qcow2").symlink_to(secret)
    for path in (storage / "door" / "disk.qcow2", storage / "link.qcow2"):
        with pytest.raises(InvalidSpec, match="resolves to"):
            host.create(_spec("leak", path))
        with pytest.raises(InvalidSpec, match="resolves to"):
            images.remove(path, roots=[storage])
        with pytest.raises(InvalidSpec, match="resolves to"):
            images.info(path, roots=[storage])
    for target in (storage / "door" / "new.qcow2", storage / "door" / "copy.raw"):
        with pytest.raises(InvalidSpec, match="resolves to"):
            images.create(target, "1MiB", roots=[storage])
    assert sorted(p.name for p in outside.iterdir()) == ["disk.qcow2"]


def test_a_saved_state_is_checked_like_a_spec_before_it_is_restored(host: virtkit.Host, storage: Path) -> None:
    disk = storage / "web1.qcow2"
    host.create(_spec("web1", disk, size="16MiB"), start=True)
    vm = host.get("web1")
    path = storage / "web1.save"
    vm.save(path)
    disk.unlink()
    disk.symlink_to("/etc/passwd")  # the disk it names now leads out of the roots
    with pytest.raises(InvalidSpec, match="resolves to") as err:
        host.restore(path)
    assert err.value.field == "path.disks[0].path"
    disk.unlink()
    with pytest.raises(InvalidSpec, match="does not exist") as err:
        host.restore(path, check=True)
    assert err.value.field == "path.disks[0].path"
    assert vm.state is virtkit.VMState.STOPPED


# -- block devices passed through: mounted anywhere below them is refused ---------------------------------------


def test_mounted_reads_every_mount_of_a_device_and_what_stacks_on_it() -> None:
    from virtkit.ops.storage import mounted

    text = """{"blockdevices": [{"name": "sdb", "mountpoints": [null], "children": [
        {"name": "sdb1", "mountpoints": ["/boot", "/mnt/b"]},
        {"name": "sdb2", "mountpoints": [null], "children": [{"name": "vg-swap", "mountpoints": ["[SWAP]"]}]}]}]}"""
    assert mounted(text) == [("sdb1", "/boot"), ("sdb1", "/mnt/b"), ("vg-swap", "[SWAP]")]
    assert mounted('{"blockdevices": [{"name": "loop3", "mountpoints": [null]}]}') == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "lsblk: /dev/sdz: not a block device",
        '{"blockdevices": {}}',
        '{"blockdevices": [{"mountpoints": ["/"]}]}',
        '{"blockdevices": [{"name": "sda", "mountpoints": "/"}]}',
        "[]",
    ],
)
def test_mounted_refuses_what_is_no_lsblk_output(text: str) -> None:
    from virtkit.ops.storage import mounted

    with pytest.raises(ValueError):
        mounted(text)
