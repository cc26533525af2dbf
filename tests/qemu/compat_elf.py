"""Tiny static 32-bit ELF programs, written byte by byte, for compat-ABI samples.

Each one calls getpid, getuid32, write(1, "compat32 ok\\n") and exit through the 32-bit syscall
entry, so an x86_64 kernel logs them with arch=40000003 (i386) and an arm64 kernel with
arch=40000028 (arm). No cross toolchain needed.
"""

from __future__ import annotations

import struct

MESSAGE = b"compat32 ok\n"
LOAD_ADDRESS = 0x10000
_HEADERS = 52 + 32  # ELF32 header + one program header

# The same numbers on i386 and ARM EABI.
NR_EXIT, NR_WRITE, NR_GETPID, NR_GETUID32 = 1, 4, 20, 199


def _elf(machine: int, flags: int, code: bytes) -> bytes:
    body = code + MESSAGE
    size = _HEADERS + len(body)
    entry = LOAD_ADDRESS + _HEADERS
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIIIIIHHHHHH", 2, machine, 1, entry, 52, 0, flags, 52, 32, 1, 40, 0, 0)
    phdr = struct.pack("<IIIIIIII", 1, 0, LOAD_ADDRESS, LOAD_ADDRESS, size, size, 5, 0x1000)
    return header + phdr + body


def i386_program() -> bytes:
    def mov_eax(value: int) -> bytes:
        return b"\xb8" + struct.pack("<I", value)

    int80 = b"\xcd\x80"
    # Assemble once to learn the code length, then patch in the message address.
    def assemble(msg_addr: int) -> bytes:
        return (mov_eax(NR_GETPID) + int80
                + mov_eax(NR_GETUID32) + int80
                + mov_eax(NR_WRITE) + b"\xbb" + struct.pack("<I", 1)
                + b"\xb9" + struct.pack("<I", msg_addr) + b"\xba" + struct.pack("<I", len(MESSAGE)) + int80
                + mov_eax(NR_EXIT) + b"\x31\xdb" + int80)

    code = assemble(0)
    code = assemble(LOAD_ADDRESS + _HEADERS + len(code))
    return _elf(3, 0, code)  # EM_386


def arm_program() -> bytes:
    """ARM (A32) EABI: syscall number in r7, svc #0."""
    def mov(reg: int, value: int) -> int:
        assert 0 <= value < 256
        return 0xE3A00000 | (reg << 12) | value

    svc = 0xEF000000
    words = [mov(7, NR_GETPID), svc, mov(7, NR_GETUID32), svc, mov(0, 1)]
    add_index = len(words)
    words += [0, mov(2, len(MESSAGE)), mov(7, NR_WRITE), svc, mov(0, 0), mov(7, NR_EXIT), svc]
    msg_offset = len(words) * 4
    # add r1, pc, #imm: pc reads as this instruction + 8
    words[add_index] = 0xE28F1000 | (msg_offset - (add_index * 4 + 8))
    code = b"".join(struct.pack("<I", w) for w in words)
    return _elf(40, 0x05000000, code)  # EM_ARM, EABI5


if __name__ == "__main__":
    import sys

    which = sys.argv[1] if len(sys.argv) > 1 else "i386"
    sys.stdout.buffer.write(i386_program() if which == "i386" else arm_program())
