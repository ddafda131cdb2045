"""libvirt errors that mean "not there" are read through ``translate``, as everywhere else: lookups answer None."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

from virtkit.backends.libvirt.errors import translate
from virtkit.backends.libvirt.host import LibvirtHost
from virtkit.errors import CPUIncompatible, NotFound, Unsupported
from virtkit.models.vm import Accel, VMSpec


@pytest.fixture
def backend(tmp_path: Path) -> LibvirtHost:
    node = tmp_path / "node.xml"
    node.write_text("<node/>")
    return LibvirtHost(f"test://{node}")


def _error(code: int, message: str) -> libvirt.libvirtError:
    exc = libvirt.libvirtError("failed")
    exc.err = (code, libvirt.VIR_FROM_DOMAIN, message, 2, None, None, None, 0, 0)
    return exc


def test_a_missing_metadata_element_is_not_found() -> None:
    assert isinstance(translate(_error(libvirt.VIR_ERR_NO_DOMAIN_METADATA, "metadata not found"), "read"), NotFound)


def test_unsupported_flags_are_unsupported() -> None:
    exc = _error(libvirt.VIR_ERR_INVALID_ARG, "unsupported flags (0x4) in function testDomainUndefineFlags")
    assert isinstance(translate(exc, "undefine web1"), Unsupported)


def test_a_cpu_a_host_cannot_run_is_cpu_incompatible_an_unsupported() -> None:
    message = "the CPU is incompatible with host CPU: Host CPU does not provide required features: avx512f"
    err = translate(_error(libvirt.VIR_ERR_CPU_INCOMPATIBLE, message), "host2 cannot run CPU Icelake-Server")
    assert isinstance(err, CPUIncompatible) and isinstance(err, Unsupported)
    assert err.code == libvirt.VIR_ERR_CPU_INCOMPATIBLE and "avx512f" in str(err)


def test_lookups_of_what_is_not_there_answer_none(backend: LibvirtHost) -> None:
    try:
        assert backend.lookup("nope") is None
        dom = backend.define(VMSpec(name="web1"), Accel.TCG, new=True)
        snapshots = dom.snapshots()
        assert snapshots.get("nope") is None and snapshots.current_name() is None and snapshots.list() == []
        dom.undefine()  # the test driver refuses the NVRAM and checkpoint flags: the fallback asks for less
        assert backend.lookup("web1") is None
    finally:
        backend.close()
