"""Shared pieces of the real-consumer tests: prerequisites with printed skip reasons and profiles built
from real runs (strace of the runtime itself, see _trace.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import List

import pytest
from _trace import confined_calls

from seccomp_py.profile import Profile
from seccomp_py.syscalls import get_abi

# The workload every consumer runs: busybox's statfs-based `stat -f`. statfs is the call the negative
# controls remove: only the command makes it, and without it busybox fails with a clear message.
BUSYBOX = "/bin/busybox"
WORKLOAD = [BUSYBOX, "stat", "-f", "/"]
NEEDED = "statfs"
SUBJECT = "workload"


def host_abi() -> str:
    return get_abi(os.uname().machine).name


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (containers, namespaces and setuid sandboxes)")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (Debian packages are in .ci/apt-packages.txt)")


def require_static_busybox() -> None:
    if not os.path.exists(BUSYBOX):
        pytest.skip(f"{BUSYBOX} missing (apt-get install busybox-static)")
    out = subprocess.run(["ldd", BUSYBOX], capture_output=True, text=True)
    if "not a dynamic executable" not in (out.stdout + out.stderr) and "statically linked" not in out.stdout:
        pytest.skip(f"{BUSYBOX} is dynamically linked; the container tests need busybox-static")


def require_sandbox(*tools: str) -> None:
    """What every container/sandbox check needs: root, the runtime's tools plus strace, a static busybox."""
    require_root()
    require_tools(*tools, "strace")
    require_static_busybox()


def permissive_profile() -> Profile:
    """Every call of the host ABI: the runtime loads a filter (so the trace shows where), nothing is denied."""
    profile = Profile()
    for name in get_abi(host_abi()).names():
        profile.add(SUBJECT, host_abi(), name, source="permissive")
    return profile


def profile_from_names(names, source: str) -> Profile:
    profile = Profile()
    for name in sorted(names):
        profile.add(SUBJECT, host_abi(), name, source=source)
    return profile


def strace_argv(trace_file: str, argv: List[str]) -> List[str]:
    return ["strace", "-f", "-qq", "--pidns-translation", "-o", trace_file, *argv]


def profile_from_trace(proc: subprocess.CompletedProcess, trace_file: str, source: str) -> Profile:
    """The profile from a permissive run under strace: the calls the filter governing busybox saw."""
    assert proc.returncode == 0, proc.stderr
    with open(trace_file, encoding="utf-8", errors="replace") as handle:
        confined = confined_calls(handle.read(), "busybox")
    assert confined.loader is not None, "no seccomp filter load followed by the workload's exec in the trace"
    assert NEEDED in confined.command_only("busybox"), "the negative control needs a call only the command makes"
    return profile_from_names(confined.names, source)
