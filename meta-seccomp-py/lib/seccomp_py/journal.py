"""Reading a target's journal by cursor: audit records, loss signals, serial continuity.

Why it looks like this (all measured on systemd 252, see ARCHITECTURE.md section 3):

- ``journalctl --after-cursor C`` combined with a field match drops the first matching entry when the
  entry at C does not match itself (journalctl skips two entries in the filtered view instead of one).
  We therefore read with ``--cursor C`` (inclusive) plus the match, and drop the entry whose
  ``__CURSOR`` is C. tests/qemu/test_profile_x86_64.py shows the quirk and the workaround on a guest.
- Only the fields we use are exported (``--output-fields``), which keeps big windows cheap.
- journald can fall far behind the kernel (60 s for 180,000 records). The caller runs a sentinel that
  is itself logged *after* the workload; since the kernel emits audit records in order, every record
  of the workload is in the journal once the sentinel is (see ``Sentinel``).
- Loss: the audit serial (``_AUDIT_ID``) is global and every record type takes one, so a hole in the
  serials seen on ``_TRANSPORT=audit`` means records never reached journald (multicast drops). A
  full kernel backlog drops records *before* a serial is assigned, so the kernel's
  "backlog limit exceeded" messages are counted too. ``audit_lost=`` alone is not a loss here: with
  no auditd every record also goes to the kernel's hold queue, which overflows harmlessly after
  audit_backlog_limit records while journald still gets its multicast copy.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from .errors import SeccompPyError

AUDIT_SECCOMP = 1326

# Fields of a SECCOMP record in journald's audit transport that the profiler uses.
AUDIT_FIELDS = (
    "_TRANSPORT",
    "_AUDIT_TYPE",
    "_AUDIT_ID",
    "_PID",
    "_COMM",
    "_EXE",
    "_AUDIT_FIELD_ARCH",
    "_AUDIT_FIELD_SYSCALL",
    "_AUDIT_FIELD_COMPAT",
    "_AUDIT_FIELD_CODE",
    "_AUDIT_FIELD_SIG",
    "_SOURCE_REALTIME_TIMESTAMP",
)
NOTICE_FIELDS = ("_TRANSPORT", "MESSAGE", "SYSLOG_IDENTIFIER")

LOG_ACTION = 0x7FFC0000
ACTION_MASK = 0xFFFF0000
KILL_ACTIONS = (0x80000000, 0x00000000)  # KILL_PROCESS, KILL_THREAD
ERRNO_ACTION = 0x00050000
TRAP_ACTION = 0x00030000

_CURSOR_LINE = re.compile(r"^-- cursor: (\S+)\s*$", re.M)

# Kernel messages that mean records were dropped before journald could see them.
_BACKLOG_PATTERNS = (
    re.compile(r"audit: backlog limit exceeded"),
    re.compile(r"audit_backlog=\d+ > audit_backlog_limit=\d+"),
    re.compile(r"audit: kauditd retry queue overflow"),
    re.compile(r"audit: out of memory in audit_log_start"),
)
_HOLD_QUEUE = re.compile(r"audit: kauditd hold queue overflow")
_AUDIT_LOST = re.compile(r"audit_lost=(\d+)")
_SUPPRESSED = re.compile(r"kauditd_printk_skb: (\d+) callbacks suppressed")
# journald's own notices (transport "driver") about messages it could not take.
_JOURNALD_DROP = (
    re.compile(r"Suppressed (\d+) messages from"),
    re.compile(r"(?i)audit.*(No buffer space|ENOBUFS|overrun|lost)"),
    re.compile(r"(?i)Failed to (read|receive).*audit"),
)


class JournalError(SeccompPyError):
    """journalctl failed on the target (unknown cursor, no journal, broken output)."""


def action_of(code: int) -> int:
    return code & ACTION_MASK


def action_name(code: int) -> str:
    act = action_of(code)
    if act == LOG_ACTION:
        return "log"
    if act == 0x80000000:
        return "kill_process"
    if act == 0x00000000:
        return "kill_thread"
    if act == ERRNO_ACTION:
        return f"errno({code & 0xFFFF})"
    if act == TRAP_ACTION:
        return "trap"
    if act == 0x7FF00000:
        return "trace"
    if act == 0x7FC00000:
        return "user_notif"
    if act == 0x7FFF0000:
        return "allow"
    return f"0x{code:08x}"


def tail_cursor_command() -> List[str]:
    """Prints '-- cursor: ...' for the newest entry, and no entries."""
    return ["journalctl", "--no-pager", "-q", "-n", "0", "--show-cursor"]


def parse_show_cursor(text: str) -> Optional[str]:
    match = _CURSOR_LINE.search(text)
    return match.group(1) if match else None


def read_command(cursor: Optional[str], fields: Sequence[str], matches: Sequence[str]) -> List[str]:
    """journalctl reading from cursor (inclusive) on; see the module docstring for why not --after-cursor."""
    argv = ["journalctl", "--no-pager", "-q", "-o", "json", "--output-fields=" + ",".join(fields)]
    if cursor:
        argv += ["--cursor", cursor]
    else:
        argv += ["-b"]
    return argv + list(matches)


@dataclass
class ReadResult:
    entries: List[Dict[str, object]]
    cursor: Optional[str]
    bad_lines: int = 0


def parse_entries(data: bytes, skip_cursor: Optional[str]) -> ReadResult:
    """Parse journalctl -o json output; drop the entry at skip_cursor (the inclusive --cursor start)."""
    entries: List[Dict[str, object]] = []
    last: Optional[str] = None
    bad = 0
    for raw in data.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            bad += 1
            continue
        if not isinstance(entry, dict):
            bad += 1
            continue
        cursor = entry.get("__CURSOR")
        if isinstance(cursor, str):
            last = cursor
            if cursor == skip_cursor:
                continue
        entries.append(entry)
    return ReadResult(entries, last, bad)


def field_text(entry: Dict[str, object], name: str) -> Optional[str]:
    """A journal field as text; journald exports non-UTF-8 values as byte arrays."""
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return bytes(value).decode("utf-8", errors="replace")
        value = value[0] if value else None
        return None if value is None else str(value)
    return str(value)


def field_int(entry: Dict[str, object], name: str, base: int = 10) -> Optional[int]:
    text = field_text(entry, name)
    if text is None:
        return None
    try:
        return int(text, 16 if base == 16 or text.lower().startswith("0x") else base)
    except ValueError:
        return None


Runner = Callable[[List[str], float], bytes]
"""runs argv on the target (within a timeout) and returns stdout; raises on failure"""


def target_runner(target) -> Runner:
    """Adapter from a seccomp_py.target.Target to a Runner (stdout streamed into memory)."""

    def run(argv: List[str], timeout: float) -> bytes:
        sink = io.BytesIO()
        result = target.run_to_file(argv, sink, timeout=timeout)
        if result.status != 0:
            detail = result.stderr.strip().splitlines()
            raise JournalError(f"{' '.join(shlex.quote(a) for a in argv[:3])} ... failed with status "
                               f"{result.status}{': ' + detail[-1] if detail else ''}")
        return sink.getvalue()

    return run


class CursorReader:
    """Reads new entries matching `matches` on each poll(), from a cursor on, without ever dropping one."""

    def __init__(self, run: Runner, cursor: Optional[str], fields: Sequence[str], matches: Sequence[str],
                 timeout: float = 300.0) -> None:
        self.run = run
        self.cursor = cursor
        self.fields = list(fields)
        self.matches = list(matches)
        self.timeout = timeout
        self.bad_lines = 0
        self.polls = 0
        self.bytes_read = 0

    def poll(self) -> List[Dict[str, object]]:
        data = self.run(read_command(self.cursor, self.fields, self.matches), self.timeout)
        self.polls += 1
        self.bytes_read += len(data)
        result = parse_entries(data, self.cursor)
        self.bad_lines += result.bad_lines
        if result.cursor:
            self.cursor = result.cursor
        return result.entries


def journal_tail_cursor(run: Runner, timeout: float = 60.0) -> Optional[str]:
    text = run(tail_cursor_command(), timeout).decode("utf-8", errors="replace")
    return parse_show_cursor(text)


# -- loss accounting ------------------------------------------------------------------------------
@dataclass
class SerialTracker:
    """Audit serials seen on the journald audit transport. Records of one event share a serial,
    and events are emitted slightly out of order, so holes are counted over the sorted set."""

    seen: Set[int] = field(default_factory=set)

    def add(self, serial: Optional[int]) -> None:
        if serial is not None and serial > 0:
            self.seen.add(serial)

    def missing(self, upto: Optional[int] = None, since: Optional[int] = None) -> List[int]:
        """Serials between the first seen (or since) and upto (default: last seen) that never arrived."""
        if not self.seen:
            return []
        low = min(self.seen) if since is None else since
        high = max(self.seen) if upto is None else upto
        if high <= low:
            return []
        return [s for s in range(low, high + 1) if s not in self.seen]

    def gap_count(self, upto: Optional[int] = None, since: Optional[int] = None) -> int:
        return len(self.missing(upto, since))


@dataclass
class LossNotices:
    """Kernel and journald messages about audit records that went missing."""

    backlog_drops: int = 0  # real loss: records never made (no serial taken)
    journald_drops: int = 0  # real loss on journald's side
    hold_queue_overflows: int = 0  # harmless without auditd; reported only
    kernel_audit_lost: int = 0  # the kernel's counter (includes hold-queue overflows)
    printk_suppressed: int = 0  # kmsg copies rate-limited; journald's audit copy is unaffected
    messages: List[str] = field(default_factory=list)

    @property
    def real_loss(self) -> bool:
        return self.backlog_drops > 0 or self.journald_drops > 0

    def feed(self, entries: Iterable[Dict[str, object]]) -> None:
        for entry in entries:
            message = field_text(entry, "MESSAGE") or ""
            transport = field_text(entry, "_TRANSPORT") or ""
            self.feed_message(message, transport)

    def feed_message(self, message: str, transport: str = "kernel") -> None:
        important = False
        if transport == "kernel":
            if any(p.search(message) for p in _BACKLOG_PATTERNS):
                self.backlog_drops += 1
                important = True
            if _HOLD_QUEUE.search(message):
                self.hold_queue_overflows += 1
            lost = _AUDIT_LOST.search(message)
            if lost:
                self.kernel_audit_lost = max(self.kernel_audit_lost, int(lost.group(1)))
            suppressed = _SUPPRESSED.search(message)
            if suppressed:
                self.printk_suppressed += int(suppressed.group(1))
        elif transport == "driver":
            for pattern in _JOURNALD_DROP:
                match = pattern.search(message)
                if match:
                    self.journald_drops += int(match.group(1)) if match.groups() and match.group(1) and \
                        match.group(1).isdigit() else 1
                    important = True
                    break
        if important and len(self.messages) < 20:
            self.messages.append(message.strip())

    def to_json(self) -> Dict[str, object]:
        return {
            "backlog_drops": self.backlog_drops,
            "journald_drops": self.journald_drops,
            "hold_queue_overflows": self.hold_queue_overflows,
            "kernel_audit_lost": self.kernel_audit_lost,
            "printk_suppressed": self.printk_suppressed,
            "messages": list(self.messages),
        }


# -- the sentinel ---------------------------------------------------------------------------------
SENTINEL_SYSCALL = "uname"


@dataclass
class Sentinel:
    """A canary process run under log mode for exactly one syscall (uname). Its record marks a point in
    the kernel's audit stream: once journald has it, it has every record emitted before it.

    The pid comes from systemd (ExecMainPID of a oneshot unit that remains after exit), not from the
    shell's $$, because systemd expands '$' in command lines itself."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    pid: Optional[int] = None

    @property
    def unit(self) -> str:
        return f"seccomp-py-sentinel-{self.token}.service"

    def command(self) -> List[str]:
        script = ('systemd-run --quiet --unit="$1" --property=Type=oneshot --property=RemainAfterExit=yes '
                  '--property=SystemCallLog=' + SENTINEL_SYSCALL + ' -- uname >/dev/null; rc=$?; '
                  'systemctl show --property=ExecMainPID --value -- "$1"; '
                  'systemctl stop -- "$1" >/dev/null 2>&1; systemctl reset-failed -- "$1" >/dev/null 2>&1; '
                  'exit $rc')
        return ["sh", "-c", script, "sh", self.unit]

    def parse_pid(self, stdout: str) -> int:
        for line in stdout.splitlines():
            line = line.strip()
            if line.isdigit() and int(line) > 0:
                self.pid = int(line)
                return self.pid
        raise SeccompPyError(f"the sentinel did not report its pid (output: {stdout.strip()[:200]!r})")

    def matches(self, pid: Optional[int], syscall_name: Optional[str]) -> bool:
        return self.pid is not None and pid == self.pid and syscall_name == SENTINEL_SYSCALL


def iter_json_lines(entries: Iterable[Dict[str, object]]) -> Iterator[str]:
    for entry in entries:
        yield json.dumps(entry)


def split_audit(entries: Iterable[Dict[str, object]]) -> Tuple[List[Dict[str, object]], List[Optional[int]]]:
    """SECCOMP entries, and the serial of every audit entry (all types, for continuity)."""
    seccomp: List[Dict[str, object]] = []
    serials: List[Optional[int]] = []
    for entry in entries:
        serials.append(field_int(entry, "_AUDIT_ID"))
        if field_int(entry, "_AUDIT_TYPE") == AUDIT_SECCOMP:
            seccomp.append(entry)
    return seccomp, serials


# -- SECCOMP records from journal entries -----------------------------------------------------------
@dataclass
class SeccompRecord:
    """One SECCOMP record as journald stores it (fields already decoded by journald)."""

    serial: Optional[int]
    pid: Optional[int]
    exe: Optional[str]
    comm: Optional[str]
    arch: Optional[int]
    number: Optional[int]
    code: Optional[int]
    abi: Optional[str] = None
    syscall: Optional[str] = None
    time: Optional[str] = None  # ISO 8601 UTC, from the kernel's timestamp when journald kept it

    @property
    def is_log(self) -> bool:
        return self.code is not None and action_of(self.code) == LOG_ACTION

    @property
    def action(self) -> str:
        return action_name(self.code) if self.code is not None else "unknown"


def decode_seccomp(entry: Dict[str, object]) -> SeccompRecord:
    """Resolve arch + number with the bundled tables; unknown ones keep abi/syscall None."""
    from .errors import InputError
    from .syscalls import abi_for_audit

    record = SeccompRecord(
        serial=field_int(entry, "_AUDIT_ID"),
        pid=field_int(entry, "_PID"),
        exe=field_text(entry, "_EXE"),
        comm=field_text(entry, "_COMM"),
        arch=field_int(entry, "_AUDIT_FIELD_ARCH", 16),
        number=field_int(entry, "_AUDIT_FIELD_SYSCALL"),
        code=field_int(entry, "_AUDIT_FIELD_CODE", 16),
    )
    stamp = field_int(entry, "_SOURCE_REALTIME_TIMESTAMP") or field_int(entry, "__REALTIME_TIMESTAMP")
    if stamp:
        import datetime

        moment = datetime.datetime.fromtimestamp(stamp / 1e6, tz=datetime.timezone.utc)
        record.time = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if record.arch is not None and record.number is not None:
        try:
            abi, number = abi_for_audit(record.arch, record.number)
            record.abi = abi.name
            record.syscall = abi.name_of(number)
        except InputError:
            pass
    return record
