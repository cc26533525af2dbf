"""SECCOMP audit records (type 1326): read them from every place they land, count what was lost.

Inputs (auto-detected, see detect_format):
  journal-json  ``journalctl -o json`` (also ``--output-fields=``, ``-o json-seq``): the audit transport
                (``_TRANSPORT=audit``, fields ``_AUDIT_*``, ``_PID``/``_COMM``/``_EXE``) and the kernel
                transport copies (MESSAGE "audit: type=1326 audit(SEC.MS:SERIAL): ...").
  kmsg          dmesg text, with or without a ``[ 12.3]`` prefix, or raw /dev/kmsg records.
  audit-log     /var/log/audit/audit.log (``type=SECCOMP msg=audit(...): ...``, RAW or ENRICHED).
  syslog        rsyslog files, traditional ("Nov 22 16:56:24 host kernel: ...") or RFC 3339 stamps.

The record body is fixed by the kernel (kernel/auditsc.c, audit_seccomp):
  auid= uid= gid= ses= [subj=] pid= comm= exe= sig= arch= syscall= compat= ip= code=
comm/exe are "quoted", or hex when they hold a space, a quote or a non-ASCII byte. ``code`` is the
filter's action (SECCOMP_RET_ACTION_FULL); the kernel drops the data bits (so ERRNO shows 0x50000).

Streaming: one copy of a record is kept per serial (both journal transports carry the same serial),
and memory grows with the distinct (subject, ABI, syscall), not with the record count. Serials are
tracked as ranges per boot, which gives duplicate detection and gap detection in the same structure.
A boot is one set of ranges across all inputs and formats: journal entries name it (_BOOT_ID), and
records of inputs without a boot id (kmsg, syslog, audit.log) join the boot whose span of audit stamps
they fall in, so the same boot read from the journal and from dmesg counts each record once.

Loss accounting (AuditStats):
  suppressed  sum of "kauditd_printk_skb: N callbacks suppressed": records missing from the kernel log
              (kmsg, syslog, journal kernel transport). Not a loss when the input also has journald's
              audit transport, which does not go through printk.
  lost        records the kernel dropped before any reader saw them. audit_log_lost() prints the
              cumulative counter ("audit_lost=N", at most once a second) and then the cause. For the
              causes "backlog limit exceeded", "rate limit exceeded", "out of memory in
              audit_log_start" and "kauditd retry queue overflow" the counter's growth since the
              previous audit_lost= line is added (at least 1 per cause line; a first sighting adds 1,
              since the earlier part of the counter may predate the input). "kauditd hold queue
              overflow" is not counted: the printk and multicast (journald) copies were already
              made; it is reported as hold_queue_lost. Records dropped this way never get a serial,
              so they do not show up as serial gaps.
  serial_gaps holes in the audit serials (every record type takes one) within a boot. Only
              meaningful when the input holds every record type; an input that holds nothing but
              SECCOMP records from journald's audit transport (a ``_AUDIT_TYPE=1326`` match) is
              not checked unless complete_stream=True.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import (
    Any,
    BinaryIO,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from .errors import InputError, SeccompPyError
from .profile import Observation
from .syscalls import abi_for_audit

FORMATS = ("journal-json", "kmsg", "audit-log", "syslog")
AUDIT_SECCOMP = 1326

# The smallest journalctl --output-fields= export that carries everything this parser reads, and the
# fastest to parse: MESSAGE is the whole record (pid, comm, exe, arch, syscall, compat, code) and
# journalctl adds __CURSOR, __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP and _BOOT_ID by itself.
# Read it with the match _TRANSPORT=audit (every record type, so serial gaps can be checked).
JOURNAL_OUTPUT_FIELDS = ("MESSAGE", "_AUDIT_ID", "_SOURCE_REALTIME_TIMESTAMP")

SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF
ACTIONS = {
    0x80000000: "KILL_PROCESS",
    0x00000000: "KILL_THREAD",
    0x00030000: "TRAP",
    0x00050000: "ERRNO",
    0x7FC00000: "USER_NOTIF",
    0x7FF00000: "TRACE",
    0x7FFC0000: "LOG",
    0x7FFF0000: "ALLOW",
}

MAX_WARNINGS = 200
_INTERVAL_LIMIT = 4096  # serial ranges kept per boot before the oldest half is folded into counters
_SUBJECT_CACHE_LIMIT = 65536
_TEXT_EPOCH_LIMIT = 64
_SPAN_SLACK_MS = 10_000  # journald's receive time may lag the audit stamp; a reboot takes longer
_MISSING = object()


def action_name(code: int) -> str:
    """The SECCOMP_RET_* name of an audit record's code (unknown actions act as KILL_PROCESS)."""
    return ACTIONS.get(code & SECCOMP_RET_ACTION_FULL, "UNKNOWN")


def action_data(code: int) -> int:
    """The filter's data bits (errno for ERRNO); 0 on kernels that log only the action."""
    return code & SECCOMP_RET_DATA


_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2})+")


def decode_untrusted(value: Optional[str]) -> Optional[str]:
    """comm=/exe= as audit_log_untrustedstring() writes them: "quoted", or hex when not plain."""
    if value is None:
        return None
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    if value in ("", "(null)", "?"):
        return None
    if _HEX_RE.fullmatch(value):
        return bytes.fromhex(value).decode("utf-8", "backslashreplace")
    return value


class AuditRecord(NamedTuple):
    """One SECCOMP record, de-duplicated. abi/syscall are None when the table does not know them."""

    serial: Optional[int]
    timestamp: Optional[float]  # seconds since the epoch (audit stamp, millisecond precision)
    pid: Optional[int]
    exe: Optional[str]
    comm: Optional[str]
    arch: int
    number: int
    compat: Optional[bool]
    code: int
    action: str
    abi: Optional[str]
    syscall: Optional[str]
    subject: Optional[str]
    source: str
    path: str
    line: int


@dataclass
class AuditStats:
    records: int = 0  # SECCOMP records kept (duplicates excluded)
    duplicates: int = 0  # SECCOMP records dropped because their serial was already seen
    suppressed: int = 0
    lost: int = 0
    loss_events: int = 0  # kernel messages naming a real loss cause
    lost_counter: int = 0  # highest cumulative audit_lost= value seen
    hold_queue_lost: int = 0  # audit_lost growth from "kauditd hold queue overflow" (harmless here)
    serial_gaps: int = 0
    missing_serials: int = 0
    gaps_checked: bool = True
    gap_ranges: List[Tuple[int, int]] = field(default_factory=list)  # the first few missing ranges
    other_records: int = 0  # audit records of other types (they carry serials too)
    unknown: int = 0  # records whose arch or number the tables do not know
    unattributed: int = 0  # records subject_for() did not place
    bad_lines: int = 0
    warnings: List[str] = field(default_factory=list)
    actions: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)  # SECCOMP records kept, by input format
    audit_transport: bool = False  # journald's audit transport was among the inputs
    journal_drops: int = 0  # journald notices about audit messages it could not read

    @property
    def possible_loss(self) -> bool:
        if self.lost or self.loss_events or self.journal_drops:
            return True
        if self.gaps_checked and self.serial_gaps:
            return True
        return bool(self.suppressed and not self.audit_transport)

    def summary(self) -> str:
        return (f"{self.records} SECCOMP records ({self.duplicates} duplicates dropped, {self.unknown} unknown), "
                f"lost {self.lost}, suppressed {self.suppressed}, serial gaps {self.serial_gaps}"
                + ("" if self.gaps_checked else " (not checked: input holds only SECCOMP records)"))


class _Warnings:
    def __init__(self, stats: AuditStats) -> None:
        self.stats = stats
        self.dropped = 0

    def add(self, message: str, path: Optional[str] = None, line: Optional[int] = None) -> None:
        where = "" if path is None else (f"{path}: " if line is None else f"{path}:{line}: ")
        if len(self.stats.warnings) < MAX_WARNINGS:
            self.stats.warnings.append(where + message)
        else:
            self.dropped += 1


# -- serial ranges -----------------------------------------------------------------------------------

_INF = float("inf")


class _Epoch:
    """The serials seen in one boot, as sorted [start, end] ranges (SECCOMP and other types apart), and
    the span of audit stamps (ms) they came with, which places records of inputs without a boot id."""

    __slots__ = ("boot_ms", "floor", "folded_gaps", "folded_missing", "folded_ranges", "max_serial", "max_ts",
                 "min_serial", "min_ts", "other", "seccomp")

    def __init__(self) -> None:
        self.seccomp: List[List[int]] = []
        self.other: List[List[int]] = []
        self.floor: Optional[int] = None  # serials <= floor were folded into the counters below
        self.folded_gaps = 0
        self.folded_missing = 0
        self.folded_ranges: List[Tuple[int, int]] = []
        self.max_serial = -1
        self.min_serial: Optional[int] = None
        self.max_ts: Optional[int] = None  # milliseconds
        self.min_ts: Optional[int] = None
        self.boot_ms: Optional[int] = None  # when the boot started (journal: realtime - monotonic)

    def note_ts(self, serial: int, ts: Optional[int]) -> None:
        if serial > self.max_serial:
            self.max_serial = serial
        if self.min_serial is None or serial < self.min_serial:
            self.min_serial = serial
        if ts is not None:
            if self.max_ts is None or ts > self.max_ts:
                self.max_ts = ts
            if self.min_ts is None or ts < self.min_ts:
                self.min_ts = ts

    def note_end(self, serial: int, ts: Optional[int]) -> None:
        """Extend the span to a later serial and stamp (a run the journal fast path read)."""
        if serial > self.max_serial:
            self.max_serial = serial
        if ts is not None and self.max_ts is not None and ts > self.max_ts:
            self.max_ts = ts

    def holds(self, serial: int, ts: Optional[int]) -> bool:
        """Whether a record stamped ts with this serial belongs to this boot: its stamp lies in the span
        (boots do not overlap in time), or just outside it with the serial on the matching side."""
        if ts is None or self.min_ts is None or self.max_ts is None or self.min_serial is None:
            return False
        if ts < self.min_ts:
            start = self.min_ts if self.boot_ms is None else min(self.boot_ms, self.min_ts)
            return ts >= start - _SPAN_SLACK_MS and serial <= self.min_serial
        if ts > self.max_ts:
            return ts <= self.max_ts + _SPAN_SLACK_MS and serial >= self.max_serial
        return True


def _insert(ranges: List[List[int]], serial: int) -> bool:
    """Add serial to sorted disjoint ranges; False if it was already there."""
    if ranges:
        last = ranges[-1]
        if serial == last[1] + 1:
            last[1] = serial
            return True
        if serial > last[1]:
            ranges.append([serial, serial])
            return True
    i = bisect.bisect_right(ranges, [serial, _INF])  # first range starting after serial
    if i and ranges[i - 1][1] >= serial:
        return False
    joins_prev = i > 0 and ranges[i - 1][1] == serial - 1
    joins_next = i < len(ranges) and ranges[i][0] == serial + 1
    if joins_prev and joins_next:
        ranges[i - 1][1] = ranges[i][1]
        del ranges[i]
    elif joins_prev:
        ranges[i - 1][1] = serial
    elif joins_next:
        ranges[i][0] = serial
    else:
        ranges.insert(i, [serial, serial])
    return True


def _merged(a: List[List[int]], b: List[List[int]]) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    for start, end in sorted([*map(tuple, a), *map(tuple, b)]):
        if out and start <= out[-1][1] + 1:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _holes(ranges: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    return [(ranges[i - 1][1] + 1, ranges[i][0] - 1) for i in range(1, len(ranges))]


class SerialTracker:
    """Audit serials per boot: duplicate detection for SECCOMP records and gap counting for all."""

    def __init__(self) -> None:
        self.boots: Dict[str, _Epoch] = {}
        self.text_epochs: List[_Epoch] = []  # inputs without a boot id (kmsg, syslog, audit.log)
        self.late = 0  # serials below a folded floor (treated as already seen)

    def epoch(self, boot: Optional[str], serial: int, ts: Optional[int]) -> _Epoch:
        """The boot a record belongs to. One boot is one epoch across every input and format, so the
        same record read from the journal and from dmesg (or audit.log, syslog) counts once."""
        if boot:
            epoch = self.boots.get(boot)
            if epoch is None:
                # a boot first seen without its id (dmesg read before the journal): name it now
                for text in reversed(self.text_epochs):
                    if text.holds(serial, ts):
                        self.text_epochs.remove(text)
                        epoch = text
                        break
                else:
                    epoch = _Epoch()
                self.boots[boot] = epoch
            return epoch
        for epoch in self.boots.values():
            if epoch.holds(serial, ts):
                return epoch
        # Without a boot id: serials and stamps both grow within a boot, so a lower serial with a
        # later stamp than everything seen so far starts a new boot.
        for epoch in reversed(self.text_epochs):
            top = max(epoch.max_serial, epoch.seccomp[-1][1] if epoch.seccomp else -1)
            if serial > top or ts is None or epoch.max_ts is None or ts <= epoch.max_ts:
                return epoch
        if len(self.text_epochs) >= _TEXT_EPOCH_LIMIT:
            return self.text_epochs[-1]
        epoch = _Epoch()
        self.text_epochs.append(epoch)
        return epoch

    def add(self, epoch: _Epoch, serial: int, seccomp: bool) -> bool:
        """Record a serial; False when it is a SECCOMP serial seen before (a duplicate)."""
        if epoch.floor is not None and serial <= epoch.floor:
            self.late += 1
            return not seccomp
        if seccomp:
            # A SECCOMP record takes a fresh serial (seccomp runs before audit's syscall entry), so a
            # SECCOMP serial seen before is the same record again (the other journal transport, or
            # overlapping exports).
            if not _insert(epoch.seccomp, serial):
                return False
        else:
            _insert(epoch.other, serial)
        if len(epoch.seccomp) + len(epoch.other) > _INTERVAL_LIMIT:
            self._fold(epoch)
        return True

    @staticmethod
    def _fold(epoch: _Epoch) -> None:
        """Count the holes in the older half of the ranges and forget those ranges (bounded memory)."""
        merged = _merged(epoch.seccomp, epoch.other)
        if epoch.floor is not None:
            merged.insert(0, (epoch.floor, epoch.floor))
        keep_from = len(merged) // 2
        floor = merged[keep_from - 1][1]
        holes = _holes(merged[:keep_from])
        epoch.folded_gaps += len(holes)
        epoch.folded_missing += sum(end - start + 1 for start, end in holes)
        epoch.folded_ranges.extend(holes[: max(0, 20 - len(epoch.folded_ranges))])
        for ranges in (epoch.seccomp, epoch.other):
            kept = [r for r in ranges if r[1] > floor]
            if kept and kept[0][0] <= floor:
                kept[0][0] = floor + 1
            ranges[:] = kept
        epoch.floor = floor

    def gaps(self) -> Tuple[int, int, List[Tuple[int, int]]]:
        """(number of holes, serials missing, the first holes) over every boot."""
        count = missing = 0
        first: List[Tuple[int, int]] = []
        for epoch in [*self.boots.values(), *self.text_epochs]:
            merged = _merged(epoch.seccomp, epoch.other)
            if epoch.floor is not None and merged:
                merged.insert(0, (epoch.floor, epoch.floor))
            holes = _holes(merged)
            count += epoch.folded_gaps + len(holes)
            missing += epoch.folded_missing + sum(end - start + 1 for start, end in holes)
            for hole in [*epoch.folded_ranges, *holes]:
                if len(first) < 20:
                    first.append(hole)
        return count, missing, first


# -- text records (kmsg, syslog, audit.log, journal MESSAGE) ---------------------------------------------

_RECORD_RE = re.compile(
    r"type=(?P<type>\d+|[A-Z][A-Z0-9_]*) (?:msg=)?audit\((?P<sec>\d+)\.(?P<ms>\d+):(?P<serial>\d+)\):\s?"
)
_FORWARDED_RE = re.compile(r"(?:^|\s)audit\[(?P<pid>\d+)\]: SECCOMP (?P<body>.*)$")
_KV_RE = re.compile(r'([A-Za-z_][\w-]*)=("[^"]*"|\S*)')
_SUPPRESSED_RE = re.compile(r"(\w*audit\w*): (\d+) callbacks suppressed")
_AUDIT_LOST_RE = re.compile(r"audit_lost=(\d+)")
_REAL_LOSS = ("backlog limit exceeded", "rate limit exceeded", "out of memory in audit_log_start",
              "retry queue overflow")
_HOLD_QUEUE = "hold queue overflow"
_JOURNALD_DROP_RE = re.compile(r"(?i)audit.*(no buffer space|enobufs|overrun)")
# the journal fast path's needles (a key with its quotes cannot occur inside a JSON string value)
_SECCOMP_MESSAGE = b'"MESSAGE":"SECCOMP '  # + 19: auid=
_KERNEL_MESSAGE = b'"MESSAGE":"audit: type=1326 audit('  # + 34: the stamp
_ID_NEEDLE = b'"_AUDIT_ID":"%d"'
_READ_BUFFER = 1 << 20  # fewer read() calls: a tenth of the time with the default 8 KiB, at this line rate
_RAW_LIMIT = 4096  # undecoded MESSAGE keys (they name pid and call site) kept before they are folded
_DAEMON_TYPES = range(1200, 1300)  # auditd's own records: a separate serial sequence


def _parse_kv(body: str) -> Dict[str, str]:
    return dict(_KV_RE.findall(body.split("\x1d", 1)[0]))  # ENRICHED audit.log appends after 0x1d


def _int(value: Any, base: int = 10) -> Optional[int]:
    if value is None:
        return None
    try:
        return int(value, base)
    except (TypeError, ValueError):
        return None


def _iso(ms: Optional[int]) -> Optional[str]:
    if ms is None:
        return None
    try:
        stamp = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _jtext(value: Any) -> Optional[str]:
    """A journal field as text: journalctl writes non-UTF-8 values as byte arrays, repeated ones as lists."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        if value and all(isinstance(v, int) and 0 <= v < 256 for v in value):
            return bytes(value).decode("utf-8", "backslashreplace")
        return _jtext(value[0]) if value else None
    if isinstance(value, (int, float)):
        return str(value)
    return None


# -- format detection -------------------------------------------------------------------------------------

_SYSLOG_PREFIX_RE = re.compile(
    rb"^(?:<\d+>\d? ?)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
    rb"(?:Z|[+-]\d\d:?\d\d)?) \S+ \S+?(?:\[\d+\])?: ")
_KMSG_PREFIX_RE = re.compile(
    rb"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d [\d:]{8} \d{4}\]\s?"
    rb"|\d+,\d+,\d+,[^;]*;)?(?:audit|kauditd_printk_skb|\w+: \d+ callbacks suppressed)")
_AUDIT_LOG_RE = re.compile(rb"^(?:node=\S+ )?type=[A-Z0-9_]+ msg=audit\(\d+\.\d+:\d+\)")
_AUDIT_TEXT_RE = re.compile(rb"type=(?:\d+|[A-Z][A-Z0-9_]*) (?:msg=)?audit\(\d+\.\d+:\d+\)|callbacks suppressed"
                            rb"|audit_lost=|audit: backlog limit|audit\[\d+\]: SECCOMP ")
_JOURNAL_KEYS = ("__CURSOR", "__REALTIME_TIMESTAMP", "MESSAGE", "_TRANSPORT", "_AUDIT_ID", "_BOOT_ID")
_JOURNAL_FILE_MAGIC = b"LPKSHHRH"
DETECT_BYTES = 1 << 20


def _classify(line: bytes) -> Optional[str]:
    stripped = line.strip().lstrip(b"\x1e")
    if not stripped:
        return None
    if stripped[:1] == b"{":
        try:
            obj = json.loads(stripped)
        except ValueError:
            return None
        if isinstance(obj, dict) and any(k in obj for k in _JOURNAL_KEYS):
            return "journal-json"
        return None
    if _AUDIT_LOG_RE.match(stripped):
        return "audit-log"
    if not _AUDIT_TEXT_RE.search(stripped):
        return None
    if _SYSLOG_PREFIX_RE.match(stripped):
        return "syslog"
    if _KMSG_PREFIX_RE.match(stripped):
        return "kmsg"
    return None


def detect_format(path: Union[str, os.PathLike]) -> Optional[str]:
    """The audit format of a file, or None if it holds no audit data we read (or cannot be read)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(DETECT_BYTES)
    except OSError:
        return None
    return _detect_bytes(head, complete=len(head) < DETECT_BYTES)


def _detect_bytes(head: bytes, complete: bool) -> Optional[str]:
    if head.startswith(_JOURNAL_FILE_MAGIC):
        return None
    lines = head.split(b"\n")
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the read may have cut the last line
    for line in lines:
        fmt = _classify(line)
        if fmt is not None:
            return fmt
    return None


def _detect_lines(lines: Iterable[bytes]) -> Tuple[Optional[str], List[bytes], Iterator[bytes]]:
    """Peek at lines until the format shows; return it, the lines read, and the rest."""
    it = iter(lines)
    seen: List[bytes] = []
    size = 0
    for line in it:
        seen.append(line)
        size += len(line)
        fmt = _classify(line)
        if fmt is not None:
            return fmt, seen, it
        if size > DETECT_BYTES:
            break
    return None, seen, it


# -- the collector ----------------------------------------------------------------------------------------

SubjectFor = Callable[[Optional[int], Optional[str], Optional[str]], Optional[str]]


class _Raw:
    """Per-source aggregates of undecoded keys, folded into observations at resolve time."""

    __slots__ = ("fields", "message", "parsed")

    def __init__(self) -> None:
        # journal MESSAGE: b"auid=.. pid=.. comm=.. exe=.. .. ip=.. code=0x.." plus the code's closing quote
        # (then more), or with subject_for (b" comm=.. compat=..", b"code window", subject) ->
        # [count, first_ms, path, line, arch, nr, code, exe, comm, subject], decoded when the key was new
        self.message: Dict[Any, list] = {}
        # journal field fast path: (arch, syscall, code, exe, comm) as bytes, subject_for's answer
        self.fields: Dict[tuple, list] = {}
        # everything else, decoded: (arch, nr, code, exe, comm, subject)
        self.parsed: Dict[tuple, list] = {}


class AuditCollector:
    """Collects SECCOMP records from any number of inputs into observations.

    by: "exe" or "comm": what names a subject when subject_for is not given (exe falls back to comm).
    subject_for(pid, exe, comm) -> subject, or None to leave the record out (counted as unattributed).
        It is called once per distinct (pid, exe, comm); the profiler uses it to map processes to units.
    complete_stream: True if the inputs hold every audit record type (serial gaps then mean loss),
        False if not, None to decide from the data (see the module docstring).

    Observations carry the count of records and first_seen, the audit stamp (ISO 8601 UTC, ms) of the
    first record read for that key; in a journal export, the earliest. Feeding the same records twice
    (overlapping cursor reads, both journal transports, the journal and dmesg of one boot) counts them
    once, as duplicates.
    """

    def __init__(self, by: str = "exe", subject_for: Optional[SubjectFor] = None,
                 complete_stream: Optional[bool] = None) -> None:
        if by not in ("exe", "comm"):
            raise SeccompPyError(f"by must be 'exe' or 'comm', not {by!r}")
        self.by = by
        self.subject_for = subject_for
        self.complete_stream = complete_stream
        self._stats = AuditStats()
        self._warn = _Warnings(self._stats)
        self._serials = SerialTracker()
        self._raw: Dict[str, _Raw] = {}
        # (subject, abi, syscall, source, exe) -> [count, first_ms]
        self._resolved: Dict[Tuple[str, str, str, str, Optional[str]], list] = {}
        self._resolve_cache: Dict[Tuple[int, int], Tuple[Optional[str], Optional[str]]] = {}
        self._subject_cache: Dict[tuple, Optional[str]] = {}
        self._raw_subjects: Dict[tuple, Optional[str]] = {}
        self._lost_prev: Optional[int] = None  # last audit_lost= value, awaiting its cause line
        self._lost_pending: Optional[int] = None  # growth announced by that line
        self._lost_committed = 0
        self._audit_other = False  # audit-transport records of other types seen
        self._text_seen = False  # inputs that carry every record type (kernel log, audit.log)
        self._journal_epoch: Optional[_Epoch] = None
        self._unknown_seen: set = set()

    # -- public API --------------------------------------------------------------------------------
    @property
    def stats(self) -> AuditStats:
        self._resolve()
        self._finish_stats()
        return self._stats

    def feed_file(self, path: Union[str, os.PathLike], fmt: str = "auto") -> str:
        """Read one file ('-' or a pipe works too); return the format used.

        Raises InputError for unreadable files, unknown formats, and files with nothing we can read."""
        spath = os.fspath(path)
        try:
            handle = open(spath, "rb", buffering=_READ_BUFFER)  # noqa: SIM115 - closed below, also on error
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", spath) from None
        with handle:
            head = b""
            if fmt == "auto":
                head = handle.read(DETECT_BYTES)
                if not head:
                    raise InputError("empty file: no audit records", spath)
                fmt = _detect_bytes(head, complete=len(head) < DETECT_BYTES)
                if fmt is None:
                    if head.startswith(_JOURNAL_FILE_MAGIC):
                        raise InputError("a binary journal file: export it with journalctl --file=FILE -o json",
                                         spath)
                    raise InputError("no SECCOMP audit records or journal JSON found (not an audit log?)", spath)
            _check_format(fmt, spath)
            lines = _resume(head, handle) if head else handle
            if fmt == "journal-json":
                self._feed_journal(lines, spath, is_file=True)
            else:
                self._feed_text(lines, spath, fmt, is_file=True)
            return fmt

    def feed_lines(self, lines: Iterable[Union[str, bytes]], path: str = "<input>", fmt: str = "auto") -> str:
        """Read lines (str or bytes, with or without newlines); return the format used."""
        return self._feed_iter(_as_bytes(lines), path, fmt, is_file=False)

    def records(self, lines: Iterable[Union[str, bytes]], fmt: str = "auto",
                path: str = "<input>") -> Iterator[AuditRecord]:
        """Yield each new SECCOMP record (duplicates dropped) while also collecting it."""
        it = _as_bytes(lines)
        if fmt == "auto":
            fmt, head, rest = _detect_lines(it)
            if fmt is None:
                if any(line.strip() for line in head):
                    raise InputError("no audit records or journal JSON found", path)
                return
            it = _chain(head, rest)
        _check_format(fmt, path)
        if fmt == "journal-json":
            for lineno, line in enumerate(it, 1):
                rec = self._journal_line_slow(line, path, lineno, want=True)
                if rec:
                    yield rec
        else:
            self._text_seen = True
            for lineno, line in enumerate(it, 1):
                if b"audit" not in line:
                    continue
                rec = self._text_line(line.decode("utf-8", "backslashreplace"), path, lineno, fmt, None, True)
                if rec is not None:
                    yield rec

    def observations(self) -> Iterator[Observation]:
        """Aggregated observations so far, one per (subject, ABI, syscall, source, exe)."""
        self._resolve()
        for (subject, abi, syscall, source, exe), (count, first) in sorted(
                self._resolved.items(), key=lambda kv: tuple("" if v is None else v for v in kv[0])):
            yield Observation(subject, abi, syscall, count, _iso(first), source, exe)

    def take_observations(self) -> List[Observation]:
        """observations(), then forget them; serial and loss state stay (for cursor-by-cursor reading)."""
        out = list(self.observations())
        self._resolved.clear()
        return out

    # -- feeding -----------------------------------------------------------------------------------
    def _feed_iter(self, lines: Iterable[bytes], path: str, fmt: str, is_file: bool) -> str:
        if fmt == "auto":
            fmt, head, rest = _detect_lines(lines)
            if fmt is None:
                if not any(line.strip() for line in head):
                    if is_file:
                        raise InputError("empty file: no audit records", path)
                    return "journal-json"  # nothing new (e.g. an empty read from a cursor)
                raise InputError("no SECCOMP audit records or journal JSON found (not an audit log?)", path)
            lines = _chain(head, rest)
        _check_format(fmt, path)
        if fmt == "journal-json":
            self._feed_journal(lines, path, is_file)
        else:
            self._feed_text(lines, path, fmt, is_file)
        return fmt

    def _feed_text(self, lines: Iterable[bytes], path: str, fmt: str, is_file: bool) -> None:
        self._text_seen = True
        found = total = 0
        for lineno, line in enumerate(lines, 1):
            total += 1
            if line.find(b"audit") < 0:
                continue
            if line.find(b"\x00") >= 0:
                self._stats.bad_lines += 1
                self._warn.add("binary data in a text log line, skipped", path, lineno)
                continue
            found += 1
            self._text_line(line.decode("utf-8", "backslashreplace"), path, lineno, fmt, None, False)
        if total == 0:
            if is_file:
                self._warn.add("empty file: no audit records", path)
        elif found == 0:
            self._warn.add(f"no audit lines in {total} lines (is this a {fmt} file?)", path)

    def _feed_journal(self, lines: Iterable[bytes], path: str, is_file: bool) -> None:
        """journalctl -o json, one object per line.

        Most lines take a bytes.find() fast path: a key written with its quotes ('"_AUDIT_ID":"') cannot
        occur inside a JSON string value, where quotes are escaped. The common line, an audit-transport
        SECCOMP record with the next serial, costs three searches: MESSAGE, the expected '"_AUDIT_ID":"N"'
        and MESSAGE's " code=". The aggregate keys on the undecoded MESSAGE from auid= to the code; a new
        key is decoded once (and proven to lie inside MESSAGE) before it counts. Lines with damage, byte
        arrays, repeated fields, other record types or a key that does not decode take json.loads."""
        stats = self._stats
        tracker = self._serials
        source = "journal-json"
        raw = self._raw.get(source)
        if raw is None:
            raw = self._raw[source] = _Raw()
        agg = raw.message
        agg_fields = raw.fields
        want_pid = self.subject_for is not None
        fast = not want_pid  # with subject_for the key needs the process, which the raw key does not name
        raw_subjects = self._raw_subjects
        by_comm = self.by == "comm"
        epoch = self._journal_epoch
        run = epoch.seccomp[-1] if epoch is not None and epoch.seccomp else None
        nxt = run[1] + 1 if run is not None else -1  # the serial that extends run; run[1] lags behind it
        nxt_text = _ID_NEEDLE % nxt  # the field as the common case, the next serial, would read
        next_needle = _id_needles(nxt + 1)  # nxt_text of nxt + 1, nxt + 2, ...
        kept = fast_kept = dups = valid = lineno = 0  # fast_kept: audit-transport records of the fast path
        first_bad = None
        saw_audit = saw_kernel = False
        fields_first = False  # set by the first line without MESSAGE: a --output-fields export
        for line in lines:
            lineno += 1
            m = -1 if fields_first else line.find(_SECCOMP_MESSAGE)
            # (find, not `in`: bytes.__contains__ first tries the needle as an int and raises, on 3.11)
            if m >= 0 and fast and line.find(nxt_text) >= 0:
                cd = line.find(b" code=", m)
                # an object as journalctl writes it, not cut off: {..."}\n
                if cd > 0 and line[-3:] == b'"}\n' and line[0] == 123:
                    key = line[m + 19:cd + 17]
                    entry = agg.get(key)
                    if entry is None:
                        entry = self._message_entry(agg, key, None, line, path, lineno)
                    if entry is not None:
                        entry[0] += 1
                        fast_kept += 1
                        nxt += 1
                        nxt_text = next_needle()
                        continue
            # -- everything else: the same steps, one at a time --------------------------------------
            serial = -1
            stamp = None
            key = entry = None
            owner = agg  # the aggregate that holds entry
            if m >= 0:
                # journald's audit transport; MESSAGE is the record as the kernel wrote it:
                # "SECCOMP auid= uid= gid= ses= [subj=] pid= comm= exe= sig= arch= syscall= compat= ip= code="
                saw_audit = True
                serial = nxt if line.find(nxt_text) >= 0 else _audit_id(line)
                body = m + 19
            elif not fields_first:
                m = line.find(_KERNEL_MESSAGE)
                if m >= 0:
                    # the kernel transport's copy: "audit: type=1326 audit(SEC.MS:SERIAL): auid= ..."
                    saw_kernel = True
                    s = line.find(b":", m + 34)
                    q = line.find(b"): ", s) if s >= 0 else -1
                    stamp = line[m + 34:s]
                    if q > s and b'"' not in stamp:
                        try:
                            serial = int(line[s + 1:q])
                        except ValueError:
                            serial = -1
                        if (saw_audit or fast_kept) and run is not None and run[0] <= serial < nxt:
                            dups += 1  # a copy of an audit-transport record read a moment ago
                            continue
                    body = q + 3
            if m >= 0:
                if serial >= 0:
                    cd = line.find(b" code=", body)
                    if cd > 0 and _object_line(line):
                        key, entry = self._message_line_entry(agg, line, body, cd, stamp, path, lineno, want_pid)
                    if entry is None:
                        serial = -1
            else:
                cd = line.find(b'"_AUDIT_FIELD_CODE":"')
                if cd >= 0:
                    # --output-fields without MESSAGE. arch= and code= are sliced as fixed windows that
                    # end inside the next key's name at the latest; the cut at the closing quote
                    # happens once per distinct key, when resolving.
                    saw_audit = True
                    nr = line.find(b'"_AUDIT_FIELD_SYSCALL":"')
                    ar = line.find(b'"_AUDIT_FIELD_ARCH":"')
                    x = line.find(b'"_EXE":"')
                    if nr >= 0 and ar >= 0 and _object_line(line):
                        nr += 24
                        exe = comm = pid = None
                        clean = True  # every value found its closing quote and has no escapes
                        if x >= 0:
                            x += 8
                            q = line.find(b'"', x)
                            exe = line[x:q]
                            clean = q >= 0 and b"\\" not in exe
                        if by_comm or want_pid or exe is None:
                            x = line.find(b'"_COMM":"')
                            if x >= 0:
                                x += 9
                                q = line.find(b'"', x)
                                comm = line[x:q]
                                clean = clean and q >= 0 and b"\\" not in comm
                        if want_pid:
                            x = line.find(b'"_PID":"')
                            if x >= 0:
                                x += 8
                                q = line.find(b'"', x)
                                pid = line[x:q]
                                clean = clean and q >= 0
                        q2 = line.find(b'"', nr)
                        if clean and q2 > nr:
                            serial = nxt if line.find(nxt_text) >= 0 else _audit_id(line)
                        if serial >= 0:
                            if want_pid:
                                who = (pid, exe, comm)
                                pid = raw_subjects.get(who, _MISSING)
                                if pid is _MISSING:
                                    pid = self._raw_subject(who)
                            key = (line[ar + 21:ar + 29], line[nr:q2], line[cd + 21:cd + 31], exe, comm, pid)
                            owner = agg_fields
                            entry = agg_fields.get(key)
                            if entry is None:
                                entry = agg_fields[key] = [0, _journal_ms(line), path, lineno]
                            fields_first = True
            if serial >= 0:
                if serial == nxt:
                    nxt += 1  # the common case: the next serial of the same boot
                    nxt_text = next_needle()
                else:
                    if run is not None:
                        run[1] = nxt - 1
                        epoch.note_end(nxt - 1, _journal_ms(line))  # the fast path does not note stamps
                    epoch = self._journal_serial_epoch(line, serial, stamp)
                    fresh = tracker.add(epoch, serial, True)
                    run = epoch.seccomp[-1] if epoch.seccomp else None
                    nxt = run[1] + 1 if run is not None else -1
                    nxt_text = _ID_NEEDLE % nxt
                    next_needle = _id_needles(nxt + 1)
                    if not fresh:
                        dups += 1
                        if not entry[0] and owner.get(key) is entry:
                            del owner[key]  # made for this duplicate: the fast path must not count on it
                        continue
                kept += 1
                if not entry[0]:  # made for this line, or for a duplicate before: first seen is now
                    entry[1:4] = _stamp_ms(stamp) if stamp else _journal_ms(line), path, lineno
                entry[0] += 1
                continue
            if line.find(b"audit") < 0 and line.find(b'"_AUDIT_') < 0:
                # not an audit line: only check that it is a JSON object at all
                head = line.lstrip(b" \t\x1e")[:1]
                if head == b"{":
                    valid += 1
                elif head not in (b"", b"\n", b"\r"):
                    stats.bad_lines += 1
                    if first_bad is None:
                        first_bad = lineno
                    self._warn.add("not a journal JSON object (journalctl -o json writes one per line)",
                                   path, lineno)
                continue
            # everything else takes the generic path
            if run is not None:
                run[1] = nxt - 1
                epoch.note_end(nxt - 1, _journal_ms(line))
            self._journal_epoch = epoch
            if self._journal_line_slow(line, path, lineno, want=False) is False:
                if first_bad is None:
                    first_bad = lineno
            else:
                valid += 1
            epoch = self._journal_epoch
            run = epoch.seccomp[-1] if epoch is not None and epoch.seccomp else None
            nxt = run[1] + 1 if run is not None else -1
            nxt_text = _ID_NEEDLE % nxt
            next_needle = _id_needles(nxt + 1)
        if run is not None:
            run[1] = nxt - 1
            epoch.note_end(nxt - 1, _journal_ms(line))  # the last line: no earlier than the last record
        self._journal_epoch = epoch
        kept += fast_kept
        stats.records += kept
        stats.duplicates += dups
        valid += kept + dups
        stats.formats[source] += kept
        if saw_audit or fast_kept:
            stats.audit_transport = True
        if saw_kernel:
            self._text_seen = True  # the kernel log carries every record type
        if lineno == 0 and is_file:
            self._warn.add("empty file: no audit records", path)
        elif valid == 0 and first_bad is not None:
            raise InputError("no journal JSON objects found: not a journalctl -o json export", path, first_bad)

    def _message_line_entry(self, agg: Dict[Any, list], line: bytes, body: int, cd: int, stamp: Optional[bytes],
                            path: str, lineno: int, want_pid: bool) -> Tuple[Any, Optional[list]]:
        """The aggregate key and entry for a MESSAGE record (new ones start at count 0); entry None: take
        json.loads."""
        if not want_pid:
            key: Any = line[body:cd + 17]
            entry = agg.get(key)
            return key, entry if entry is not None else self._message_entry(agg, key, stamp, line, path, lineno)
        # attribute now (cached per process), so the aggregate keys on the subject, not on the pid
        c = line.find(b" comm=", body, cd)
        if c < 0:
            return None, None
        p = line.find(b" pid=", body, c)
        ip = line.find(b" ip=", c, cd)
        end = ip if ip >= 0 else cd
        who = (line[p + 5:c] if p >= 0 else b"", line[c:end])
        subject = self._raw_subjects.get(who, _MISSING)
        if subject is _MISSING:
            subject = self._raw_subject(who)
        key = (line[c:end], line[cd + 6:cd + 17], subject)
        entry = agg.get(key)
        if entry is None:
            info = _message_fields(line[body:cd + 17])
            if info is None:
                return key, None
            arch, number, code, exe, comm, _pid = info
            entry = agg[key] = [0, _stamp_ms(stamp) if stamp else _journal_ms(line), path, lineno,
                                arch, number, code, exe, comm, subject]
        return key, entry

    def _message_entry(self, agg: Dict[Any, list], key: bytes, stamp: Optional[bytes], line: bytes, path: str,
                       lineno: int) -> Optional[list]:
        """A new entry for an undecoded MESSAGE key (count 0), or None if the key does not decode."""
        info = _message_fields(key)
        if info is None:
            return None
        if len(agg) >= _RAW_LIMIT:
            self._resolve()  # the raw key names the process and call site: bound their number
        arch, number, code, exe, comm, _pid = info
        entry = agg[key] = [0, _stamp_ms(stamp) if stamp else _journal_ms(line), path, lineno,
                            arch, number, code, exe, comm, self._subject(None, exe, comm)]
        return entry

    def _journal_serial_epoch(self, line: bytes, serial: int, stamp: Optional[bytes]) -> _Epoch:
        b = line.find(b'"_BOOT_ID":"')
        boot = line[b + 12:line.find(b'"', b + 12)].decode("ascii", "replace") if b >= 0 else None
        epoch = self._epoch(boot, serial, _stamp_ms(stamp) if stamp else _journal_ms(line))
        if boot and epoch.boot_ms is None:
            epoch.boot_ms = _boot_ms(_journal_field(line, b'"__REALTIME_TIMESTAMP":"'),
                                     _journal_field(line, b'"__MONOTONIC_TIMESTAMP":"'))
        return epoch

    def _epoch(self, boot: Optional[str], serial: int, ms: Optional[int]) -> _Epoch:
        epoch = self._serials.epoch(boot or None, serial, ms)
        epoch.note_ts(serial, ms)
        if boot:
            self._journal_epoch = epoch
        return epoch

    # -- the generic journal path ------------------------------------------------------------------
    def _journal_line_slow(self, line: bytes, path: str, lineno: int, want: bool) -> Any:
        """Parse one journal JSON line with json.loads. Returns the AuditRecord (want=True) or None;
        False when the line is not valid JSON."""
        text = line.strip(b" \t\r\n\x1e")
        if not text:
            return None
        try:
            obj = json.loads(text)
        except ValueError as exc:
            self._stats.bad_lines += 1
            what = "truncated JSON" if text[:1] == b"{" and not text.endswith(b"}") else "invalid JSON"
            self._warn.add(f"{what} ({exc.__class__.__name__}: {str(exc)[:80]}), line skipped", path, lineno)
            return False
        if not isinstance(obj, dict):
            self._stats.bad_lines += 1
            self._warn.add("not a journal JSON object, line skipped", path, lineno)
            return False
        return self._journal_object(obj, path, lineno, want)

    def _journal_object(self, obj: Dict[str, Any], path: str, lineno: int, want: bool) -> Optional[AuditRecord]:
        boot = _jtext(obj.get("_BOOT_ID"))
        if boot:
            epoch = self._serials.boots.get(boot)
            if epoch is not None and epoch.boot_ms is None:
                epoch.boot_ms = _boot_ms(_jtext(obj.get("__REALTIME_TIMESTAMP")),
                                         _jtext(obj.get("__MONOTONIC_TIMESTAMP")))
        message = _jtext(obj.get("MESSAGE"))
        audit_type = _int(_jtext(obj.get("_AUDIT_TYPE")))
        serial = _int(_jtext(obj.get("_AUDIT_ID")))
        is_audit = audit_type is not None or serial is not None or _jtext(obj.get("_TRANSPORT")) == "audit"
        if not is_audit:
            if message is not None and "audit(" in message:
                self._text_seen = True
            if message is not None:
                ms = _us_to_ms(_jtext(obj.get("__REALTIME_TIMESTAMP")))
                ident = _jtext(obj.get("SYSLOG_IDENTIFIER")) or ""
                if ident == "systemd-journald" and _JOURNALD_DROP_RE.search(message):
                    self._stats.journal_drops += 1
                    self._warn.add(f"journald could not read audit messages: {message[:120]}", path, lineno)
                    return None
                return self._text_line(message, path, lineno, "journal-json", boot, want, fallback_ms=ms)
            return None
        # journald's audit transport
        fields = None
        has_seccomp_fields = obj.get("_AUDIT_FIELD_CODE") is not None and obj.get("_AUDIT_FIELD_SYSCALL") is not None
        if audit_type is None and (has_seccomp_fields or (message or "").startswith("SECCOMP ")):
            audit_type = AUDIT_SECCOMP
        ms = _us_to_ms(_jtext(obj.get("_SOURCE_REALTIME_TIMESTAMP")) or _jtext(obj.get("__REALTIME_TIMESTAMP")))
        if audit_type != AUDIT_SECCOMP:
            self._stats.other_records += 1
            self._audit_other = True
            if serial is not None and (audit_type is None or audit_type not in _DAEMON_TYPES):
                epoch = self._epoch(boot, serial, ms)
                self._serials.add(epoch, serial, False)
            return None
        self._stats.audit_transport = True

        def get(journal_key: str, kv_key: str) -> Optional[str]:
            nonlocal fields
            value = _jtext(obj.get(journal_key))
            if value is not None:
                return value
            if fields is None:
                fields = _parse_kv(message.split(" ", 1)[1]) if message and " " in message else {}
            return fields.get(kv_key)

        arch = _int(get("_AUDIT_FIELD_ARCH", "arch"), 16)
        number = _int(get("_AUDIT_FIELD_SYSCALL", "syscall"))
        code = _int(get("_AUDIT_FIELD_CODE", "code"), 16)
        if arch is None or number is None or code is None:
            self._stats.bad_lines += 1
            self._warn.add("SECCOMP record without arch, syscall or code, skipped", path, lineno)
            return None
        compat_text = get("_AUDIT_FIELD_COMPAT", "compat")
        pid = _int(_jtext(obj.get("_PID")))
        comm = _jtext(obj.get("_COMM"))
        exe = _jtext(obj.get("_EXE"))
        if pid is None or comm is None or exe is None:
            if fields is None:
                fields = _parse_kv(message.split(" ", 1)[1]) if message and " " in message else {}
            pid = pid if pid is not None else _int(fields.get("pid"))
            comm = comm if comm is not None else decode_untrusted(fields.get("comm"))
            exe = exe if exe is not None else decode_untrusted(fields.get("exe"))
        compat = None if compat_text is None else compat_text == "1"
        return self._seccomp(boot, serial, ms, pid, exe, comm, arch, number, compat, code,
                             "journal-json", path, lineno, want)

    # -- text lines --------------------------------------------------------------------------------
    def _text_line(self, text: str, path: str, lineno: int, source: str, boot: Optional[str], want: bool,
                   fallback_ms: Optional[int] = None) -> Optional[AuditRecord]:
        match = _RECORD_RE.search(text)
        if match is not None:
            rtype = match.group("type")
            serial = int(match.group("serial"))
            ms = int(match.group("sec")) * 1000 + int(match.group("ms")[:3].ljust(3, "0"))
            if rtype not in ("1326", "SECCOMP"):
                number = _int(rtype)
                self._stats.other_records += 1
                if (number is None and not rtype.startswith("DAEMON_")) or (number is not None
                                                                            and number not in _DAEMON_TYPES):
                    self._serials.add(self._epoch(boot, serial, ms), serial, False)
                return None
            fields = _parse_kv(text[match.end():])
            return self._seccomp_fields(fields, boot, serial, ms, source, path, lineno, want)
        forwarded = _FORWARDED_RE.search(text)
        if forwarded is not None:  # journald forwarding its audit transport to syslog: no serial
            fields = _parse_kv(forwarded.group("body"))
            fields.setdefault("pid", forwarded.group("pid"))
            return self._seccomp_fields(fields, boot, None, fallback_ms, source, path, lineno, want)
        self._loss_line(text, path, lineno)
        return None

    def _seccomp_fields(self, fields: Dict[str, str], boot: Optional[str], serial: Optional[int],
                        ms: Optional[int], source: str, path: str, lineno: int, want: bool) -> Optional[AuditRecord]:
        arch = _int(fields.get("arch"), 16)
        number = _int(fields.get("syscall"))
        code = _int(fields.get("code"), 16)
        if arch is None or number is None or code is None:
            self._stats.bad_lines += 1
            self._warn.add("SECCOMP record without arch, syscall or code, skipped", path, lineno)
            return None
        compat = fields.get("compat")
        return self._seccomp(boot, serial, ms, _int(fields.get("pid")), decode_untrusted(fields.get("exe")),
                             decode_untrusted(fields.get("comm")), arch, number,
                             None if compat is None else compat == "1", code, source, path, lineno, want)

    def _loss_line(self, text: str, path: str, lineno: int) -> None:
        stats = self._stats
        suppressed = _SUPPRESSED_RE.search(text)
        if suppressed is not None:
            stats.suppressed += int(suppressed.group(2))
            return
        lost = _AUDIT_LOST_RE.search(text)
        if lost is not None:
            value = int(lost.group(1))
            if value > stats.lost_counter:
                stats.lost_counter = value
            prev = self._lost_prev
            # a first sighting, or a counter that restarted (reboot), tells only that one was lost
            growth = 1 if prev is None or value < prev else value - prev
            self._flush_lost_pending()
            self._lost_prev = value
            self._lost_pending = max(1, growth)
            return
        if _HOLD_QUEUE in text and "audit" in text:
            if self._lost_pending is not None:
                stats.hold_queue_lost += self._lost_pending
                self._lost_pending = None
            return
        for cause in _REAL_LOSS:
            if cause in text and "audit" in text:
                stats.loss_events += 1
                self._lost_committed += self._lost_pending if self._lost_pending is not None else 1
                self._lost_pending = None
                self._warn.add(f"the kernel dropped audit records ({cause})", path, lineno)
                return

    def _flush_lost_pending(self) -> None:
        # An audit_lost= line whose cause line never came: count it as lost (conservative).
        if self._lost_pending is not None:
            self._lost_committed += self._lost_pending
            self._lost_pending = None

    # -- one record --------------------------------------------------------------------------------
    def _seccomp(self, boot: Optional[str], serial: Optional[int], ms: Optional[int], pid: Optional[int],
                 exe: Optional[str], comm: Optional[str], arch: int, number: int, compat: Optional[bool],
                 code: int, source: str, path: str, lineno: int, want: bool) -> Optional[AuditRecord]:
        stats = self._stats
        if serial is not None:
            epoch = self._epoch(boot, serial, ms)
            if not self._serials.add(epoch, serial, True):
                stats.duplicates += 1
                return None
        stats.records += 1
        stats.formats[source] += 1
        subject = self._subject(pid, exe, comm)
        raw = self._raw.get(source)
        if raw is None:
            raw = self._raw[source] = _Raw()
        key = (arch, number, code, exe, comm, subject if self.subject_for is not None else None)
        entry = raw.parsed.get(key)
        if entry is None:
            raw.parsed[key] = [1, ms, path, lineno]
        else:
            entry[0] += 1
            if ms is not None and (entry[1] is None or ms < entry[1]):
                entry[1] = ms
        if not want:
            return None
        abi, name = self._resolve_number(arch, number)
        return AuditRecord(serial, None if ms is None else ms / 1000.0, pid, exe, comm, arch, number, compat, code,
                           action_name(code), abi, name, subject, source, path, lineno)

    def _subject(self, pid: Optional[int], exe: Optional[str], comm: Optional[str]) -> Optional[str]:
        if self.subject_for is None:
            return (comm if self.by == "comm" else exe) or exe or comm
        key = (pid, exe, comm)
        cache = self._subject_cache
        if key in cache:
            return cache[key]
        if len(cache) >= _SUBJECT_CACHE_LIMIT:
            cache.clear()
        subject = cache[key] = self.subject_for(pid, exe, comm)
        return subject

    def _raw_subject(self, who: tuple) -> Optional[str]:
        """subject_for() for the fast paths' undecoded (pid, comm= exe=) or (pid, exe, comm) slices."""
        if len(self._raw_subjects) >= _SUBJECT_CACHE_LIMIT:
            self._raw_subjects.clear()
        pid = _int(who[0].decode("ascii", "replace")) if who[0] else None
        if len(who) == 2:
            try:
                text = json.loads(b'"' + who[1] + b'"')
            except ValueError:
                text = who[1].decode("utf-8", "backslashreplace")
            fields = _parse_kv(text)
            exe, comm = decode_untrusted(fields.get("exe")), decode_untrusted(fields.get("comm"))
        else:
            exe = None if who[1] is None else who[1].decode("utf-8", "backslashreplace")
            comm = None if who[2] is None else who[2].decode("utf-8", "backslashreplace")
        subject = self._raw_subjects[who] = self._subject(pid, exe, comm)
        return subject

    def _resolve_number(self, arch: int, number: int) -> Tuple[Optional[str], Optional[str]]:
        key = (arch, number)
        hit = self._resolve_cache.get(key)
        if hit is None:
            try:
                abi, nr = abi_for_audit(arch, number)
            except SeccompPyError:
                hit = (None, None)
            else:
                hit = (abi.name, abi.by_number.get(nr))
            self._resolve_cache[key] = hit
        return hit

    # -- resolving ---------------------------------------------------------------------------------
    def _resolve(self) -> None:
        for source, raw in self._raw.items():
            for count, first, path, lineno, arch, number, code, exe, comm, subject in raw.message.values():
                if count:  # entries made for a record that then was a duplicate stay at 0
                    self._fold(source, arch, number, code, exe, comm, subject, count, first, path, lineno)
            raw.message.clear()
            for key, (count, first, path, lineno) in raw.fields.items():
                if count:
                    self._fold_fields(source, key, count, first, path, lineno)
            raw.fields.clear()
            for (arch, number, code, exe, comm, subject), (count, first, path, lineno) in raw.parsed.items():
                if self.subject_for is None:
                    subject = self._subject(None, exe, comm)
                self._fold(source, arch, number, code, exe, comm, subject, count, first, path, lineno)
            raw.parsed.clear()

    def _fold_fields(self, source: str, key: tuple, count: int, first: Optional[int], path: str,
                     lineno: int) -> None:
        arch_raw, nr_raw, code_raw, exe_raw, comm_raw, attributed = key
        arch = _int(arch_raw.split(b'"', 1)[0].decode("ascii", "replace"), 16)
        number = _int(nr_raw.decode("ascii", "replace"))
        code = _int(code_raw.split(b'"', 1)[0].decode("ascii", "replace"), 16)
        if arch is None or number is None or code is None:
            self._unreadable(source, count, path, lineno)
            return
        exe = None if exe_raw is None else exe_raw.decode("utf-8", "backslashreplace")
        comm = None if comm_raw is None else comm_raw.decode("utf-8", "backslashreplace")
        subject = attributed if self.subject_for is not None else self._subject(None, exe, comm)
        self._fold(source, arch, number, code, exe, comm, subject, count, first, path, lineno)

    def _unreadable(self, source: str, count: int, path: str, lineno: int) -> None:
        # counted as records by the fast path; they are damaged lines instead
        self._stats.records -= count
        self._stats.formats[source] -= count
        if self._stats.formats[source] <= 0:
            del self._stats.formats[source]
        self._stats.bad_lines += count
        self._warn.add("SECCOMP record with unreadable arch, syscall or code, skipped", path, lineno)

    def _fold(self, source: str, arch: int, number: int, code: int, exe: Optional[str], comm: Optional[str],
              subject: Optional[str], count: int, first: Optional[int], path: str, lineno: int) -> None:
        stats = self._stats
        stats.actions[action_name(code)] += count
        abi, name = self._resolve_number(arch, number)
        if abi is None or name is None:
            stats.unknown += count
            what = (f"unknown audit arch 0x{arch:08x}" if abi is None
                    else f"syscall number {number} is not in the {abi} table")
            if (arch, number) not in self._unknown_seen:
                self._unknown_seen.add((arch, number))
                self._warn.add(f"{what} ({comm or exe or '?'}), record not resolved", path, lineno)
            return
        if subject is None:
            stats.unattributed += count
            return
        exe_key = exe if exe else None
        rkey = (subject, abi, name, source, exe_key)
        entry = self._resolved.get(rkey)
        if entry is None:
            self._resolved[rkey] = [count, first]
        else:
            entry[0] += count
            if first is not None and (entry[1] is None or first < entry[1]):
                entry[1] = first

    def _finish_stats(self) -> None:
        stats = self._stats
        count, missing, first = self._serials.gaps()
        stats.serial_gaps = count
        stats.missing_serials = missing
        stats.gap_ranges = first
        # an audit_lost= line whose cause line has not come (yet) counts as lost, conservatively
        stats.lost = self._lost_committed + (self._lost_pending or 0)
        if self.complete_stream is not None:
            stats.gaps_checked = self.complete_stream
        else:
            # journald's audit transport filtered to SECCOMP alone hides the other types' serials
            stats.gaps_checked = not (stats.audit_transport and not self._audit_other and not self._text_seen)
        if self._warn.dropped:
            note = f"... {self._warn.dropped} more warnings not shown"
            if stats.warnings and stats.warnings[-1].startswith("... "):
                stats.warnings[-1] = note
            else:
                stats.warnings.append(note)
            self._warn.dropped = 0



def _journal_ms(line: bytes) -> Optional[int]:
    t = line.find(b'"_SOURCE_REALTIME_TIMESTAMP":"')
    if t >= 0:
        t += 30
    else:
        t = line.find(b'"__REALTIME_TIMESTAMP":"')
        if t < 0:
            return None
        t += 24
    value = line[t:line.find(b'"', t)]
    try:
        return int(value) // 1000
    except ValueError:
        return None


_ID_TAILS = [b"%03d\"" % n for n in range(1000)]


def _id_blocks(start: int) -> Iterator[List[bytes]]:
    """The needles in blocks: the first 16 one by one (a run may end soon: other record types in
    between, a new boot), then per thousand, a common head plus the three last digits."""
    for serial in range(start, start + 16):
        yield [_ID_NEEDLE % serial]
    start += 16
    while start < 1000:
        yield [_ID_NEEDLE % start]
        start += 1
    while True:
        head = b'"_AUDIT_ID":"%d' % (start // 1000)
        yield list(map(head.__add__, _ID_TAILS[start % 1000:]))
        start += 1000 - start % 1000


def _id_needles(start: int) -> Callable[[], bytes]:
    """next() of the '"_AUDIT_ID":"N"' needles from start on, made in blocks (cheaper than one % each)."""
    return itertools.chain.from_iterable(_id_blocks(start)).__next__


def _object_line(line: bytes) -> bool:
    """Whether line looks whole: '{' to '"}' or ']}' (journalctl's last value is a string or an array).
    Catches cut-off lines; garbage inside a line is not looked for (journalctl does not write it)."""
    text = line.strip(b" \t\r\n\x1e")
    return text[:1] == b"{" and text[-2:] in (b'"}', b"]}")


def _audit_id(line: bytes) -> int:
    """The _AUDIT_ID of a journal line, -1 if it has none as a plain string."""
    s = line.find(b'"_AUDIT_ID":"')
    if s < 0:
        return -1
    s += 13
    q = line.find(b'"', s)
    try:
        return int(line[s:q]) if q > s else -1
    except ValueError:
        return -1


def _message_fields(key: bytes) -> Optional[Tuple[int, int, int, Optional[str], Optional[str], Optional[int]]]:
    """(arch, nr, code, exe, comm, pid) of an undecoded MESSAGE slice "... code=0x7ffc0000"...", or None when
    the slice is not provably inside MESSAGE (an unescaped quote before the code, no quote after it) or a
    field is unreadable: the line then takes json.loads."""
    i = key.find(b" code=")
    q = key.find(b'"', i + 6)
    if i < 0 or q < 0:
        return None
    try:
        text = json.loads(b'"' + key[:i] + b'"')
    except ValueError:
        return None
    fields = _parse_kv(text)
    arch = _int(fields.get("arch"), 16)
    number = _int(fields.get("syscall"))
    code = _int(key[i + 6:q].decode("ascii", "replace"), 16)
    if arch is None or number is None or code is None:
        return None
    return (arch, number, code, decode_untrusted(fields.get("exe")), decode_untrusted(fields.get("comm")),
            _int(fields.get("pid")))


def _journal_field(line: bytes, needle: bytes) -> Optional[bytes]:
    i = line.find(needle)
    if i < 0:
        return None
    i += len(needle)
    return line[i:line.find(b'"', i)]


def _boot_ms(realtime_us: Any, monotonic_us: Any) -> Optional[int]:
    """When the boot started, from one journal entry's __REALTIME_TIMESTAMP and __MONOTONIC_TIMESTAMP."""
    try:
        return (int(realtime_us) - int(monotonic_us)) // 1000
    except (TypeError, ValueError):
        return None


def _stamp_ms(stamp: bytes) -> Optional[int]:
    """b"1795367036.883" (the audit(SEC.MS:SERIAL) stamp) in milliseconds."""
    sec, _, ms = stamp.partition(b".")
    try:
        return int(sec) * 1000 + int(ms[:3].ljust(3, b"0"))
    except ValueError:
        return None


def _us_to_ms(value: Optional[str]) -> Optional[int]:
    number = _int(value)
    return None if number is None else number // 1000


def _check_format(fmt: str, path: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown audit format {fmt!r} (known: {', '.join(FORMATS)})", path)


def _as_bytes(lines: Iterable[Union[str, bytes]]) -> Iterator[bytes]:
    for line in lines:
        yield line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line


def _resume(head: bytes, handle: BinaryIO) -> Iterator[bytes]:
    """The lines of head (already read for detection) followed by the rest of handle; no seek needed."""
    parts = head.split(b"\n")
    tail = parts.pop()
    lines = [part + b"\n" for part in parts]
    if tail:
        lines.append(tail + handle.readline())
    return itertools.chain(lines, handle)  # the file's own iterator after that: no generator per line


def _chain(head: List[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


def iter_records(lines: Iterable[Union[str, bytes]], fmt: str = "auto", path: str = "<input>",
                 by: str = "exe", subject_for: Optional[SubjectFor] = None) -> Iterator[AuditRecord]:
    """Each SECCOMP record in lines, de-duplicated by serial (a fresh collector per call)."""
    return AuditCollector(by=by, subject_for=subject_for).records(lines, fmt, path)


def collect_files(paths: Iterable[Union[str, os.PathLike]], by: str = "exe") -> AuditCollector:
    """Convenience: one collector fed with every file (format detected per file)."""
    collector = AuditCollector(by=by)
    for path in paths:
        collector.feed_file(path)
    return collector
