"""Shared rendering machinery: subject/ABI selection, name validation, errno handling, jinja2 environments.

Nothing reaches a template unchecked: syscall names are checked against their ABI's table, unit names
against systemd's rules, errno values against the errno table, and every line-format environment
refuses (at render time, through jinja2's finalize hook) any value that could start a new line or
continue one (control characters, Unicode line separators, backslashes). The JSON environment only
accepts values that went through its ``json`` filter.
"""

from __future__ import annotations

import errno as errno_module
import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import jinja2

from .. import __version__
from ..errors import InputError, SeccompPyError, UsageError
from ..profile import Profile
from ..syscalls import Abi, get_abi

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

ACTIONS = ("errno", "kill", "log")

# asm-generic/errno-base.h: identical on every Linux ABI, MIPS included.
ERRNO_BASE = {
    "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "ENXIO": 6, "E2BIG": 7, "ENOEXEC": 8,
    "EBADF": 9, "ECHILD": 10, "EAGAIN": 11, "ENOMEM": 12, "EACCES": 13, "EFAULT": 14, "ENOTBLK": 15,
    "EBUSY": 16, "EEXIST": 17, "EXDEV": 18, "ENODEV": 19, "ENOTDIR": 20, "EISDIR": 21, "EINVAL": 22,
    "ENFILE": 23, "EMFILE": 24, "ENOTTY": 25, "ETXTBSY": 26, "EFBIG": 27, "ENOSPC": 28, "ESPIPE": 29,
    "EROFS": 30, "EMLINK": 31, "EPIPE": 32, "EDOM": 33, "ERANGE": 34,
}
# ABIs whose errno numbers above 34 differ from asm-generic (the host's table would be wrong for them).
_NON_GENERIC_ERRNO_ABIS = frozenset({"mips64"})
_ERRNO_NAME_RE = re.compile(r"^E[A-Z0-9]+$")

# Characters that could end a line or continue it in systemd, LXC or Firejail files.
_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\\]")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._@:+-]+")


class RenderError(SeccompPyError):
    """The profile cannot be expressed in the requested format."""


@dataclass
class AbiSet:
    """One ABI's allowed names for a subject, all checked against the ABI's table."""

    abi: Abi
    names: List[str]

    @property
    def name(self) -> str:
        return self.abi.name


@dataclass
class Selection:
    """What one output file covers: a subject, its native ABI, and compat ABIs the profile has calls for."""

    subject: str
    native: Abi
    abis: List[AbiSet]  # native first (if profiled), then compat ABIs, in table order
    profile_name: str

    @property
    def compat(self) -> List[AbiSet]:
        return [s for s in self.abis if s.abi.name != self.native.name]

    def names_for(self, abi_name: str) -> List[str]:
        for entry in self.abis:
            if entry.name == abi_name:
                return entry.names
        return []

    def union(self) -> List[str]:
        return sorted(set().union(*(set(s.names) for s in self.abis)))

    def digest(self) -> str:
        """sha256 over "abi:name" lines: identifies the allow-list, not the provenance around it."""
        lines = sorted(f"{s.name}:{n}" for s in self.abis for n in s.names)
        return hashlib.sha256(("\n".join(lines) + "\n").encode("ascii")).hexdigest()

    def count(self) -> int:
        return sum(len(s.names) for s in self.abis)


@dataclass
class ErrorAction:
    """The default action: what a call outside the allow-list gets."""

    kind: str  # errno | kill | log
    errno_name: Optional[str] = None
    errno_number: Optional[int] = None


@dataclass
class Options:
    action: ErrorAction
    systemd_version: Optional[int] = None
    dropin_name: str = "50-seccomp.conf"
    log_dropin_name: str = "50-seccomp-log.conf"
    unit: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


# -- validation ---------------------------------------------------------------------------------------
def check_names(abi: Abi, names: Iterable[str], where: str) -> List[str]:
    """Every name must be in the ABI's table; all offenders are reported at once."""
    names = sorted(set(names))
    bad = [n for n in names if not isinstance(n, str) or not abi.has(n)]
    if bad:
        shown = ", ".join(repr(n) for n in bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise InputError(
            f"{where}: not syscalls of ABI {abi.name}: {shown} (run `seccomp-py check`, or `seccomp-py translate` "
            f"if the profile was made on another ABI)"
        )
    return names


def printable(text: str) -> str:
    """A single-line, escape-free rendering of arbitrary text for comments."""
    return _LINE_BREAKERS.sub("?", str(text))


def slug(subject: str) -> str:
    """A file name for a subject: unit names stay as they are, paths lose their slashes."""
    out = _SLUG_UNSAFE.sub("_", subject.strip("/")).strip("._")
    if not out:
        raise InputError(f"subject {printable(subject)!r} gives no usable file name")
    return out


def resolve_action(action: str, errno_value: Union[str, int, None], abis: Sequence[Abi]) -> ErrorAction:
    """Check the default action and turn an errno name or number into both forms."""
    if action not in ACTIONS:
        raise UsageError(f"unknown default action {action!r} (use one of: {', '.join(ACTIONS)})")
    if action != "errno":
        return ErrorAction(action)
    value = "EPERM" if errno_value is None else errno_value
    generic = not any(a.name in _NON_GENERIC_ERRNO_ABIS for a in abis)
    table = dict(ERRNO_BASE)
    if generic and sys.platform.startswith("linux"):
        # Linux hosts use asm-generic numbers (x86, arm, riscv, ppc, s390 and loongarch share them).
        for number, name in errno_module.errorcode.items():
            table.setdefault(name, number)
    if isinstance(value, bool):
        raise InputError(f"errno must be a name such as EPERM or a number, not {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if not 1 <= number <= 4095:
            raise InputError(f"errno number {number} is outside 1..4095")
        names = sorted(n for n, v in table.items() if v == number)
        return ErrorAction("errno", names[0] if names else None, number)
    name = str(value).upper()
    if not _ERRNO_NAME_RE.match(name):
        raise InputError(f"errno {printable(str(value))!r} is not an errno name such as EPERM")
    if name not in table:
        if not generic and name in errno_module.errorcode.values():
            raise InputError(f"errno {name} has a different number on {', '.join(a.name for a in abis)}; "
                             f"give the number instead")
        raise InputError(f"unknown errno name {name!r}")
    return ErrorAction("errno", name, table[name])


# -- subject / ABI selection --------------------------------------------------------------------------
def _family(profile_abis: Sequence[str], native: Abi) -> List[Abi]:
    out = [native]
    for compat in native.info.compat:
        if compat in profile_abis:
            out.append(get_abi(compat))
    return out


def infer_natives(profile_abis: Sequence[str]) -> List[str]:
    """ABIs in the list that are not compat ABIs of another ABI in the list."""
    abis = [get_abi(a) for a in profile_abis]
    compat_of_present = {c for a in abis for c in a.info.compat}
    return sorted({a.name for a in abis if a.name not in compat_of_present})


def select(profile: Profile, subject: str, abi: Optional[str], profile_name: str,
           *, allow_multi: bool = False) -> List[Selection]:
    """The ABI families to render for one subject: one Selection per native ABI.

    abi names the target's native ABI; then the subject's calls for that ABI and for its compat ABIs are
    used. Without abi the native ABI is inferred from the profile; several natives are an error unless
    allow_multi (LXC, whose sections keep ABIs apart).
    """
    if subject not in profile.table:
        have = ", ".join(printable(s) for s in profile.subjects()) or "none"
        raise InputError(f"subject {printable(subject)!r} is not in the profile (subjects: {have})")
    present = profile.abis(subject)
    for name in present:
        get_abi(name)  # unknown ABI names in the profile are an error, not skipped
    if abi is not None:
        natives = [get_abi(abi).name]
    else:
        natives = infer_natives(present)
        if len(natives) > 1 and not allow_multi:
            raise UsageError(f"subject {printable(subject)!r} has syscalls for several ABIs ({', '.join(natives)}); "
                             f"choose the target's with --abi")
    out = []
    for native_name in natives:
        native = get_abi(native_name)
        sets = []
        for member in _family(present, native):
            names = profile.syscalls(subject, member.name)
            if names or member is native:
                sets.append(AbiSet(member, check_names(member, names, f"{printable(subject)} [{member.name}]")))
        if not any(s.names for s in sets):
            other = [a for a in present if a not in {m.name for m in _family(present, native)}]
            hint = f"; it has {', '.join(other)} (use `seccomp-py translate`)" if other else ""
            raise InputError(f"subject {printable(subject)!r} has no syscalls for ABI {native.name}{hint}")
        out.append(Selection(subject, native, sets, profile_name))
    return out


# -- jinja2 environments ------------------------------------------------------------------------------
class JsonText(str):
    """A value already encoded as JSON by the json filter."""


def _finalize_line(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        raise RenderError(f"template produced a non-text value {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if _LINE_BREAKERS.search(text):
        raise RenderError(f"refusing to write {printable(text)!r}: it contains a line break, control "
                          f"character or backslash")
    return text


def _finalize_json(value: Any) -> Any:
    if not isinstance(value, JsonText):
        raise RenderError(f"JSON template value {printable(str(value))!r} was not passed through the json filter")
    return value


def _json_filter(value: Any) -> JsonText:
    import json

    return JsonText(json.dumps(value, ensure_ascii=True))


def _wrap(words: Sequence[str], width: int = 100) -> List[str]:
    lines: List[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


_ENVS: Dict[str, jinja2.Environment] = {}


def environment(kind: str) -> jinja2.Environment:
    """kind 'line' (systemd, LXC, Firejail) or 'json' (OCI/Docker)."""
    if kind not in _ENVS:
        finalize: Callable[[Any], Any] = _finalize_json if kind == "json" else _finalize_line
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # neither format is HTML; finalize is the format's escaping guard
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=finalize,
        )
        env.filters["json"] = _json_filter
        env.filters["comment"] = printable
        env.filters["wrap"] = _wrap
        _ENVS[kind] = env
    return _ENVS[kind]


def render_template(kind: str, name: str, **context: Any) -> str:
    context.setdefault("tool_version", __version__)
    try:
        return environment(kind).get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template {name}: {exc}") from None


def header_context(sel: Selection) -> Dict[str, Any]:
    abi_line = sel.native.name
    if sel.compat:
        abi_line += " (compat: " + ", ".join(s.name for s in sel.compat) + ")"
    return {
        "profile_name": printable(sel.profile_name),
        "subject": printable(sel.subject),
        "abi_line": abi_line,
        "count": sel.count(),
        "digest": sel.digest(),
    }


def pairs(items: Iterable[Tuple[str, str]]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for path, text in items:
        if path in out:
            raise RenderError(f"two outputs want the same path {path!r}")
        out[path] = text
    return out
