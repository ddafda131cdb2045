"""The header probe agrees with qemu-img on every format virtkit creates."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtkit import DiskFormat, images
from virtkit.errors import NotFound
from virtkit.images.header import probe


@pytest.mark.parametrize("fmt", list(DiskFormat))
@pytest.mark.parametrize("size", ["1MiB", "100MiB", "1GiB"])
def test_probe_matches_qemu_img(tmp_path: Path, fmt: DiskFormat, size: str) -> None:
    path = tmp_path / f"disk.{fmt.value}"
    made = images.create(path, size, fmt, roots=[tmp_path])
    found_fmt, found_size = probe(path)
    assert found_fmt is fmt
    if fmt is DiskFormat.VHDX:
        assert found_size is None
    else:
        assert found_size == made.virtual_size


def test_fixed_vhd_footer_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "fixed.vhd"
    made = images.create(path, "4MiB", DiskFormat.VHD, roots=[tmp_path], preallocation="full")
    assert probe(path) == (DiskFormat.VHD, made.virtual_size)


def test_short_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "tiny").write_bytes(b"QFI")
    assert probe(tmp_path / "tiny") == (DiskFormat.RAW, 3)
    with pytest.raises(NotFound):
        probe(tmp_path / "missing")
