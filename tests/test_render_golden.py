"""Golden files for every format. They pin the exact output; the consumer tests (tests/consumers/) are what
show that the output works. Regenerate after an intended change with SECCOMP_PY_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os

import pytest

from seccomp_py import __version__
from seccomp_py.profile import Profile
from seccomp_py.render import render, render_log_dropin

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden")
UPDATE = os.environ.get("SECCOMP_PY_UPDATE_GOLDEN") == "1"

SERVICE_X86_64 = [
    "accept4", "bind", "brk", "close", "epoll_create1", "epoll_ctl", "epoll_wait", "exit_group", "fstat",
    "futex", "getpid", "listen", "mmap", "mprotect", "munmap", "newfstatat", "openat", "read", "recvfrom",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_tgsigqueueinfo", "sendto", "sigaltstack", "signalfd", "signalfd4", "socket",
    "write", "writev",
]
SERVICE_X86 = ["_llseek", "read", "socketcall", "write"]
WORKER_AARCH64 = ["clone", "execve", "exit_group", "openat", "ppoll", "read", "write"]
WORKER_ARM = ["_llseek", "read"]


def profile() -> Profile:
    p = Profile()
    for name in SERVICE_X86_64:
        p.add("demo.service", "x86_64", name, source="strace")
    for name in SERVICE_X86:
        p.add("demo.service", "x86", name, source="strace")
    for name in WORKER_AARCH64:
        p.add("/usr/bin/demo-worker", "aarch64", name, source="audit")
    for name in WORKER_ARM:
        p.add("/usr/bin/demo-worker", "arm", name, source="audit")
    return p


def cases():
    p = profile()
    kw = {"profile_name": "demo.json"}
    yield "systemd", render(p, "systemd", subjects=["demo.service"], **kw)
    native_only = p.copy()
    del native_only.table["demo.service"]["x86"]
    yield "systemd-kill-groups-252", render(native_only, "systemd", subjects=["demo.service"], action="kill",
                                            systemd_version=252, **kw)
    yield "systemd-log", render(p, "systemd", subjects=["demo.service"], action="log", **kw)
    yield "systemd-log-empty", {"demo.service.d/50-seccomp-log.conf": render_log_dropin([], "x86_64",
                                                                                         unit="demo.service")}
    yield "lxc", render(p, "lxc", **kw)
    yield "lxc-kill", render(p, "lxc", subjects=["demo.service"], action="kill", **kw)
    yield "oci", render(p, "oci", **kw)
    yield "oci-enosys", render(p, "oci", subjects=["demo.service"], errno="ENOSYS", **kw)
    yield "firejail", render(native_only, "firejail", subjects=["demo.service"], **kw)


def normalise(text: str) -> str:
    return text.replace(f"seccomp-py {__version__}", "seccomp-py VERSION")


@pytest.mark.parametrize("case,files", list(cases()), ids=[c for c, _ in cases()])
def test_golden(case, files):
    folder = os.path.join(GOLDEN, case)
    if UPDATE:
        for rel, text in files.items():
            path = os.path.join(folder, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(normalise(text))
    on_disk = {}
    for base, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(base, name)
            with open(path, encoding="utf-8") as handle:
                on_disk[os.path.relpath(path, folder)] = handle.read()
    assert on_disk, f"no golden files in {folder}; run with SECCOMP_PY_UPDATE_GOLDEN=1"
    assert {rel: normalise(text) for rel, text in files.items()} == on_disk
