"""The one place that reads libvirt error codes and turns them into virtkit's exception tree."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import libvirt
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from virtkit.errors import (
    AlreadyExists,
    BackendError,
    Conflict,
    CPUIncompatible,
    GuestAgentUnavailable,
    HostUnavailable,
    InvalidSpec,
    NotFound,
    OperationTimeout,
    Unsupported,
    VirtkitError,
)
from virtkit.validate import printable

__all__ = ["is_transient", "libvirt_errors", "retry_transient", "translate"]

P = ParamSpec("P")
R = TypeVar("R")

# libvirt error code -> virtkit error class. Codes not listed become BackendError.
_BY_CODE: dict[int, type[VirtkitError]] = {
    libvirt.VIR_ERR_NO_DOMAIN: NotFound,
    libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT: NotFound,
    libvirt.VIR_ERR_NO_NETWORK: NotFound,
    libvirt.VIR_ERR_NO_STORAGE_VOL: NotFound,
    libvirt.VIR_ERR_NO_STORAGE_POOL: NotFound,
    libvirt.VIR_ERR_DEVICE_MISSING: NotFound,
    libvirt.VIR_ERR_NO_DOMAIN_METADATA: NotFound,  # the domain has no metadata element in that namespace
    libvirt.VIR_ERR_DOM_EXIST: AlreadyExists,
    libvirt.VIR_ERR_OPERATION_INVALID: Conflict,  # e.g. "domain is not running", "domain is already running"
    libvirt.VIR_ERR_RESOURCE_BUSY: Conflict,  # e.g. an image whose lock another VM holds
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: GuestAgentUnavailable,  # the agent is not running or not answering
    libvirt.VIR_ERR_AGENT_UNSYNCED: GuestAgentUnavailable,  # it answered out of order (it restarted meanwhile)
    libvirt.VIR_ERR_SNAPSHOT_REVERT_RISKY: Conflict,  # the revert would need force (an incompatible definition)
    libvirt.VIR_ERR_OPERATION_TIMEOUT: OperationTimeout,  # e.g. "cannot acquire state change lock"
    libvirt.VIR_ERR_NO_CONNECT: HostUnavailable,
    libvirt.VIR_ERR_RPC: HostUnavailable,
    libvirt.VIR_ERR_AUTH_FAILED: HostUnavailable,
    libvirt.VIR_ERR_NO_SUPPORT: Unsupported,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED: Unsupported,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED: Unsupported,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED: Unsupported,
    libvirt.VIR_ERR_CPU_INCOMPATIBLE: CPUIncompatible,
    libvirt.VIR_ERR_XML_ERROR: InvalidSpec,
    libvirt.VIR_ERR_XML_DETAIL: InvalidSpec,
}

# Failures worth one more try after re-reading state: a job lock held by another call, or a connection that was
# dropped and may be re-opened. Everything else is final.
_TRANSIENT_CODES = {libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_RPC}
_TRANSIENT_SYSTEM_MESSAGES = ("client socket is closed", "connection reset", "broken pipe", "end of file while reading")


def translate(exc: libvirt.libvirtError, what: str) -> VirtkitError:
    """The virtkit error for a libvirt error, with ``what`` (the operation) in front of libvirt's message.

    The libvirt code is kept on ``.code``; ``.transient`` says whether a retry after re-reading state may succeed.
    """
    code = exc.get_error_code() or 0
    # libvirt quotes its input (a path, an XML document) in its messages: keep them short and printable.
    message = f"{what}: {printable(str(exc.get_error_message() or exc), limit=1000)}"
    lowered = message.lower()
    if code == libvirt.VIR_ERR_SYSTEM_ERROR and any(m in lowered for m in _TRANSIENT_SYSTEM_MESSAGES):
        cls: type[VirtkitError] = HostUnavailable
    elif code == libvirt.VIR_ERR_OPERATION_FAILED and ("already exists" in lowered or "already defined" in lowered):
        cls = AlreadyExists
    elif code == libvirt.VIR_ERR_INVALID_ARG and "unsupported flags" in lowered:
        cls = Unsupported  # this driver or version lacks a flag virtkit asked for
    else:
        cls = _BY_CODE.get(code, BackendError)
    err = InvalidSpec("xml", message) if cls is InvalidSpec else cls(message, code=code)
    err.code = code
    err.transient = code in _TRANSIENT_CODES or cls is HostUnavailable
    return err


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a translated libvirt error that a retry may cure."""
    return isinstance(exc, VirtkitError) and exc.transient


@contextmanager
def libvirt_errors(what: str) -> Iterator[None]:
    """Translate any libvirt error raised inside the block; ``what`` names the operation in the message.

    :raises VirtkitError: the translated error, chained from libvirt's.
    """
    try:
        yield
    except libvirt.libvirtError as exc:
        raise translate(exc, what) from exc


def retry_transient(fn: Callable[P, R]) -> Callable[P, R]:
    """Retry ``fn`` (which must re-read state itself) up to 3 times in all, on transient errors only.

    The first call is made directly: tenacity's machinery (about 90 us a call) is entered only after a failure.
    """
    retrying: Callable[P, R] = retry(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(2),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        reraise=True,
    )(fn)

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except VirtkitError as exc:
            if not is_transient(exc):
                raise
        return retrying(*args, **kwargs)

    return call
