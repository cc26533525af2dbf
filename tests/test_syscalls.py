"""ABI metadata and the generated syscall tables: tokens, audit arches, x32, invariants, kernel headers."""

from __future__ import annotations

import os
import re

import pytest

from seccomp_py.errors import InputError, UnknownAbiError, UnknownSyscallError
from seccomp_py.syscalls import (
    ABI_INFO,
    X32_SYSCALL_BIT,
    Abi,
    abi_for_audit,
    all_abis,
    get_abi,
    host_abi,
    table_metadata,
)

EXPECTED_ABIS = ["x86_64", "x86", "x32", "aarch64", "arm", "riscv64", "riscv32", "ppc64le", "s390x", "mips64",
                 "loongarch64"]


@pytest.mark.parametrize(("token", "abi"), [
    ("x86_64", "x86_64"), ("x86-64", "x86_64"), ("amd64", "x86_64"), ("SCMP_ARCH_X86_64", "x86_64"),
    ("c000003e", "x86_64"), ("0xC000003E", "x86_64"), (" X86_64 ", "x86_64"),
    ("x86", "x86"), ("i386", "x86"), ("i686", "x86"), ("40000003", "x86"), ("SCMP_ARCH_X86", "x86"),
    ("x32", "x32"), ("SCMP_ARCH_X32", "x32"),
    ("aarch64", "aarch64"), ("arm64", "aarch64"), ("c00000b7", "aarch64"), ("SCMP_ARCH_AARCH64", "aarch64"),
    ("arm", "arm"), ("armhf", "arm"), ("40000028", "arm"), ("SCMP_ARCH_ARM", "arm"),
    ("riscv64", "riscv64"), ("c00000f3", "riscv64"), ("riscv32", "riscv32"), ("400000f3", "riscv32"),
    ("ppc64le", "ppc64le"), ("ppc64-le", "ppc64le"), ("c0000015", "ppc64le"), ("SCMP_ARCH_PPC64LE", "ppc64le"),
    ("s390x", "s390x"), ("80000016", "s390x"),
    ("mips64", "mips64"), ("mipsel64", "mips64"), ("mips64-le", "mips64"), ("80000008", "mips64"),
    ("c0000008", "mips64"),
    ("loongarch64", "loongarch64"), ("loong64", "loongarch64"), ("c0000102", "loongarch64"),
])
def test_get_abi_tokens(token, abi):
    assert get_abi(token).name == abi


@pytest.mark.parametrize("token", ["", "sparc64", "ppc64", "c00000b8", "0x", "aarch", "mips64n32"])
def test_get_abi_rejects_unknown(token):
    with pytest.raises(UnknownAbiError) as info:
        get_abi(token)
    assert isinstance(info.value, InputError)
    assert "unknown architecture" in str(info.value)


def test_every_abi_has_a_table():
    assert [abi.name for abi in all_abis()] == EXPECTED_ABIS
    for abi in all_abis():
        assert isinstance(abi, Abi)
        assert len(abi.names()) > 290, abi.name


@pytest.mark.parametrize("abi", EXPECTED_ABIS)
def test_one_name_per_number_and_back(abi):
    table = get_abi(abi)
    assert len(table.by_number) == len(table.by_name)
    for name, number in table.by_name.items():
        assert table.name_of(number) == name
        assert re.match(r"^[a-z_][a-z0-9_]*$", name)


@pytest.mark.parametrize("abi", EXPECTED_ABIS)
def test_kernel_versions_are_versions_of_listed_names(abi):
    table = get_abi(abi)
    for name, version in table.kernel_versions.items():
        assert table.has(name)
        assert re.match(r"^\d+\.\d+$", version), (name, version)


@pytest.mark.parametrize(("abi", "name", "number"), [
    ("aarch64", "close", 57), ("x86_64", "openat", 257), ("x86_64", "read", 0), ("x86", "socketcall", 102),
    ("x86", "socket", 359), ("arm", "openat", 322), ("riscv64", "riscv_flush_icache", 259),
    ("ppc64le", "openat", 286), ("s390x", "openat", 288), ("loongarch64", "openat", 56),
    ("riscv32", "clock_gettime64", 403), ("riscv32", "llseek", 62),
    # the kernel's offsets are part of the numbers, as audit records and scmp_sys_resolver show them
    ("x32", "read", X32_SYSCALL_BIT + 0), ("x32", "readv", X32_SYSCALL_BIT + 515), ("mips64", "read", 5000),
    # ARM private calls, __ARM_NR_BASE (0x0f0000) + n; checked against scmp_sys_resolver in test_syscalls_libseccomp
    ("arm", "breakpoint", 0x0F0001), ("arm", "cacheflush", 0x0F0002), ("arm", "usr26", 0x0F0003),
    ("arm", "usr32", 0x0F0004), ("arm", "set_tls", 0x0F0005), ("arm", "get_tls", 0x0F0006),
    # reserved numbers without implementation still reach seccomp, so they are listed
    ("x86_64", "afs_syscall", 183), ("x32", "tuxcall", X32_SYSCALL_BIT + 184),
])
def test_known_numbers(abi, name, number):
    assert get_abi(abi).number(name) == number
    assert get_abi(abi).name_of(number) == name


@pytest.mark.parametrize(("abi", "name"), [
    ("aarch64", "open"), ("riscv64", "fork"), ("x32", "epoll_wait_old"), ("x86_64", "socketcall"),
    ("riscv32", "clock_gettime"), ("riscv32", "newfstatat"), ("x32", "_sysctl"), ("x86", "accept"),
    ("loongarch64", "renameat"), ("arm", "time"),  # time is OABI only
])
def test_absent_names(abi, name):
    table = get_abi(abi)
    assert not table.has(name)
    with pytest.raises(UnknownSyscallError, match=abi):
        table.number(name)


def test_unknown_number_error_names_abi_and_number():
    with pytest.raises(UnknownSyscallError, match=r"9999.*aarch64"):
        get_abi("aarch64").name_of(9999)


def test_offsets_are_in_every_number():
    assert all(n & X32_SYSCALL_BIT for n in get_abi("x32").by_number)
    assert all(5000 <= n < 6000 for n in get_abi("mips64").by_number)
    for abi in all_abis():
        assert all(n >= abi.info.number_base for n in abi.by_number), abi.name


def test_x32_covers_only_common_and_x32_entries():
    x32, x86_64 = get_abi("x32"), get_abi("x86_64")
    # readv is a 64-only entry at 19; x32 has its own compat entry at 515
    assert x86_64.number("readv") == 19
    assert x32.by_number.get(X32_SYSCALL_BIT + 19) is None
    assert not x32.has("set_thread_area") and not x32.has("epoll_ctl_old")


def test_abi_for_audit_x32_bit():
    abi, number = abi_for_audit(0xC000003E, X32_SYSCALL_BIT | 257)
    assert (abi.name, number, abi.name_of(number)) == ("x32", X32_SYSCALL_BIT + 257, "openat")
    abi, number = abi_for_audit(0xC000003E, 257)
    assert (abi.name, abi.name_of(number)) == ("x86_64", "openat")
    abi, number = abi_for_audit(0x40000003, 5)
    assert (abi.name, abi.name_of(number)) == ("x86", "open")
    abi, number = abi_for_audit(0xC00000B7, 57)
    assert (abi.name, abi.name_of(number)) == ("aarch64", "close")
    abi, number = abi_for_audit(0x80000008, 5003)
    assert (abi.name, abi.name_of(number)) == ("mips64", "close")


def test_abi_for_audit_unknown_arch():
    with pytest.raises(UnknownAbiError, match="0x0000beef"):
        abi_for_audit(0xBEEF, 0)


@pytest.mark.parametrize(("machine", "abi"), [
    ("x86_64", "x86_64"), ("aarch64", "aarch64"), ("armv7l", "arm"), ("i686", "x86"), ("riscv64", "riscv64"),
    ("ppc64le", "ppc64le"), ("s390x", "s390x"), ("mips64", "mips64"), ("loongarch64", "loongarch64"),
])
def test_host_abi_from_uname(machine, abi):
    assert host_abi(machine).name == abi


def test_host_abi_is_this_machine():
    assert host_abi().name == host_abi(os.uname().machine).name


def test_audit_arch_codes():
    # AUDIT_ARCH_* = EM_* | 64BIT (0x80000000) | LE (0x40000000), include/uapi/linux/audit.h
    expected = {"x86_64": 0xC000003E, "x86": 0x40000003, "x32": 0xC000003E, "aarch64": 0xC00000B7,
                "arm": 0x40000028, "riscv64": 0xC00000F3, "riscv32": 0x400000F3, "ppc64le": 0xC0000015,
                "s390x": 0x80000016, "mips64": 0x80000008, "loongarch64": 0xC0000102}
    assert {info.name: info.audit_arches[0] for info in ABI_INFO} == expected


def test_metadata_names_the_sources():
    meta = table_metadata()
    assert meta["schema"] == "seccomp-py/syscall-tables/v1"
    assert meta["linux_version"] == "7.2.0"
    assert "system-calls 7.2" in meta["source"]["numbers"]
    assert get_abi("x86_64").kernel_version("openat2") == "5.6"
    assert get_abi("x86_64").kernel_version("listns") == "6.19"
    assert get_abi("aarch64").kernel_version("open_tree_attr") == "6.15"
    # libseccomp's aarch64 column says 3.0 for everything; that placeholder is not used
    assert get_abi("aarch64").kernel_version("openat2") is None


# --- the kernel's own generated headers from Debian's linux-libc-dev (Linux 6.1) --------------------

_DEBIAN_HEADERS = {
    "x86_64": "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
    "x86": "/usr/include/x86_64-linux-gnu/asm/unistd_32.h",
    "x32": "/usr/include/x86_64-linux-gnu/asm/unistd_x32.h",
}


@pytest.mark.parametrize("abi", sorted(_DEBIAN_HEADERS))
def test_tables_contain_every_define_of_linux_6_1_headers(abi):
    path = _DEBIAN_HEADERS[abi]
    if not os.path.isfile(path):
        pytest.skip(f"{path} missing (apt-get install linux-libc-dev)")
    defines = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"#define __NR_(\w+) (?:\(__X32_SYSCALL_BIT \+ )?(\d+)\)?$", line.strip())
            if match:
                offset = X32_SYSCALL_BIT if "__X32_SYSCALL_BIT" in line else 0
                defines[match.group(1)] = int(match.group(2)) + offset
    assert len(defines) > 300
    table = get_abi(abi)
    # Numbers are never reused in the kernel, so a 6.1 header is a strict subset of the 7.2 tables,
    # reserved entries (afs_syscall, _sysctl...) included.
    assert {n: table.by_name.get(n) for n in defines} == defines
