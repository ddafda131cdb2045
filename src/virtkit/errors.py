"""virtkit's exception tree.

Every error virtkit raises is a :class:`VirtkitError`; libvirt's own errors are translated in exactly one place
(``virtkit.backends.libvirt.errors.translate``) and chained with ``raise ... from exc``::

    VirtkitError
    ├── InvalidSpec          bad input: names the field and the reason; nothing was changed
    ├── NotFound             no such VM, snapshot, image or host
    ├── AlreadyExists        a VM or image of that name is already there (with a different definition)
    ├── Conflict             wrong state for the operation, or another job holds the VM
    │   └── GuestAgentUnavailable  the VM's guest agent does not answer
    ├── HostUnavailable      the host cannot be reached, or the connection dropped
    │   └── HostKeyRejected  an SSH server's host key is unknown to, or differs from, the known_hosts file
    ├── OperationTimeout     a wait ran out (shutdown, device removal, boot marker)
    ├── Unsupported          the platform cannot do this; the message says why and what would work
    │   └── CPUIncompatible  a host cannot run a VM's CPU; the message names the features it lacks
    ├── ImageError           qemu-img failed on a disk image
    ├── CommandFailed        a command run on a host (over SSH) exited with an error; its stderr is kept
    ├── MigrationFailed      a migration did not move the VM; names the cause and the host it runs on now
    ├── DrainIncomplete      a drain left VMs behind; carries the DrainResult (virtkit.models.results)
    ├── LabError             the local lab could not be built, started or stopped
    └── BackendError         any other failure of the hypervisor layer (libvirt code kept on it)
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "BackendError",
    "CPUIncompatible",
    "CommandFailed",
    "Conflict",
    "GuestAgentUnavailable",
    "HostKeyRejected",
    "HostUnavailable",
    "ImageError",
    "InvalidSpec",
    "LabError",
    "MigrationFailed",
    "NotFound",
    "OperationTimeout",
    "Unsupported",
    "VirtkitError",
]


class VirtkitError(Exception):
    """Base of every error virtkit raises.

    ``code`` keeps the libvirt error code (``VIR_ERR_*`` as an int) when the error came from libvirt; ``transient``
    says whether trying again after re-reading state may succeed (a lock held by another call, a dropped connection).
    """

    def __init__(self, message: str, *, code: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient


class InvalidSpec(VirtkitError):
    """Input was rejected before anything changed.

    ``field`` is a dotted path into the input (``disks[1].size``); ``reason`` says what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(VirtkitError):
    """The named VM, snapshot, image or host does not exist."""


class AlreadyExists(VirtkitError):
    """Something of that name exists already and differs from what was asked."""


class Conflict(VirtkitError):
    """The object is in the wrong state for the operation, or busy with another job."""


class GuestAgentUnavailable(Conflict):
    """The VM's guest agent does not answer: the VM has no agent channel, is not running, or qemu-guest-agent is not
    running in the guest (yet). Hyper-V says its integration service has lost communication."""


class HostUnavailable(VirtkitError):
    """The host cannot be reached, or the connection to it was lost."""


class HostKeyRejected(HostUnavailable):
    """An SSH server's host key is not in the known_hosts file, or differs from the key recorded there.

    virtkit never adds a host key by itself: record it in the known_hosts file after checking it.
    """


class OperationTimeout(VirtkitError):
    """A wait ran out before the expected condition was reached."""


class Unsupported(VirtkitError):
    """The platform cannot do this; the message says why and what would work instead."""


class CPUIncompatible(Unsupported):
    """A host cannot run a VM's CPU model (before a migration there, say); the message names the features it lacks."""


class ImageError(VirtkitError):
    """``qemu-img`` failed on a disk image."""


class CommandFailed(VirtkitError):
    """A command run on a host exited with an error.

    ``command`` is its argument list, ``returncode`` its exit status, ``stderr`` what it wrote there, ``host`` where
    it ran.
    """

    def __init__(self, message: str, *, command: tuple[str, ...], returncode: int, stderr: str, host: str) -> None:
        super().__init__(message)
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        self.host = host


class MigrationFailed(VirtkitError):
    """A migration did not move the VM, or moved it only by booting it afresh.

    ``cause`` says why in a word or two (``cancelled``, ``timeout``, ``destination failed``...), ``host`` is the URI
    of the host the VM runs on now (``None`` when that could not be established: the message says what to check),
    and ``restarted`` is set when its running state was lost and it was booted again.
    """

    def __init__(self, message: str, *, cause: str, host: str | None, restarted: bool = False) -> None:
        super().__init__(message)
        self.cause = cause
        self.host = host
        self.restarted = restarted


class LabError(VirtkitError):
    """The local lab could not be built, started or stopped."""


class BackendError(VirtkitError):
    """Any other failure reported by the hypervisor layer."""
