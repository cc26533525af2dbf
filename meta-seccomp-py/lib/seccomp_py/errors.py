"""One error hierarchy. The CLI maps it to exit codes and a one-line message, without a traceback."""

from __future__ import annotations

from typing import Optional


class SeccompPyError(Exception):
    """A user-facing error: bad input, a failing target, a rejected profile. Exit code 1."""

    exit_code = 1


class UsageError(SeccompPyError):
    """The command line itself is wrong. Exit code 2."""

    exit_code = 2


class InputError(SeccompPyError):
    """Bad input data, located by file and line where known."""

    def __init__(self, reason: str, path: Optional[str] = None, line: Optional[int] = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        super().__init__(self.location_prefix() + reason)

    def location_prefix(self) -> str:
        if self.path is None:
            return ""
        if self.line is None:
            return f"{self.path}: "
        return f"{self.path}:{self.line}: "


class UnknownAbiError(InputError):
    """An architecture token that names no ABI we know."""


class UnknownSyscallError(InputError):
    """A syscall name or number that the ABI's table does not have."""
