"""Profiles for the consumer tests, taken from real runs: `strace -f` of the runtime, keeping only the
calls made after the runtime loaded its seccomp filter, by the loading process and its descendants.

Those are exactly the calls the filter sees, the runtime's own tail (between loading the filter and
exec) included, so a profile built from them is what the runtime needs, no more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<body>.*)$")
_CALL = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)\(")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>[a-z_][a-z0-9_]*) resumed>")
_RESULT = re.compile(r"=\s+(?P<ret>-?\d+|\?)")
_TRANSLATED = re.compile(r"/\* (\d+) in strace's PID NS \*/")
_FORKS = {"clone", "clone3", "fork", "vfork"}


@dataclass
class Confined:
    """Calls seen after the first successful filter load, per pid; exec'd images per pid."""

    loader: Optional[int] = None
    names: Set[str] = field(default_factory=set)
    by_pid: Dict[int, Set[str]] = field(default_factory=dict)
    after_exec: Dict[int, Set[str]] = field(default_factory=dict)
    execs: Dict[int, List[str]] = field(default_factory=dict)

    def command_only(self, exe_marker: str) -> Set[str]:
        """Calls made only by processes after they exec'd an image containing exe_marker."""
        mine: Set[str] = set()
        others: Set[str] = set()
        for pid, names in self.by_pid.items():
            if any(exe_marker in e for e in self.execs.get(pid, [])):
                mine |= self.after_exec.get(pid, set())
                others |= names - self.after_exec.get(pid, set())
            else:
                others |= names
        return mine - others


def _is_filter_load(name: str, body: str) -> bool:
    if name == "seccomp":
        return "SECCOMP_SET_MODE_FILTER" in body and "filter=" in body
    if name == "prctl":
        return "PR_SET_SECCOMP" in body and "SECCOMP_MODE_FILTER" in body
    return False


def _events(trace_text: str) -> List[Tuple[int, str, str, Optional[str]]]:
    """(pid, name, full text, return value) per completed call, unfinished/resumed pairs joined."""
    events = []
    pending: Dict[int, str] = {}
    for raw in trace_text.splitlines():
        match = _LINE.match(raw)
        if not match:
            continue
        pid = int(match.group("pid"))
        body = match.group("body")
        call = _CALL.match(body)
        resumed = _RESUMED.match(body)
        if call:
            if body.endswith("<unfinished ...>"):
                pending[pid] = body
                continue
            name, full = call.group("name"), body
        elif resumed:
            name, full = resumed.group("name"), pending.pop(pid, "") + body
        else:
            continue
        tail = full.rsplit(")", 1)[-1] if ")" in full else ""
        translated = _TRANSLATED.search(tail)
        result = _RESULT.search(tail)
        ret = translated.group(1) if translated else (result.group("ret") if result else None)
        events.append((pid, name, full, ret))
    return events


def confined_calls(trace_text: str, exe_marker: str) -> Confined:
    """The calls filtered by the seccomp load that governs exe_marker's process.

    Needs `strace -f --pidns-translation -o FILE` (runtimes fork inside new PID namespaces). Runtimes
    load other filters too (Firejail confines its helper processes), so the governing load is the first
    one whose process or descendants exec a path containing exe_marker.
    """
    events = _events(trace_text)
    for load_at, (loader, name, full, ret) in enumerate(events):
        if not (_is_filter_load(name, full) and ret == "0"):
            continue
        out = _confined_after(events, load_at, loader)
        if any(exe_marker in exe for exes in out.execs.values() for exe in exes):
            return out
    return Confined()


def _confined_after(events: List[Tuple[int, str, str, Optional[str]]], load_at: int, loader: int) -> Confined:
    out = Confined(loader=loader)
    confined: Set[int] = {loader}
    for pid, name, _full, ret in events[load_at + 1:]:
        if pid in confined and name in _FORKS and ret not in (None, "?") and int(ret) > 0:
            confined.add(int(ret))
    for index, (pid, name, full, ret) in enumerate(events):
        if pid not in confined or (pid == loader and index <= load_at):
            continue
        out.names.add(name)
        out.by_pid.setdefault(pid, set()).add(name)
        if pid in out.after_exec:
            out.after_exec[pid].add(name)
        if name in ("execve", "execveat") and ret == "0":
            exe = re.search(r'"([^"]*)"', full)
            out.execs.setdefault(pid, []).append(exe.group(1) if exe else "?")
            out.after_exec[pid] = {name}
    return out
