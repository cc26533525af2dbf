"""Targets: machines to profile. SshTarget drives any board over SSH; QemuTarget boots an image
from its Yocto qemuboot.conf and drives it over SSH through slirp port forwarding."""

from __future__ import annotations

from seccomp_py.target.base import (
    AuthenticationError,
    BootError,
    CommandFailed,
    CommandResult,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    Target,
    TargetError,
    TargetUnreachable,
    command_line,
)
from seccomp_py.target.qemu import PROFILING_KERNEL_ARGS, QemuTarget
from seccomp_py.target.qemuboot import QemuBootConfig
from seccomp_py.target.ssh import SshTarget, parse_ssh_spec

__all__ = [
    "PROFILING_KERNEL_ARGS",
    "AuthenticationError",
    "BootError",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "ConnectionLost",
    "HostKeyError",
    "QemuBootConfig",
    "QemuTarget",
    "SshTarget",
    "Target",
    "TargetError",
    "TargetUnreachable",
    "command_line",
    "parse_ssh_spec",
]
