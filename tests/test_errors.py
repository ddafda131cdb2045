"""The one translation of libvirt errors into virtkit's tree, on real errors from libvirt's test driver."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

from virtkit import AlreadyExists, Conflict, InvalidSpec, NotFound, VirtkitError
from virtkit.backends.libvirt.errors import is_transient, libvirt_errors, translate
from virtkit.errors import HostUnavailable


@pytest.fixture
def conn(tmp_path: Path) -> libvirt.virConnect:
    node = tmp_path / "node.xml"
    node.write_text((Path(__file__).parent / "data" / "node.xml").read_text())
    c = libvirt.open(f"test://{node}")
    yield c
    c.close()


def _raise(fn: object) -> libvirt.libvirtError:
    try:
        fn()  # type: ignore[operator]
    except libvirt.libvirtError as exc:
        return exc
    raise AssertionError("libvirt did not fail")


def test_no_domain_is_not_found(conn: libvirt.virConnect) -> None:
    err = translate(_raise(lambda: conn.lookupByName("nope")), "look up nope")
    assert isinstance(err, NotFound)
    assert err.code == libvirt.VIR_ERR_NO_DOMAIN
    assert str(err).startswith("look up nope: ")
    assert not is_transient(err)


def test_wrong_state_is_conflict(conn: libvirt.virConnect) -> None:
    dom = conn.lookupByName("legacy1")  # the test driver runs the domains of its node file
    dom.destroy()
    err = translate(_raise(dom.destroy), "destroy legacy1")  # "Requested operation is not valid"
    assert isinstance(err, Conflict)
    assert err.code == libvirt.VIR_ERR_OPERATION_INVALID


def test_bad_xml_is_invalid_spec(conn: libvirt.virConnect) -> None:
    err = translate(_raise(lambda: conn.defineXML("<domain><name>x")), "define x")
    assert isinstance(err, InvalidSpec)
    assert err.field == "xml"


def test_duplicate_is_already_exists(conn: libvirt.virConnect) -> None:
    xml = conn.lookupByName("legacy1").XMLDesc(0).replace("<name>legacy1</name>", "<name>other</name>")
    err = translate(_raise(lambda: conn.defineXML(xml)), "define other")
    assert isinstance(err, AlreadyExists)


def test_closed_connection_is_host_unavailable_and_transient(tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    node.write_text("<node/>")
    c = libvirt.open(f"test://{node}")
    c.close()
    exc = _raise(c.getHostname)
    err = translate(exc, "read hostname")
    assert isinstance(err, VirtkitError)


def test_context_manager_chains_the_libvirt_error(conn: libvirt.virConnect) -> None:
    with pytest.raises(NotFound) as info, libvirt_errors("look up ghost"):
        conn.lookupByName("ghost")
    assert isinstance(info.value.__cause__, libvirt.libvirtError)


def test_virtkit_errors_do_not_inherit_from_libvirt() -> None:
    for cls in (NotFound, Conflict, HostUnavailable, InvalidSpec):
        assert not issubclass(cls, libvirt.libvirtError)


def test_retry_only_on_transient_errors() -> None:
    from virtkit.backends.libvirt.errors import retry_transient

    calls: list[int] = []

    @retry_transient
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            err = HostUnavailable("dropped")
            err.transient = True  # type: ignore[attr-defined]
            raise err
        return "ok"

    assert flaky() == "ok" and len(calls) == 3

    @retry_transient
    def final() -> None:
        calls.append(1)
        raise NotFound("gone")

    calls.clear()
    with pytest.raises(NotFound):
        final()
    assert len(calls) == 1


def test_a_libvirt_message_quoting_hostile_input_stays_short_and_printable() -> None:
    err = translate(libvirt.libvirtError("Document is empty\n\x1b[31m(null)\x85" + "x" * 50_000), "define web1")
    assert len(err.message) < 1100
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in err.message)
    assert "\\x1b" in err.message
