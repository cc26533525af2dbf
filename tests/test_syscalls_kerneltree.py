"""The kernel source tree reader (seccomp_py.syscalls.kerneltree).

Format fixtures: ../shared/reference/linux (real kernel files from mixed, partly old commits; used
for their format, and checked against our 7.2 tables since syscall numbers are never reused).
Older kernels' asm-generic/unistd.h comes from Debian's linux-libc-dev (Linux 6.1).
Small hand-written files cover error paths and the preprocessor.
"""

from __future__ import annotations

import os
import shutil

import pytest

from seccomp_py.errors import InputError
from seccomp_py.syscalls import X32_SYSCALL_BIT, get_abi
from seccomp_py.syscalls.kerneltree import (
    arm_private_calls,
    compare_with_tables,
    generic_selection,
    kernel_version,
    parse_asm_generic,
    parse_tbl,
    read_kernel_tree,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the workspace's reference data; SECCOMP_PY_REFERENCE overrides
REFERENCE = os.environ.get("SECCOMP_PY_REFERENCE") or os.path.normpath(os.path.join(ROOT, "..", "shared", "reference"))
FIXTURES = os.path.join(REFERENCE, "linux")
ASM_GENERIC = "/usr/include/asm-generic/unistd.h"

# Names in the old fixture tables that the Linux 7.2 tables rightly lack:
# - quotactl_path (5.13) was withdrawn before 5.14 shipped; quotactl_fd took number 443.
# - mips n64 reserved177/reserved193 are placeholder entries; neither libseccomp nor system-calls list them.
GONE_SINCE_FIXTURES = {("x86_64", "quotactl_path"), ("x32", "quotactl_path"), ("mips64", "reserved177"),
                       ("mips64", "reserved193")}


def need(path: str) -> str:
    if not os.path.exists(path):
        pytest.skip(f"{path} not found (reference data of this workspace; set SECCOMP_PY_REFERENCE)")
    return path


def write(path, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return str(path)


@pytest.fixture
def fixture_tree(tmp_path):
    """The reference files plus arm64's syscall_64.tbl, which git stores as a symlink to scripts/syscall.tbl."""
    tree = tmp_path / "linux"
    shutil.copytree(need(FIXTURES), tree)
    os.symlink("../../../scripts/syscall.tbl", tree / "arch" / "arm64" / "tools" / "syscall_64.tbl")
    return tree


def test_fixture_tree_reads_every_abi_it_has(fixture_tree):
    result = read_kernel_tree(str(fixture_tree))
    assert sorted(result.abis) == sorted(["x86_64", "x86", "x32", "aarch64", "arm", "riscv64", "riscv32", "ppc64le",
                                          "s390x", "mips64"])
    assert set(result.skipped) == {"loongarch64"}
    assert "Makefile.syscalls" in result.skipped["loongarch64"]
    assert result.sources["aarch64"] == ["arch/arm64/kernel/Makefile.syscalls", "arch/arm64/tools/syscall_64.tbl"]
    assert any("ARM private" in note for note in result.notes)
    assert result.version is None  # no top Makefile among the fixtures


def test_fixture_numbers_agree_with_our_tables(fixture_tree):
    result = read_kernel_tree(str(fixture_tree))
    total = 0
    for abi, table in result.abis.items():
        ours = get_abi(abi)
        wrong = {name: (number, ours.by_name.get(name)) for name, number in table.items()
                 if ours.by_name.get(name) != number and (abi, name) not in GONE_SINCE_FIXTURES}
        assert wrong == {}, abi
        total += len(table)
    assert total > 3000


def test_compare_with_tables(fixture_tree, tmp_path):
    diffs = compare_with_tables(read_kernel_tree(str(fixture_tree), ["x86_64", "aarch64"]))
    assert sorted(diffs) == ["aarch64", "x86_64"]
    x86_64 = diffs["x86_64"]
    assert not x86_64.conflicts
    assert x86_64.only_in_kernel == ["quotactl_path"]
    assert {"cachestat", "mseal", "listns"} <= set(x86_64.only_in_tables) and "openat" not in x86_64.only_in_tables
    # a kernel that moved a call would misresolve audit records: reported as renumbered
    write(tmp_path / "k" / "arch" / "x86" / "entry" / "syscalls" / "syscall_64.tbl",
          "0 common read sys_read\n1 common openat sys_openat\n")
    diffs = compare_with_tables(read_kernel_tree(str(tmp_path / "k"), ["x86_64"]))
    assert diffs["x86_64"].conflicts and diffs["x86_64"].renumbered == {"openat": (257, 1)}


def test_fixture_abi_selection(fixture_tree):
    result = read_kernel_tree(str(fixture_tree))
    x86_64, x32 = result.abis["x86_64"], result.abis["x32"]
    assert x86_64["readv"] == 19 and x32["readv"] == X32_SYSCALL_BIT + 515  # 64 vs x32 entries
    assert all(n & X32_SYSCALL_BIT for n in x32.values())
    assert "set_thread_area" in x86_64 and "set_thread_area" not in x32
    assert x86_64["afs_syscall"] == 183  # reserved entries without entry point count
    assert result.abis["x86"]["socketcall"] == 102
    arm = result.abis["arm"]
    assert arm["sync_file_range2"] == 341 and "arm_sync_file_range" not in arm
    assert "time" not in arm  # oabi only
    riscv64, riscv32 = result.abis["riscv64"], result.abis["riscv32"]
    # Makefile.syscalls: 64-bit adds newstat and rlimit, both add riscv and memfd_secret
    assert riscv64["newfstatat"] == 79 and "newfstatat" not in riscv32 and "fstatat64" not in riscv32
    assert riscv64["riscv_flush_icache"] == 259 == riscv32["riscv_flush_icache"]
    assert "clock_gettime64" in riscv32 and "clock_gettime64" not in riscv64
    aarch64 = result.abis["aarch64"]
    assert aarch64["renameat"] == 38 and "renameat" not in riscv64
    assert "riscv_flush_icache" not in aarch64
    assert result.abis["mips64"]["read"] == 5000
    assert result.abis["ppc64le"]["openat"] == 286 and "spu_run" in result.abis["ppc64le"]


def test_text_symlink_from_a_checkout_without_symlinks(tmp_path):
    tree = tmp_path / "linux"
    shutil.copytree(need(FIXTURES), tree)
    write(tree / "arch" / "arm64" / "tools" / "syscall_64.tbl", "../../../scripts/syscall.tbl")
    result = read_kernel_tree(str(tree), ["aarch64"])
    assert result.abis["aarch64"]["close"] == 57
    assert result.sources["aarch64"][-1] == "scripts/syscall.tbl"


def test_generic_selection_with_asm_headers_makefile(tmp_path):
    write(tmp_path / "scripts" / "Makefile.asm-headers",
          "syscall_abis_32  += common,32\nsyscall_abis_64  += common,64\n"
          "syscalltbl := $(srctree)/scripts/syscall.tbl\n")
    write(tmp_path / "arch" / "foo" / "kernel" / "Makefile.syscalls",
          "# comment\nsyscall_abis_64 += renameat \\\n\tnewstat\nsyscall_abis_32 +=\n")
    abis, table, files = generic_selection(str(tmp_path), "foo", 64)
    assert abis == ["common", "64", "renameat", "newstat"]
    assert table == os.path.join(str(tmp_path), "scripts", "syscall.tbl")
    assert files == ["scripts/Makefile.asm-headers", "arch/foo/kernel/Makefile.syscalls"]
    abis, _, _ = generic_selection(str(tmp_path), "foo", 32)
    assert abis == ["common", "32"]


def test_kernel_version_from_makefile(tmp_path):
    write(tmp_path / "Makefile", "# SPDX\nVERSION = 6\nPATCHLEVEL = 6\nSUBLEVEL = 23\nEXTRAVERSION =\nNAME = x\n")
    assert kernel_version(str(tmp_path)) == "6.6.23"


# --- kernels before 6.11: asm-generic/unistd.h ---------------------------------------------------------

ARM64_UNISTD = """/* written for this test in the shape of arch/arm64/include/uapi/asm/unistd.h */
#define __ARCH_WANT_RENAMEAT
#define __ARCH_WANT_NEW_STAT
#define __ARCH_WANT_SET_GET_RLIMIT
#define __ARCH_WANT_TIME32_SYSCALLS
#define __ARCH_WANT_SYS_CLONE3
#define __ARCH_WANT_MEMFD_SECRET

#include <asm-generic/unistd.h>
"""
RISCV_UNISTD = """/* written for this test in the shape of arch/riscv/include/uapi/asm/unistd.h */
#if defined(__LP64__) && !defined(__SYSCALL_COMPAT)
#define __ARCH_WANT_NEW_STAT
#define __ARCH_WANT_SET_GET_RLIMIT
#endif /* __LP64__ */

#define __ARCH_WANT_SYS_CLONE3
#define __ARCH_WANT_MEMFD_SECRET

#include <asm-generic/unistd.h>

#ifndef __NR_riscv_flush_icache
#define __NR_riscv_flush_icache (__NR_arch_specific_syscall + 15)
#endif
__SYSCALL(__NR_riscv_flush_icache, sys_riscv_flush_icache)
"""
LOONGARCH_UNISTD = """#define __ARCH_WANT_SYS_CLONE
#define __ARCH_WANT_SYS_CLONE3

#include <asm-generic/unistd.h>
"""


@pytest.fixture
def old_tree(tmp_path):
    tree = tmp_path / "linux-6.1"
    os.makedirs(tree / "include" / "uapi" / "asm-generic")
    shutil.copy(need(ASM_GENERIC), tree / "include" / "uapi" / "asm-generic" / "unistd.h")
    write(tree / "arch" / "arm64" / "include" / "uapi" / "asm" / "unistd.h", ARM64_UNISTD)
    write(tree / "arch" / "riscv" / "include" / "uapi" / "asm" / "unistd.h", RISCV_UNISTD)
    write(tree / "arch" / "loongarch" / "include" / "uapi" / "asm" / "unistd.h", LOONGARCH_UNISTD)
    return tree


def test_asm_generic_kernel_agrees_with_our_tables(old_tree):
    result = read_kernel_tree(str(old_tree), ["aarch64", "riscv64", "riscv32", "loongarch64"])
    assert result.skipped == {}
    assert result.sources["aarch64"] == ["arch/arm64/include/uapi/asm/unistd.h", "include/uapi/asm-generic/unistd.h"]
    for abi, table in result.abis.items():
        ours = get_abi(abi)
        assert len(table) > 290
        # a 6.1 kernel is a strict subset of 7.2, reserved nfsservctl included
        assert {name: ours.by_name.get(name) for name in table} == table, abi


def test_asm_generic_conditionals(old_tree):
    result = read_kernel_tree(str(old_tree), ["aarch64", "riscv64", "riscv32", "loongarch64"])
    aarch64, riscv64, riscv32, loong = (result.abis[a] for a in ("aarch64", "riscv64", "riscv32", "loongarch64"))
    assert aarch64["renameat"] == 38 and "renameat" not in riscv64               # __ARCH_WANT_RENAMEAT
    assert aarch64["fstat"] == 80 and riscv64["newfstatat"] == 79                 # NEW_STAT, 64-bit names
    assert "fstat" not in loong and "newfstatat" not in loong                     # loongarch 6.1: no stat
    assert riscv32["fstatfs64"] == 44 and "fstatfs" not in riscv32                # 32-bit names of 3264 calls
    assert riscv32["llseek"] == 62 and "lseek" not in riscv32
    assert "clock_gettime" not in riscv32 and riscv32["clock_gettime64"] == 403   # no TIME32 on riscv32
    assert riscv64["getrlimit"] == 163 and "getrlimit" not in riscv32             # SET_GET_RLIMIT on LP64 only
    assert riscv64["riscv_flush_icache"] == 259 and "riscv_flush_icache" not in aarch64
    assert aarch64["memfd_secret"] == 447 and "memfd_secret" not in loong
    assert "syscalls" not in aarch64 and "arch_specific_syscall" not in riscv64


def test_preprocessor_elif_else_nesting(tmp_path):
    write(tmp_path / "include" / "uapi" / "asm-generic" / "unistd.h", """
#define __NR_always 1
#if __BITS_PER_LONG == 64 && !defined(__NOPE)
# if 0
#  define __NR_never 2
# elif defined(__ARCH_WANT_A) || (__BITS_PER_LONG - 60 > 3)
#  define __NR_elif_taken 3
# else
#  define __NR_never_else 4
# endif
#else
#define __NR_never32 5
#endif
#ifndef __ARCH_WANT_A
#define __NR_not_a 6
#endif
#define __NR3264_x 7
#define __NR_via_3264 __NR3264_x
#define __NR_SYSCALL_BASE 100
#define __NR_based (__NR_SYSCALL_BASE+ 8)
#undef __NR_always
#define __NR_syscalls 9
""")
    write(tmp_path / "arch" / "t" / "include" / "uapi" / "asm" / "unistd.h", "#include <asm-generic/unistd.h>\n")
    table, files = parse_asm_generic(str(tmp_path), "t", 64)
    assert table == {"elif_taken": 3, "not_a": 6, "via_3264": 7, "based": 108}
    assert files == ["arch/t/include/uapi/asm/unistd.h", "include/uapi/asm-generic/unistd.h"]


def test_preprocessor_errors_name_file_and_line(tmp_path):
    path = write(tmp_path / "arch" / "t" / "include" / "uapi" / "asm" / "unistd.h", "#define A 1\n#if A ===\n#endif\n")
    with pytest.raises(InputError) as info:
        parse_asm_generic(str(tmp_path), "t", 64)
    assert (info.value.path, info.value.line) == (path, 2)
    write(path, "#include <asm-generic/unistd.h>\n")
    with pytest.raises(InputError, match=r"asm-generic/unistd\.h not found"):
        parse_asm_generic(str(tmp_path), "t", 64)
    write(path, "#ifdef X\n")
    with pytest.raises(InputError, match="unterminated"):
        parse_asm_generic(str(tmp_path), "t", 64)


def test_duplicate_number_in_asm_generic_is_an_error(tmp_path):
    write(tmp_path / "arch" / "t" / "include" / "uapi" / "asm" / "unistd.h", "#define __NR_a 1\n#define __NR_b 1\n")
    with pytest.raises(InputError, match="number 1 defined for both a and b"):
        parse_asm_generic(str(tmp_path), "t", 64)


# --- .tbl and ARM header parsing ---------------------------------------------------------------------

def test_parse_tbl_selection_offset_and_comments(tmp_path):
    path = write(tmp_path / "t.tbl", "# comment\n\n0\tcommon\tread\tsys_read\n1 64 write sys_write # tail\n"
                                     "1 x32 write_x32\n2 common afs_syscall\n")
    assert parse_tbl(path, ["common", "64"]) == {"read": 0, "write": 1, "afs_syscall": 2}
    assert parse_tbl(path, ["common", "x32"], 1000) == {"read": 1000, "write_x32": 1001, "afs_syscall": 1002}
    assert parse_tbl(path, ["nothing"]) == {}


@pytest.mark.parametrize(("text", "reason", "line"), [
    ("0 common read\n1 common\n", "expected '<number> <abi> <name>'", 2),
    ("x common read\n", "not an integer", 1),
    ("0 common read\n0 common write\n", "number 0 claimed by both read and write", 2),
    ("0 common read\n1 common read\n", "read listed twice", 2),
])
def test_parse_tbl_errors(tmp_path, text, reason, line):
    path = write(tmp_path / "bad.tbl", text)
    with pytest.raises(InputError, match=reason) as info:
        parse_tbl(path, ["common"])
    assert (info.value.path, info.value.line) == (path, line)


def test_same_number_in_unselected_abis_is_fine(tmp_path):
    path = write(tmp_path / "t.tbl", "79 stat64 fstatat64\n79 newstat newfstatat\n")
    assert parse_tbl(path, ["common", "newstat"]) == {"newfstatat": 79}


ARM_HEADER = """/* written for this test in the shape of arch/arm/include/uapi/asm/unistd.h */
#define __NR_SYSCALL_BASE 0
#define __ARM_NR_BASE\t\t\t(__NR_SYSCALL_BASE+0x0f0000)
#define __ARM_NR_breakpoint\t\t(__ARM_NR_BASE+1)
#define __ARM_NR_cacheflush\t\t(__ARM_NR_BASE+2)
#define __ARM_NR_usr26\t\t\t(__ARM_NR_BASE+3)
#define __ARM_NR_usr32\t\t\t(__ARM_NR_BASE+4)
#define __ARM_NR_set_tls\t\t(__ARM_NR_BASE+5)
#define __ARM_NR_get_tls\t\t(__ARM_NR_BASE+6)
#ifdef __KERNEL__
#define __ARM_NR_cmpxchg\t\t(__ARM_NR_BASE+0x00fff0)
#endif
"""


def test_arm_private_calls_from_header(tmp_path):
    path = write(tmp_path / "unistd.h", ARM_HEADER)
    calls = arm_private_calls(path)
    assert calls == {name: get_abi("arm").number(name)
                     for name in ("breakpoint", "cacheflush", "usr26", "usr32", "set_tls", "get_tls")}
    assert calls["breakpoint"] == 0x0F0001


def test_arm_private_calls_join_the_arm_table(fixture_tree):
    write(fixture_tree / "arch" / "arm" / "include" / "uapi" / "asm" / "unistd.h", ARM_HEADER)
    result = read_kernel_tree(str(fixture_tree), ["arm"])
    assert result.abis["arm"]["set_tls"] == 0x0F0005 and "cmpxchg" not in result.abis["arm"]
    assert result.notes == []


def test_missing_tree_and_unknown_abi(tmp_path):
    with pytest.raises(InputError, match="kernel tree not found"):
        read_kernel_tree(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="sparc"):
        read_kernel_tree(str(tmp_path), ["sparc"])
    result = read_kernel_tree(str(tmp_path))
    assert result.abis == {} and len(result.skipped) == 11
