"""Hostile input to virtkit.images (create, info, resize, convert, compare, remove) against the real qemu-img, in
the storage root of the hostile world (tests/hostile.py): every bad argument and every file that is no image of
its own (a FIFO, a device, a link out of the root, a backing chain that leaves it) is refused with a VirtkitError
with a short, printable message, and no file changes, not even when qemu-img itself fails.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostile import (
    CHAINED_OUT,
    NOT_FILES,
    World,
    aimed,
    bad_enums,
    bad_paths,
    bad_sizes,
    bad_timeouts,
    not_bools,
    not_text,
    places,
)
from hostile import hostile as hostile_settings
from virtkit import Conflict, ImageError, InvalidSpec, images
from virtkit.units import GiB, TiB
from virtkit.validate import shown

FORMATS = ("qcow2", "raw", "vhd", "vhdx")
bad_formats = bad_enums(*FORMATS)
bad_roots = st.one_of(
    st.sampled_from(["/var/lib/virtkit", Path("/var/lib/virtkit"), b"/x", 5, {"/x": 1}]),
    st.lists(bad_paths, min_size=1, max_size=2),
)
not_tools = st.one_of(not_text.filter(lambda v: v not in ([], {})), st.sampled_from(["ssh", object()]))
not_callables = st.one_of(not_text, st.just("print"))
unaligned_sizes = st.integers(1, 10**6).filter(lambda n: n % 512).map(lambda n: 16 * 1024 * 1024 + n)

EXISTING = ["image.qcow2", "image.raw"]
#: What each function takes, and for each argument what is bad about it.
CALLS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "info": {
        "path": places(*NOT_FILES, "missing.qcow2"),
        "fmt": bad_formats,
        "roots": bad_roots,
        "tool": not_tools,
    },
    "create": {
        "path": places(*NOT_FILES, *EXISTING, "to-outside"),
        "size": st.one_of(bad_sizes.filter(lambda v: v is not None), unaligned_sizes, st.just(65 * TiB)),
        "fmt": bad_formats,
        "roots": bad_roots,
        "backing": places(*NOT_FILES, *CHAINED_OUT, "new.qcow2", "missing.qcow2"),
        "preallocation": st.one_of(bad_enums("off", "metadata", "falloc", "full"), st.just(["off"])),
        "exist_ok": not_bools,
        "timeout": bad_timeouts(),
        "tool": not_tools,
    },
    "resize": {
        "path": places(*NOT_FILES, *CHAINED_OUT, "image.vhd", "missing.qcow2"),
        "size": st.one_of(bad_sizes, unaligned_sizes, st.just(1024 * 1024)),
        "roots": bad_roots,
        "shrink": not_bools,
        "tool": not_tools,
    },
    "convert": {
        "src": places(*NOT_FILES, *CHAINED_OUT, "missing.qcow2"),
        "dst": places(*NOT_FILES, *EXISTING, "image.vhd"),
        "fmt": bad_formats,
        "roots": bad_roots,
        "compress": not_bools,
        "progress": not_callables,
        "timeout": bad_timeouts(),
        "tool": not_tools,
    },
    "compare": {
        "a": places(*NOT_FILES, *CHAINED_OUT, "missing.qcow2"),
        "b": places(*NOT_FILES, *CHAINED_OUT, "missing.qcow2"),
        "roots": bad_roots,
        "timeout": bad_timeouts(),
        "tool": not_tools,
    },
    "remove": {"path": places(*NOT_FILES), "roots": bad_roots, "tool": not_tools},
}

# Every argument that is fine, for the call with one bad argument.
GOOD: dict[str, dict[str, Any]] = {
    "info": {"path": ("in", "image.qcow2")},
    "create": {"path": ("in", "new.qcow2"), "size": "16MiB", "fmt": "qcow2"},
    "resize": {"path": ("in", "image.qcow2"), "size": "32MiB"},
    "convert": {"src": ("in", "image.qcow2"), "dst": ("in", "converted.qcow2"), "fmt": "qcow2"},
    "compare": {"a": ("in", "image.qcow2"), "b": ("in", "image.raw")},
    "remove": {"path": ("in", "text.txt")},
}


@st.composite
def image_calls(draw: st.DrawFn) -> tuple[str, str, Any]:
    function = draw(st.sampled_from(sorted(CALLS)))
    field = draw(st.sampled_from(sorted(CALLS[function])))
    return function, field, draw(CALLS[function][field])


def _call(world: World, function: str, field: str, value: Any) -> Any:
    args = {name: world.path(v) for name, v in {**GOOD[function], field: value}.items()}
    if field == "preallocation" and value == "metadata":
        args["fmt"] = "raw"  # metadata preallocation is for qcow2 only
    args.setdefault("roots", [world.storage])
    if field == "backing":
        args.update(size=None)
    return lambda: getattr(images, function)(**args)


@hostile_settings(1000)
@given(image_calls())
def test_images_refuse_bad_arguments_and_change_no_file(world: World, case: tuple[str, str, Any]) -> None:
    function, field, value = case
    # A malformed value is refused naming its field; a file that is there but of the wrong kind may also be
    # AlreadyExists (the destination exists), NotFound (nothing there) or Unsupported (a vhd to resize).
    named = not (isinstance(value, tuple) and value[0] == "in")
    aimed(world, _call(world, function, field, value), field if named else None)


# -- the concrete defects of the issue -------------------------------------------------------------------------------


def repr_short(value: object) -> str:
    return shown(value, limit=30)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "size", ["1.5", "16777216.5", 10**5000, float("nan"), "-1", "1" + "0" * 40, 16 * 1024**2 + 1], ids=repr_short
)
def test_a_refused_resize_leaves_the_image_as_it_was(world: World, size: Any) -> None:
    aimed(world, lambda: images.resize(world.storage / "image.qcow2", size, roots=[world.storage]), "size", InvalidSpec)


@pytest.mark.parametrize("name", ["dirty.qcow2", "small-clusters.qcow2"])
def test_a_resize_that_qemu_img_would_fail_leaves_the_image_as_it_was(world: World, name: str) -> None:
    image = world.storage / name
    before = _digest(image)
    # 200 GiB is more than a qcow2 image with 512-byte clusters holds: qemu-img would fail, after repairing in
    # place the image that was not closed cleanly.
    aimed(world, lambda: images.resize(image, 200 * GiB, roots=[world.storage]), "size", InvalidSpec)
    if name == "dirty.qcow2":
        aimed(world, lambda: images.resize(image, "32MiB", roots=[world.storage]), None, Conflict)
    assert _digest(image) == before


def test_a_resize_of_an_image_qemu_cannot_resize_leaves_it_as_it_was(world: World, tmp_path: Path) -> None:
    vhd = world.storage / "image.vhd"
    aimed(world, lambda: images.resize(vhd, "32MiB", roots=[world.storage]), None)
    big = tmp_path / "big.raw"
    big.write_bytes(b"\0" * 4096)
    before = _digest(big)
    with pytest.raises(ImageError):  # ext4 holds no file of 64 TiB
        images.resize(big, 64 * TiB, roots=[tmp_path])
    assert _digest(big) == before and big.stat().st_size == 4096
