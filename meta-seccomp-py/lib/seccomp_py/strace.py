"""strace output -> syscall observations.

Two formats:
- "strace": the trace itself (`strace -f`, `strace -f -o FILE`, `strace -ff -o PREFIX`, with any of
  -t/-tt/-ttt/-r, -T, -y/-yy, -Y, -n, -i, -k; also -C, whose summary tables are skipped);
- "strace-summary": the tables of `strace -c`/`-qcf`/`-c -S name`/`-c -U ...`, one per personality.

Subjects (by="exe"): every process image is attributed to the executable of its last successful execve.
A forked child runs its parent's image until it execs, so its calls go to the parent's exe; the execve
call itself belongs to the image that made it. The first process of a trace has no parent: the calls it
makes before its first execve are folded into the image it execs.

ABI: strace decodes each call with the tracee's personality, so names are already right; what we must
know is which table they belong to. strace marks a switch with "[ Process PID=N runs in 32 bit mode. ]",
but only when it writes to stderr: with -o the marker is not written. Without a marker, an image whose
names exist only in a compat table (ugetrlimit, mmap2, ...) is counted under that compat ABI, with a warning.

Memory grows with the number of distinct (subject, ABI, syscall, exe), plus the live processes' images.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Dict, Iterable, Iterator, List, Optional, Tuple

from .errors import InputError, UsageError
from .profile import Observation
from .syscalls import Abi, get_abi

FORMAT_TRACE = "strace"
FORMAT_SUMMARY = "strace-summary"
FORMATS = (FORMAT_TRACE, FORMAT_SUMMARY)

UNKNOWN_SUBJECT = "<unknown>"
MAX_WARNINGS_PER_FILE = 100
MAX_LINE_BYTES = 4 << 20  # strace -s 65535 lines stay far below this
DETECT_LINES = 200

# os.uname().machine values that get_abi does not know by themselves
_UNAME_ABI = {
    "armv5tel": "arm", "armv6l": "arm", "armv7l": "arm", "armv8l": "arm",
    "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86",
    "mips64": "mips64", "ppc64le": "ppc64le", "loongarch64": "loongarch64",
}

_FORK_CALLS = frozenset({"clone", "clone3", "fork", "vfork"})
_EXEC_CALLS = frozenset({"execve", "execveat"})

# Line prefix: "[pid N] " (stderr, several tracees) or "N " (-o with -f), each optionally with -Y's
# "<comm>"; then a -t/-tt/-ttt/-r timestamp; then -n's "[ nr]" and -i's "[ip]" in either order.
_PREFIX_RE = re.compile(
    r"\s*(?:\[pid\s+(?P<bpid>\d+)(?:<(?P<bcomm>[^>]*)>)?\]\s+|(?P<pid>\d+)(?:<(?P<comm>[^>]*)>)?\s+)?"
    r"(?:(?P<ts>\d\d:\d\d:\d\d(?:\.\d+)?|\d+\.\d+)\s+)?"
    r"(?:\[\s*[0-9a-fA-F?]+\]\s+)*"
)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_CALL_RE = re.compile(rf"(?P<name>{_NAME})\((?P<rest>.*)$")
_RESUMED_RE = re.compile(rf"<\.\.\. (?P<name>{_NAME}) resumed>(?P<rest>.*)$")
_SIGNAL_RE = re.compile(r"--- (?P<what>.*) ---$")
_EXIT_RE = re.compile(r"\+\+\+ (?P<what>.*) \+\+\+$")
_SUPERSEDED_RE = re.compile(r"superseded by execve in pid (?P<pid>\d+)")
_PERSONALITY_RE = re.compile(r"\[ Process PID[= ](?P<pid>\d+) runs in (?P<mode>.+?) mode\. \]$")
# strace's own notes; strace 4.x wrote "Process N attached" without the "strace: " tag
_STRACE_MSG_RE = re.compile(r"(?:strace: (?P<msg>.*)|(?P<old>Process \d+ (?:attached|detached)(?: .*)?))$")
_EMBEDDED_MSG_RE = re.compile(r"(?:strace: )?(?P<msg>Process \d+ (?:attached|detached).*)$")
_RETURN_RE = re.compile(r"\)\s+=\s+(?P<ret>-?\d+|0x[0-9a-fA-F]+|\?)")
_UNFINISHED = "<unfinished ...>"
_DETACHED = "<detached ...>"
_NUMBERED_NAME_RE = re.compile(r"syscall_(?P<nr>0x[0-9a-fA-F]+|\d+)$")
_STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_DIRFD_RE = re.compile(r"\s*(?:AT_FDCWD|-?\d+)(?:<(?P<dir>[^>]*)>)?\s*,\s*")

# Summary tables
_SUMMARY_MODE_RE = re.compile(r"System call usage summary for (?P<mode>.+?) mode:\s*$")
_SUMMARY_SEPARATOR_RE = re.compile(r"-{3,}(?: +-{3,})+\s*$")
_SUMMARY_COLUMNS = {"%time", "seconds", "usecs/call", "calls", "errors", "syscall", "shortest", "longest",
                    "total", "min", "max", "avg"}
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?$")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "a": "\a", "b": "\b", "\\": "\\",
            '"': '"', "'": "'", "?": "?"}


@dataclass
class StraceStats:
    """What the parser saw. Counts are over all files fed so far."""

    files: int = 0
    lines: int = 0
    syscalls: int = 0  # call entries; an unfinished/resumed pair counts once
    unfinished: int = 0
    resumed: int = 0
    pairs: int = 0  # resumed lines matched to their unfinished line
    orphan_resumed: int = 0  # resumed with no unfinished line before it (counted as a call)
    signals: int = 0
    exits: int = 0  # "+++ exited/killed/superseded +++"
    killed: int = 0
    processes: int = 0
    execs: int = 0
    personality_switches: int = 0
    summary_rows: int = 0
    ignored_lines: int = 0  # strace's own messages, -k stack frames, -C summary tables
    bad_lines: int = 0
    unknown_syscalls: Dict[str, int] = field(default_factory=dict)  # "abi:name" -> calls, not in any profile
    warnings: List[str] = field(default_factory=list)  # each "file:line: reason"
    warnings_suppressed: int = 0


def host_abi_name() -> str:
    machine = os.uname().machine
    return get_abi(_UNAME_ABI.get(machine, machine)).name


# -- format detection -------------------------------------------------------------------------------

def _strip_prefix(line: str) -> Tuple[re.Match, str]:
    match = _PREFIX_RE.match(line)
    assert match is not None  # every group is optional
    return match, line[match.end():]


def _classify(line: str) -> Optional[str]:
    """'trace' for a line only strace writes, 'summary' for a summary table line, else None."""
    stripped = line.strip()
    if not stripped:
        return None
    if _SUMMARY_MODE_RE.match(stripped) or _is_summary_header(stripped):
        return "summary"
    _, body = _strip_prefix(line)
    if _EXIT_RE.match(body) or _PERSONALITY_RE.match(body) or _RESUMED_RE.match(body):
        return "trace"
    if _SIGNAL_RE.match(body) and "{si_signo=" in body:
        return "trace"
    call = _CALL_RE.match(body)
    if call and (_RETURN_RE.search(call.group("rest")) or body.rstrip().endswith(_UNFINISHED)):
        return "trace"
    return None


def _is_summary_header(stripped: str) -> bool:
    tokens = stripped.replace("% time", "%time").split()
    return "syscall" in tokens and len(tokens) >= 2 and all(t in _SUMMARY_COLUMNS for t in tokens)


def detect_format(path: str) -> Optional[str]:
    """Return "strace", "strace-summary" or None after looking at the first lines of a file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(256 * 1024)
    except OSError:
        return None
    text = head.decode("utf-8", "replace")
    lines = text.splitlines()
    if len(head) == 256 * 1024 and lines:
        lines.pop()  # may be cut
    for line in lines[:DETECT_LINES]:
        if "\0" in line or "\ufffd" in line:
            continue
        kind = _classify(line)
        if kind == "trace":
            return FORMAT_TRACE
        if kind == "summary":
            return FORMAT_SUMMARY
    return None


# -- reading ----------------------------------------------------------------------------------------

def _read_lines(handle: IO[bytes]) -> Iterator[Tuple[int, Optional[str], str]]:
    """Yield (line number, text or None when unusable, why unusable)."""
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES)
        if not raw:
            return
        number += 1
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:  # skip the rest of an overlong line without holding it
                more = handle.readline(MAX_LINE_BYTES)
                if not more or more.endswith(b"\n"):
                    break
            yield number, None, f"line longer than {MAX_LINE_BYTES} bytes, skipped"
            continue
        if b"\0" in raw:
            yield number, None, "binary data (NUL bytes), skipped"
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None, "not UTF-8 text (strace escapes non-ASCII bytes), skipped"
            continue
        yield number, text.rstrip("\r\n"), ""


def _unescape(text: str) -> str:
    """Undo strace's C-style string escapes (\\n, \\xNN, \\NNN octal, ...)."""
    if "\\" not in text:
        return text
    raw = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\" or i + 1 >= len(text):
            raw.extend(char.encode("utf-8", "surrogateescape"))
            i += 1
            continue
        nxt = text[i + 1]
        hex_digits = re.match(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]) if nxt == "x" else None
        octal = re.match(r"[0-7]{1,3}", text[i + 1:i + 4])
        if hex_digits:
            raw.append(int(hex_digits.group(0), 16))
            i += 4
        elif octal:
            raw.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + len(octal.group(0))
        else:
            raw.extend(_ESCAPES.get(nxt, nxt).encode("utf-8", "surrogateescape"))
            i += 2
    return raw.decode("utf-8", "surrogateescape")


def _exec_target(name: str, args: str) -> Optional[str]:
    """The executable an execve/execveat line names (as written; relative paths stay relative)."""
    directory = None
    if name == "execveat":
        dirfd = _DIRFD_RE.match(args)
        if dirfd is None:
            return None
        directory = dirfd.group("dir")
        args = args[dirfd.end():]
    string = _STRING_RE.match(args)
    if string is None:
        return None
    path = _unescape(string.group(1))
    if directory and not path.startswith("/"):
        path = os.path.join(directory, path) if path else directory
    return path or None


def _iso_from_epoch(ts: Optional[str]) -> Optional[str]:
    """-ttt gives epoch seconds; -t/-tt (no date) and -r (relative) give nothing usable."""
    if ts is None or ":" in ts or "." not in ts:
        return None
    try:
        seconds = float(ts)
    except ValueError:
        return None
    if seconds < 1e8:  # -r's relative deltas
        return None
    try:
        when = datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# -- per-trace state ---------------------------------------------------------------------------------

class _Image:
    """One process image: the calls a PID makes between two execs (or fork and exec, or exec and exit)."""

    __slots__ = ("abi", "abi_explicit", "closed", "comm", "counts", "exe", "folded", "parent", "path",
                 "pid", "successor")

    def __init__(self, pid: Optional[int], path: str, exe: Optional[str], parent: Optional[_Image],
                 abi: Abi) -> None:
        self.pid = pid
        self.path = path
        self.exe = exe
        self.parent = parent
        self.successor: Optional[_Image] = None
        self.abi = abi
        self.abi_explicit = False
        self.comm: Optional[str] = None
        # name -> [count, first_seen, first line]
        self.counts: Optional[Dict[str, list]] = {}
        self.closed = False
        self.folded = False


class _Proc:
    __slots__ = ("first", "image", "pending", "pid")

    def __init__(self, pid: Optional[int], image: _Image) -> None:
        self.pid = pid
        self.image = image
        self.first = image  # the image it started with (the one a parent's fork links)
        # the call this PID left unfinished: (name, args, line)
        self.pending: Optional[Tuple[str, str, int]] = None


class _Trace:
    """The processes of one strace run (one file, or the files of one -ff set)."""

    def __init__(self, collector: StraceCollector) -> None:
        self.collector = collector
        self.procs: Dict[int, _Proc] = {}
        self.solo: Optional[_Proc] = None  # the process stderr lines without "[pid N]" belong to
        self.expected: Dict[int, _Image] = {}  # child PID -> the parent image that forked it
        # closed images that could not be folded yet (no exe, no parent): a root before its exec, or a
        # child whose parent's fork has not returned; live images are reached through procs
        self.waiting: Dict[int, _Image] = {}  # by id()
        # PID -> first image of a process that appeared before any fork returned its PID
        self.unlinked: Dict[int, _Image] = {}
        self.in_summary = False  # inside a -C summary table
        self.summary_tables = 0
        self.dangling: Optional[Tuple[_Proc, str, int]] = None  # a call line that ended early

    def live(self) -> List[_Proc]:
        procs = list(self.procs.values())
        if self.solo is not None and self.solo.pid is None:
            procs.append(self.solo)
        return procs

    # processes
    def new_proc(self, pid: Optional[int], path: str) -> _Proc:
        parent = self.expected.pop(pid, None) if pid is not None else None
        abi = parent.abi if parent is not None else self.collector.native
        image = self.new_image(pid, path, None, parent, abi)
        if parent is not None:
            image.abi_explicit = parent.abi_explicit
            image.comm = parent.comm
        proc = _Proc(pid, image)
        if pid is not None:
            self.procs[pid] = proc
            if parent is None:
                self.unlinked[pid] = image
        self.collector.stats.processes += 1
        return proc

    def new_image(self, pid: Optional[int], path: str, exe: Optional[str], parent: Optional[_Image],
                  abi: Abi) -> _Image:
        return _Image(pid, path, exe, parent, abi)

    def proc_for(self, pid: Optional[int], default_pid: Optional[int], body: str, path: str) -> _Proc:
        if pid is None:
            pid = default_pid
        if pid is None:
            return self.solo_proc(path)
        proc = self.procs.get(pid)
        if proc is not None:
            return proc
        solo = self.solo
        if solo is not None and solo.pid is None and pid not in self.expected:
            # stderr output: the process that printed without "[pid N]" gets a prefix once a second
            # tracee exists. A new PID is a child only if some process is in the middle of a fork.
            resumed = _RESUMED_RE.match(body)
            pending = solo.pending
            if resumed and pending is not None and resumed.group("name") == pending[0]:
                return self._name_solo(solo, pid)
            forking = [p for p in self.live() if p.pending and p.pending[0] in _FORK_CALLS]
            if not forking:
                return self._name_solo(solo, pid)
            if len(forking) == 1:
                self.expected[pid] = forking[0].image
        return self.new_proc(pid, path)

    def _name_solo(self, solo: _Proc, pid: int) -> _Proc:
        solo.pid = pid
        solo.image.pid = pid
        self.procs[pid] = solo
        return solo

    def solo_proc(self, path: str) -> _Proc:
        live = list(self.procs.values())
        if self.solo is not None and self.solo.pid is None:
            return self.solo
        if len(live) == 1:
            self.solo = live[0]
            return live[0]
        if self.solo is not None and self.solo.pid in self.procs:
            return self.solo
        self.solo = self.new_proc(None, path)
        return self.solo

    def end_proc(self, proc: _Proc) -> None:
        self.close_image(proc.image)
        if proc.pid is not None and self.procs.get(proc.pid) is proc:
            del self.procs[proc.pid]
        if self.solo is proc:
            self.solo = None

    # images
    def close_image(self, image: _Image) -> None:
        image.closed = True
        if image.exe is not None or image.parent is not None:
            self.collector.fold(image)
        else:
            self.waiting[id(image)] = image

    def link_child(self, parent: _Image, child_pid: int) -> None:
        """A fork in `parent` returned child_pid: the child's first image runs the parent's code."""
        first = self.unlinked.pop(child_pid, None)
        if first is None:
            if child_pid not in self.procs:  # its lines have not started yet
                self.expected[child_pid] = parent
            return
        if first.parent is None and first.exe is None and first is not parent and not first.folded:
            first.parent = parent
            if not first.abi_explicit:
                first.abi = parent.abi
                first.abi_explicit = parent.abi_explicit
            if first.comm is None:
                first.comm = parent.comm
            if first.closed:
                self.waiting.pop(id(first), None)
                self.collector.fold(first)

    def finish(self) -> None:
        for proc in list(self.procs.values()):
            self.close_image(proc.image)
        self.procs.clear()
        if self.solo is not None:
            self.close_image(self.solo.image)
            self.solo = None
        for image in self.waiting.values():
            self.collector.fold(image)
        self.waiting = {}
        self.unlinked = {}
        self.expected.clear()


class StraceCollector:
    """Feed strace files, then read observations(). See the module docstring for the attribution rules."""

    def __init__(self, abi: Optional[str] = None, by: str = "exe", subject: Optional[str] = None) -> None:
        if by not in ("exe", "comm"):
            raise UsageError(f"--by must be exe or comm, not {by!r}")
        self.native: Abi = get_abi(abi) if abi else get_abi(host_abi_name())
        self.by = by
        self.subject = subject
        self.stats = StraceStats()
        # (subject, abi, syscall, exe) -> [count, first_seen, source]
        self._aggregate: Dict[Tuple[str, str, str, Optional[str]], list] = {}
        self._open: List[_Trace] = []
        self._file_warnings: Dict[str, int] = {}
        self._unknown_subject_warned: set = set()

    # -- public API -------------------------------------------------------------------------------
    def feed_file(self, path: str, fmt: str = "auto") -> str:
        """Parse one file; return the format used. Raises InputError for unreadable, empty or foreign files."""
        fmt = self._resolve_format(path, fmt)
        if fmt == FORMAT_SUMMARY:
            self._feed_summary(path)
        else:
            trace = _Trace(self)
            self._open.append(trace)
            self._feed_trace(trace, path, None)
            self._finish_trace(trace)
        return fmt

    def feed_files(self, paths: Iterable[str], fmt: str = "auto") -> List[Tuple[str, str]]:
        """Parse several files. Files named PREFIX.PID sharing a PREFIX are one `strace -ff -o PREFIX` set:
        they share one process table (so children inherit their parent's exe), each file's PID its suffix."""
        paths = list(paths)
        groups: Dict[str, List[Tuple[int, str]]] = {}
        for path in paths:
            match = re.match(r"(?P<prefix>.+)\.(?P<pid>\d+)$", path)
            if match:
                groups.setdefault(match.group("prefix"), []).append((int(match.group("pid")), path))
        ff_sets = {prefix: sorted(members) for prefix, members in groups.items() if len(members) > 1}
        in_sets = {path for members in ff_sets.values() for _, path in members}
        done: List[Tuple[str, str]] = []
        handled_sets: set = set()
        for path in paths:
            if path not in in_sets:
                done.append((path, self.feed_file(path, fmt)))
                continue
            prefix = re.sub(r"\.\d+$", "", path)
            if prefix in handled_sets:
                continue
            handled_sets.add(prefix)
            done.extend(self._feed_ff_set(ff_sets[prefix], fmt))
        return done

    def observations(self) -> Iterator[Observation]:
        """Everything seen so far, one Observation per (subject, ABI, syscall, exe), in sorted order."""
        for trace in self._open:
            trace.finish()
        self._open = []
        for key in sorted(self._aggregate, key=lambda k: (k[0], k[1], k[2], k[3] or "")):
            subject, abi, syscall, exe = key
            count, first_seen, source = self._aggregate[key]
            yield Observation(subject=subject, abi=abi, syscall=syscall, count=count, first_seen=first_seen,
                              source=source, exe=exe)

    # -- formats ----------------------------------------------------------------------------------
    def _resolve_format(self, path: str, fmt: str) -> str:
        if fmt not in ("auto", *FORMATS):
            raise UsageError(f"unknown strace format {fmt!r} (use auto, {', '.join(FORMATS)})")
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", path) from None
        if size == 0:
            raise InputError("empty file, no strace output in it", path)
        if fmt != "auto":
            return fmt
        detected = detect_format(path)
        if detected is None:
            raise InputError("not strace output: no strace line in the first "
                             f"{DETECT_LINES} lines (use --format to force it)", path, 1)
        return detected

    def _feed_ff_set(self, members: List[Tuple[int, str]], fmt: str) -> List[Tuple[str, str]]:
        trace = _Trace(self)
        self._open.append(trace)
        done: List[Tuple[str, str]] = []
        for pid, path in members:
            try:
                if os.path.getsize(path) == 0:
                    self._warn(path, None, "empty file in an strace -ff set (process traced without output?)")
                    done.append((path, FORMAT_TRACE))
                    continue
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror}", path) from None
            member_fmt = self._resolve_format(path, fmt)
            if member_fmt == FORMAT_SUMMARY:
                self._feed_summary(path)
            else:
                self._feed_trace(trace, path, pid)
            done.append((path, member_fmt))
        self._finish_trace(trace)
        return done

    def _finish_trace(self, trace: _Trace) -> None:
        trace.finish()
        if trace in self._open:
            self._open.remove(trace)

    # -- trace ------------------------------------------------------------------------------------
    def _feed_trace(self, trace: _Trace, path: str, default_pid: Optional[int]) -> None:
        stats = self.stats
        stats.files += 1
        recognised = 0
        calls_before = stats.syscalls
        tables_before = trace.summary_tables
        first_bad: Optional[int] = None
        try:
            with open(path, "rb") as handle:
                for number, line, why in _read_lines(handle):
                    stats.lines += 1
                    if line is None:
                        stats.bad_lines += 1
                        first_bad = first_bad or number
                        self._warn(path, number, why)
                        continue
                    if self._trace_line(trace, path, number, line, default_pid):
                        recognised += 1
                    elif line.strip():
                        stats.bad_lines += 1
                        first_bad = first_bad or number
                        self._warn(path, number, f"not an strace line: {_shorten(line)}")
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", path) from None
        if trace.dangling is not None:
            self._end_dangling(trace.dangling, path)
            trace.dangling = None
        self._flush_file_warnings(path)
        if recognised == 0:
            raise InputError("no strace lines in this file", path, first_bad)
        if stats.syscalls == calls_before and trace.summary_tables > tables_before:
            raise InputError("only strace summary tables here, no trace: use the strace-summary format", path)

    def _trace_line(self, trace: _Trace, path: str, number: int, line: str, default_pid: Optional[int]) -> bool:
        stats = self.stats
        stripped = line.strip()
        dangling = trace.dangling
        if dangling is not None:
            trace.dangling = None
            # stderr output: strace's "Process N attached" note can break a call's line in two; the
            # next line then holds the rest of the call ("<unfinished ...>" or ", ...) = 123")
            if not _looks_like_strace_line(line) and self._continue_call(trace, dangling, line, path):
                return True
            self._end_dangling(dangling, path)
        # -C appends summary tables to the trace; the calls in them are already counted
        if (stripped.startswith("System call") and _SUMMARY_MODE_RE.match(stripped)) or \
                ("syscall" in stripped and _is_summary_header(stripped)):
            trace.in_summary = True
            trace.summary_tables += 1
            stats.ignored_lines += 1
            return True
        if trace.in_summary:
            if _SUMMARY_SEPARATOR_RE.match(stripped):
                stats.ignored_lines += 1
                return True
            row_name = _summary_row_name(stripped)
            if row_name is not None:
                if row_name == "total":
                    trace.in_summary = False
                stats.ignored_lines += 1
                return True
            trace.in_summary = False
        prefix, body = _strip_prefix(line)
        body = body.rstrip()
        if not body:
            return False
        pid_text = prefix.group("bpid") or prefix.group("pid")
        comm = prefix.group("bcomm") or prefix.group("comm")
        ts = prefix.group("ts")

        personality = _PERSONALITY_RE.match(body)
        if personality:
            proc = trace.proc_for(int(personality.group("pid")), default_pid, body, path)
            self._switch_personality(proc.image, personality.group("mode"), path, number)
            return True
        if body.startswith("> "):
            stats.ignored_lines += 1  # -k stack frames
            return True
        message = _STRACE_MSG_RE.match(body)
        if message:
            self._strace_message(trace, message.group("msg") or message.group("old"))
            return True

        call = _CALL_RE.match(body)
        resumed = None if call else _RESUMED_RE.match(body)
        signal = None if call or resumed else _SIGNAL_RE.match(body)
        exited = None if call or resumed or signal else _EXIT_RE.match(body)
        if not (call or resumed or signal or exited):
            return False

        pid = int(pid_text) if pid_text else None
        proc = trace.proc_for(pid, default_pid, body, path)
        image = proc.image
        if comm:
            image.comm = comm

        if signal:
            stats.signals += 1
            return True
        if exited:
            stats.exits += 1
            what = exited.group("what")
            if what.startswith("killed"):
                stats.killed += 1
            superseded = _SUPERSEDED_RE.search(what)
            if superseded:
                # a non-leader thread exec'd; its pending execve finishes under the leader's PID
                thread = trace.procs.get(int(superseded.group("pid")))
                if thread is not None and thread.pending is not None and proc.pending is None:
                    proc.pending = thread.pending
                    thread.pending = None
                if thread is not None and thread is not proc:
                    trace.end_proc(thread)
                return True
            trace.end_proc(proc)
            return True

        if call:
            name = call.group("name")
            rest = call.group("rest")
            embedded = _EMBEDDED_MSG_RE.search(rest)
            if embedded and _last_return(rest) is None and not rest.endswith(_UNFINISHED):
                # "vfork(strace: Process 123 attached": strace's note landed inside the call's line
                self._strace_message(trace, embedded.group("msg"))
                rest = rest[:embedded.start()]
            if rest.endswith(_UNFINISHED):
                self._count(image, name, number, ts)
                stats.unfinished += 1
                proc.pending = (name, rest, number)
                return True
            self._count(image, name, number, ts)
            ret = _last_return(rest)
            if ret is None and not rest.endswith(_DETACHED):
                # either cut (a truncated file) or continued by a "<unfinished ...>" line
                proc.pending = (name, rest, number)
                trace.dangling = (proc, name, number)
                return True
            self._after_call(trace, proc, name, rest, ret, path, number)
            return True

        assert resumed is not None
        name = resumed.group("name")
        stats.resumed += 1
        pending = proc.pending
        args = ""
        if pending is not None and pending[0] == name:
            stats.pairs += 1
            args = pending[1]
            proc.pending = None
        else:
            stats.orphan_resumed += 1
            self._count(image, name, number, ts)
            if pending is not None:
                self._warn(path, number, f"<... {name} resumed> but {pending[0]} (line {pending[2]}) was pending")
                proc.pending = None
        self._after_call(trace, proc, name, args, _last_return(resumed.group("rest")), path, number)
        return True

    def _continue_call(self, trace: _Trace, dangling: Tuple[_Proc, str, int], line: str, path: str) -> bool:
        proc, name, number = dangling
        pending = proc.pending
        if pending is None or pending[2] != number:
            return False
        rest = (pending[1] + line).rstrip()
        if rest.endswith(_UNFINISHED):
            proc.pending = (name, rest, number)
            self.stats.unfinished += 1
            return True
        ret = _last_return(rest)
        if ret is None:
            return False
        proc.pending = None
        self._after_call(trace, proc, name, rest, ret, path, number)
        return True

    def _end_dangling(self, dangling: Tuple[_Proc, str, int], path: str) -> None:
        proc, name, number = dangling
        if proc.pending is not None and proc.pending[2] == number:
            proc.pending = None
        self._warn(path, number, f"{name}: line ends before the return value (truncated?); counted")

    def _strace_message(self, trace: _Trace, message: str) -> None:
        self.stats.ignored_lines += 1
        attached = re.match(r"Process (?P<pid>\d+) attached", message)
        if attached:
            pid = int(attached.group("pid"))
            forking = [p for p in trace.live() if p.pending and p.pending[0] in _FORK_CALLS]
            if pid not in trace.procs and len(forking) == 1:
                trace.expected.setdefault(pid, forking[0].image)

    def _after_call(self, trace: _Trace, proc: _Proc, name: str, args: str, ret: Optional[str], path: str,
                    number: int) -> None:
        if ret is None or ret == "?" or ret.startswith("-"):
            return
        if name in _FORK_CALLS:
            try:
                child = int(ret, 0)
            except ValueError:
                return
            if child > 0:
                trace.link_child(proc.image, child)
        elif name in _EXEC_CALLS and ret == "0":
            exe = _exec_target(name, args)
            if exe is None:
                self._warn(path, number, f"{name} succeeded but its path could not be read; exe unknown")
                exe = UNKNOWN_SUBJECT
            self.stats.execs += 1
            old = proc.image
            image = trace.new_image(proc.pid, path, exe, None, self.native)
            image.comm = os.path.basename(exe)[:15]
            old.successor = image
            proc.image = image
            trace.close_image(old)

    def _switch_personality(self, image: _Image, mode: str, path: str, number: int) -> None:
        self.stats.personality_switches += 1
        target = self._abi_for_mode(mode)
        if target is None:
            self._warn(path, number, f"{mode} mode has no ABI we know beside {self.native.name}; "
                       f"counted as {self.native.name}")
            target = self.native
        image.abi = target
        image.abi_explicit = True

    def _abi_for_mode(self, mode: str) -> Optional[Abi]:
        mode = mode.strip()
        compat = self.native.info.compat
        if mode == "x32":
            return get_abi("x32") if "x32" in compat or self.native.name == "x32" else None
        if mode == f"{self.native.info.bits} bit":
            return self.native
        if mode == "32 bit":
            for name in compat:
                abi = get_abi(name)
                if abi.info.bits == 32 and name != "x32":
                    return abi
            return None
        return None  # e.g. "64 bit" under a 32-bit native ABI, s390's "31 bit"

    def _count(self, image: _Image, name: str, number: int, ts: Optional[str]) -> None:
        self.stats.syscalls += 1
        counts = image.counts
        if counts is None:  # only live images get calls and fold when they close; if not, fold it again later
            counts = image.counts = {}
            image.folded = False
        entry = counts.get(name)
        if entry is None:
            counts[name] = [1, _iso_from_epoch(ts), number]
        else:
            entry[0] += 1

    # -- folding images into the aggregate ----------------------------------------------------------
    @staticmethod
    def _identity(image: _Image) -> _Image:
        """The image whose exe names these calls: itself, the parent it was forked from (until it execs),
        or, for a trace's first process before its first execve, the image that execve started."""
        node = image
        for _ in range(100000):  # parent chains are short; the bound guards against PID-reuse loops
            if node.exe is not None or node.parent is None:
                break
            node = node.parent
        if node.exe is None and node.parent is None and image.successor is not None:
            return image.successor
        return node

    def _abi_of(self, image: _Image) -> Tuple[Abi, bool]:
        """(ABI, explicit). A forked child keeps its parent's personality until it execs."""
        node = image
        for _ in range(100000):
            if node.abi_explicit or node.exe is not None or node.parent is None:
                break
            node = node.parent
        return node.abi, node.abi_explicit

    def fold(self, image: _Image) -> None:
        if image.folded:
            return
        image.folded = True
        counts = image.counts or {}
        image.counts = None
        if not counts:
            return
        abi, explicit = self._abi_of(image)
        owner = self._identity(image)
        exe = owner.exe
        if not explicit:
            guessed = self._guess_compat(abi, counts)
            if guessed is not None:
                line = min(entry[2] for name, entry in counts.items() if not abi.has(name))
                only = sorted(name for name in counts if not abi.has(name))
                self._warn(image.path, line, f"{_pid_label(image)} ({exe or 'exe unknown'}): no personality marker "
                           f"(strace -o omits it) but {', '.join(only[:5])} exist only on {guessed.name}: "
                           f"counted as {guessed.name}")
                abi = guessed
                image.abi = guessed
                image.abi_explicit = True
        if self.subject is not None:
            subject = self.subject
        elif self.by == "comm":
            comm = owner.comm if owner is image.successor else (image.comm or owner.comm)
            subject = comm or (os.path.basename(exe)[:15] if exe else UNKNOWN_SUBJECT)
        else:
            subject = exe or UNKNOWN_SUBJECT
        if subject == UNKNOWN_SUBJECT and image.path not in self._unknown_subject_warned:
            self._unknown_subject_warned.add(image.path)
            first_line = min(entry[2] for entry in counts.values())
            self._warn(image.path, first_line, f"{_pid_label(image)}: no execve seen, exe unknown; its calls go to "
                       f"subject {UNKNOWN_SUBJECT!r} (attached with -p? pass a subject)")
        for name, (count, first_seen, line) in counts.items():
            self._add(subject, abi, name, exe, count, first_seen, FORMAT_TRACE, image.path, line)

    def _guess_compat(self, abi: Abi, counts: Dict[str, list]) -> Optional[Abi]:
        unknown = [name for name in counts if not abi.has(name) and not _NUMBERED_NAME_RE.match(name)]
        if not unknown:
            return None
        for compat_name in abi.info.compat:
            compat = get_abi(compat_name)
            if compat.info.bits == 32 and all(compat.has(name) for name in unknown):
                return compat
        return None

    def _add(self, subject: str, abi: Abi, name: str, exe: Optional[str], count: int,
             first_seen: Optional[str], source: str, path: str, line: int) -> None:
        if not abi.has(name):
            numbered = _NUMBERED_NAME_RE.match(name)
            resolved = None
            if numbered:
                number = int(numbered.group("nr"), 0)
                resolved = abi.by_number.get(number)
            if resolved is not None:
                self._warn(path, line, f"strace did not know syscall {name} (it is {resolved} on {abi.name}); "
                           f"counted as {resolved}")
                name = resolved
            else:
                key = f"{abi.name}:{name}"
                self.stats.unknown_syscalls[key] = self.stats.unknown_syscalls.get(key, 0) + count
                self._warn(path, line, f"syscall {name!r} is not in the {abi.name} table; "
                           f"left out of the profile ({count} calls)")
                return
        key = (subject, abi.name, name, exe)
        entry = self._aggregate.get(key)
        if entry is None:
            self._aggregate[key] = [count, first_seen, source]
        else:
            entry[0] += count
            if first_seen is not None and (entry[1] is None or first_seen < entry[1]):
                entry[1] = first_seen

    # -- summary ----------------------------------------------------------------------------------
    def _feed_summary(self, path: str) -> None:
        stats = self.stats
        stats.files += 1
        subject = self.subject or _subject_from_filename(path)
        abi = self.native
        columns: Optional[List[str]] = None
        in_rows = False
        rows = 0
        first_bad: Optional[int] = None
        try:
            with open(path, "rb") as handle:
                for number, line, why in _read_lines(handle):
                    stats.lines += 1
                    if line is None:
                        stats.bad_lines += 1
                        first_bad = first_bad or number
                        self._warn(path, number, why)
                        continue
                    stripped = line.strip()
                    if not stripped:
                        continue
                    mode = _SUMMARY_MODE_RE.match(stripped)
                    if mode:
                        target = self._abi_for_mode(mode.group("mode"))
                        if target is None:
                            self._warn(path, number, f"{mode.group('mode')} mode has no ABI we know beside "
                                       f"{self.native.name}; counted as {self.native.name}")
                            target = self.native
                        abi = target
                        continue
                    if _is_summary_header(stripped):
                        columns = stripped.replace("% time", "%time").split()
                        in_rows = False
                        continue
                    if _SUMMARY_SEPARATOR_RE.match(stripped):
                        if columns is None:
                            self._warn(path, number, "table separator without a header line before it")
                            stats.bad_lines += 1
                        in_rows = columns is not None and not in_rows
                        continue
                    if in_rows and columns is not None:
                        if self._summary_row(path, number, stripped, columns, subject, abi):
                            rows += 1
                        else:
                            stats.bad_lines += 1
                            first_bad = first_bad or number
                        continue
                    if columns is not None and _summary_row_name(stripped) == "total":
                        columns = None  # the table is done; the next heading (if any) sets the ABI
                        abi = self.native
                        continue
                    if _STRACE_MSG_RE.match(stripped):
                        stats.ignored_lines += 1
                        continue
                    stats.bad_lines += 1
                    first_bad = first_bad or number
                    self._warn(path, number, f"not part of an strace summary table: {_shorten(stripped)}")
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", path) from None
        self._flush_file_warnings(path)
        if rows == 0:
            raise InputError("no strace summary table rows in this file", path, first_bad)

    def _summary_row(self, path: str, number: int, stripped: str, columns: List[str], subject: str,
                     abi: Abi) -> bool:
        tokens = stripped.split()
        names = [t for t in tokens if not _NUMBER_RE.match(t)]
        numbers = [t for t in tokens if _NUMBER_RE.match(t)]
        numeric_columns = [c for c in columns if c != "syscall"]
        if len(names) != 1 or not re.fullmatch(_NAME, names[0]):
            self._warn(path, number, f"summary row without exactly one syscall name: {_shorten(stripped)}")
            return False
        if len(numbers) == len(numeric_columns) - 1 and "errors" in numeric_columns:
            numeric_columns.remove("errors")  # strace leaves errors blank when there were none
        if len(numbers) != len(numeric_columns):
            self._warn(path, number, f"summary row has {len(numbers)} numbers for columns "
                       f"{' '.join(columns)}: {_shorten(stripped)}")
            return False
        name = names[0]
        if name == "total":
            return True
        calls = 1
        if "calls" in numeric_columns:
            value = numbers[numeric_columns.index("calls")]
            if not value.isdigit():
                self._warn(path, number, f"calls column is not a count: {value!r}")
                return False
            calls = int(value)
            if calls == 0:
                self._warn(path, number, f"{name}: 0 calls, left out")
                return True
        self.stats.summary_rows += 1
        self.stats.syscalls += calls
        self._add(subject, abi, name, None, calls, None, FORMAT_SUMMARY, path, number)
        return True

    # -- warnings -----------------------------------------------------------------------------------
    def _warn(self, path: str, line: Optional[int], reason: str) -> None:
        shown = self._file_warnings.get(path, 0)
        self._file_warnings[path] = shown + 1
        if shown >= MAX_WARNINGS_PER_FILE:
            self.stats.warnings_suppressed += 1
            return
        where = f"{path}:{line}" if line is not None else path
        self.stats.warnings.append(f"{where}: {reason}")

    def _flush_file_warnings(self, path: str) -> None:
        total = self._file_warnings.get(path, 0)
        if total > MAX_WARNINGS_PER_FILE:
            self.stats.warnings.append(f"{path}: {total - MAX_WARNINGS_PER_FILE} more warnings not shown")


def _looks_like_strace_line(line: str) -> bool:
    if line.lstrip().startswith("[pid "):
        return True
    _, body = _strip_prefix(line)
    body = body.rstrip()
    return bool(_CALL_RE.match(body) or _RESUMED_RE.match(body) or _SIGNAL_RE.match(body) or _EXIT_RE.match(body)
                or _PERSONALITY_RE.match(body) or _STRACE_MSG_RE.match(body))


def _last_return(rest: str) -> Optional[str]:
    ret = None
    for match in _RETURN_RE.finditer(rest):
        ret = match.group("ret")
    return ret


def _summary_row_name(stripped: str) -> Optional[str]:
    """The syscall name of a summary table row (numbers and one name), else None."""
    tokens = stripped.split()
    names = [t for t in tokens if not _NUMBER_RE.match(t)]
    if len(tokens) < 2 or len(names) != 1 or not re.fullmatch(_NAME, names[0]):
        return None
    return names[0]


def _subject_from_filename(path: str) -> str:
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    return stem if ext in (".txt", ".log", ".out", ".strace", ".summary") and stem else base


def _shorten(text: str, limit: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _pid_label(image: _Image) -> str:
    return f"pid {image.pid}" if image.pid is not None else "the unprefixed process"


def collect_observations(paths: Iterable[str], abi: Optional[str] = None, by: str = "exe",
                         subject: Optional[str] = None) -> Tuple[List[Observation], StraceStats]:
    """One-shot helper: parse files and return (observations, stats)."""
    collector = StraceCollector(abi=abi, by=by, subject=subject)
    collector.feed_files(paths)
    return list(collector.observations()), collector.stats


__all__ = ["FORMATS", "FORMAT_SUMMARY", "FORMAT_TRACE", "StraceCollector", "StraceStats", "collect_observations",
           "detect_format", "host_abi_name"]
