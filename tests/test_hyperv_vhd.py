"""The VHD cmdlets against the real qemu-img (qemu-io writes the data), in a temporary storage root: formats, types,
sizes and parent chains as made; data kept through convert, resize, optimize and merge; hostile input refused with
the parameter named and nothing left behind; -WhatIf changing nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import virtkit
from virtkit import AlreadyExists, Conflict, InvalidSpec, NotFound, Unsupported
from virtkit.hyperv.vhd import (
    VhdFormat,
    VhdType,
    convert_vhd,
    get_vhd,
    merge_vhd,
    new_vhd,
    optimize_vhd,
    resize_vhd,
)

MiB = 1024 * 1024
QEMU = {".vhdx": "vhdx", ".vhd": "vpc", ".qcow2": "qcow2", ".img": "raw"}


def state(storage: Path) -> dict[str, tuple[int, int, int]]:
    """Every name in the root (hidden temporary files too) with its size, mtime and mode: what "nothing changed"
    compares."""
    out = {}
    for name in sorted(os.listdir(storage)):
        st = os.lstat(storage / name)
        out[name] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def io(path: Path, command: str) -> str:
    fmt = QEMU[path.suffix]
    done = subprocess.run(["qemu-io", "-f", fmt, "-c", command, str(path)], check=True, capture_output=True, text=True)
    assert "failed" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.stdout


def same(a: Path, b: Path) -> bool:
    cmd = ["qemu-img", "compare", "-q", "-f", QEMU[a.suffix], "-F", QEMU[b.suffix], str(a), str(b)]
    return subprocess.run(cmd, check=False).returncode == 0


def qemu_info(path: Path) -> dict[str, object]:
    cmd = ["qemu-img", "info", "--output=json", "-f", QEMU[path.suffix], str(path)]
    data: dict[str, object] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return data


def snapshot(path: Path, storage: Path) -> Path:
    """A raw copy of what the guest sees in ``path``, outside the root."""
    copy = storage.parent / f"{path.name}.view.img"
    fmt = QEMU[path.suffix]
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(path), str(copy)], check=True)
    return copy


# -- New-VHD and Get-VHD -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fixed", "vhd_format", "vhd_type"),
    [
        ("d.vhdx", False, VhdFormat.VHDX, VhdType.DYNAMIC),
        ("f.vhdx", True, VhdFormat.VHDX, VhdType.FIXED),
        ("d.vhd", False, VhdFormat.VHD, VhdType.DYNAMIC),
        ("f.vhd", True, VhdFormat.VHD, VhdType.FIXED),
        ("d.qcow2", False, VhdFormat.QCOW2, VhdType.DYNAMIC),
    ],
)
def test_new_vhd_makes_each_format_and_type_with_the_exact_size(
    host: virtkit.Host, storage: Path, name: str, fixed: bool, vhd_format: VhdFormat, vhd_type: VhdType
) -> None:
    size = 16 * MiB + 512  # no CHS geometry: qemu-img alone would make a VHD of 16,781,312 bytes from 16 MiB
    made = new_vhd(host, storage / name, size, fixed=fixed)
    disk = made.after
    assert made.changed and not made.check and made.before is None and disk is not None
    assert (disk.vhd_format, disk.vhd_type, disk.size) == (vhd_format, vhd_type, size)
    assert disk.file_size == (storage / name).stat().st_size and disk.parent_path is None
    assert qemu_info(storage / name)["virtual-size"] == size
    if fixed:
        assert disk.file_size is not None and disk.file_size >= size
    assert get_vhd(host, storage / name) == disk
    assert disk.to_dict() == {
        "Path": str(storage / name),
        "VhdFormat": vhd_format.value,
        "VhdType": vhd_type.value,
        "FileSize": disk.file_size,
        "Size": size,
        "MinimumSize": None,
        "BlockSize": disk.block_size,
        "ParentPath": None,
        "ParentChain": [],
    }
    assert list(state(storage)) == [name]


def test_a_fixed_vhd_is_read_as_vhd_not_raw(host: virtkit.Host, storage: Path) -> None:
    path = storage / "f.vhd"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed", str(path), "16M"], check=True)
    probed = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True)
    assert json.loads(probed.stdout)["format"] == "raw"  # the quirk: only a footer says it is a VHD
    disk = get_vhd(host, path)
    assert (disk.vhd_format, disk.vhd_type, disk.block_size) == (VhdFormat.VHD, VhdType.FIXED, 0)
    assert disk.size == 16_781_312 and disk.file_size == disk.size + 512  # CHS-rounded by qemu-img, not by us


def test_block_sizes(host: virtkit.Host, storage: Path) -> None:
    vhdx = new_vhd(host, storage / "b.vhdx", 64 * MiB, block_size_bytes=MiB).after
    qcow2 = new_vhd(host, storage / "b.qcow2", 64 * MiB, block_size_bytes=4096).after
    vhd = new_vhd(host, storage / "b.vhd", 64 * MiB, block_size_bytes=2 * MiB).after  # qemu-img's only VHD block
    assert vhdx is not None and qcow2 is not None and vhd is not None
    assert (vhdx.block_size, qcow2.block_size, vhd.block_size) == (MiB, 4096, 2 * MiB)


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"size_bytes": 0}, InvalidSpec, "SizeBytes"),
        ({"size_bytes": -512}, InvalidSpec, "SizeBytes"),
        ({"size_bytes": 1000}, InvalidSpec, "SizeBytes"),  # not whole sectors
        ({"size_bytes": 1.5}, InvalidSpec, "SizeBytes"),
        ({"size_bytes": True}, InvalidSpec, "SizeBytes"),
        ({"size_bytes": "lots"}, InvalidSpec, "SizeBytes"),
        ({"size_bytes": 2**80}, InvalidSpec, "SizeBytes"),
        ({"size_bytes": "65TiB"}, InvalidSpec, "SizeBytes"),  # the largest VHDX is 64 TiB
        ({"size_bytes": None}, InvalidSpec, "SizeBytes"),
        ({"fixed": True, "differencing": True, "parent_path": "p.qcow2"}, InvalidSpec, "Differencing"),
        ({"dynamic": False}, InvalidSpec, "Dynamic"),
        ({"fixed": "yes"}, InvalidSpec, "Fixed"),
        ({"what_if": 1}, InvalidSpec, "WhatIf"),
        ({"block_size_bytes": 3 * MiB}, InvalidSpec, "BlockSizeBytes"),
        ({"block_size_bytes": 512 * MiB}, InvalidSpec, "BlockSizeBytes"),
        ({"block_size_bytes": "1MiB"}, InvalidSpec, "BlockSizeBytes"),
        ({"parent_path": "p.qcow2"}, InvalidSpec, "ParentPath"),  # a parent, but not differencing
        ({"progress": "yes"}, InvalidSpec, "progress"),
    ],
)
def test_new_vhd_refuses_bad_values_and_makes_nothing(
    host: virtkit.Host, storage: Path, kwargs: dict[str, object], error: type[Exception], field: str
) -> None:
    kwargs = {"size_bytes": 16 * MiB, **kwargs}
    if isinstance(kwargs.get("parent_path"), str):
        kwargs["parent_path"] = storage / str(kwargs["parent_path"])
    with pytest.raises(error) as err:
        new_vhd(host, storage / "n.vhdx", **kwargs)  # type: ignore[arg-type]
    assert isinstance(err.value, InvalidSpec) and err.value.field == field
    assert state(storage) == {}


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "starts"),
    [
        ("n.vhd", {"size_bytes": "3TiB"}, InvalidSpec, "SizeBytes"),  # the largest VHD is 2040 GiB
        ("n.vhd", {"block_size_bytes": 512 * 1024}, InvalidSpec, "BlockSizeBytes"),
        ("n.qcow2", {"fixed": True}, Unsupported, "Fixed"),
        ("n.img", {}, InvalidSpec, "Path"),
        ("n.txt", {}, InvalidSpec, "Path"),
        ("n.avhdx", {}, Unsupported, "Path"),
        ("missing/n.vhdx", {}, InvalidSpec, "Path"),
        ("../n.vhdx", {}, InvalidSpec, "Path"),  # outside the root
    ],
)
def test_new_vhd_refuses_bad_paths_and_types(
    host: virtkit.Host, storage: Path, name: str, kwargs: dict[str, object], error: type[Exception], starts: str
) -> None:
    kwargs = {"size_bytes": 16 * MiB, **kwargs}
    with pytest.raises(error, match=rf"^{starts}"):
        new_vhd(host, storage / name, **kwargs)  # type: ignore[arg-type]
    assert state(storage) == {} and not (storage.parent / "n.vhdx").exists()


def test_new_vhd_never_overwrites(host: virtkit.Host, storage: Path, tmp_path: Path) -> None:
    (storage / "taken.vhdx").write_bytes(b"mine")
    (storage / "dangling.vhdx").symlink_to(storage / "nowhere.vhdx")
    (storage / "out.vhdx").symlink_to(tmp_path / "nowhere.vhdx")
    before = state(storage)
    for name in ("taken.vhdx", "dangling.vhdx"):
        with pytest.raises(AlreadyExists, match=r"^Path:"):
            new_vhd(host, storage / name, 16 * MiB)
    with pytest.raises(InvalidSpec, match=r"^Path:.*outside the storage roots"):
        new_vhd(host, storage / "out.vhdx", 16 * MiB)
    assert state(storage) == before and not (tmp_path / "nowhere.vhdx").exists()


# -- differencing disks ------------------------------------------------------------------------------------------


def test_differencing_disks_over_each_parent_format_make_a_chain(host: virtkit.Host, storage: Path) -> None:
    fixed_vhd = new_vhd(host, storage / "base.vhd", 16 * MiB, fixed=True).after
    assert fixed_vhd is not None
    io(storage / "base.vhd", "write -P 0x5a 0 1M")
    child = new_vhd(host, storage / "child.qcow2", differencing=True, parent_path=storage / "base.vhd").after
    assert child is not None and child.vhd_type is VhdType.DIFFERENCING
    assert (child.parent_path, child.parent_chain, child.size) == (
        storage / "base.vhd",
        (storage / "base.vhd",),
        16 * MiB,
    )
    assert qemu_info(storage / "child.qcow2")["backing-filename-format"] == "vpc"  # a fixed VHD read as VHD, not raw
    assert same(storage / "child.qcow2", storage / "base.vhd")
    io(storage / "child.qcow2", "read -P 0x5a 0 1M")
    grandchild = new_vhd(host, storage / "gc.qcow2", differencing=True, parent_path=storage / "child.qcow2").after
    assert grandchild is not None
    assert grandchild.parent_chain == (storage / "child.qcow2", storage / "base.vhd")
    assert get_vhd(host, storage / "gc.qcow2") == grandchild
    for parent in ("p.vhdx", "p.qcow2"):
        new_vhd(host, storage / parent, 8 * MiB)
        over = new_vhd(host, storage / f"over-{parent}.qcow2", differencing=True, parent_path=storage / parent)
        assert over.after is not None and over.after.parent_path == storage / parent
    raw = storage / "p.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(raw), "8M"], check=True)
    assert new_vhd(host, storage / "over-raw.qcow2", differencing=True, parent_path=raw).after is not None


def test_differencing_disk_refusals_name_the_parameter_and_leave_nothing(
    host: virtkit.Host, storage: Path, tmp_path: Path
) -> None:
    new_vhd(host, storage / "parent.vhdx", 16 * MiB)
    outside = tmp_path / "outside.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(outside), "16M"], check=True)
    (storage / "escape.qcow2").symlink_to(outside)
    (storage / "fake.vhdx").write_bytes(os.urandom(64 * 1024))
    before = state(storage)
    parent = storage / "parent.vhdx"
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"path": storage / "child.vhdx", "parent_path": parent}, Unsupported, "^Path: .*child.qcow2"),
        ({"path": storage / "child.avhdx", "parent_path": parent}, Unsupported, "^Path:"),
        ({"parent_path": parent, "size_bytes": 32 * MiB}, InvalidSpec, "^SizeBytes:"),
        ({}, InvalidSpec, "^ParentPath:"),
        ({"parent_path": storage / "absent.vhdx"}, NotFound, "^ParentPath:"),
        ({"parent_path": outside}, InvalidSpec, "^ParentPath:"),
        ({"parent_path": storage / "escape.qcow2"}, InvalidSpec, "^ParentPath:.*outside the storage roots"),
        ({"parent_path": storage / "fake.vhdx"}, InvalidSpec, "^ParentPath:.*not a VHDX"),
        ({"parent_path": storage}, InvalidSpec, "^ParentPath:"),  # a directory
    ]
    for given, error, message in cases:
        kwargs = {"path": storage / "child.qcow2", **given}
        with pytest.raises(error, match=message):
            new_vhd(host, differencing=True, **kwargs)  # type: ignore[arg-type]
        assert state(storage) == before, kwargs


def test_get_vhd_of_an_overlay_whose_parent_is_missing_or_outside_names_parent_path(
    host: virtkit.Host, storage: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(outside), "16M"], check=True)
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"]
    subprocess.run([*cmd, str(outside), str(storage / "out.qcow2")], check=True)
    new_vhd(host, storage / "gone.vhdx", 16 * MiB)
    new_vhd(host, storage / "orphan.qcow2", differencing=True, parent_path=storage / "gone.vhdx")
    (storage / "gone.vhdx").unlink()
    for name in ("out.qcow2", "orphan.qcow2"):
        with pytest.raises(InvalidSpec) as err:
            get_vhd(host, storage / name)
        assert err.value.field == "ParentPath"
        calls: tuple[Callable[[Path], object], ...] = (
            lambda p: convert_vhd(host, p, storage / "copy.vhdx"),
            lambda p: merge_vhd(host, p),
            lambda p: optimize_vhd(host, p),
        )
        for call in calls:
            with pytest.raises(InvalidSpec, match=r"^ParentPath:"):
                call(storage / name)
    assert sorted(state(storage)) == ["orphan.qcow2", "out.qcow2"]


# -- hostile paths, for every call -------------------------------------------------------------------------------


def _hostile(storage: Path, tmp_path: Path, kind: str) -> tuple[Path, type[Exception], str]:
    path = storage / "disk.vhdx"
    if kind == "random bytes":
        path.write_bytes(os.urandom(300 * 1024))
        return path, InvalidSpec, "not a VHDX"
    if kind == "qcow2 renamed":
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
        return path, InvalidSpec, "holds QCOW2"
    if kind == "vhdx signature, then garbage":
        path.write_bytes(b"vhdxfile" + os.urandom(300 * 1024))
        return path, InvalidSpec, "not a valid VHDX"
    if kind == "symlink out of the root":
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(tmp_path / "x.vhdx"), "16M"], check=True)
        path.symlink_to(tmp_path / "x.vhdx")
        return path, InvalidSpec, "outside the storage roots"
    if kind == "fifo":
        os.mkfifo(path)
        return path, InvalidSpec, "FIFO"
    if kind == "directory":
        path.mkdir()
        return path, InvalidSpec, "directory"
    if kind == "missing":
        return path, NotFound, "no virtual hard disk"
    if kind == "unknown extension":
        path = storage / "disk.txt"
        path.write_bytes(b"x" * 1024)
        return path, InvalidSpec, "not a .vhdx"
    path = storage / "disk.avhdx"
    path.write_bytes(b"x" * 1024)
    return path, Unsupported, "Hyper-V differencing disk"


@pytest.mark.parametrize(
    "kind",
    [
        "random bytes",
        "qcow2 renamed",
        "vhdx signature, then garbage",
        "symlink out of the root",
        "fifo",
        "directory",
        "missing",
        "unknown extension",
        "avhdx",
    ],
)
def test_every_call_refuses_a_hostile_path_naming_path_and_changes_nothing(
    host: virtkit.Host, storage: Path, tmp_path: Path, kind: str
) -> None:
    path, error, reason = _hostile(storage, tmp_path, kind)
    before = state(storage)
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: get_vhd(host, path),
        "convert": lambda: convert_vhd(host, path, storage / "copy.qcow2"),
        "resize": lambda: resize_vhd(host, path, 64 * MiB),
        "optimize": lambda: optimize_vhd(host, path),
        "merge": lambda: merge_vhd(host, path),
        "differencing": lambda: new_vhd(host, storage / "c.qcow2", differencing=True, parent_path=path),
    }
    for name, call in calls.items():
        with pytest.raises(error, match=reason) as err:
            call()
        field = "ParentPath" if name == "differencing" else "Path"
        assert str(err.value).startswith(f"{field}:"), (name, str(err.value))
        assert state(storage) == before, name


# -- Convert-VHD ---------------------------------------------------------------------------------------------------


def test_convert_vhd_between_every_format_keeps_the_data(host: virtkit.Host, storage: Path) -> None:
    source = storage / "src.qcow2"
    new_vhd(host, source, 32 * MiB)
    io(source, "write -P 0x5a 0 1M")
    io(source, "write -P 0xa5 20M 1M")
    seen: list[float] = []
    steps = [
        ("a.vhdx", None, VhdFormat.VHDX, VhdType.DYNAMIC),
        ("b.vhd", "Fixed", VhdFormat.VHD, VhdType.FIXED),
        ("c.vhdx", None, VhdFormat.VHDX, VhdType.FIXED),  # the source's type by default
        ("d.vhd", "dynamic", VhdFormat.VHD, VhdType.DYNAMIC),
        ("e.img", None, VhdFormat.RAW, VhdType.FIXED),
        ("f.qcow2", None, VhdFormat.QCOW2, VhdType.DYNAMIC),
    ]
    previous = source
    for name, vhd_type, vhd_format, kind in steps:
        change = convert_vhd(host, previous, storage / name, vhd_type=vhd_type, progress=seen.append)
        disk = change.after
        assert disk is not None and change.before is None and change.target == str(storage / name)
        assert (disk.vhd_format, disk.vhd_type, disk.size) == (vhd_format, kind, 32 * MiB), name
        assert get_vhd(host, storage / name) == disk
        assert same(source, storage / name), name
        previous = storage / name
    assert seen and seen[-1] == 100.0 and all(0 <= p <= 100 for p in seen)
    assert sorted(state(storage)) == sorted(["src.qcow2", *(s[0] for s in steps)])


def test_convert_vhd_flattens_a_differencing_disk(host: virtkit.Host, storage: Path) -> None:
    new_vhd(host, storage / "base.vhdx", 16 * MiB)
    io(storage / "base.vhdx", "write -P 0x11 0 1M")
    new_vhd(host, storage / "diff.qcow2", differencing=True, parent_path=storage / "base.vhdx")
    io(storage / "diff.qcow2", "write -P 0x22 4M 1M")
    flat = convert_vhd(host, storage / "diff.qcow2", storage / "flat.vhdx").after
    assert flat is not None and flat.vhd_type is VhdType.DYNAMIC and flat.parent_path is None
    assert same(storage / "diff.qcow2", storage / "flat.vhdx")


def test_convert_vhd_refusals_name_the_parameter_and_leave_nothing(
    host: virtkit.Host, storage: Path, tmp_path: Path
) -> None:
    source = storage / "src.vhdx"
    new_vhd(host, source, 16 * MiB)
    (storage / "taken.vhd").write_bytes(b"mine")
    (storage / "out").symlink_to(tmp_path)
    before = state(storage)
    cases: list[tuple[Path, dict[str, object], type[Exception], str]] = [
        (storage / "taken.vhd", {}, AlreadyExists, "^DestinationPath:"),
        (source, {}, AlreadyExists, "^DestinationPath:"),
        (tmp_path / "x.vhd", {}, InvalidSpec, "^DestinationPath:"),
        (storage / "out" / "x.vhd", {}, InvalidSpec, "^DestinationPath:.*outside"),
        (storage / "x.doc", {}, InvalidSpec, "^DestinationPath:"),
        (storage / "x.qcow2", {"vhd_type": "Fixed"}, Unsupported, "^VHDType:"),
        (storage / "x.img", {"vhd_type": "Dynamic"}, Unsupported, "^VHDType:"),
        (storage / "x.vhdx", {"vhd_type": "Differencing"}, Unsupported, "^VHDType:"),
        (storage / "x.vhdx", {"vhd_type": "Sparse"}, InvalidSpec, "^VHDType:"),
        (storage / "x.vhdx", {"vhd_type": 3}, InvalidSpec, "^VHDType:"),
    ]
    for destination, kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            convert_vhd(host, source, destination, **kwargs)  # type: ignore[arg-type]
        assert state(storage) == before, destination
    assert sorted(os.listdir(tmp_path)) == ["node.xml", "storage"]


def test_convert_vhd_refuses_a_disk_too_large_for_a_vhd(host: virtkit.Host, storage: Path) -> None:
    big = storage / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2041G"], check=True)
    before = state(storage)
    with pytest.raises(InvalidSpec, match=r"^DestinationPath:.*too large") as err:
        convert_vhd(host, big, storage / "big.vhd")
    assert err.value.field == "DestinationPath" and state(storage) == before


def test_a_cancelled_convert_leaves_nothing(host: virtkit.Host, storage: Path) -> None:
    new_vhd(host, storage / "src.qcow2", 64 * MiB)
    io(storage / "src.qcow2", "write -P 0x5a 0 32M")
    before = state(storage)

    def cancel(pct: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_vhd(host, storage / "src.qcow2", storage / "dst.vhdx", progress=cancel)
    assert state(storage) == before


# -- Resize-VHD ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fixed"), [("d.vhdx", False), ("f.vhdx", True), ("d.vhd", False), ("f.vhd", True)])
def test_resize_vhd_grows_vhd_and_vhdx_keeping_type_data_and_mode(
    host: virtkit.Host, storage: Path, name: str, fixed: bool
) -> None:
    path = storage / name
    made = new_vhd(host, path, 16 * MiB, fixed=fixed).after
    assert made is not None
    io(path, "write -P 0x5a 0 1M")
    io(path, "write -P 0xa5 15M 1M")
    path.chmod(0o600)
    view = snapshot(path, storage)
    seen: list[float] = []
    change = resize_vhd(host, path, 40 * MiB + 512, progress=seen.append)
    assert change.changed and change.before is not None and change.before.size == 16 * MiB
    grown = change.after
    assert grown is not None and grown.size == 40 * MiB + 512 and grown.vhd_type == made.vhd_type
    assert qemu_info(path)["virtual-size"] == 40 * MiB + 512
    assert get_vhd(host, path) == grown
    assert same(view, path)  # the data, and zeros past the old end
    assert (path.stat().st_mode & 0o777) == 0o600
    assert seen == sorted(seen) and seen[-1] == 100.0
    assert list(state(storage)) == [name]  # no temporary file left


@pytest.mark.parametrize("name", ["r.qcow2", "r.img"])
def test_resize_vhd_grows_qcow2_and_raw_in_place(host: virtkit.Host, storage: Path, name: str) -> None:
    path = storage / name
    subprocess.run(["qemu-img", "create", "-q", "-f", QEMU[path.suffix], str(path), "16M"], check=True)
    io(path, "write -P 0x5a 0 1M")
    view = snapshot(path, storage)
    grown = resize_vhd(host, path, "32MiB").after
    assert grown is not None and grown.size == 32 * MiB and same(view, path)
    assert not resize_vhd(host, path, 32 * MiB).changed


def test_resize_vhd_refuses_shrinking_and_bad_sizes(host: virtkit.Host, storage: Path) -> None:
    path, vhd = storage / "r.vhdx", storage / "v.vhd"
    new_vhd(host, path, 32 * MiB)
    new_vhd(host, vhd, 16 * MiB)
    before = state(storage)
    for size in (16 * MiB, 0, -1, "big", 1.0, None, 513, 65 * 2**40):
        with pytest.raises(InvalidSpec) as err:
            resize_vhd(host, path, size)  # type: ignore[arg-type]
        assert err.value.field == "SizeBytes", size
    with pytest.raises(InvalidSpec, match=r"shrinking is refused"):
        resize_vhd(host, path, 16 * MiB)
    with pytest.raises(InvalidSpec, match=r"^SizeBytes:.*too large"):
        resize_vhd(host, vhd, "2041GiB")  # the largest VHD is 2040 GiB
    assert state(storage) == before
    same_size = resize_vhd(host, path, 32 * MiB)
    assert not same_size.changed and same_size.before == same_size.after


def test_a_failed_resize_leaves_the_original_intact(host: virtkit.Host, storage: Path) -> None:
    path = storage / "r.vhdx"
    new_vhd(host, path, 64 * MiB)
    io(path, "write -P 0x5a 0 32M")
    before = state(storage)

    def fail_in_second_copy(pct: float) -> None:
        if pct > 50:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError):
        resize_vhd(host, path, 128 * MiB, progress=fail_in_second_copy)
    assert state(storage) == before
    assert get_vhd(host, path).size == 64 * MiB


# -- Optimize-VHD --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["o.qcow2", "o.vhdx", "o.vhd"])
def test_optimize_vhd_reclaims_zeroed_space_and_keeps_the_data(host: virtkit.Host, storage: Path, name: str) -> None:
    path = storage / name
    new_vhd(host, path, 64 * MiB)
    io(path, "write -P 0x5a 0 1M")
    io(path, "write -P 0x11 16M 8M")
    io(path, "write -P 0 16M 8M")  # 8 MiB written, then zeroed: allocated, but nothing in it
    view = snapshot(path, storage)
    change = optimize_vhd(host, path)
    assert change.before is not None and change.after is not None
    before, after = change.before.file_size, change.after.file_size
    assert before is not None and after is not None and after < before - 4 * MiB, (before, after)
    assert change.after.vhd_type is VhdType.DYNAMIC and change.after.size == 64 * MiB
    assert same(view, path)
    io(path, "read -P 0x5a 0 1M")
    assert list(state(storage)) == [name]
    again = optimize_vhd(host, path)  # nothing left to reclaim: the file is kept as it is
    assert again.before == again.after and not again.changed


def test_optimize_vhd_keeps_a_differencing_disk_differencing(host: virtkit.Host, storage: Path) -> None:
    new_vhd(host, storage / "base.vhdx", 64 * MiB)
    io(storage / "base.vhdx", "write -P 0x11 0 8M")
    child = storage / "child.qcow2"
    new_vhd(host, child, differencing=True, parent_path=storage / "base.vhdx")
    io(child, "write -P 0x22 0 8M")
    io(child, "write -P 0 0 4M")  # zeros over the parent's data: they must stay
    io(child, "write -P 0x33 16M 8M")
    io(child, "write -P 0 16M 8M")  # zeros over nothing: reclaimable
    view = snapshot(child, storage)
    change = optimize_vhd(host, child)
    assert change.before is not None and change.after is not None
    assert change.after.file_size is not None and change.before.file_size is not None
    assert change.after.file_size < change.before.file_size
    assert change.after.parent_chain == (storage / "base.vhdx",) and change.after.vhd_type is VhdType.DIFFERENCING
    assert same(view, child)


def test_optimize_vhd_refuses_a_fixed_disk(host: virtkit.Host, storage: Path) -> None:
    new_vhd(host, storage / "f.vhdx", 16 * MiB, fixed=True)
    before = state(storage)
    with pytest.raises(InvalidSpec, match=r"fixed disk") as err:
        optimize_vhd(host, storage / "f.vhdx")
    assert err.value.field == "Path" and state(storage) == before


# -- Merge-VHD -----------------------------------------------------------------------------------------------------


def test_merge_vhd_into_the_parent_removes_the_child(host: virtkit.Host, storage: Path) -> None:
    parent, child = storage / "parent.vhdx", storage / "child.qcow2"
    new_vhd(host, parent, 32 * MiB)
    io(parent, "write -P 0x11 0 2M")
    new_vhd(host, child, differencing=True, parent_path=parent)
    io(child, "write -P 0x22 1M 2M")
    view = snapshot(child, storage)
    change = merge_vhd(host, child)
    assert change.before is not None and change.before.parent_path == parent and change.after is None
    assert not child.exists() and same(view, parent)
    merged = get_vhd(host, parent)
    assert (merged.vhd_format, merged.vhd_type) == (VhdFormat.VHDX, VhdType.DYNAMIC)
    assert sorted(state(storage)) == ["parent.vhdx"]


def test_merge_vhd_into_an_ancestor_removes_the_chain_between(host: virtkit.Host, storage: Path) -> None:
    base, mid, top = storage / "base.vhd", storage / "mid.qcow2", storage / "top.qcow2"
    new_vhd(host, base, 16 * MiB, fixed=True)
    io(base, "write -P 0x11 0 4M")
    new_vhd(host, mid, differencing=True, parent_path=base)
    io(mid, "write -P 0x22 4M 4M")
    new_vhd(host, top, differencing=True, parent_path=mid)
    io(top, "write -P 0x33 8M 4M")
    (storage / "link.qcow2").symlink_to(top)
    view = snapshot(top, storage)
    change = merge_vhd(host, storage / "link.qcow2", base)
    assert change.before is not None and change.before.parent_chain == (mid, base)
    assert sorted(state(storage)) == ["base.vhd"]  # the link, the child and the disk between are gone
    assert same(view, base) and get_vhd(host, base).vhd_type is VhdType.FIXED


def test_merge_vhd_refusals(host: virtkit.Host, storage: Path) -> None:
    new_vhd(host, storage / "base.vhdx", 16 * MiB)
    new_vhd(host, storage / "other.vhdx", 16 * MiB)
    new_vhd(host, storage / "child.qcow2", differencing=True, parent_path=storage / "base.vhdx")
    before = state(storage)
    with pytest.raises(InvalidSpec, match=r"no parent") as err:
        merge_vhd(host, storage / "base.vhdx")
    assert err.value.field == "Path"
    for destination in (storage / "other.vhdx", storage / "child.qcow2", storage / "absent.vhdx", "/etc/passwd"):
        with pytest.raises(InvalidSpec) as err:
            merge_vhd(host, storage / "child.qcow2", destination)
        assert err.value.field == "DestinationPath"
    assert state(storage) == before


# -- in use, and -WhatIf -------------------------------------------------------------------------------------------


def test_a_disk_in_use_by_a_running_process_is_refused(host: virtkit.Host, storage: Path) -> None:
    new_vhd(host, storage / "base.vhdx", 16 * MiB)
    busy = storage / "busy.qcow2"
    new_vhd(host, busy, differencing=True, parent_path=storage / "base.vhdx")
    other = storage / "busy.vhdx"
    new_vhd(host, other, 16 * MiB)
    holders = [
        subprocess.Popen(["qemu-io", "-f", fmt, str(p)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for p, fmt in ((busy, "qcow2"), (other, "vhdx"))
    ]
    try:
        for holder in holders:  # qemu-io holds the image's write lock until its stdin closes
            assert holder.stdin is not None and holder.stdout is not None
            holder.stdin.write(b"length\n")
            holder.stdin.flush()
            assert b"MiB" in holder.stdout.readline()
        before = state(storage)
        assert get_vhd(host, busy).vhd_type is VhdType.DIFFERENCING  # reading is fine (-U)
        calls: tuple[Callable[[bool], object], ...] = (
            lambda what_if: resize_vhd(host, other, 32 * MiB, what_if=what_if),
            lambda what_if: optimize_vhd(host, other, what_if=what_if),
            lambda what_if: convert_vhd(host, other, storage / "copy.vhd", what_if=what_if),
            lambda what_if: merge_vhd(host, busy, what_if=what_if),
            lambda what_if: resize_vhd(host, busy, 32 * MiB, what_if=what_if),
        )
        for what_if in (True, False):
            for call in calls:
                with pytest.raises(Conflict, match=r"^Path: .*in use"):
                    call(what_if)
                assert state(storage) == before
            with pytest.raises(Conflict, match=r"^ParentPath: .*in use"):  # a child over a disk being written
                new_vhd(host, storage / "c.qcow2", differencing=True, parent_path=other, what_if=what_if)
            assert state(storage) == before
    finally:
        for holder in holders:
            assert holder.stdin is not None and holder.stdout is not None
            holder.stdin.close()
            holder.wait(timeout=10)
            holder.stdout.close()


def test_what_if_checks_like_the_real_call_and_changes_nothing(host: virtkit.Host, storage: Path) -> None:
    new_vhd(host, storage / "base.vhdx", 16 * MiB)
    io(storage / "base.vhdx", "write -P 0 0 4M")
    new_vhd(host, storage / "child.qcow2", differencing=True, parent_path=storage / "base.vhdx")
    before = state(storage)

    made = new_vhd(host, storage / "new.vhd", "8MiB", fixed=True, what_if=True)
    assert made.check and made.changed and made.after is not None
    assert (made.after.vhd_format, made.after.vhd_type, made.after.size) == (VhdFormat.VHD, VhdType.FIXED, 8 * MiB)
    diff = new_vhd(host, storage / "d.qcow2", differencing=True, parent_path=storage / "child.qcow2", what_if=True)
    assert diff.after is not None
    assert diff.after.parent_chain == (storage / "child.qcow2", storage / "base.vhdx")
    converted = convert_vhd(host, storage / "child.qcow2", storage / "flat.vhdx", vhd_type="Fixed", what_if=True)
    assert converted.after is not None and converted.after.vhd_type is VhdType.FIXED and converted.changed
    resized = resize_vhd(host, storage / "base.vhdx", 32 * MiB, what_if=True)
    assert resized.after is not None and resized.after.size == 32 * MiB and resized.changed
    assert optimize_vhd(host, storage / "base.vhdx", what_if=True).changed
    merged = merge_vhd(host, storage / "child.qcow2", what_if=True)
    assert merged.check and merged.after is None and merged.changed
    assert state(storage) == before

    # The same refusals as the real calls.
    with pytest.raises(AlreadyExists, match=r"^Path:"):
        new_vhd(host, storage / "base.vhdx", MiB, what_if=True)
    with pytest.raises(AlreadyExists, match=r"^DestinationPath:"):
        convert_vhd(host, storage / "child.qcow2", storage / "base.vhdx", what_if=True)
    with pytest.raises(InvalidSpec, match=r"^SizeBytes:"):
        resize_vhd(host, storage / "base.vhdx", MiB, what_if=True)
    with pytest.raises(InvalidSpec, match=r"^Path:"):
        merge_vhd(host, storage / "base.vhdx", what_if=True)
    assert state(storage) == before


def test_the_example_runs(tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    shutil.copy(Path(__file__).parent / "data" / "node.xml", node)
    (tmp_path / "demo").mkdir()
    script = Path(__file__).parent.parent / "examples" / "hyperv_vhd.py"
    cmd = [sys.executable, str(script), str(tmp_path / "demo"), "--uri", f"test://{node}"]
    checked = subprocess.run([*cmd, "--what-if"], check=False, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert os.listdir(tmp_path / "demo") == []
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Merge-VHD" in done.stdout and "reclaimed" in done.stdout
    assert sorted(os.listdir(tmp_path / "demo")) == ["web.vhd", "web.vhdx"]


def test_what_new_and_convert_return_names_the_disk_not_its_temporary_file(host: virtkit.Host, storage: Path) -> None:
    made = new_vhd(host, storage / "named.vhdx", "8MB").after
    copied = convert_vhd(host, storage / "named.vhdx", storage / "named.qcow2").after
    for disk, path in ((made, storage / "named.vhdx"), (copied, storage / "named.qcow2")):
        assert disk is not None and disk.path == path
        assert disk.info is not None and disk.info.path == path
