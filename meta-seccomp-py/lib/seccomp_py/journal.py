"""Reading a target's journal by cursor, and knowing when journald has caught up with the kernel.

Why it looks like this (all measured on systemd 252, see ARCHITECTURE.md section 3):

- ``journalctl --after-cursor C`` combined with a field match drops the first matching entry when the
  entry at C does not match itself (journalctl skips two entries in the filtered view instead of one).
  We therefore read with ``--cursor C`` (inclusive) plus the match, and drop the entry whose
  ``__CURSOR`` is C. tests/qemu/test_profile_x86_64.py shows the quirk and the workaround on a guest.
- Only the fields we use are exported (``--output-fields``), which keeps big windows cheap.
- journald can fall far behind the kernel (60 s for 180,000 records). The caller runs a sentinel that
  is itself logged *after* the workload; since the kernel emits audit records in order, every record
  of the workload is in the journal once the sentinel is (see ``Sentinel``).
- Every entry of ``_TRANSPORT=audit`` is read (not only SECCOMP), so the audit serials form a complete
  stream and seccomp_py.audit can count holes; kernel and journald notices are read separately for
  the loss causes that take no serial (see seccomp_py.audit for the accounting itself).
"""

from __future__ import annotations

import io
import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from .errors import SeccompPyError

# Fields of journald's audit transport that the profiler uses (seccomp_py.audit parses them).
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
NOTICE_MATCHES = ("_TRANSPORT=kernel", "_TRANSPORT=driver")

_CURSOR_LINE = re.compile(r"^-- cursor: (\S+)\s*$", re.M)
_CURSOR_FIELD = re.compile(rb'"__CURSOR"\s*:\s*"([^"]+)"')


class JournalError(SeccompPyError):
    """journalctl failed on the target (unknown cursor, no journal, broken output)."""


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


_CURSOR_SLOT = "@CURSOR@"


def read_shell(cursor_var: str, fields: Sequence[str], matches: Sequence[str]) -> str:
    """read_command as shell code, for scripts that read the journal themselves; cursor_var names a shell
    variable ('$c') holding a cursor, or '-' for the start of this boot."""
    if not re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", cursor_var):
        raise ValueError(f"read_shell needs a shell variable like $cursor, not {cursor_var!r}")
    from_boot = shlex.join(read_command(None, fields, matches))
    from_cursor = shlex.join(read_command(_CURSOR_SLOT, fields, matches)).replace(_CURSOR_SLOT, f'"{cursor_var}"')
    return f'if [ "{cursor_var}" = - ]; then {from_boot}; else {from_cursor}; fi'


@dataclass
class ReadResult:
    lines: List[bytes]
    cursor: Optional[str]


def cursor_of(line: bytes) -> Optional[str]:
    match = _CURSOR_FIELD.search(line)
    return match.group(1).decode("ascii", "replace") if match else None


def split_lines(data: bytes, skip_cursor: Optional[str]) -> ReadResult:
    """journalctl -o json output as lines; drop the entry at skip_cursor (the inclusive --cursor start).
    Only the first and the last line are looked at: the first may be the start entry, the last moves
    the cursor."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if lines and skip_cursor is not None and cursor_of(lines[0]) == skip_cursor:
        lines = lines[1:]
    last = None
    for line in reversed(lines):
        last = cursor_of(line)
        if last:
            break
    return ReadResult(lines, last)


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
        self.polls = 0
        self.bytes_read = 0
        self.lines_read = 0

    def poll(self) -> List[bytes]:
        """The JSON lines of the entries added since the last poll."""
        data = self.run(read_command(self.cursor, self.fields, self.matches), self.timeout)
        self.polls += 1
        return self.feed(data)

    def feed(self, data: bytes) -> List[bytes]:
        """Take the output of a read that ran elsewhere (read_shell, from this reader's cursor) as a poll."""
        self.bytes_read += len(data)
        result = split_lines(data, self.cursor)
        if result.cursor:
            self.cursor = result.cursor
        self.lines_read += len(result.lines)
        return result.lines


def journal_tail_cursor(run: Runner, timeout: float = 60.0) -> Optional[str]:
    text = run(tail_cursor_command(), timeout).decode("utf-8", errors="replace")
    return parse_show_cursor(text)


# -- the sentinel ---------------------------------------------------------------------------------
SENTINEL_SYSCALL = "uname"


@dataclass
class Sentinel:
    """A canary process run under log mode for exactly one syscall (uname). Its record marks a point in
    the kernel's audit stream: once journald has it, it has every record emitted before it.

    One systemd-run call (--wait --pipe --collect: no show/stop/reset-failed round after it, 0.45 s
    instead of 1.1 s on a TCG guest): the shell prints its own pid and execs uname under the same pid.
    systemd expands '$' in command lines itself, so the shell's '$$' is written '$$$$'."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    pid: Optional[int] = None

    @property
    def unit(self) -> str:
        return f"seccomp-py-sentinel-{self.token}.service"

    @staticmethod
    def script(unit_var: str = '"$1"') -> str:
        """Shell code that runs the sentinel as the unit named by unit_var, prints its pid (then uname's
        output) and leaves systemd-run's status in $rc (usable inside a longer script)."""
        return ('systemd-run --quiet --wait --pipe --collect --unit=' + unit_var + ' '
                '--property=SystemCallLog=' + SENTINEL_SYSCALL + " -- /bin/sh -c 'echo $$$$; exec uname' "
                '</dev/null; rc=$?')

    def command(self) -> List[str]:
        return ["sh", "-c", self.script() + "; exit $rc", "sh", self.unit]

    def parse_pid(self, stdout: str) -> int:
        for line in stdout.splitlines():
            line = line.strip()
            if line.isdigit() and int(line) > 0:
                self.pid = int(line)
                return self.pid
        raise SeccompPyError(f"the sentinel did not report its pid (output: {stdout.strip()[:200]!r})")

    def matches(self, pid: Optional[int], syscall_name: Optional[str]) -> bool:
        return self.pid is not None and pid == self.pid and syscall_name == SENTINEL_SYSCALL
