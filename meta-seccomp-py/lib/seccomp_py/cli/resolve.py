"""seccomp-py resolve: syscall names <-> numbers per ABI, a drop-in for libseccomp's scmp_sys_resolver.

Differences from scmp_sys_resolver, on purpose:
- several names/numbers per call, one output line each, in argument order;
- a name or number the ABI does not have is an error (exit 1, message on stderr naming every
  unknown argument) instead of a negative pseudo-number or "UNKNOWN" with exit 0. Output is
  all or nothing: if any argument fails nothing is printed, so line N always answers argument N;
- numbers may be decimal or 0x-hex (scmp_sys_resolver reads "0x10" as 0);
- -a also takes systemd names (x86-64, arm64) and audit arch codes (c00000b7).
Like scmp_sys_resolver, x32 and MIPS n64 numbers are printed with the kernel's offset
(0x40000000, 5000) and accepted with or without it.
"""

from __future__ import annotations

import argparse
import re
from typing import List

from ..errors import UnknownSyscallError, UsageError
from ..syscalls import Abi, all_abis, get_abi, host_abi

HELP = "resolve syscall names to numbers and numbers to names for an ABI (like scmp_sys_resolver)"

_NUMBER = re.compile(r"^(\d+|0[xX][0-9a-fA-F]+)$")


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-a", "--arch", metavar="ARCH",
        help="ABI: libseccomp token (x86_64, aarch64, SCMP_ARCH_ARM), systemd name (x86-64, arm64) "
             "or audit arch hex (c00000b7); default: this machine's")
    parser.add_argument(
        "-t", "--translate", action="store_true",
        help="accepted for scmp_sys_resolver compatibility; no effect (these tables have no pseudo-numbers)")
    parser.add_argument("--list", action="store_true", help="print every 'name number' of the ABI, by number")
    parser.add_argument("syscalls", nargs="*", metavar="NAME|NUMBER",
                        help="syscall names and/or numbers (decimal or 0x-hex); one result line each")
    parser.epilog = ("Exit 1 and no output if any argument is unknown on the ABI; the message names each one. "
                     "x32 and MIPS n64 numbers are printed with the kernel's offset.")


def _resolve_number(abi: Abi, text: str) -> str:
    number = int(text, 0)
    if number in abi.by_number:
        return abi.by_number[number]
    base = abi.info.number_base
    if base and number < base and number + base in abi.by_number:
        return abi.by_number[number + base]
    raise KeyError(f"{text} (no syscall has this number)")


def _resolve_name(abi: Abi, name: str) -> str:
    if abi.has(name):
        return str(abi.number(name))
    elsewhere = [other.name for other in all_abis() if other.has(name)]
    if elsewhere:
        raise KeyError(f"{name} (exists on {', '.join(elsewhere)}, not on this ABI)")
    raise KeyError(f"{name} (no syscall of this name on any ABI)")


def resolve_all(abi: Abi, tokens: List[str]) -> List[str]:
    """Resolve every token or raise UnknownSyscallError naming all that failed."""
    results: List[str] = []
    failures: List[str] = []
    for token in tokens:
        try:
            if _NUMBER.match(token):
                results.append(_resolve_number(abi, token))
            else:
                results.append(_resolve_name(abi, token))
        except KeyError as failure:
            failures.append(failure.args[0])
    if failures:
        raise UnknownSyscallError(f"unknown on ABI {abi.name}: {'; '.join(failures)}")
    return results


def run(args: argparse.Namespace) -> int:
    abi = get_abi(args.arch) if args.arch else host_abi()
    if args.list:
        if args.syscalls:
            raise UsageError("--list takes no syscall arguments")
        for number, name in sorted(abi.by_number.items()):
            print(f"{name} {number}")
        return 0
    if not args.syscalls:
        raise UsageError("give at least one syscall name or number (or --list)")
    print("\n".join(resolve_all(abi, args.syscalls)))
    return 0
