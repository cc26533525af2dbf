"""Arming services for log mode from boot: the first profiling round without a daemon-reload or restart.

A profiling image (packagegroup-seccomp-profiling) ships the systemd generator
``seccomp-py-boot-log`` (recipes-security/seccomp-profiling-setup). When the kernel command line names
units with ``seccomp_py.log=a.service,b.service``, the generator writes a log-everything drop-in for
each of them under /run/systemd/generator/ before any unit starts, so they run in log mode from their
very first start. QemuTarget boots are the natural user: the profiler adds the arguments itself.
A Yocto profiling image (SECCOMP_MODE = "log") bakes the same drop-in into the unit folder; either way
the profiler sees it in the unit's DropInPaths and treats the time since boot as its first round.

Why: on a TCG guest every daemon-reload costs seconds, and the first start after boot is the one
the product really makes (first-boot set-up paths included). The profiler's first round then only
runs the workloads; later rounds re-arm with /run/systemd/system drop-ins of the same file name,
which take precedence over the generator's.

Once the profiler moves past the boot round it creates DONE_FLAG before its daemon-reload; the
generator then writes nothing, so later reloads (next rounds, verify, clean-up) never bring the
log-everything drop-in back. Everything lives in /run: nothing persists across reboot.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Mapping

from .errors import UsageError
from .syscalls import get_abi

UNITS_ARG = "seccomp_py.log"
PLACEHOLDER_ARG = "seccomp_py.log_placeholder"
GENERATOR_NAME = "seccomp-py-boot-log"
GENERATOR_DIR = "/run/systemd/generator"
DROPIN_NAME = "50-seccomp-log.conf"  # the profiler's own drop-in has this name too and masks this one
DONE_FLAG = "/run/seccomp-py.boot-log.done"

# Shell: stop the generator from arming anything again (run before a daemon-reload that re-arms).
DISARM_SHELL = f": > {DONE_FLAG}"

# The generator accepts exactly this; anything else on the command line is ignored there.
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9:_.@\\-]+\.service$")
_SYSCALL_NAME = re.compile(r"^[a-z0-9_]+$")

# qemu-system-<x> -> ABI (qemuboot.conf's qb_system_name)
_ABI_BY_QEMU = {"x86_64": "x86_64", "i386": "x86", "aarch64": "aarch64", "arm": "arm", "riscv64": "riscv64",
                "riscv32": "riscv32", "ppc64": "ppc64le", "s390x": "s390x", "mips64": "mips64",
                "mips64el": "mips64", "loongarch64": "loongarch64"}


def generator_dropin(unit: str) -> str:
    return f"{GENERATOR_DIR}/{unit}.d/{DROPIN_NAME}"


def placeholder_for_abi(abi: str) -> str:
    """The log-everything placeholder for an ABI and its compat ABIs (as render.systemd picks it)."""
    from .render.systemd import placeholder_for

    native = get_abi(abi)
    return placeholder_for([native] + [get_abi(c) for c in native.info.compat])


def abi_of_qemu_system(system_name: str) -> str:
    """qemu-system-aarch64 -> aarch64; raises UsageError for a qemu whose ABI we do not know."""
    suffix = system_name.rsplit("/", 1)[-1].replace("qemu-system-", "", 1)
    if suffix not in _ABI_BY_QEMU:
        raise UsageError(f"cannot tell the target ABI of {system_name!r} for arming units at boot")
    return _ABI_BY_QEMU[suffix]


def kernel_args(units: Iterable[str], abi: str) -> List[str]:
    """Kernel command-line words that make the image's generator arm these units at boot."""
    units = list(units)
    for unit in units:
        if not can_arm_at_boot(unit):
            raise UsageError(f"unit {unit!r} cannot be armed at boot: only .service units with plain names")
    if not units:
        return []
    placeholder = placeholder_for_abi(abi)
    assert _SYSCALL_NAME.match(placeholder)
    return [f"{UNITS_ARG}={','.join(units)}", f"{PLACEHOLDER_ARG}={placeholder}"]


def can_arm_at_boot(unit: str) -> bool:
    return bool(_SERVICE_NAME.match(unit))


def kernel_args_for_qemuboot(qemuboot: str, units: Iterable[str]) -> List[str]:
    """kernel_args() for an image about to boot from qemuboot; none when a unit is not a plain
    .service (those are armed by restart, like every unit on an image without the generator)."""
    from .target.qemuboot import QemuBootConfig

    units = list(units)
    if not units or not all(can_arm_at_boot(u) for u in units):
        return []
    return kernel_args(units, abi_of_qemu_system(QemuBootConfig.load(qemuboot).system_name))


# Where a log-everything drop-in of this name arms a unit from boot: the generator's folder, and the
# unit folders a profiling image bakes it into (seccomp.bbclass with SECCOMP_MODE = "log").
# /run/systemd/system is not one: that is the profiler's own, possibly stale, runtime drop-in.
BOOT_DROPIN_DIRS = (GENERATOR_DIR, "/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def boot_armed(unit: str, props: Mapping[str, str], disarmed: bool) -> bool:
    """Whether systemd loaded a log-everything drop-in for unit from boot on (the generator's, or one
    baked into a profiling image), so any start since boot logged every call, and no profiler run has
    moved past the boot round yet."""
    loaded = props.get("DropInPaths", "").split()
    return not disarmed and any(f"{folder}/{unit}.d/{DROPIN_NAME}" in loaded for folder in BOOT_DROPIN_DIRS)
