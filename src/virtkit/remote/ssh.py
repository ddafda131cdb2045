"""Hosts reached over SSH (paramiko): run a program there, move files to and from it, read a few host facts.

This is for what must run on a hypervisor host itself, such as making or inspecting a disk image where its VM will
run: an :class:`SSHFiles` is a :class:`~virtkit.backends.base.files.HostFiles`, so every function of
:mod:`virtkit.images` works through it (``images.create(path, "1GiB", roots=..., tool=remote)``).

Security, by construction:

- The server's host key is checked against the ``known_hosts`` file named in :class:`SSHConfig`, and only that
  file (never ``~/.ssh/known_hosts``). An unknown host or a changed key is refused with
  :class:`~virtkit.errors.HostKeyRejected` (paramiko's ``RejectPolicy``); virtkit never adds a key itself.
- Only the private key file named is used: no agent, no keys looked up in ``~/.ssh``.
- The remote side of an SSH command is a shell. :meth:`SSHFiles.run` takes an argument list and quotes it on this
  side with :func:`shlex.join` (:func:`virtkit.remote.config.remote_command`); it never accepts a shell string.
  Each command runs under coreutils ``timeout`` on the host, so one that runs too long is killed there too.
"""

from __future__ import annotations

import errno
import os
import secrets
import select
import shlex
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import paramiko

from virtkit.backends.base.files import NOT_FOUND, CompletedRun, FileStat
from virtkit.errors import (
    AlreadyExists,
    CommandFailed,
    HostKeyRejected,
    HostUnavailable,
    InvalidSpec,
    NotFound,
    OperationTimeout,
    VirtkitError,
)
from virtkit.remote.config import KILL_AFTER, TIMED_OUT, SSHConfig, remote_command
from virtkit.validate import check_path

__all__ = ["SSHFiles"]

_GRACE = KILL_AFTER + 10.0  # how long past its timeout this side waits for a command before giving up on it


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, name: str, key: paramiko.PKey) -> None:
        super().__init__(f"{name} is not in the known_hosts file")
        self.name = name
        self.key = key


class _RejectUnknown(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, raising an exception that carries the offered key (for the message)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> NoReturn:
        raise _UnknownHostKey(hostname, key)


def _fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class SSHFiles:
    """One SSH connection to a host. Use as a context manager, or call :meth:`close`.

    Thread-safe: commands run on separate channels of the one connection.
    """

    def __init__(self, config: SSHConfig) -> None:
        """Connect to ``config.host`` and authenticate with ``config.key_file``.

        :raises InvalidSpec: the known_hosts or key file cannot be read (or the key needs a passphrase).
        :raises HostKeyRejected: the host is not in the known_hosts file, or its key differs (named as a mismatch).
        :raises HostUnavailable: no connection, or authentication refused.
        """
        self._config = config
        self._lock = threading.Lock()
        self._session: paramiko.SFTPClient | None = None
        try:
            # Loaded here, not by connect(): paramiko would report a failed login as a key of another type.
            key = paramiko.PKey.from_path(config.key_file)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise InvalidSpec("key_file", f"cannot use {config.key_file}: {exc}") from exc
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(str(config.known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise InvalidSpec("known_hosts", f"cannot read {config.known_hosts}: {exc}") from exc
        client.set_missing_host_key_policy(_RejectUnknown())
        try:
            client.connect(
                config.host,
                port=config.port,
                username=config.user,
                pkey=key,
                look_for_keys=False,
                allow_agent=False,
                timeout=config.connect_timeout,
                banner_timeout=config.connect_timeout,
                auth_timeout=config.connect_timeout,
                channel_timeout=config.connect_timeout,
            )
        except BaseException as exc:
            client.close()
            error = self._connect_error(exc)
            if error is exc:
                raise
            raise error from exc
        self._client = client

    def _connect_error(self, exc: BaseException) -> BaseException:
        c = self._config
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyRejected(
                f"host key mismatch for {c.target}: it offered {_fingerprint(exc.key)}, but {c.known_hosts} records "
                f"{_fingerprint(exc.expected_key)}; refusing to connect (the host was reinstalled, or this is not "
                "the host you meant)"
            )
        if isinstance(exc, _UnknownHostKey):
            return HostKeyRejected(
                f"unknown host key for {c.target}: {exc.name} is not in {c.known_hosts} (it offered "
                f"{_fingerprint(exc.key)}); add the host's key there after checking it"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return HostUnavailable(f"{c.target} refused the key {c.key_file}: {exc}")
        if isinstance(exc, OSError | paramiko.SSHException | EOFError):
            return HostUnavailable(f"cannot connect to {c.target}: {exc}")
        return exc

    def __enter__(self) -> SSHFiles:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SSHFiles {self._config.target}>"

    @property
    def config(self) -> SSHConfig:
        """How this host was reached."""
        return self._config

    @property
    def where(self) -> str:
        """``user@host:port``."""
        return self._config.target

    @property
    def local(self) -> bool:
        """``False``: the files are the host's."""
        return False

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            sftp, self._session = self._session, None
        if sftp is not None:
            sftp.close()
        self._client.close()

    # -- commands -----------------------------------------------------------------------------------------------

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float = 60.0,
        check: bool = False,
        on_stdout: Callable[[bytes], None] | None = None,
    ) -> CompletedRun:
        """Run ``args`` on the host (an argument list, quoted here: see :func:`remote_command`) and wait for it.

        :param check: raise :class:`~virtkit.errors.CommandFailed` on a non-zero exit status.
        :param on_stdout: called with each piece of standard output as it arrives; an exception from it closes the
            channel (the program gets SIGPIPE on its next write) and propagates.
        :raises InvalidSpec: ``args`` is not a list of strings.
        :raises OperationTimeout: it ran longer than ``timeout`` seconds; it was killed on the host.
        :raises CommandFailed: with ``check``, it exited non-zero; ``stderr`` is kept on the error.
        :raises HostUnavailable: the connection failed or dropped.
        """
        command = remote_command(args, timeout)
        argv = tuple(args)
        start = time.monotonic()
        out, err = bytearray(), bytearray()
        try:
            chan = self._transport().open_session(timeout=self._config.connect_timeout)
            try:
                chan.exec_command(command)
                chan.shutdown_write()
                self._pump(chan, out, err, on_stdout, start + timeout + _GRACE)
                code = chan.recv_exit_status()
            finally:
                chan.close()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise HostUnavailable(f"running {argv[0]} on {self.where} failed: {exc}") from exc
        if code == TIMED_OUT and time.monotonic() - start >= timeout:
            raise OperationTimeout(f"{shlex.join(argv)} did not finish within {timeout:g} s on {self.where}")
        done = CompletedRun(argv, code, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and code != 0:
            what = "is not installed" if code == NOT_FOUND else f"exited with status {code}"
            raise CommandFailed(
                f"{shlex.join(argv)} on {self.where} {what}: {done.stderr.strip() or '(no message)'}",
                command=argv,
                returncode=code,
                stderr=done.stderr,
                host=self.where,
            )
        return done

    def _pump(
        self,
        chan: paramiko.Channel,
        out: bytearray,
        err: bytearray,
        on_stdout: Callable[[bytes], None] | None,
        deadline: float,
    ) -> None:
        """Read stdout and stderr until the end of both (EOF, as a local pipe), then wait for the exit status."""

        def drain() -> None:
            while chan.recv_ready():
                chunk = chan.recv(65536)
                out.extend(chunk)
                if on_stdout is not None and chunk:
                    on_stdout(chunk)
            while chan.recv_stderr_ready():
                err.extend(chan.recv_stderr(65536))

        while not (chan.eof_received or chan.closed):
            left = deadline - time.monotonic()
            if left <= 0:
                raise OperationTimeout(f"{self.where} did not end the output of a command in time")
            select.select([chan], [], [], min(left, 1.0))
            drain()
        drain()
        if not chan.status_event.wait(max(deadline - time.monotonic(), 0.0)):
            raise OperationTimeout(f"{self.where} did not report the exit status of a command in time")

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise HostUnavailable(f"the SSH connection to {self.where} is closed")
        return transport

    # -- files --------------------------------------------------------------------------------------------------

    def _sftp_client(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._session is None:
                try:
                    self._session = self._client.open_sftp()
                except (paramiko.SSHException, OSError) as exc:
                    raise HostUnavailable(f"cannot open SFTP on {self.where}: {exc}") from exc
            return self._session

    @contextmanager
    def _sftp(self, op: str, path: Path) -> Iterator[paramiko.SFTPClient]:
        """The SFTP session, with a dropped connection during ``op`` raised as HostUnavailable."""
        sftp = self._sftp_client()
        try:
            yield sftp
        except (paramiko.SSHException, EOFError) as exc:
            raise HostUnavailable(f"sftp {op} {path} on {self.where} failed: {exc}") from exc

    def _sftp_error(self, op: str, path: Path, exc: OSError) -> NotFound | CommandFailed:
        if exc.errno == errno.ENOENT:
            return NotFound(f"{op}: no {path} on {self.where}")
        return CommandFailed(
            f"sftp {op} {path} on {self.where} failed: {exc}",
            command=("sftp", op, str(path)),
            returncode=exc.errno or -1,
            stderr=str(exc),
            host=self.where,
        )

    def stat(self, path: Path, *, follow_symlinks: bool = True) -> FileStat | None:
        """What is at ``path`` on the host (SFTP ``stat``, or ``lstat`` without ``follow_symlinks``), or ``None``.

        :raises CommandFailed: the host refused to tell (permissions).
        """
        with self._sftp("stat", path) as sftp:
            try:
                attrs = sftp.stat(str(path)) if follow_symlinks else sftp.lstat(str(path))
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return None
                raise self._sftp_error("stat", path, exc) from exc
        return FileStat(attrs.st_mode or 0, attrs.st_size or 0)

    def read(self, path: Path, *, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the regular file ``path`` on the host from ``offset`` (SFTP).

        :raises OSError: not a regular file (``EINVAL``: checked before it is opened), or it cannot be read.
        """
        found = self.stat(path)
        if found is None or not stat.S_ISREG(found.mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with self._sftp("read", path) as sftp, sftp.open(str(path), "rb") as f:
            f.seek(offset)
            return bytes(f.read(size))

    def exists(self, path: Path | str) -> bool:
        """Whether ``path`` exists on the host (symlinks followed).

        :raises InvalidSpec: not an absolute, clean path.
        """
        return self.stat(check_path("path", path)) is not None

    def resolve(self, path: Path) -> Path:
        """``path`` with its symlinks resolved on the host; a missing last component is kept as it is.

        :raises CommandFailed: the host could not resolve it.
        """
        with self._sftp("resolve", path) as sftp:
            try:
                return Path(sftp.normalize(str(path)))
            except OSError as exc:
                if exc.errno != errno.ENOENT or path.parent == path:
                    raise self._sftp_error("resolve", path, exc) from exc
        return self.resolve(path.parent) / path.name

    def link(self, src: Path, dst: Path) -> None:
        """Move ``src`` to ``dst``, never over an existing ``dst`` (SFTP rename: OpenSSH links, then unlinks).

        :raises FileExistsError: ``dst`` exists.
        :raises CommandFailed: the host refused.
        """
        with self._sftp("rename", src) as sftp:
            try:
                sftp.rename(str(src), str(dst))
            except OSError as exc:
                if self.stat(dst, follow_symlinks=False) is not None:
                    raise FileExistsError(str(dst)) from exc
                raise self._sftp_error("rename", src, exc) from exc

    def unlink(self, path: Path) -> bool:
        """Remove the file ``path`` on the host; ``False`` if nothing was there.

        :raises CommandFailed: the host refused (a directory, permissions).
        """
        with self._sftp("remove", path) as sftp:
            try:
                sftp.remove(str(path))
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return False
                raise self._sftp_error("remove", path, exc) from exc
        return True

    def put(self, local: Path | str, remote: Path | str, *, overwrite: bool = False) -> None:
        """Copy the local file ``local`` to ``remote`` on the host; it appears there complete or not at all.

        :raises InvalidSpec: ``remote`` is not an absolute, clean path.
        :raises NotFound: ``local`` does not exist, or the directory of ``remote`` does not.
        :raises AlreadyExists: ``remote`` exists and ``overwrite`` is false.
        :raises CommandFailed: the host refused.
        """
        dst = check_path("remote", remote)
        if not Path(local).is_file():
            raise NotFound(f"no local file {local}")
        tmp = dst.with_name(f".{dst.name[:200]}.{secrets.token_hex(6)}.part")
        try:
            with self._sftp("put", dst) as sftp:
                sftp.put(str(local), str(tmp), confirm=True)
                if overwrite:
                    sftp.posix_rename(str(tmp), str(dst))
                else:
                    self.link(tmp, dst)
        except FileExistsError:
            raise AlreadyExists(f"{dst} exists on {self.where}") from None
        except OSError as exc:
            raise self._sftp_error("put", dst, exc) from exc
        finally:
            with suppress(VirtkitError):
                self.unlink(tmp)

    def get(self, remote: Path | str, local: Path | str, *, overwrite: bool = False) -> None:
        """Copy the file ``remote`` on the host to ``local``; it appears here complete or not at all.

        :raises InvalidSpec: ``remote`` is not an absolute, clean path.
        :raises NotFound: ``remote`` does not exist.
        :raises AlreadyExists: ``local`` exists and ``overwrite`` is false.
        :raises CommandFailed: the host refused.
        """
        src = check_path("remote", remote)
        dst = Path(local)
        if not overwrite and os.path.lexists(dst):
            raise AlreadyExists(f"{dst} exists")
        tmp = dst.with_name(f".{dst.name[:200]}.{secrets.token_hex(6)}.part")
        try:
            with self._sftp("get", src) as sftp:
                try:
                    sftp.get(str(src), str(tmp))
                except OSError as exc:
                    raise self._sftp_error("get", src, exc) from exc
            if overwrite:
                os.replace(tmp, dst)
            else:
                os.link(tmp, dst)
        except FileExistsError:
            raise AlreadyExists(f"{dst} exists") from None
        finally:
            tmp.unlink(missing_ok=True)

    # -- facts --------------------------------------------------------------------------------------------------

    def hostname(self) -> str:
        """The host's own name (``uname -n`` there).

        :raises CommandFailed: ``uname`` failed.
        """
        return self.run(["uname", "-n"], timeout=30.0, check=True).stdout.strip()

    def free_bytes(self, path: Path | str) -> int:
        """Bytes an unprivileged user can still write on the file system holding ``path`` (``stat -f``).

        :raises InvalidSpec: not an absolute, clean path.
        :raises CommandFailed: ``path`` does not exist, or ``stat`` failed.
        """
        p = check_path("path", path)
        done = self.run(["stat", "--file-system", "--format=%a %S", "--", str(p)], timeout=30.0, check=True)
        available, block = (int(n) for n in done.stdout.split())
        return available * block

    def is_dir(self, path: Path | str) -> bool:
        """Whether ``path`` is a directory on the host (symlinks followed).

        :raises InvalidSpec: not an absolute, clean path.
        """
        found = self.stat(check_path("path", path))
        return found is not None and stat.S_ISDIR(found.mode)
