"""Read syscall numbers straight from a Linux source tree.

This is what the kernel itself turns into its uapi ``asm/unistd*.h`` headers, so the result is
exactly what the shipped kernel reports in audit records. It covers:

- the per-arch tables ``arch/*/.../syscall*.tbl`` (x86, arm, powerpc, s390, mips);
- the generic ``scripts/syscall.tbl`` (Linux 6.11+) with each arch's ABI selection from
  ``arch/<arch>/kernel/Makefile.syscalls`` (``syscall_abis_64 += renameat newstat ...``);
- older kernels (before 6.11) where arm64, riscv and loongarch still list their numbers in
  ``include/uapi/asm-generic/unistd.h``, selected by ``__ARCH_WANT_*`` macros: a small
  preprocessor evaluates just the conditionals that header uses;
- the ARM private calls (0x0f0000+) from ``arch/arm/include/uapi/asm/unistd.h``.

Like the kernel's syscallhdr.sh, every table entry of a selected ABI becomes a name, including
reserved ones without an entry point (afs_syscall, tuxcall...): their numbers still reach seccomp.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import InputError

X32_SYSCALL_BIT = 0x40000000
MIPS_N64_BASE = 5000

_X86_DIR = "arch/x86/entry/syscalls"


@dataclass
class KernelTables:
    """What read_kernel_tree found: numbers per ABI, where they came from, and what it could not read."""

    root: str
    version: Optional[str]
    abis: Dict[str, Dict[str, int]] = field(default_factory=dict)
    sources: Dict[str, List[str]] = field(default_factory=dict)  # ABI -> files used, relative to root
    skipped: Dict[str, str] = field(default_factory=dict)  # ABI -> why it could not be read
    notes: List[str] = field(default_factory=list)


def parse_tbl(path: str, abis: Iterable[str], offset: int = 0) -> Dict[str, int]:
    """Parse one ``syscall*.tbl``: ``<number> <abi> <name> [entry points]`` lines, '#' comments.

    Keeps the entries whose ABI column is in ``abis``; ``offset`` is added to every number
    (x32 bit, MIPS base). A name or number claimed twice within the selection is an error.
    """
    wanted = set(abis)
    table: Dict[str, int] = {}
    owner: Dict[int, str] = {}
    with open(path, encoding="utf-8", errors="strict") as handle:
        for lineno, raw in enumerate(handle, 1):
            fields = raw.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) < 3:
                raise InputError(f"expected '<number> <abi> <name>', got {raw.strip()!r}", path, lineno)
            number_text, abi, name = fields[0], fields[1], fields[2]
            try:
                number = int(number_text, 0)
            except ValueError:
                raise InputError(f"syscall number {number_text!r} is not an integer", path, lineno) from None
            if abi not in wanted:
                continue
            number += offset
            if table.get(name, number) != number:
                raise InputError(f"{name} listed twice with numbers {table[name]} and {number}", path, lineno)
            if owner.get(number, name) != name:
                raise InputError(f"number {number} claimed by both {owner[number]} and {name}", path, lineno)
            table[name] = number
            owner[number] = name
    return table


def _make_assignments(path: str) -> List[Tuple[str, str, str]]:
    """(variable, operator, value) for each simple assignment in a Makefile fragment."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read().replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_%]*)\s*(\+=|:=|\?=|=)\s*(.*)$", line)
        if match:
            result.append((match.group(1), match.group(2), match.group(3).strip()))
    return result


def _abi_words(value: str) -> List[str]:
    return [word for word in re.split(r"[\s,]+", value) if word]


def generic_selection(root: str, arch_dir: str, bits: int) -> Tuple[List[str], str, List[str]]:
    """ABIs and table file an arch using the generic table selects, as scripts/Makefile.asm-headers does.

    Returns (abis, table path, files read). The base is ``common,<bits>`` and ``scripts/syscall.tbl``
    (read from Makefile.asm-headers when the tree has it); the arch's Makefile.syscalls appends to
    ``syscall_abis_<bits>`` and may point ``syscalltbl`` elsewhere (arm64: a symlink back to it).
    """
    abis: List[str] = ["common", str(bits)]
    table = os.path.join(root, "scripts", "syscall.tbl")
    files: List[str] = []
    makefiles = [os.path.join(root, "scripts", "Makefile.asm-headers"),
                 os.path.join(root, "arch", arch_dir, "kernel", "Makefile.syscalls")]
    for index, makefile in enumerate(makefiles):
        if not os.path.isfile(makefile):
            continue
        files.append(os.path.relpath(makefile, root))
        if index == 0:
            abis = []  # the file states the base itself
        for var, op, value in _make_assignments(makefile):
            if var == f"syscall_abis_{bits}":
                abis = [*abis, *_abi_words(value)] if op == "+=" else _abi_words(value)
            elif var == "syscalltbl":
                relative = value.replace("$(srctree)/", "").replace("%", str(bits))
                table = os.path.join(root, relative)
    return abis, table, files


def arm_private_calls(path: str) -> Dict[str, int]:
    """``__ARM_NR_<name> (__ARM_NR_BASE+n)`` from arch/arm/include/uapi/asm/unistd.h (EABI base 0).

    Definitions inside ``#ifdef __KERNEL__`` (the kernel-internal cmpxchg ghost call) are skipped.
    """
    base: Optional[int] = None
    calls: Dict[str, int] = {}
    stack: List[bool] = []  # True where the enclosing block is kernel-only
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            directive = re.match(r"#\s*(ifdef|ifndef|if|else|elif|endif)\b(.*)", line)
            if directive:
                kind, rest = directive.group(1), directive.group(2).strip()
                if kind in ("ifdef", "if"):
                    stack.append(rest in ("__KERNEL__", "defined(__KERNEL__)"))
                elif kind == "ifndef":
                    stack.append(False)
                elif kind in ("else", "elif") and stack:
                    stack[-1] = False
                elif kind == "endif" and stack:
                    stack.pop()
                continue
            if any(stack):
                continue
            match = re.match(r"#\s*define\s+__ARM_NR_BASE\s+\(__NR_SYSCALL_BASE\s*\+\s*(0x[0-9a-fA-F]+|\d+)\)", line)
            if match:
                base = int(match.group(1), 0)
                continue
            match = re.match(r"#\s*define\s+__ARM_NR_(\w+)\s+\(__ARM_NR_BASE\s*\+\s*(0x[0-9a-fA-F]+|\d+)\)", line)
            if match:
                calls[match.group(1)] = int(match.group(2), 0)
    if base is None:
        return {}
    return {name: base + offset for name, offset in calls.items()}


# ---------------------------------------------------------------------------------------------
# A preprocessor for exactly what the uapi unistd.h headers use: object-like #define/#undef,
# #if/#ifdef/#ifndef/#elif/#else/#endif with defined(), ! && || == != < > <= >= + - and
# integers, and #include of other headers in the tree. Function-like macros are ignored.

_TOKEN = re.compile(r"\s*(0[xX][0-9a-fA-F]+|\d+|[A-Za-z_]\w*|&&|\|\||==|!=|<=|>=|[()!<>+\-])")


def _tokenize(expr: str) -> List[str]:
    tokens = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match:
            raise ValueError(f"cannot parse {expr[pos:]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


class _Expr:
    """Recursive-descent evaluator; identifiers resolve through ``lookup``."""

    _BINARY = (("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"))

    def __init__(self, tokens: List[str], lookup: Callable[[str], int], defined: Callable[[str], bool]):
        self.tokens = tokens
        self.pos = 0
        self.lookup = lookup
        self.defined = defined

    def parse(self) -> int:
        value = self._binary(0)
        if self.pos != len(self.tokens):
            raise ValueError(f"trailing tokens {self.tokens[self.pos:]}")
        return value

    def _peek(self) -> Optional[str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ValueError("unexpected end of expression")
        self.pos += 1
        return token

    def _binary(self, level: int) -> int:
        if level == len(self._BINARY):
            return self._unary()
        value = self._binary(level + 1)
        while self._peek() in self._BINARY[level]:
            op = self._take()
            right = self._binary(level + 1)
            value = {
                "||": lambda a, b: int(bool(a) or bool(b)),
                "&&": lambda a, b: int(bool(a) and bool(b)),
                "==": lambda a, b: int(a == b),
                "!=": lambda a, b: int(a != b),
                "<": lambda a, b: int(a < b),
                ">": lambda a, b: int(a > b),
                "<=": lambda a, b: int(a <= b),
                ">=": lambda a, b: int(a >= b),
                "+": lambda a, b: a + b,
                "-": lambda a, b: a - b,
            }[op](value, right)
        return value

    def _unary(self) -> int:
        token = self._take()
        if token == "!":
            return int(not self._unary())
        if token == "-":
            return -self._unary()
        if token == "(":
            value = self._binary(0)
            if self._take() != ")":
                raise ValueError("missing ')'")
            return value
        if token == "defined":
            parens = self._peek() == "("
            if parens:
                self._take()
            name = self._take()
            if parens and self._take() != ")":
                raise ValueError("missing ')' after defined(")
            return int(self.defined(name))
        if token[0].isdigit():
            return int(token, 0)
        return self.lookup(token)


class _Preprocessor:
    def __init__(self, root: str, predefined: Dict[str, str]):
        self.root = root
        self.macros: Dict[str, str] = dict(predefined)
        self.files: List[str] = []

    def value(self, name: str, depth: int = 0) -> int:
        """Integer value of a macro; undefined identifiers are 0 as in #if."""
        if depth > 50:
            raise ValueError(f"macro {name} expands recursively")
        body = self.macros.get(name)
        if body is None or body == "":
            return 0
        return _Expr(_tokenize(body), lambda ident: self.value(ident, depth + 1), self.macros.__contains__).parse()

    def condition(self, expr: str) -> bool:
        return bool(_Expr(_tokenize(expr), self.value, self.macros.__contains__).parse())

    def run(self, path: str) -> None:
        self.files.append(os.path.relpath(path, self.root))
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        text = text.replace("\\\n", " ")
        # each frame: (this branch active, some branch already taken, parent active)
        stack: List[Tuple[bool, bool, bool]] = []
        active = True
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("//", 1)[0].strip()
            if not line.startswith("#"):
                continue
            match = re.match(r"#\s*(\w+)\s*(.*)$", line)
            if not match:
                continue
            kind, rest = match.group(1), match.group(2).strip()
            try:
                if kind in ("if", "ifdef", "ifndef"):
                    if not active:
                        cond = False
                    elif kind == "ifdef":
                        cond = rest.split()[0] in self.macros
                    elif kind == "ifndef":
                        cond = rest.split()[0] not in self.macros
                    else:
                        cond = self.condition(rest)
                    stack.append((cond, cond, active))
                    active = cond
                elif kind == "elif":
                    _, taken, parent = stack.pop()
                    cond = parent and not taken and self.condition(rest)
                    stack.append((cond, taken or cond, parent))
                    active = cond
                elif kind == "else":
                    _, taken, parent = stack.pop()
                    cond = parent and not taken
                    stack.append((cond, True, parent))
                    active = cond
                elif kind == "endif":
                    _, _, parent = stack.pop()
                    active = parent
                elif not active:
                    continue
                elif kind == "define":
                    define = re.match(r"([A-Za-z_]\w*)(\()?\s*(.*)$", rest)
                    if define and not define.group(2):
                        self.macros[define.group(1)] = define.group(3).strip()
                elif kind == "undef":
                    self.macros.pop(rest.split()[0], None)
                elif kind == "include":
                    self._include(rest)
            except (ValueError, IndexError) as exc:
                raise InputError(f"cannot evaluate #{kind} {rest}: {exc}", path, lineno) from None
        if stack:
            raise InputError("unterminated #if", path)

    def _include(self, spec: str) -> None:
        match = re.match(r"[<\"]([^>\"]+)[>\"]", spec)
        if not match:
            return
        header = match.group(1)
        if header.startswith("asm-generic/"):
            candidate = os.path.join(self.root, "include", "uapi", header)
            if os.path.isfile(candidate):
                self.run(candidate)
            else:
                raise InputError(f"included header {header} not found in the kernel tree", candidate)
        # other headers (asm/bitsperlong.h ...) only define what we predefine


def _nr_macros(macros: Dict[str, str], value: Callable[[str], int]) -> Dict[str, int]:
    table: Dict[str, int] = {}
    for macro in macros:
        if not macro.startswith("__NR_"):
            continue
        name = macro[len("__NR_"):]
        # __NR_syscalls and friends are counts or bases, not calls; bases are upper case
        if name in ("syscalls", "arch_specific_syscall") or name != name.lower():
            continue
        table[name] = value(macro)
    return table


def parse_asm_generic(root: str, arch_dir: str, bits: int) -> Tuple[Dict[str, int], List[str]]:
    """Numbers for an arch that includes asm-generic/unistd.h (kernels before 6.11).

    Evaluates arch/<arch>/include/uapi/asm/unistd.h as a userspace compiler for that arch would
    (``__BITS_PER_LONG`` = bits, ``__LP64__`` on 64-bit, no ``__KERNEL__``) and returns every
    ``__NR_<name>`` it ends up defining.
    """
    predefined = {"__BITS_PER_LONG": str(bits)}
    if bits == 64:
        predefined["__LP64__"] = "1"
    pre = _Preprocessor(root, predefined)
    pre.run(os.path.join(root, "arch", arch_dir, "include", "uapi", "asm", "unistd.h"))
    table = _nr_macros(pre.macros, pre.value)
    owner: Dict[int, str] = {}
    for name, number in sorted(table.items()):
        if number in owner:
            raise InputError(f"number {number} defined for both {owner[number]} and {name}",
                             os.path.join(root, pre.files[0]))
        owner[number] = name
    return table, pre.files


# ---------------------------------------------------------------------------------------------

def kernel_version(root: str) -> Optional[str]:
    """``VERSION.PATCHLEVEL.SUBLEVEL[EXTRAVERSION]`` from the top Makefile, if there is one."""
    path = os.path.join(root, "Makefile")
    if not os.path.isfile(path):
        return None
    values: Dict[str, str] = {}
    for var, _op, value in _make_assignments(path)[:10]:
        values[var] = value
    if "VERSION" not in values or "PATCHLEVEL" not in values:
        return None
    return f"{values['VERSION']}.{values['PATCHLEVEL']}.{values.get('SUBLEVEL') or '0'}{values.get('EXTRAVERSION', '')}"


def _tbl_reader(rel: str, abis: Sequence[str], offset: int = 0) -> Callable[[str], Tuple[Dict[str, int], List[str]]]:
    def read(root: str) -> Tuple[Dict[str, int], List[str]]:
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            raise FileNotFoundError(rel)
        return parse_tbl(path, abis, offset), [rel]
    return read


def _follow_text_symlink(path: str) -> str:
    """A git checkout without symlink support stores arm64's syscall_64.tbl link as a one-line file."""
    if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) < 256:
        with open(path, encoding="utf-8", errors="replace") as handle:
            target = handle.read().strip()
        if target and "\n" not in target and target.endswith(".tbl"):
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
            if os.path.isfile(resolved):
                return resolved
    return path


def _generic_reader(arch_dir: str, bits: int) -> Callable[[str], Tuple[Dict[str, int], List[str]]]:
    def read(root: str) -> Tuple[Dict[str, int], List[str]]:
        makefile = os.path.join(root, "arch", arch_dir, "kernel", "Makefile.syscalls")
        if os.path.isfile(makefile):
            abis, table, files = generic_selection(root, arch_dir, bits)
            table = _follow_text_symlink(table)
            if not os.path.isfile(table):
                raise FileNotFoundError(os.path.relpath(table, root))
            return parse_tbl(table, abis), [*files, os.path.relpath(table, root)]
        header = os.path.join(root, "arch", arch_dir, "include", "uapi", "asm", "unistd.h")
        if os.path.isfile(header):
            return parse_asm_generic(root, arch_dir, bits)
        raise FileNotFoundError(
            f"arch/{arch_dir}/kernel/Makefile.syscalls or arch/{arch_dir}/include/uapi/asm/unistd.h")
    return read


def _arm_reader(root: str) -> Tuple[Dict[str, int], List[str]]:
    table, files = _tbl_reader("arch/arm/tools/syscall.tbl", ("common", "eabi"))(root)
    # The uapi header aliases __NR_sync_file_range2 to this entry; libseccomp and systemd know
    # only that name, and one name per number keeps number -> name lookups unambiguous.
    if "arm_sync_file_range" in table and "sync_file_range2" not in table:
        table["sync_file_range2"] = table.pop("arm_sync_file_range")
    header = "arch/arm/include/uapi/asm/unistd.h"
    path = os.path.join(root, header)
    if os.path.isfile(path):
        for name, number in arm_private_calls(path).items():
            table.setdefault(name, number)
        files.append(header)
    return table, files


# Which files make each of our ABIs, mirroring the kernel's own header generation.
READERS: Dict[str, Callable[[str], Tuple[Dict[str, int], List[str]]]] = {
    "x86_64": _tbl_reader(f"{_X86_DIR}/syscall_64.tbl", ("common", "64")),
    "x86": _tbl_reader(f"{_X86_DIR}/syscall_32.tbl", ("i386",)),
    "x32": _tbl_reader(f"{_X86_DIR}/syscall_64.tbl", ("common", "x32"), X32_SYSCALL_BIT),
    "aarch64": _generic_reader("arm64", 64),
    "arm": _arm_reader,
    "riscv64": _generic_reader("riscv", 64),
    "riscv32": _generic_reader("riscv", 32),
    "ppc64le": _tbl_reader("arch/powerpc/kernel/syscalls/syscall.tbl", ("common", "64", "nospu")),
    "s390x": _tbl_reader("arch/s390/kernel/syscalls/syscall.tbl", ("common", "64")),
    "mips64": _tbl_reader("arch/mips/kernel/syscalls/syscall_n64.tbl", ("n64",), MIPS_N64_BASE),
    "loongarch64": _generic_reader("loongarch", 64),
}


def read_kernel_tree(root: str, abis: Optional[Iterable[str]] = None) -> KernelTables:
    """Read every requested ABI (default: all) that the tree has files for.

    ABIs whose files are missing land in ``skipped`` with the reason; malformed files raise
    InputError naming the file and line.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise InputError("kernel tree not found (expected a directory)", root)
    result = KernelTables(root=root, version=kernel_version(root))
    for abi in abis if abis is not None else READERS:
        reader = READERS.get(abi)
        if reader is None:
            raise InputError(f"no kernel table reader for ABI {abi!r}")
        try:
            table, files = reader(root)
        except FileNotFoundError as missing:
            result.skipped[abi] = f"not in this tree: {missing.args[0] if missing.args else missing}"
            continue
        result.abis[abi] = table
        result.sources[abi] = files
    if "arm" in result.abis and not any(n >= 0x0F0000 for n in result.abis["arm"].values()):
        result.notes.append("arm: no ARM private calls (arch/arm/include/uapi/asm/unistd.h not in this tree)")
    return result


@dataclass
class TableDiff:
    """One ABI of a kernel tree against the bundled tables."""

    abi: str
    only_in_tables: List[str]  # newer than this kernel (or removed from it): absent on the target
    only_in_kernel: List[str]  # newer than the bundled tables, or kernel-local additions
    renumbered: Dict[str, Tuple[int, int]]  # name -> (tables, kernel); never legitimate upstream

    @property
    def conflicts(self) -> bool:
        return bool(self.renumbered)


def compare_with_tables(kernel: KernelTables) -> Dict[str, TableDiff]:
    """Differences between what a kernel tree defines and seccomp_py's bundled tables, per ABI read.

    A bbclass can use this against STAGING_KERNEL_DIR: renumbered names mean the bundled tables
    would misresolve audit records from that kernel; only_in_tables are names the target lacks.
    """
    from . import get_abi  # the package imports this module lazily; avoid a cycle at import time

    result = {}
    for abi_name, table in sorted(kernel.abis.items()):
        bundled = get_abi(abi_name).by_name
        result[abi_name] = TableDiff(
            abi=abi_name,
            only_in_tables=sorted(set(bundled) - set(table)),
            only_in_kernel=sorted(set(table) - set(bundled)),
            renumbered={n: (bundled[n], table[n]) for n in sorted(set(bundled) & set(table)) if bundled[n] != table[n]},
        )
    return result
