"""The Target interface: something we can start, run commands on, copy files to and from, and stop.

Shaped like oeqa's target (meta/lib/oeqa/core/target/base.py), with typed results and errors.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import posixpath
import shlex
from typing import IO, Optional, Sequence, Union

from seccomp_py.errors import SeccompPyError

Command = Union[str, Sequence[str]]
PathLike = Union[str, "os.PathLike[str]"]


class TargetError(SeccompPyError):
    """The target failed in a way the user has to know about (exit code 1)."""


class TargetUnreachable(TargetError):
    """No SSH session could be opened (refused, timed out, no banner)."""


class HostKeyError(TargetError):
    """The server's host key does not match what we trust, or we have nothing to trust."""


class AuthenticationError(TargetError):
    """The server refused every credential we offered."""


class ConnectionLost(TargetError):
    """An open SSH connection went away (the guest died, the network dropped)."""


class BootError(TargetError):
    """A qemu guest did not come up."""


@dataclasses.dataclass
class CommandResult:
    """What one remote command did. status is -1 when no exit status arrived (killed, cut off)."""

    command: str
    status: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 0

    def check(self) -> CommandResult:
        if self.status != 0:
            raise CommandFailed(self)
        return self


class CommandFailed(TargetError):
    def __init__(self, result: CommandResult) -> None:
        self.result = result
        detail = (result.stderr or result.stdout).strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        super().__init__(f"command failed with exit status {result.status}: {result.command}{tail}")


class CommandTimeout(TargetError):
    def __init__(self, command: str, timeout: float, stdout: str = "", stderr: str = "") -> None:
        self.command = command
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"command timed out after {timeout:g} s: {command}")


def command_line(cmd: Command) -> str:
    """A shell command line. A sequence is quoted word by word, so user data never becomes syntax;
    a plain string is taken as shell code the caller wrote."""
    if isinstance(cmd, str):
        return cmd
    return " ".join(shlex.quote(os.fspath(word)) if isinstance(word, os.PathLike) else shlex.quote(str(word))
                    for word in cmd)


class Target(abc.ABC):
    """A machine to profile. Use as a context manager so stop() always runs."""

    #: seconds a command may run when run() is not given a timeout
    default_timeout: float = 300.0

    @abc.abstractmethod
    def start(self) -> None:
        """Make the target ready for run/put/get (connect, boot...)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Release everything start() acquired. Safe to call twice."""

    @abc.abstractmethod
    def run(self, cmd: Command, timeout: Optional[float] = None, check: bool = False,
            input: Optional[Union[bytes, str]] = None) -> CommandResult:
        """Run a command and wait for it. Raises CommandTimeout, ConnectionLost; with check=True
        also CommandFailed on a non-zero exit status."""

    @abc.abstractmethod
    def run_to_file(self, cmd: Command, sink: IO[bytes], timeout: Optional[float] = None,
                    check: bool = False) -> CommandResult:
        """Run a command, streaming its stdout as bytes into sink (for big outputs such as journal
        exports); the result's stdout is empty."""

    @abc.abstractmethod
    def put(self, local: PathLike, remote: str, mode: Optional[int] = None) -> None:
        """Copy a local file to the target. mode defaults to the local file's permission bits."""

    @abc.abstractmethod
    def get(self, remote: str, local: PathLike) -> None:
        """Copy a file from the target; the local file appears complete or not at all."""

    def write_file(self, remote: str, data: Union[bytes, str], mode: int = 0o644, parents: bool = True) -> None:
        """Create or replace a small remote file with data (atomically, by rename). parents=True
        creates missing folders first, as drop-in folders under /run usually are."""
        payload = data.encode() if isinstance(data, str) else data
        tmp = shlex.quote(f"{remote}.seccomp-py.tmp")
        script = f"cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {shlex.quote(remote)}"
        if parents:
            script = f"mkdir -p {shlex.quote(posixpath.dirname(remote) or '/')} && {script}"
        self.run(script, input=payload, check=True)

    def read_file(self, remote: str) -> bytes:
        import io

        sink = io.BytesIO()
        self.run_to_file(["cat", remote], sink, check=True)
        return sink.getvalue()

    def __enter__(self) -> Target:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
