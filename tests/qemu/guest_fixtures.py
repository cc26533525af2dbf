"""Helpers for tests that boot the reference guests (tests/qemu/guest.py). A plain module, not
conftest.py, so test modules can import it without clashing with tests/conftest.py."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import List

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import guest  # noqa: E402


def guest_or_skip(arch: str) -> guest.Guest:
    """The cached guest, built first if needed; skips (saying why) when this host cannot."""
    spec = guest.ARCHES[arch]
    if not shutil.which(spec.qemu_system):
        pytest.skip(f"{spec.qemu_system} not installed (apt-get install qemu-system-x86 qemu-system-arm)")
    found = guest.find_guest(arch)
    if found is not None:
        return found
    if os.environ.get("SECCOMP_PY_BUILD_GUESTS", "1") == "0":
        pytest.skip(f"{arch} guest not cached at {guest.guest_dir(arch)} and SECCOMP_PY_BUILD_GUESTS=0")
    if os.geteuid() != 0:
        pytest.skip(f"{arch} guest not cached and building one needs root "
                    f"(python3 tests/qemu/guest.py build --arch {arch})")
    if not shutil.which("mmdebstrap"):
        pytest.skip(f"{arch} guest not cached and mmdebstrap is not installed")
    try:
        return guest.build(arch, log=lambda line: print(line, file=sys.stderr))
    except guest.BuildError as exc:
        pytest.fail(f"building the {arch} guest failed: {exc}")


def processes_mentioning(text: str) -> List[int]:
    """PIDs whose command line contains text (e.g. a target's private workdir)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry) != os.getpid():
            pids.append(int(entry))
    return pids


def exited(pid: int) -> bool:
    """True once pid is gone or a zombie (an exited child its parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
