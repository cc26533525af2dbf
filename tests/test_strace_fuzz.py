"""Property: whatever bytes the strace parser gets, it either parses them (with warnings naming
file:line) or raises InputError naming the file. Nothing else escapes, and what it yields is valid."""

from __future__ import annotations

import glob
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seccomp_py.errors import InputError
from seccomp_py.strace import StraceCollector, detect_format
from seccomp_py.syscalls import get_abi

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "strace")


def _sample_lines():
    lines = []
    for path in sorted(glob.glob(os.path.join(DATA, "*.txt")) + glob.glob(os.path.join(DATA, "ff", "*"))):
        with open(path, "rb") as handle:
            lines.extend(handle.read().splitlines(keepends=True))
    return lines


SAMPLE_LINES = _sample_lines()

# pieces of strace syntax, so random lines reach the parser's branches instead of stopping at the first regex
TOKENS = [
    "[pid 12] ", "[pid   13<sh>] ", "12 ", "13<sh> ", "17:00:50.151013 ", "1795366850.173350 ", "     0.000123 ",
    "[  59] ", "[00007f5b7ec07ad7] ", "execve(", "execveat(", "clone(", "vfork(", "clone3(", "fork(", "read(",
    "exit_group(", "syscall_0x1c8(", "syscall_99999(", "ugetrlimit(", "_llseek(", "\"/bin/sh\"", "\"",
    "\\", "\\x41", "\\101", ", ", ")", " = ", "0", "12", "13", "-1 ENOENT (No such file)", "?", "0x1f",
    " <unfinished ...>", "<unfinished ...>", "<... ", " resumed>", "<... clone resumed>", "<... execve resumed>",
    "+++ exited with 0 +++", "+++ killed by SIGKILL +++", "+++ superseded by execve in pid 13 +++",
    "--- SIGCHLD {si_signo=SIGCHLD} ---", "[ Process PID=13 runs in 32 bit mode. ]",
    "[ Process PID=12 runs in x32 mode. ]", "[ Process PID=12 runs in 64 bit mode. ]",
    "strace: Process 13 attached", "strace: Process 13 detached", " > /lib/libc.so.6(f+0x1) [0x1]",
    "% time     seconds  usecs/call     calls    errors syscall",
    "------ ----------- ----------- --------- --------- ----------------",
    "  0.00    0.000000           0         8           read",
    "100.00    0.000093           0       225        30 total",
    "syscall              calls    errors", "---------------- --------- ---------",
    "read                     7          ", "1.5", "-3",
    "System call usage summary for 32 bit mode:", "System call usage summary for x32 mode:",
    "<0.000012>", "3</etc/passwd>", "AT_FDCWD</tmp>", "\x00", "\xff", "\u00e9", " ", "\t",
]

token_line = st.lists(st.sampled_from(TOKENS), min_size=0, max_size=8).map(lambda parts: "".join(parts).encode(
    "utf-8", "surrogatepass"))
random_line = st.one_of(st.binary(max_size=80), st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
                        token_line)


NAMES = ["execve", "execveat", "clone", "clone3", "fork", "vfork", "read", "exit_group", "ugetrlimit", "_llseek",
         "syscall_0x1c8", "syscall_0x3ff", "restart_syscall", "frobnicate", "total", "wait4"]
PIDS = st.integers(1, 5)
number_token = st.one_of(st.integers(-5, 300).map(str), st.floats(0, 100, allow_nan=False).map(lambda f: f"{f:.2f}"),
                         st.sampled_from(["", "0x1f", "1e5", "-0.0", "?"]))


@st.composite
def trace_line(draw):
    """A line built from strace's grammar with small PIDs, so forks, execs and markers interact."""
    pid = draw(PIDS)
    prefix = draw(st.sampled_from(["", f"{pid} ", f"[pid {pid}] ", f"{pid}<sh> ", f"{pid} 1795366850.173350 ",
                                   f"{pid} 17:00:50 ", f"{pid} [  59] [00007f00] "]))
    name = draw(st.sampled_from(NAMES))
    ret = draw(st.one_of(PIDS.map(str), st.sampled_from(["0", "-1 ENOENT (x)", "?", "0x10", "3</etc/x>"])))
    path = draw(st.sampled_from(['"/bin/a"', '"/bin/b\\x41"', '"rel"', '""', '"\\', "3</d>, \"x\""]))
    body = draw(st.sampled_from([
        f"{name}({path}, [], 0x0) = {ret}", f"{name}({path} <unfinished ...>", f"{name}({path}",
        f"<... {name} resumed>) = {ret}", f"<... {name} resumed>", "+++ exited with 0 +++",
        f"+++ superseded by execve in pid {draw(PIDS)} +++", "--- SIGCHLD {si_signo=SIGCHLD} ---",
        f"[ Process PID={draw(PIDS)} runs in {draw(st.sampled_from(['32 bit', '64 bit', 'x32', '31 bit']))} mode. ]",
        f"strace: Process {draw(PIDS)} attached", "<unfinished ...>",
    ]))
    return (prefix + body).encode()


@st.composite
def summary_table(draw):
    """A summary table with random columns and cells (blank, float, int, name)."""
    columns = draw(st.lists(st.sampled_from(["% time", "seconds", "usecs/call", "calls", "errors", "shortest"]),
                            unique=True, max_size=5))
    columns.insert(draw(st.integers(0, len(columns))), "syscall")
    lines = []
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["32 bit", "x32", "64 bit", "16 bit"]))
        lines.append(f"System call usage summary for {mode} mode:")
    lines.append(" ".join(columns))
    lines.append(" ".join("-" * 6 for _ in columns))
    for _ in range(draw(st.integers(0, 5))):
        cells = [draw(st.sampled_from(NAMES)) if col == "syscall" else draw(number_token) for col in columns]
        lines.append("  ".join(cells))
    lines.append(" ".join("-" * 6 for _ in columns))
    lines.append("  ".join("total" if col == "syscall" else draw(number_token) for col in columns))
    return ("\n".join(lines) + "\n").encode()


@st.composite
def mutated_line(draw):
    line = draw(st.sampled_from(SAMPLE_LINES))
    op = draw(st.sampled_from(["keep", "truncate", "delete", "insert", "replace", "strip_newline"]))
    if not line or op == "keep":
        return line
    pos = draw(st.integers(0, len(line)))
    if op == "truncate":
        return line[:pos]
    if op == "delete":
        end = draw(st.integers(pos, len(line)))
        return line[:pos] + line[end:]
    if op == "insert":
        return line[:pos] + draw(random_line) + line[pos:]
    if op == "replace":
        return line[:pos] + draw(st.binary(min_size=1, max_size=3)) + line[pos + 1:]
    return line.rstrip(b"\n")


def _with_newline(line: bytes) -> bytes:
    return line if line.endswith(b"\n") else line + b"\n"


file_body = st.one_of(
    st.lists(st.one_of(mutated_line(), random_line), max_size=40).map(lambda ls: b"".join(map(_with_newline, ls))),
    st.lists(st.one_of(trace_line(), summary_table()), max_size=30).map(lambda ls: b"".join(map(_with_newline, ls))),
    st.lists(mutated_line(), max_size=40).map(b"".join),  # lines may run together
    st.binary(max_size=2000),
)


def _check(collector: StraceCollector, paths) -> None:
    for obs in collector.observations():
        abi = get_abi(obs.abi)
        assert abi.has(obs.syscall), obs
        assert obs.count >= 1
        assert obs.source in ("strace", "strace-summary")
    for warning in collector.stats.warnings:
        assert any(warning.startswith(path) for path in paths), warning
    stats = collector.stats
    assert stats.pairs <= stats.resumed and stats.pairs <= stats.unfinished


def _feed(body: bytes, fmt: str, name: str = "input.txt") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, "wb") as handle:
            handle.write(body)
        assert detect_format(path) in (None, "strace", "strace-summary")
        collector = StraceCollector(abi="x86_64")
        try:
            collector.feed_file(path, fmt)
        except InputError as err:
            assert err.path == path
            assert str(err).startswith(path)
        _check(collector, [path])


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(file_body)
def test_auto(body):
    _feed(body, "auto")


@FUZZ
@given(file_body)
def test_forced_trace(body):
    _feed(body, "strace")


@FUZZ
@given(file_body)
def test_forced_summary(body):
    _feed(body, "strace-summary")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(file_body, min_size=1, max_size=4), st.sampled_from(["exe", "comm"]))
def test_ff_sets(bodies, by):
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for pid, body in enumerate(bodies, start=100):
            path = os.path.join(tmp, f"trace.{pid}")
            with open(path, "wb") as handle:
                handle.write(body)
            paths.append(path)
        collector = StraceCollector(abi="x86_64", by=by)
        try:
            collector.feed_files(paths)
        except InputError as err:
            assert err.path in paths
        _check(collector, paths)
