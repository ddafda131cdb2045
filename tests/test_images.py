"""virtkit.images against the real qemu-img (and qemu-io to write data), in a temporary storage root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from virtkit import images
from virtkit.errors import AlreadyExists, Conflict, ImageError, InvalidSpec, NotFound, OperationTimeout, Unsupported
from virtkit.images import ImageInfo
from virtkit.models.disk import DiskFormat
from virtkit.units import GiB, MiB, TiB

VHD_1GIB = 1_073_995_776  # what qemu-img 7.2 makes of a 1 GiB vpc (CHS geometry)
VHD_100MIB = 104_865_792


@pytest.fixture
def store(tmp_path: Path) -> Path:
    (tmp_path / "store").mkdir()
    (tmp_path / "other").mkdir()
    return tmp_path / "store"


@pytest.fixture
def roots(store: Path) -> list[Path]:
    return [store]


def listing(top: Path) -> list[str]:
    return sorted(str(p.relative_to(top)) for p in top.rglob("*"))


def write(path: Path, fmt: str, pattern: str = "0xab", offset: int = 0, length: str = "1M") -> None:
    cmd = ["qemu-io", "-f", fmt, "-c", f"write -P {pattern} {offset} {length}", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)


# -- create and info -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(DiskFormat))
def test_create_and_info_every_format(store: Path, roots: list[Path], fmt: DiskFormat) -> None:
    path = store / f"disk.{fmt}"
    made = images.create(path, 100 * MiB, fmt, roots=roots)
    assert made.path == path
    assert made.format is fmt
    assert made.virtual_size == (VHD_100MIB if fmt is DiskFormat.VHD else 100 * MiB)
    assert made.backing_file is None
    assert made.dirty is False
    assert (made.corrupt is False) if fmt is DiskFormat.QCOW2 else (made.corrupt is None)
    assert (made.cluster_size is None) == (fmt is DiskFormat.RAW)
    assert images.info(path, roots=roots) == made
    assert images.info(str(path), roots=roots, fmt=fmt) == made
    assert listing(store) == [path.name]  # the temporary name is gone


@pytest.mark.parametrize(("size", "expected"), [("1GiB", VHD_1GIB), ("100MiB", VHD_100MIB), (1 * MiB, 1_079_296)])
def test_vhd_size_is_rounded_up_to_chs_geometry(store: Path, roots: list[Path], size: int | str, expected: int) -> None:
    made = images.create(store / "d.vhd", size, DiskFormat.VHD, roots=roots)
    assert made.virtual_size == expected


def test_create_accepts_size_strings_and_plain_format_names(store: Path, roots: list[Path]) -> None:
    assert images.create(store / "a.img", "2GiB", "raw", roots=roots).virtual_size == 2 * GiB


def test_create_exist_ok_is_idempotent(store: Path, roots: list[Path]) -> None:
    for fmt in (DiskFormat.QCOW2, DiskFormat.VHD):
        path = store / f"same.{fmt}"
        first = images.create(path, GiB, fmt, roots=roots)
        before = path.stat().st_mtime_ns
        assert images.create(path, GiB, fmt, roots=roots, exist_ok=True) == first
        assert path.stat().st_mtime_ns == before
        with pytest.raises(AlreadyExists):
            images.create(path, GiB, fmt, roots=roots)
        with pytest.raises(AlreadyExists, match="exists as"):
            images.create(path, 2 * GiB, fmt, roots=roots, exist_ok=True)
    with pytest.raises(AlreadyExists, match="exists as qcow2"):
        images.create(store / "same.qcow2", GiB, DiskFormat.RAW, roots=roots, exist_ok=True)
    assert listing(store) == ["same.qcow2", "same.vhd"]


def test_create_overlay_on_backing_file(store: Path, roots: list[Path]) -> None:
    base = images.create(store / "base.qcow2", GiB, roots=roots)
    overlay = images.create(store / "overlay.qcow2", None, roots=roots, backing=base.path)
    assert overlay.backing_file == base.path
    assert overlay.backing_format is DiskFormat.QCOW2
    assert overlay.virtual_size == GiB
    bigger = images.create(store / "big.qcow2", 2 * GiB, roots=roots, backing=store / "base.qcow2")
    assert bigger.virtual_size == 2 * GiB
    raw = images.create(store / "base.raw", GiB, DiskFormat.RAW, roots=roots)
    over_raw = images.create(store / "over-raw.qcow2", GiB, roots=roots, backing=raw.path)
    assert over_raw.backing_format is DiskFormat.RAW
    again = images.create(store / "overlay.qcow2", GiB, roots=roots, backing=base.path, exist_ok=True)
    assert again == overlay
    with pytest.raises(AlreadyExists):  # same size and format, but not over that backing file
        images.create(store / "overlay.qcow2", GiB, roots=roots, exist_ok=True)


def test_create_with_preallocation(store: Path, roots: list[Path]) -> None:
    full = images.create(store / "full.raw", 4 * MiB, DiskFormat.RAW, roots=roots, preallocation="full")
    assert full.actual_size >= 4 * MiB
    meta = images.create(store / "meta.qcow2", 4 * MiB, roots=roots, preallocation="metadata")
    assert meta.virtual_size == 4 * MiB
    fixed = images.create(store / "fixed.vhd", 4 * MiB, DiskFormat.VHD, roots=roots, preallocation="full")
    assert (store / "fixed.vhd").stat().st_size >= 4 * MiB
    assert 4 * MiB <= fixed.virtual_size < 4 * MiB + 2 * MiB


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fmt": DiskFormat.RAW, "preallocation": "metadata"}, "preallocation"),
        ({"fmt": DiskFormat.VHDX, "preallocation": "falloc"}, "preallocation"),
        ({"preallocation": "lots"}, "preallocation"),
        ({"backing": "BASE", "preallocation": "full"}, "preallocation"),
        ({"fmt": DiskFormat.VHD, "backing": "BASE"}, "backing"),
        ({"backing": "OUTSIDE"}, "backing"),
        ({"backing": "relative.qcow2"}, "backing"),
        ({"backing": "SELF"}, "backing"),
        ({"size": None}, "size"),
        ({"size": 512 * MiB, "backing": "BASE"}, "size"),
    ],
)
def test_create_refuses_bad_options(
    tmp_path: Path, store: Path, roots: list[Path], kwargs: dict[str, object], field: str
) -> None:
    images.create(store / "base.qcow2", GiB, roots=roots)
    (tmp_path / "other" / "outside.qcow2").write_bytes(b"")
    names = {"BASE": store / "base.qcow2", "OUTSIDE": tmp_path / "other" / "outside.qcow2", "SELF": store / "new"}
    if isinstance(kwargs.get("backing"), str):
        kwargs["backing"] = names.get(str(kwargs["backing"]), kwargs["backing"])
    before = listing(tmp_path)
    args: dict[str, object] = {"size": GiB, "fmt": DiskFormat.QCOW2, **kwargs}
    with pytest.raises(InvalidSpec) as err:
        images.create(store / "new", args.pop("size"), args.pop("fmt"), roots=roots, **args)  # type: ignore[arg-type]
    assert err.value.field == field
    assert listing(tmp_path) == before


def test_create_with_missing_backing_file(store: Path, roots: list[Path]) -> None:
    with pytest.raises(NotFound):
        images.create(store / "o.qcow2", GiB, roots=roots, backing=store / "nothing.qcow2")
    assert listing(store) == []


HOSTILE: list[tuple[str, object, object, str]] = [
    ("relative.qcow2", GiB, "qcow2", "path"),
    ("ROOT/../escape.qcow2", GiB, "qcow2", "path"),
    ("TMP/other/outside.qcow2", GiB, "qcow2", "path"),
    ("/etc/virtkit-test.qcow2", GiB, "qcow2", "path"),
    ("ROOT/a;rm -rf x.qcow2", GiB, "qcow2", "path"),
    ("ROOT/a<b>.qcow2", GiB, "qcow2", "path"),
    ("ROOT/a,b.qcow2", GiB, "qcow2", "path"),
    ("ROOT/$(id).qcow2", GiB, "qcow2", "path"),
    ("ROOT/linked/escape.qcow2", GiB, "qcow2", "path"),  # a symlink in the root that points outside it
    ("ROOT/missing-dir/a.qcow2", GiB, "qcow2", "path"),
    ("ROOT/a.qcow2", 0, "qcow2", "size"),
    ("ROOT/a.qcow2", -GiB, "qcow2", "size"),
    ("ROOT/a.qcow2", 10**30, "qcow2", "size"),
    ("ROOT/a.qcow2", 65 * TiB, "qcow2", "size"),
    ("ROOT/a.qcow2", "-1G", "qcow2", "size"),
    ("ROOT/a.qcow2", "a lot", "qcow2", "size"),
    ("ROOT/a.qcow2", True, "qcow2", "size"),
    ("ROOT/a.qcow2", 1000, "qcow2", "size"),  # not whole sectors
    ("ROOT/a.vhd", 3 * TiB, "vhd", "size"),  # VHD stops at 2040 GiB
    ("ROOT/a.vmdk", GiB, "vmdk", "fmt"),
    ("ROOT/a.vhd", GiB, "vpc", "fmt"),
    ("ROOT/a.qcow2", GiB, "QCOW2 ", "fmt"),
    ("ROOT/a.qcow2", GiB, "qcow2,backing_file=/etc/shadow", "fmt"),
    ("ROOT/a.qcow2", GiB, None, "fmt"),
]


@pytest.mark.parametrize(("raw_path", "size", "fmt", "field"), HOSTILE)
def test_create_refuses_hostile_input_without_touching_anything(
    tmp_path: Path, store: Path, roots: list[Path], raw_path: str, size: object, fmt: object, field: str
) -> None:
    (store / "linked").symlink_to(tmp_path / "other")
    path = raw_path.replace("ROOT", str(store)).replace("TMP", str(tmp_path))
    before = listing(tmp_path)
    with pytest.raises(InvalidSpec) as err:
        images.create(path, size, fmt, roots=roots)  # type: ignore[arg-type]
    assert err.value.field == field
    assert listing(tmp_path) == before


def test_roots_must_be_a_list(store: Path) -> None:
    with pytest.raises(InvalidSpec, match="roots"):
        images.info(store / "a", roots=str(store))  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec, match="outside the storage roots"):
        images.info(store / "a", roots=[])


def test_create_failure_leaves_no_partial_image(store: Path, roots: list[Path]) -> None:
    with pytest.raises(OperationTimeout):
        images.create(store / "slow.raw", 64 * MiB, DiskFormat.RAW, roots=roots, timeout=1e-6)
    assert listing(store) == []


def test_info_errors(tmp_path: Path, store: Path, roots: list[Path]) -> None:
    with pytest.raises(NotFound):
        images.info(store / "absent.qcow2", roots=roots)
    images.create(store / "a.qcow2", GiB, roots=roots)
    with pytest.raises(ImageError) as err:
        images.info(store / "a.qcow2", roots=roots, fmt="vhdx")
    assert "exit code 1" in err.value.message and "qemu-img info -U" in err.value.message
    (store / "sub").mkdir()
    with pytest.raises(InvalidSpec, match="is a directory, not an image file"):
        images.info(store / "sub", roots=roots)
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(store / "a.vmdk"), "1M"], check=True)
    with pytest.raises(Unsupported, match="vmdk"):
        images.info(store / "a.vmdk", roots=roots)
    (store / "notes.txt").write_text("hello")
    assert images.info(store / "notes.txt", roots=roots).format is DiskFormat.RAW  # qemu-img guesses raw
    (tmp_path / "other" / "secret").write_text("x")
    (store / "link").symlink_to(tmp_path / "other" / "secret")
    with pytest.raises(InvalidSpec, match="resolves to"):
        images.info(store / "link", roots=roots)


def test_image_in_use_by_a_running_process(store: Path, roots: list[Path]) -> None:
    path = images.create(store / "busy.qcow2", GiB, roots=roots).path
    # qemu-io opens the image read-write and holds its lock until its stdin closes; "length" answers once it is open.
    holder = subprocess.Popen(["qemu-io", "-f", "qcow2", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        holder.stdin.write(b"length\n")
        holder.stdin.flush()
        assert b"1 GiB" in holder.stdout.readline()
        assert images.info(path, roots=roots).virtual_size == GiB  # -U
        with pytest.raises(Conflict, match="lock"):
            images.remove(path, roots=roots)
        with pytest.raises(Conflict):
            images.resize(path, 2 * GiB, roots=roots)
        with pytest.raises(Conflict):
            images.convert(path, store / "copy.raw", DiskFormat.RAW, roots=roots)
        assert path.exists()
        assert listing(store) == ["busy.qcow2"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()
    assert images.remove(path, roots=roots) is True


# -- resize --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [DiskFormat.QCOW2, DiskFormat.RAW])
def test_resize(store: Path, roots: list[Path], fmt: DiskFormat) -> None:
    path = images.create(store / "r.img", GiB, fmt, roots=roots).path
    assert images.resize(path, "3GiB", roots=roots).virtual_size == 3 * GiB
    assert images.resize(path, 3 * GiB, roots=roots).virtual_size == 3 * GiB  # no-op
    with pytest.raises(InvalidSpec, match="shrink=True") as err:
        images.resize(path, GiB, roots=roots)
    assert err.value.field == "size"
    assert images.info(path, roots=roots).virtual_size == 3 * GiB
    assert images.resize(path, GiB, roots=roots, shrink=True).virtual_size == GiB
    with pytest.raises(InvalidSpec):
        images.resize(path, 0, roots=roots)
    with pytest.raises(NotFound):
        images.resize(store / "absent", GiB, roots=roots)


@pytest.mark.parametrize("fmt", [DiskFormat.VHD, DiskFormat.VHDX])
def test_resize_vhd_and_vhdx_is_unsupported(store: Path, roots: list[Path], fmt: DiskFormat) -> None:
    path = images.create(store / "r.img", GiB, fmt, roots=roots).path
    with pytest.raises(Unsupported, match="convert"):
        images.resize(path, 2 * GiB, roots=roots)


# -- convert and compare -------------------------------------------------------------------------------------------


def test_convert_round_trip_qcow2_vhdx_qcow2(store: Path, roots: list[Path]) -> None:
    src = images.create(store / "src.qcow2", GiB, roots=roots).path
    write(src, "qcow2", "0xab", 0, "1M")
    write(src, "qcow2", "0x5a", 512 * MiB, "1M")
    seen: list[float] = []
    vhdx = images.convert(src, store / "mid.vhdx", DiskFormat.VHDX, roots=roots, progress=seen.append)
    assert vhdx.format is DiskFormat.VHDX and vhdx.virtual_size == GiB
    assert seen and seen == sorted(seen) and seen[-1] == 100.0 and all(0 <= p <= 100 for p in seen)
    back = images.convert(vhdx.path, store / "back.qcow2", "qcow2", roots=roots)
    assert back.format is DiskFormat.QCOW2 and back.virtual_size == GiB
    assert images.compare(src, back.path, roots=roots) is True
    assert images.compare(src, vhdx.path, roots=roots) is True
    write(back.path, "qcow2", "0x01", 4096, "512")
    assert images.compare(src, back.path, roots=roots) is False
    assert listing(store) == ["back.qcow2", "mid.vhdx", "src.qcow2"]


def test_convert_to_vhd_keeps_the_exact_size_and_raw_and_compressed(store: Path, roots: list[Path]) -> None:
    src = images.create(store / "src.qcow2", GiB, roots=roots).path
    write(src, "qcow2")
    vhd = images.convert(src, store / "d.vhd", "vhd", roots=roots)
    assert vhd.format is DiskFormat.VHD and vhd.virtual_size == GiB  # force_size: no CHS rounding
    raw = images.convert(vhd.path, store / "d.raw", DiskFormat.RAW, roots=roots)
    packed = images.convert(raw.path, store / "d.qcow2", DiskFormat.QCOW2, roots=roots, compress=True)
    assert packed.actual_size < MiB
    for other in (vhd, raw, packed):
        assert images.compare(src, other.path, roots=roots)


def test_convert_flattens_an_overlay(store: Path, roots: list[Path]) -> None:
    base = images.create(store / "base.qcow2", GiB, roots=roots).path
    write(base, "qcow2", "0xab", 0, "1M")
    overlay = images.create(store / "overlay.qcow2", GiB, roots=roots, backing=base).path
    write(overlay, "qcow2", "0xcd", MiB, "1M")
    flat = images.convert(overlay, store / "flat.qcow2", DiskFormat.QCOW2, roots=roots)
    assert flat.backing_file is None
    assert images.compare(overlay, flat.path, roots=roots)


@pytest.mark.parametrize(
    ("dst", "kwargs", "error", "field"),
    [
        ("ROOT/exists.raw", {}, AlreadyExists, None),
        ("ROOT/src.qcow2", {}, InvalidSpec, "dst"),
        ("ROOT/no-dir/x.raw", {}, InvalidSpec, "dst"),
        ("TMP/other/x.raw", {}, InvalidSpec, "dst"),
        ("x.raw", {}, InvalidSpec, "dst"),
        ("ROOT/x;y.raw", {}, InvalidSpec, "dst"),
        ("ROOT/x.raw", {"fmt": "vmdk"}, InvalidSpec, "fmt"),
        ("ROOT/x.vhdx", {"fmt": DiskFormat.VHDX, "compress": True}, InvalidSpec, "compress"),
        ("ROOT/x.raw", {"src": "ROOT/absent.qcow2"}, NotFound, None),
        ("ROOT/x.raw", {"src": "ROOT/sub"}, InvalidSpec, "src"),
    ],
)
def test_convert_refuses_bad_input_without_touching_anything(
    tmp_path: Path,
    store: Path,
    roots: list[Path],
    dst: str,
    kwargs: dict[str, object],
    error: type[Exception],
    field: str | None,
) -> None:
    images.create(store / "src.qcow2", GiB, roots=roots)
    images.create(store / "exists.raw", MiB, DiskFormat.RAW, roots=roots)
    (store / "sub").mkdir()
    args: dict[str, object] = {"src": "ROOT/src.qcow2", "fmt": DiskFormat.RAW, **kwargs}
    src = str(args.pop("src")).replace("ROOT", str(store))
    fmt = args.pop("fmt")
    before = listing(tmp_path)
    with pytest.raises(error) as err:
        images.convert(src, dst.replace("ROOT", str(store)).replace("TMP", str(tmp_path)), fmt, roots=roots, **args)  # type: ignore[arg-type]
    if field is not None:
        assert isinstance(err.value, InvalidSpec) and err.value.field == field
    assert listing(tmp_path) == before


def test_convert_failures_leave_no_temporary_file(store: Path, roots: list[Path]) -> None:
    base = images.create(store / "base.qcow2", GiB, roots=roots).path
    write(base, "qcow2", "0xab", 0, "4M")
    overlay = images.create(store / "overlay.qcow2", GiB, roots=roots, backing=base).path
    base.rename(store / "moved.qcow2")  # the overlay's backing file is gone: refused before qemu-img runs
    with pytest.raises(InvalidSpec, match=r"backing file of .*does not exist"):
        images.convert(overlay, store / "x.raw", DiskFormat.RAW, roots=roots)
    with pytest.raises(InvalidSpec):
        images.convert(overlay, store / "x.raw", DiskFormat.RAW, roots=roots, progress=lambda _: None)
    (store / "fake.qcow2").write_bytes(b"QFI\xfb" + b"\xff" * 4092)  # qcow2 magic, garbage header
    with pytest.raises(ImageError, match="qcow2 version"):
        images.convert(store / "fake.qcow2", store / "x.raw", DiskFormat.RAW, roots=roots)
    (store / "fake.qcow2").unlink()
    assert listing(store) == ["moved.qcow2", "overlay.qcow2"]

    def cancel(percent: float) -> None:
        if percent == 0:  # printed before the target file is created
            return
        assert [p.name for p in store.iterdir() if p.name.endswith(".part")], "qemu-img has started writing"
        raise KeyboardInterrupt

    src = store / "moved.qcow2"
    with pytest.raises(KeyboardInterrupt):
        images.convert(src, store / "x.vhdx", DiskFormat.VHDX, roots=roots, progress=cancel)
    with pytest.raises(OperationTimeout):
        images.convert(src, store / "x.vhdx", DiskFormat.VHDX, roots=roots, timeout=1e-6)
    with pytest.raises(OperationTimeout):
        images.convert(src, store / "x.vhdx", DiskFormat.VHDX, roots=roots, timeout=1e-6, progress=lambda _: None)
    assert listing(store) == ["moved.qcow2", "overlay.qcow2"]


def test_convert_to_an_impossible_destination_cleans_up(store: Path, roots: list[Path]) -> None:
    huge = images.create(store / "huge.qcow2", 3 * TiB, roots=roots).path
    # qemu-img creates the vpc file, then fails (VHD stops at 2040 GiB) and leaves it empty; nothing must remain.
    with pytest.raises(ImageError, match="2040 GiB") as err:
        images.convert(huge, store / "huge.vhd", DiskFormat.VHD, roots=roots)
    assert "exit code 1" in err.value.message and "qemu-img convert" in err.value.message
    assert listing(store) == ["huge.qcow2"]


def test_backing_chains_leaving_the_roots_are_refused(tmp_path: Path, store: Path, roots: list[Path]) -> None:
    secret = tmp_path / "other" / "secret.raw"
    secret.write_bytes(b"s3cret" * 1000)
    overlay = store / "evil.qcow2"
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(secret), "-F", "raw", str(overlay), "1M"]
    subprocess.run(cmd, check=True)
    assert images.info(overlay, roots=roots).backing_file == secret  # reading the header is harmless
    with pytest.raises(InvalidSpec, match="outside the storage roots") as err:
        images.convert(overlay, store / "loot.raw", DiskFormat.RAW, roots=roots)
    assert err.value.field == "src"
    with pytest.raises(InvalidSpec) as err:
        images.compare(store / "evil.qcow2", overlay, roots=roots)
    assert err.value.field == "a"
    with pytest.raises(InvalidSpec) as err:
        images.create(store / "o.qcow2", MiB, roots=roots, backing=overlay)
    assert err.value.field == "backing"
    assert listing(store) == ["evil.qcow2"]


def test_compare_errors(store: Path, roots: list[Path]) -> None:
    a = images.create(store / "a.qcow2", GiB, roots=roots).path
    b = images.create(store / "b.raw", GiB, DiskFormat.RAW, roots=roots).path
    assert images.compare(a, b, roots=roots) is True
    with pytest.raises(NotFound):
        images.compare(a, store / "absent", roots=roots)
    with pytest.raises(InvalidSpec) as err:
        images.compare(a, "relative", roots=roots)
    assert err.value.field == "b"


# -- remove and attach ---------------------------------------------------------------------------------------------


def test_remove(tmp_path: Path, store: Path, roots: list[Path]) -> None:
    path = images.create(store / "gone.qcow2", GiB, roots=roots).path
    assert images.remove(path, roots=roots) is True
    assert images.remove(path, roots=roots) is False
    (store / "notes.txt").write_text("not an image")
    assert images.remove(store / "notes.txt", roots=roots) is True
    (store / "dir").mkdir()
    with pytest.raises(InvalidSpec, match="directory"):
        images.remove(store / "dir", roots=roots)
    keep = tmp_path / "other" / "keep.qcow2"
    keep.write_bytes(b"")
    with pytest.raises(InvalidSpec):
        images.remove(keep, roots=roots)
    with pytest.raises(InvalidSpec):
        images.remove(f"{store}/../other/keep.qcow2", roots=roots)
    assert keep.exists()


def test_image_info_is_frozen(store: Path, roots: list[Path]) -> None:
    made: ImageInfo = images.create(store / "f.qcow2", MiB, roots=roots)
    with pytest.raises(AttributeError):
        made.virtual_size = 1  # type: ignore[misc]


def test_an_overlay_over_a_fixed_vhd_reads_it_as_vhd_not_raw(tmp_path: Path) -> None:
    """qemu-img itself probes a fixed VHD (raw data, then a 512-byte footer) as raw: the overlay would then be 512
    bytes larger than the disk and expose the footer as its last sector."""
    fixed = tmp_path / "fixed.vhd"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size=on", str(fixed), "8M"], check=True
    )
    overlay = images.create(tmp_path / "child.qcow2", None, roots=[tmp_path], backing=fixed)
    assert overlay.virtual_size == 8 * 2**20
    assert overlay.backing_format is DiskFormat.VHD
