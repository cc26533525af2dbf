"""seccomp-py resolve: the scmp_sys_resolver drop-in (comparison with the real one: test_syscalls_libseccomp)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from seccomp_py.cli import main
from seccomp_py.cli.resolve import resolve_all
from seccomp_py.errors import UnknownSyscallError
from seccomp_py.syscalls import get_abi, host_abi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "seccomp-py")


def run(capsys, *args):
    code = main(["resolve", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("args", "expected"), [
    (["-a", "aarch64", "57"], "close\n"),
    (["-a", "x86_64", "openat"], "257\n"),
    (["-a", "arm64", "read", "write", "63", "close"], "63\n64\nread\n57\n"),
    (["-a", "x86-64", "openat"], "257\n"),            # systemd name
    (["-a", "c00000b7", "openat"], "56\n"),           # audit arch hex
    (["-a", "SCMP_ARCH_ARM", "set_tls"], "983045\n"),  # libseccomp constant name
    (["--arch", "x32", "read", "0", "1073741824"], "1073741824\nread\nread\n"),
    (["-a", "mips64", "read", "0", "5000"], "5000\nread\nread\n"),
    (["-a", "x86_64", "0x10"], "ioctl\n"),
    (["-t", "-a", "x86_64", "openat"], "257\n"),      # -t accepted like scmp_sys_resolver's
    (["-a", "riscv32", "clock_gettime64"], "403\n"),
])
def test_resolves_in_order(capsys, args, expected):
    code, out, err = run(capsys, *args)
    assert (code, out, err) == (0, expected, "")


def test_default_arch_is_the_host(capsys):
    code, out, _ = run(capsys, "openat")
    assert code == 0 and out == f"{host_abi().number('openat')}\n"


def test_unknown_names_and_numbers_exit_1_and_print_nothing(capsys):
    code, out, err = run(capsys, "-a", "aarch64", "read", "open", "9999", "no_such_call", "close")
    assert code == 1
    assert out == ""  # all or nothing: line N of the output always answers argument N
    assert err.count("\n") == 1
    assert "unknown on ABI aarch64" in err
    assert "open (exists on x86_64" in err and "not on this ABI" in err
    assert "9999 (no syscall has this number)" in err
    assert "no_such_call (no syscall of this name on any ABI)" in err
    assert "read" not in err.replace("read (", "")


def test_unknown_arch_exit_1(capsys):
    code, out, err = run(capsys, "-a", "sparc64", "read")
    assert (code, out) == (1, "")
    assert "unknown architecture 'sparc64'" in err


def test_no_arguments_is_a_usage_error(capsys):
    code, out, err = run(capsys, "-a", "x86_64")
    assert (code, out) == (2, "")
    assert "give at least one syscall" in err


def test_list(capsys):
    code, out, _ = run(capsys, "-a", "aarch64", "--list")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "io_setup 0" and "close 57" in lines
    assert len(lines) == len(get_abi("aarch64").names())
    code, _, err = run(capsys, "-a", "aarch64", "--list", "read")
    assert code == 2 and "--list takes no syscall arguments" in err


def test_resolve_all_raises_the_documented_error():
    with pytest.raises(UnknownSyscallError):
        resolve_all(get_abi("x86_64"), ["socketcall"])


def test_through_the_checkout_launcher():
    proc = subprocess.run([sys.executable, TOOL, "resolve", "-a", "aarch64", "57", "openat"], capture_output=True,
                          text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "close\n56\n", "")
    proc = subprocess.run([sys.executable, TOOL, "resolve", "-a", "aarch64", "open"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("seccomp-py resolve: error: unknown on ABI aarch64: open")
