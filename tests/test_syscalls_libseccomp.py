"""Our tables against the real libseccomp (Debian's python3-seccomp and scmp_sys_resolver).

Every (name, number) libseccomp knows on every ABI both support is compared, in both directions.
libseccomp's name universe is taken from libseccomp itself: number -> name over every arch it has.
Each difference must match one of the explanations below; anything else fails the test.
Not compared: riscv32 (libseccomp has no riscv32 ABI) and loongarch64 where libseccomp predates it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from seccomp_py.cli.resolve import resolve_all
from seccomp_py.syscalls import all_abis, get_abi

SYSTEM_PYTHON = "/usr/bin/python3"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# python3-seccomp Arch attribute -> our ABI. MIPS64 (big endian) and MIPSEL64 share the n64 table.
COMPARED = {
    "X86_64": "x86_64", "X86": "x86", "X32": "x32", "AARCH64": "aarch64", "ARM": "arm", "RISCV64": "riscv64",
    "PPC64LE": "ppc64le", "S390X": "s390x", "MIPS64": "mips64", "MIPSEL64": "mips64", "LOONGARCH64": "loongarch64",
}
# Number ranges that hold every syscall of every arch libseccomp has (MIPS o32/n64/n32 bases, the
# x32 bit, ARM private calls).
UNIVERSE_RANGES = [(0, 1100), (4000, 4600), (5000, 5600), (6000, 6600), (0x40000000, 0x40000000 + 1100),
                   (0x0F0000, 0x0F0010)]

# --- explanations ---------------------------------------------------------------------------------
# Names Debian's libseccomp (2.5.4-1+deb12u1, tables up to about Linux 6.7) does not know at all:
# it answers -1. The version is the first Linux release with the call.
NEWER_THAN_DEBIAN_LIBSECCOMP = {
    "riscv_hwprobe": "6.4",
    "statmount": "6.8", "listmount": "6.8",
    "lsm_get_self_attr": "6.8", "lsm_set_self_attr": "6.8", "lsm_list_modules": "6.8",
    "mseal": "6.10",
    "uretprobe": "6.11",
    "setxattrat": "6.13", "getxattrat": "6.13", "listxattrat": "6.13", "removexattrat": "6.13",
    "open_tree_attr": "6.15",
    "file_getattr": "6.17", "file_setattr": "6.17",
    "listns": "6.19", "uprobe": "6.19",
    "rseq_slice_yield": "7.0",
}
# On these ABIs libseccomp resolves socket and SysV IPC names to the multiplexer it filters on,
# socketcall or ipc. The kernel also has direct syscalls for them (x86 and s390x since 4.3, ppc
# since 2.6.37); audit records carry those numbers for direct calls, so our tables list them.
# Names without a direct syscall on the ABI (x86 accept, send, recv, semop...) exist only there.
MULTIPLEXED_ABIS = {"x86", "ppc64le", "s390x"}
SOCKETCALL_NAMES = {"socket", "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername",
                    "socketpair", "send", "sendto", "recv", "recvfrom", "shutdown", "setsockopt", "getsockopt",
                    "sendmsg", "recvmsg", "recvmmsg", "sendmmsg"}
IPC_NAMES = {"semop", "semget", "semctl", "semtimedop", "msgsnd", "msgrcv", "msgget", "msgctl", "shmat", "shmdt",
             "shmget", "shmctl"}
# Single cases:
# - x32 map_shadow_stack: Debian's libseccomp says x32 lacks it (pseudo-number); entry 453 became
#   'common' in Linux 6.10, and libseccomp's own csv (v6.16) lists it for x32 since 6.10.
# - arm 341: libseccomp 2.5.4 calls it arm_sync_file_range (the syscall.tbl name) and gives
#   sync_file_range2 a pseudo-number; the uapi header defines __NR_sync_file_range2 as this entry,
#   and newer libseccomp (csv v6.16) and systemd use that name. We keep one name per number.
SINGLE_CASES = {("x32", "map_shadow_stack"), ("arm", "sync_file_range2")}
RENAMED_NUMBERS = {("arm", 341): ("arm_sync_file_range", "sync_file_range2")}

_DUMP = r"""
import json, sys, seccomp
request = json.load(sys.stdin)
result = {"arches": {}}
universe = set()
for token in sorted(a for a in dir(seccomp.Arch) if a.isupper() and a != "NATIVE"):
    arch = getattr(seccomp.Arch, token)
    for lo, hi in request["universe_ranges"]:
        for nr in range(lo, hi):
            try:
                universe.add(seccomp.resolve_syscall(arch, nr).decode())
            except ValueError:
                pass
names = sorted(universe | set(request["names"]))
for token, ranges in request["compared"].items():
    if not hasattr(seccomp.Arch, token):
        result["arches"][token] = None
        continue
    arch = getattr(seccomp.Arch, token)
    by_number = {}
    for lo, hi in ranges:
        for nr in range(lo, hi):
            try:
                by_number[nr] = seccomp.resolve_syscall(arch, nr).decode()
            except ValueError:
                pass
    by_name = {name: seccomp.resolve_syscall(arch, name) for name in names}
    result["arches"][token] = {"by_number": by_number, "by_name": by_name}
result["universe"] = sorted(universe)
json.dump(result, sys.stdout)
"""


@pytest.fixture(scope="module")
def libseccomp():
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"{SYSTEM_PYTHON} not found (python3-seccomp is a Debian package for the system python)")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("python3-seccomp not installed (apt-get install python3-seccomp): " + probe.stderr.strip())
    compared = {}
    for token, abi in COMPARED.items():
        base = get_abi(abi).info.number_base
        ranges = [(base, base + 1100)]
        if abi == "arm":
            ranges.append((0x0F0000, 0x0F0010))
        compared[token] = ranges
    request = {"universe_ranges": UNIVERSE_RANGES, "compared": compared,
               "names": sorted({n for abi in all_abis() for n in abi.names()})}
    proc = subprocess.run([SYSTEM_PYTHON, "-c", _DUMP], input=json.dumps(request), capture_output=True, text=True,
                          timeout=120, check=True)
    data = json.loads(proc.stdout)
    data["arches"] = {t: v and {"by_number": {int(k): n for k, n in v["by_number"].items()},
                                "by_name": v["by_name"]}
                      for t, v in data["arches"].items()}
    return data


def test_libseccomp_universe_is_large(libseccomp):
    # guards against a vacuous comparison
    assert len(libseccomp["universe"]) > 450
    assert {"openat", "close", "breakpoint", "set_tls", "afs_syscall"} <= set(libseccomp["universe"])


def _explained(abi_name: str, name: str, ours, lib: int) -> bool:
    table = get_abi(abi_name)
    if ours is not None and lib == -1 and name in NEWER_THAN_DEBIAN_LIBSECCOMP:
        return True
    if abi_name in MULTIPLEXED_ABIS:
        if name in SOCKETCALL_NAMES and lib == table.number("socketcall"):
            return True
        if name in IPC_NAMES and lib == table.number("ipc"):
            return True
    for (renamed_abi, number), (their_name, our_name) in RENAMED_NUMBERS.items():
        if (renamed_abi, their_name) == (abi_name, name) and ours is None and lib == table.number(our_name) == number:
            return True
    return (abi_name, name) in SINGLE_CASES and ours is not None and lib < 0


@pytest.mark.parametrize("token", sorted(COMPARED))
def test_every_libseccomp_name_and_number(libseccomp, token):
    abi_name = COMPARED[token]
    lib = libseccomp["arches"][token]
    if lib is None:
        pytest.skip(f"Debian's libseccomp has no {token} (LoongArch support came in libseccomp 2.6.0)")
    table = get_abi(abi_name)
    assert len(lib["by_number"]) > 300

    # number -> name: every number libseccomp knows on this ABI
    unexplained = []
    for number, name in sorted(lib["by_number"].items()):
        ours = table.by_number.get(number)
        if ours != name and RENAMED_NUMBERS.get((abi_name, number)) != (name, ours):
            unexplained.append((number, name, ours))
    assert unexplained == [], "number -> name differences without explanation (ours last)"

    # name -> number: every name libseccomp knows on any arch, plus every name we know anywhere
    unexplained = []
    for name, lib_number in sorted(lib["by_name"].items()):
        ours = table.by_name.get(name)
        if lib_number >= 0 and ours == lib_number:
            continue
        if lib_number < 0 and ours is None:
            continue  # both say: not on this ABI
        if not _explained(abi_name, name, ours, lib_number):
            unexplained.append((name, ours, lib_number))
    assert unexplained == [], "name -> number differences without explanation (ours, libseccomp)"


def test_newer_names_really_are_newer():
    # the explanation's versions agree with the tables' own first-version data where it has some
    for name, version in NEWER_THAN_DEBIAN_LIBSECCOMP.items():
        known = {abi.kernel_version(name) for abi in all_abis() if abi.kernel_version(name)}
        assert known <= {version}, (name, known)
        assert tuple(map(int, version.split("."))) >= (6, 4)
        assert any(abi.has(name) for abi in all_abis())


# --- scmp_sys_resolver itself ------------------------------------------------------------------------

def _scmp(arch: str, *tokens: str) -> list:
    script = 'a=$1; shift; for t in "$@"; do scmp_sys_resolver -a "$a" "$t" || echo "rc=$?"; done'
    proc = subprocess.run(["sh", "-c", script, "sh", arch, *tokens], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.fixture(scope="module")
def scmp_sys_resolver():
    if shutil.which("scmp_sys_resolver") is None:
        pytest.skip("scmp_sys_resolver not installed (apt-get install seccomp)")


@pytest.mark.parametrize(("arch", "tokens"), [
    ("aarch64", ["57", "openat", "close"]),
    ("x86_64", ["openat", "257", "0"]),
    ("arm", ["breakpoint", "cacheflush", "usr26", "usr32", "set_tls", "get_tls", "983041", "983046"]),
    ("x32", ["read", "1073741824", "0"]),  # both accept x32 numbers without the bit
    ("mips64", ["read", "5000", "0"]),
    ("ppc64le", ["openat", "286"]),
    ("s390x", ["openat", "288"]),
    ("riscv64", ["riscv_flush_icache", "259"]),
])
def test_same_answers_as_scmp_sys_resolver(scmp_sys_resolver, arch, tokens):
    assert resolve_all(get_abi(arch), tokens) == _scmp(arch, *tokens)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_scmp_sys_resolver_every_name_of_ours(scmp_sys_resolver, arch):
    table = get_abi(arch)
    names = sorted(table.names())
    theirs = dict(zip(names, _scmp(arch, *names)))
    assert len(theirs) == len(names)
    unexplained = {name: (table.number(name), answer) for name, answer in theirs.items()
                   if answer != str(table.number(name))
                   and not (answer == "-1" and name in NEWER_THAN_DEBIAN_LIBSECCOMP)}
    assert unexplained == {}


def test_default_arch_matches_scmp_sys_resolver(scmp_sys_resolver):
    # without -a both use this machine's ABI
    native = subprocess.run(["scmp_sys_resolver", "openat"], capture_output=True, text=True, check=True)
    ours = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "seccomp-py"), "resolve", "openat"],
                          capture_output=True, text=True, check=True)
    assert ours.stdout == native.stdout
