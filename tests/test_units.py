from __future__ import annotations

import pytest

from virtkit.errors import InvalidSpec
from virtkit.units import GiB, KiB, MiB, TiB, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512MB", 512 * MiB),
        ("512MiB", 512 * MiB),
        ("512m", 512 * MiB),
        ("2GiB", 2 * GiB),
        ("2 GB", 2 * GiB),
        ("1.5G", 3 * GiB // 2),
        ("4096", 4096),
        ("4096B", 4096),
        ("1KB", KiB),
        ("1T", TiB),
        (1073741824, GiB),
    ],
)
def test_sizes_are_binary(text: str | int, expected: int) -> None:
    assert parse_size("memory", text) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is not a size"),
        ("12XB", "unknown unit"),
        ("-5MB", "is not a size"),
        ("0", "too small"),
        (0, "too small"),
        (-1, "too small"),
        ("1.3B", "whole number of bytes"),
        ("100TiB", "too large"),
        (True, "boolean"),
        (1.5, "not float"),
        ("5MB; rm -rf /", "is not a size"),
    ],
)
def test_bad_sizes_name_the_field(value: object, reason: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_size("disks[0].size", value)
    assert err.value.field == "disks[0].size"
    assert reason in str(err.value)


def test_format_size_is_exact_and_round_trips() -> None:
    for size in (1, 1000, KiB, 512 * MiB, 3 * GiB // 2, 2 * TiB):
        assert parse_size("x", format_size(size)) == size
    assert format_size(512 * MiB) == "512MiB"
    assert format_size(1000) == "1000B"
