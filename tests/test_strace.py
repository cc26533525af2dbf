"""strace parser on real samples (tests/data/strace, see its README) and on small synthetic traces.

Synthetic lines are used only where this host cannot produce the case (x32 is disabled in its kernel,
no aarch64 strace here) or to pin one rule in isolation; each says so.
"""

from __future__ import annotations

import collections
import datetime
import glob
import os
import re
from typing import Dict, Set, Tuple

import pytest

from seccomp_py.errors import InputError, UsageError
from seccomp_py.profile import Profile
from seccomp_py.strace import (
    FORMAT_SUMMARY,
    FORMAT_TRACE,
    MAX_WARNINGS_PER_FILE,
    StraceCollector,
    detect_format,
)
from seccomp_py.syscalls import get_abi

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "strace")
NON_RETURNING = {"exit", "exit_group"}  # strace -c does not count calls that never return

TRACES = ["strace-f.txt", "strace-f-stderr.txt", "strace-f-tt-T-y.txt", "strace-f-ttt-yy.txt", "strace-f-r-n-i.txt",
          "strace-f-Y.txt", "strace-f-kill.txt", "strace-p.txt", "strace-f-m32.txt", "strace-f-m32-o.txt",
          "strace-f-C.txt"]
SUMMARIES = ["summary-c.txt", "summary-qcf.txt", "summary-c-S-name.txt", "summary-qcf-m32.txt", "summary-c-U.txt"]


def sample(name: str) -> str:
    return os.path.join(DATA, name)


def collect(paths, **kwargs) -> Tuple[StraceCollector, list]:
    collector = StraceCollector(abi="x86_64", **kwargs)
    if isinstance(paths, str):
        collector.feed_file(paths)
    else:
        collector.feed_files(paths)
    return collector, list(collector.observations())


def by_subject(observations) -> Dict[Tuple[str, str], Set[str]]:
    out: Dict[Tuple[str, str], Set[str]] = collections.defaultdict(set)
    for obs in observations:
        out[(obs.subject, obs.abi)].add(obs.syscall)
    return dict(out)


def abi_names(observations) -> Set[Tuple[str, str]]:
    return {(obs.abi, obs.syscall) for obs in observations}


def count_call_lines(path: str) -> collections.Counter:
    """Independent count: one per line that starts a call (complete or unfinished), by name."""
    counter: collections.Counter = collections.Counter()
    call = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+(?:<[^>]*>)?\s+)?(?:[\d:.]+\s+)?(?:\[[ 0-9a-f]+\]\s+)*([a-z_0-9]+)\(")
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = call.match(line)
            if match:
                counter[match.group(1)] += 1
    return counter


def write(tmp_path, name: str, text) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


# -- detection --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TRACES + ["ff/" + os.path.basename(p) for p in glob.glob(sample("ff/*"))])
def test_detect_trace(name):
    assert detect_format(sample(name)) == FORMAT_TRACE


@pytest.mark.parametrize("name", SUMMARIES)
def test_detect_summary(name):
    assert detect_format(sample(name)) == FORMAT_SUMMARY


@pytest.mark.parametrize("text", [
    "",
    '{"MESSAGE": "audit: type=1326 audit(1700000000.123:42): auid=0 syscall=257 compat=0"}\n',
    "type=SECCOMP msg=audit(1700000000.123:42): auid=4294967295 uid=0 pid=1 comm=\"x\" syscall=257\n",
    "[   12.345678] audit: type=1326 audit(1700000000.123:42): pid=1 comm=\"x\" syscall=257 arch=c000003e\n",
    "Nov 22 17:00:00 host kernel: audit: type=1326 syscall=257\n",
    "hello world\n3\n",
])
def test_detect_foreign(tmp_path, text):
    assert detect_format(write(tmp_path, "x.log", text)) is None


AUDIT_SAMPLES = sorted(
    p for pattern in ("audit/**/*", "guest/**/*")
    for p in glob.glob(os.path.join(os.path.dirname(DATA), pattern), recursive=True)
    if os.path.isfile(p) and not os.path.basename(p).startswith("strace"))


@pytest.mark.parametrize("path", AUDIT_SAMPLES or [None])
def test_audit_samples_are_not_strace(path):
    """The collect command auto-detects across parsers: strace must not claim the audit parser's inputs."""
    if path is None:
        pytest.skip("no tests/data/audit or tests/data/guest samples yet")
    assert detect_format(path) is None


def test_detect_binary_and_missing(tmp_path):
    assert detect_format(write(tmp_path, "bin", bytes(range(256)) * 8)) is None
    assert detect_format(str(tmp_path / "missing")) is None


# -- strace -f --------------------------------------------------------------------------------------

def test_strace_f_workload():
    collector, obs = collect(sample("strace-f.txt"))
    subjects = by_subject(obs)
    assert set(subjects) == {(exe, "x86_64") for exe in
                             ("/usr/bin/sh", "/usr/bin/wc", "/usr/bin/ls", "/usr/bin/python3", "/usr/bin/true")}
    sh, py, true = subjects[("/usr/bin/sh", "x86_64")], subjects[("/usr/bin/python3", "x86_64")], \
        subjects[("/usr/bin/true", "x86_64")]
    # the shell forks, pipes and execs; the forked children run sh until their execve, so execve is sh's
    assert {"clone", "vfork", "pipe2", "wait4", "dup2", "execve"} <= sh
    # python's thread (clone3) and its vfork+execve of true belong to python, not to true
    assert {"clone3", "vfork", "execve"} <= py
    assert not {"clone3", "vfork", "execve"} & true
    assert "exit_group" in true
    stats = collector.stats
    assert stats.warnings == []
    assert stats.unfinished == stats.resumed == stats.pairs > 0
    assert stats.orphan_resumed == 0
    assert stats.processes == stats.exits == 7  # sh, two pipe children, ls, python, its thread, true
    assert stats.execs == 5
    with open(sample("strace-f.txt"), encoding="utf-8") as handle:
        text = handle.read()
    assert stats.signals == text.count(" --- SIG")
    assert stats.lines == text.count("\n")


@pytest.mark.parametrize("name", TRACES)
def test_each_call_counted_once(name):
    """An unfinished/resumed pair is one call: counts equal the number of lines that start a call."""
    collector, obs = collect(sample(name), subject=None)
    expected = count_call_lines(sample(name))
    got: collections.Counter = collections.Counter()
    for o in obs:
        got[o.syscall] += o.count
    assert got == expected
    assert collector.stats.syscalls == sum(expected.values())


def test_trace_matches_summary_of_same_workload():
    """strace -f and strace -qcf of workload W see the same calls, except those -c cannot count."""
    _, trace = collect(sample("strace-f.txt"))
    _, summary = collect(sample("summary-qcf.txt"))
    trace_names = abi_names(trace)
    assert {name for _, name in trace_names - abi_names(summary)} <= NON_RETURNING
    assert abi_names(summary) <= trace_names


def test_same_workload_same_set_across_output_options():
    """-tt -T -y, -Y and -C decorate lines differently; the result must not change."""
    results = []
    for name in ("strace-f-tt-T-y.txt", "strace-f-Y.txt", "strace-f-C.txt"):
        collector, obs = collect(sample(name))
        assert collector.stats.warnings == [], name
        results.append(by_subject(obs))
    assert results[0] == results[1] == results[2]
    assert set(results[0]) == {("/usr/bin/sh", "x86_64"), ("/usr/bin/wc", "x86_64")}


def test_r_n_i_prefixes():
    collector, obs = collect(sample("strace-f-r-n-i.txt"))
    assert set(by_subject(obs)) == {("/usr/bin/sh", "x86_64"), ("/usr/bin/cat", "x86_64")}
    assert collector.stats.warnings == []
    assert all(o.first_seen is None for o in obs)  # -r is relative: no date


def test_ttt_first_seen_and_sockets():
    _, obs = collect(sample("strace-f-ttt-yy.txt"))
    names = by_subject(obs)[("/usr/bin/python3", "x86_64")]
    assert {"socket", "bind", "listen", "connect", "accept4", "sendto", "recvfrom"} <= names
    stamps = [o.first_seen for o in obs]
    assert all(s is not None and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps)
    with open(sample("strace-f-ttt-yy.txt"), encoding="utf-8") as handle:
        first_epoch = float(handle.readline().split()[1])
    first = datetime.datetime.fromtimestamp(first_epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    execve = next(o for o in obs if o.syscall == "execve")
    assert execve.first_seen.startswith(first)
    assert min(stamps) == execve.first_seen


def test_tt_has_no_date():
    _, obs = collect(sample("strace-f-tt-T-y.txt"))
    assert all(o.first_seen is None for o in obs)


def test_by_comm_uses_Y_decoration():
    _, obs = collect(sample("strace-f-Y.txt"), by="comm")
    # the first line is "<pid><strace> execve(...)": strace's forked child, folded into the image it execs
    assert {s for s, _ in by_subject(obs)} == {"sh", "wc"}
    assert {o.exe for o in obs} == {"/usr/bin/sh", "/usr/bin/wc"}


def test_by_comm_without_Y_uses_exe_basename():
    _, obs = collect(sample("strace-f.txt"), by="comm")
    assert {s for s, _ in by_subject(obs)} == {"sh", "wc", "ls", "python3", "true"}


def test_explicit_subject_overrides_but_keeps_exe():
    _, obs = collect(sample("strace-f.txt"), subject="demo.service")
    assert {o.subject for o in obs} == {"demo.service"}
    assert {o.exe for o in obs} == {"/usr/bin/sh", "/usr/bin/wc", "/usr/bin/ls", "/usr/bin/python3",
                                    "/usr/bin/true"}


def test_killed_child():
    collector, _ = collect(sample("strace-f-kill.txt"))
    assert collector.stats.killed == 1
    assert collector.stats.exits == 2
    assert collector.stats.warnings == []


def test_attach_has_unknown_exe():
    collector, obs = collect(sample("strace-p.txt"))
    assert {o.subject for o in obs} == {"<unknown>"}
    assert "restart_syscall" in {o.syscall for o in obs}
    assert len(collector.stats.warnings) == 1
    assert collector.stats.warnings[0].startswith(sample("strace-p.txt") + ":1: ")
    collector, obs = collect(sample("strace-p.txt"), subject="sleep")
    assert {o.subject for o in obs} == {"sleep"}
    assert collector.stats.warnings == []


def test_stderr_lines_split_by_strace_notes():
    """strace-f-stderr.txt: the note lands inside three call lines; the rest of each call follows on the
    next line, once as ", child_tidptr=...) = PID" (the clone's return, needed to link the child)."""
    collector, obs = collect(sample("strace-f-stderr.txt"))
    assert collector.stats.warnings == []
    assert collector.stats.orphan_resumed == 0
    subjects = by_subject(obs)
    assert set(subjects) == {(exe, "x86_64") for exe in ("/bin/sh", "/bin/echo", "/bin/cat", "/bin/true")}
    # echo's pipe child ran sh's code (dup2 of the pipe) before its execve: that is sh's, not echo's
    assert "dup2" in subjects[("/bin/sh", "x86_64")]
    assert "dup2" not in subjects[("/bin/echo", "x86_64")]
    assert "execve" not in subjects[("/bin/echo", "x86_64")]


# -- 32-bit personality -----------------------------------------------------------------------------

def test_personality_marker_on_stderr():
    collector, obs = collect(sample("strace-f-m32.txt"))
    subjects = by_subject(obs)
    assert set(subjects) == {("/usr/bin/sh", "x86_64"), ("./hello32", "x86")}
    assert {"ugetrlimit", "set_thread_area", "write", "exit_group"} <= subjects[("./hello32", "x86")]
    # the execve that started hello32 ran in the 64-bit shell child
    assert "execve" in subjects[("/usr/bin/sh", "x86_64")]
    assert collector.stats.personality_switches == 1
    assert collector.stats.warnings == []
    assert collector.stats.orphan_resumed == 0  # "vfork(strace: Process N attached\n <unfinished ...>" paired


def test_personality_inferred_without_marker():
    """strace -o writes no marker: the compat ABI is inferred from ugetrlimit, with a warning at its line."""
    collector, obs = collect(sample("strace-f-m32-o.txt"))
    _, stderr_obs = collect(sample("strace-f-m32.txt"))
    assert by_subject(obs) == by_subject(stderr_obs)
    assert collector.stats.personality_switches == 0
    [warning] = collector.stats.warnings
    with open(sample("strace-f-m32-o.txt"), encoding="utf-8") as handle:
        line = next(i for i, text in enumerate(handle, 1) if "ugetrlimit(" in text)
    assert warning.startswith(f"{sample('strace-f-m32-o.txt')}:{line}: ")
    assert "x86" in warning


def test_personality_summary_tables():
    _, obs = collect(sample("summary-qcf-m32.txt"))
    _, trace = collect(sample("strace-f-m32.txt"))
    summary_names = abi_names(obs)
    assert ("x86", "ugetrlimit") in summary_names
    assert {name for _, name in abi_names(trace) - summary_names} <= NON_RETURNING
    assert summary_names <= abi_names(trace)


def test_x32_and_64_bit_markers(tmp_path):
    # synthetic: this host's kernel has x32 disabled, so strace cannot show the x32 marker here
    text = (
        '10 execve("/bin/x32prog", ["x"], 0x0 /* 0 vars */) = 0\n'
        "10 [ Process PID=10 runs in x32 mode. ]\n"
        "10 read(0, \"\", 1) = 0\n"
        '10 execve("/bin/prog64", ["y"], 0x0 /* 0 vars */) = 0\n'
        "10 [ Process PID=10 runs in 64 bit mode. ]\n"
        "10 getpid() = 10\n"
        '10 execve("/bin/prog32", ["z"], 0x0 /* 0 vars */) = 0\n'
        "10 [ Process PID 10 runs in 32 bit mode. ]\n"
        "10 _llseek(3, 0, [0], SEEK_SET) = 0\n"
        "10 +++ exited with 0 +++\n"
    )
    collector, obs = collect(write(tmp_path, "t.txt", text))
    subjects = by_subject(obs)
    assert subjects[("/bin/x32prog", "x32")] == {"read", "execve"}
    assert subjects[("/bin/prog64", "x86_64")] == {"getpid", "execve"}
    assert subjects[("/bin/prog32", "x86")] == {"_llseek"}
    assert collector.stats.personality_switches == 3
    assert collector.stats.warnings == []


def test_aarch64_compat_is_arm(tmp_path):
    # synthetic: no aarch64 strace on this host; the marker text is the same on every arch
    text = ('7 execve("/usr/bin/armhf-tool", ["t"], 0x0 /* 0 vars */) = 0\n'
            "7 [ Process PID=7 runs in 32 bit mode. ]\n"
            '7 cacheflush(0x1000, 0x2000, 0) = 0\n'
            "7 +++ exited with 0 +++\n")
    collector = StraceCollector(abi="aarch64")
    collector.feed_file(write(tmp_path, "t.txt", text))
    obs = list(collector.observations())
    assert abi_names(obs) == {("aarch64", "execve"), ("arm", "cacheflush")}


def test_forked_child_keeps_parent_personality(tmp_path):
    # synthetic: a 32-bit process forks; the child runs the same 32-bit image until it execs
    text = ('1 execve("/opt/app32", ["a"], 0x0 /* 0 vars */) = 0\n'
            "1 [ Process PID=1 runs in 32 bit mode. ]\n"
            "1 fork() = 2\n"
            "2 _llseek(3, 0, [0], SEEK_SET) = 0\n"
            "2 +++ exited with 0 +++\n"
            "1 +++ exited with 0 +++\n")
    _, obs = collect(write(tmp_path, "t.txt", text))
    assert by_subject(obs) == {("/opt/app32", "x86"): {"fork", "_llseek"}, ("/opt/app32", "x86_64"): {"execve"}}


# -- strace -ff -o prefix ---------------------------------------------------------------------------

def test_ff_set_links_children_across_files():
    paths = sorted(glob.glob(sample("ff/trace.*")))
    assert len(paths) >= 3
    collector, obs = collect(paths)
    subjects = by_subject(obs)
    assert set(subjects) == {("/usr/bin/sh", "x86_64"), ("/usr/bin/wc", "x86_64"), ("/usr/bin/ls", "x86_64")}
    # the pipe children's pre-exec calls and their execve land in sh, found through sh's clone return
    assert {"execve", "dup2", "clone", "vfork", "pipe2"} <= subjects[("/usr/bin/sh", "x86_64")]
    assert collector.stats.warnings == []
    # file order must not matter
    _, reversed_obs = collect(list(reversed(paths)))
    assert by_subject(reversed_obs) == subjects


def test_ff_set_matches_f_output_of_same_commands():
    """The -ff set is 'echo hi | wc -c; ls /': the same images as in strace-f.txt for wc and ls."""
    _, ff = collect(sorted(glob.glob(sample("ff/trace.*"))))
    _, f = collect(sample("strace-f.txt"))
    ff_subjects, f_subjects = by_subject(ff), by_subject(f)
    for exe in ("/usr/bin/wc", "/usr/bin/ls"):
        assert ff_subjects[(exe, "x86_64")] == f_subjects[(exe, "x86_64")]


def test_feed_files_mixes_sets_and_single_files():
    paths = [*sorted(glob.glob(sample("ff/trace.*"))), sample("summary-c.txt")]
    collector = StraceCollector(abi="x86_64")
    done = collector.feed_files(paths)
    assert [fmt for _, fmt in done] == [FORMAT_TRACE] * (len(paths) - 1) + [FORMAT_SUMMARY]
    subjects = {o.subject for o in collector.observations()}
    assert subjects == {"/usr/bin/sh", "/usr/bin/wc", "/usr/bin/ls", "summary-c"}


# -- summary tables ---------------------------------------------------------------------------------

def total_row(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            tokens = line.split()
            if "total" in tokens:
                numbers = [t for t in tokens if t != "total"]
                header_calls = 3 if len(numbers) >= 4 else 0  # default columns: %, seconds, usecs, calls
                return int(numbers[header_calls])
    raise AssertionError("no total row")


@pytest.mark.parametrize("name", ["summary-c.txt", "summary-qcf.txt", "summary-c-S-name.txt", "summary-c-U.txt"])
def test_summary_counts_add_up_to_total(name):
    collector, obs = collect(sample(name))
    assert collector.stats.warnings == []
    assert sum(o.count for o in obs) == total_row(sample(name))
    assert {o.subject for o in obs} == {name[:-4]}
    assert {o.source for o in obs} == {"strace-summary"}
    assert {o.abi for o in obs} == {"x86_64"}


def test_summary_sort_and_columns_do_not_matter():
    results = []
    for name in ("summary-c.txt", "summary-c-S-name.txt", "summary-c-U.txt"):
        _, obs = collect(sample(name), subject="ls")
        results.append({(o.syscall, o.count) for o in obs})
    assert results[0] == results[1] == results[2]


def test_summary_with_program_output_mixed_in(tmp_path):
    # `strace -c prog 2>&1 | tee file` interleaves the program's own output: warned, not fatal
    with open(sample("summary-c.txt"), encoding="utf-8") as handle:
        table = handle.read()
    path = write(tmp_path, "mixed.txt", "bin\nboot\n" + table)
    collector = StraceCollector(abi="x86_64", subject="ls")
    assert collector.feed_file(path) == FORMAT_SUMMARY
    assert len(list(collector.observations())) == 23
    assert collector.stats.warnings == [f"{path}:1: not part of an strace summary table: bin",
                                        f"{path}:2: not part of an strace summary table: boot"]


def test_summary_forced_as_trace_is_an_error():
    with pytest.raises(InputError, match="summary"):
        StraceCollector(abi="x86_64").feed_file(sample("summary-c.txt"), fmt="strace")


# -- unknown names, odd lines, bad input ------------------------------------------------------------

def test_unknown_syscalls_are_reported(tmp_path):
    # synthetic: what an older strace prints for calls it does not know
    text = ('5 execve("/bin/new", ["new"], 0x0 /* 0 vars */) = 0\n'
            "5 syscall_0x1c8(0x1, 0x2) = 0\n"
            "5 syscall_0x3ff(0x1) = -1 ENOSYS (Function not implemented)\n"
            "5 frobnicate(1) = 0\n"
            "5 +++ exited with 0 +++\n")
    path = write(tmp_path, "t.txt", text)
    collector, obs = collect(path)
    resolved = get_abi("x86_64").name_of(0x1c8)
    assert {o.syscall for o in obs} == {"execve", resolved}
    warnings = collector.stats.warnings
    assert len(warnings) == 3
    assert warnings[0].startswith(f"{path}:2: ") and resolved in warnings[0]
    assert any(w.startswith(f"{path}:3: ") and "syscall_0x3ff" in w for w in warnings)
    assert any(w.startswith(f"{path}:4: ") and "frobnicate" in w for w in warnings)
    assert collector.stats.unknown_syscalls == {"x86_64:syscall_0x3ff": 1, "x86_64:frobnicate": 1}


def test_stderr_trace_pid_prefixes(tmp_path):
    # synthetic stderr trace (the shape of strace-f-m32.txt, reduced): the first process has no prefix
    # until a child exists, and the child prints before the parent's clone returns
    text = ('execve("/bin/sh", ["sh"], 0x0 /* 0 vars */) = 0\n'
            "clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>\n"
            "[pid   201] getpid() = 201\n"
            "[pid   200] <... clone resumed>) = 201\n"
            '[pid   201] execve("/bin/true", ["true"], 0x0 /* 0 vars */) = 0\n'
            "[pid   201] exit_group(0) = ?\n"
            "[pid   201] +++ exited with 0 +++\n"
            "--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=201} ---\n"
            "wait4(-1, NULL, 0, NULL) = 201\n"
            "+++ exited with 0 +++\n")
    collector, obs = collect(write(tmp_path, "t.txt", text))
    assert by_subject(obs) == {("/bin/sh", "x86_64"): {"execve", "clone", "getpid", "wait4"},
                               ("/bin/true", "x86_64"): {"exit_group"}}
    assert collector.stats.warnings == []
    assert collector.stats.pairs == 1


def test_child_done_before_parent_fork_returns(tmp_path):
    # synthetic (-o ordering): the child runs, execs and exits before the parent's clone returns its PID
    text = ('1 execve("/bin/sh", ["sh"], 0x0 /* 0 vars */) = 0\n'
            "1 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>\n"
            "2 dup2(3, 1) = 1\n"
            "2 getppid() = 1\n"
            "2 +++ exited with 0 +++\n"
            "1 <... clone resumed>) = 2\n"
            "1 +++ exited with 0 +++\n")
    collector, obs = collect(write(tmp_path, "t.txt", text))
    assert by_subject(obs) == {("/bin/sh", "x86_64"): {"execve", "clone", "dup2", "getppid"}}
    assert collector.stats.warnings == []


def test_old_strace_notes_and_look_alike_strings(tmp_path):
    # synthetic: strace 4.x wrote "Process N attached" untagged; a program may write that text too
    text = ("Process 77 attached\n"
            'write(1, "Process 12 attached\\n", 20) = 20\n'
            "vfork(Process 78 attached\n"
            " <unfinished ...>\n"
            "[pid    78] getpid() = 78\n"
            "[pid    77] <... vfork resumed>) = 78\n")
    collector, obs = collect(write(tmp_path, "t.txt", text), subject="svc")
    assert collector.stats.warnings == []
    assert {o.syscall: o.count for o in obs} == {"write": 1, "vfork": 1, "getpid": 1}
    assert collector.stats.pairs == 1


def test_orphan_resumed_and_restart_syscall(tmp_path):
    text = ("<... read resumed>\"x\", 1) = 1\n"
            "restart_syscall(<... resuming interrupted clock_nanosleep ...>) = 0\n")
    collector, obs = collect(write(tmp_path, "t.txt", text), subject="svc")
    assert {o.syscall for o in obs} == {"read", "restart_syscall"}
    assert collector.stats.orphan_resumed == 1


def test_execveat_with_dirfd_and_escaped_path(tmp_path):
    text = ('9 execveat(3</usr/libexec>, "helper\\"x", ["h"], NULL, 0) = 0\n'
            '9 execve("/tmp/with space\\n", ["w"], 0x0 /* 0 vars */) = 0\n'
            "9 getpid() = 9\n")
    _, obs = collect(write(tmp_path, "t.txt", text))
    # the first process's execveat (before any image of its own) folds into the image it starts
    assert by_subject(obs) == {("/usr/libexec/helper\"x", "x86_64"): {"execveat", "execve"},
                               ("/tmp/with space\n", "x86_64"): {"getpid"}}


def test_failed_execve_keeps_image(tmp_path):
    text = ('4 execve("/bin/sh", ["sh"], 0x0 /* 0 vars */) = 0\n'
            '4 execve("/nope", ["x"], 0x0 /* 0 vars */) = -1 ENOENT (No such file or directory)\n'
            "4 getpid() = 4\n")
    _, obs = collect(write(tmp_path, "t.txt", text))
    assert by_subject(obs) == {("/bin/sh", "x86_64"): {"execve", "getpid"}}


def test_truncated_last_line_is_counted_and_warned(tmp_path):
    text = '3 execve("/bin/cat", ["cat"], 0x0 /* 0 vars */) = 0\n3 read(0, "abc'
    path = write(tmp_path, "t.txt", text)
    collector, obs = collect(path)
    assert {o.syscall for o in obs} == {"execve", "read"}
    [warning] = collector.stats.warnings
    assert warning.startswith(f"{path}:2: read: line ends before the return value")


def test_garbage_between_lines(tmp_path):
    text = ('3 execve("/bin/cat", ["cat"], 0x0 /* 0 vars */) = 0\n'
            "this is the program's own output\n"
            "\x00\x01\x02 binary\n"
            "3 read(0, \"\", 1) = 0\n")
    path = write(tmp_path, "t.txt", text)
    collector, obs = collect(path)
    assert {o.syscall for o in obs} == {"execve", "read"}
    assert [w.split(": ")[0] for w in collector.stats.warnings] == [f"{path}:2", f"{path}:3"]
    assert collector.stats.bad_lines == 2


def test_warnings_are_capped(tmp_path):
    text = '3 execve("/bin/cat", ["cat"], 0x0 /* 0 vars */) = 0\n' + "junk\n" * (MAX_WARNINGS_PER_FILE + 50)
    path = write(tmp_path, "t.txt", text)
    collector, _ = collect(path)
    assert len(collector.stats.warnings) == MAX_WARNINGS_PER_FILE + 1
    assert collector.stats.warnings[-1] == f"{path}: 50 more warnings not shown"
    assert collector.stats.warnings_suppressed == 50


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.txt", "")
    for fmt in ("auto", "strace", "strace-summary"):
        with pytest.raises(InputError) as err:
            StraceCollector(abi="x86_64").feed_file(path, fmt)
        assert err.value.path == path


def test_binary_file(tmp_path):
    path = write(tmp_path, "bin", os.urandom(4096).replace(b"\n", b"") + b"\n" + bytes(range(1, 256)))
    with pytest.raises(InputError) as err:
        StraceCollector(abi="x86_64").feed_file(path)
    assert err.value.path == path and err.value.line == 1
    with pytest.raises(InputError) as err:
        StraceCollector(abi="x86_64").feed_file(path, fmt="strace")
    assert err.value.path == path and err.value.line == 1


def test_unreadable_path(tmp_path):
    with pytest.raises(InputError):
        StraceCollector(abi="x86_64").feed_file(str(tmp_path / "missing"))


def test_empty_member_of_ff_set_is_a_warning(tmp_path):
    paths = []
    for path in sorted(glob.glob(sample("ff/trace.*"))):
        target = tmp_path / os.path.basename(path)
        with open(path, "rb") as handle:
            target.write_bytes(handle.read())
        paths.append(str(target))
    empty = tmp_path / "trace.1"
    empty.write_bytes(b"")
    collector = StraceCollector(abi="x86_64")
    collector.feed_files([*paths, str(empty)])
    assert collector.stats.warnings == [f"{empty}: empty file in an strace -ff set (process traced without output?)"]


def test_bad_arguments():
    with pytest.raises(UsageError):
        StraceCollector(abi="x86_64", by="pid")
    with pytest.raises(UsageError):
        StraceCollector(abi="x86_64").feed_file(sample("strace-f.txt"), fmt="json")
    with pytest.raises(InputError):
        StraceCollector(abi="vax")


def test_default_abi_is_host():
    machine = os.uname().machine
    if machine != "x86_64":
        pytest.skip(f"host is {machine}; this checks the x86_64 mapping")
    assert StraceCollector().native.name == "x86_64"


def test_observations_feed_a_profile():
    _, obs = collect(sample("strace-f.txt"))
    profile = Profile()
    profile.add_observations(obs)
    assert profile.subjects() == sorted({o.subject for o in obs})
    prov = profile.provenance("/usr/bin/sh", "x86_64", "execve")
    assert prov is not None and prov.sources == {"strace"} and prov.exes == {"/usr/bin/sh"}


# -- guest samples (from the qemu helper, when present) ---------------------------------------------

GUEST = sorted(glob.glob(os.path.join(os.path.dirname(DATA), "guest", "*", "strace-nginx.txt")))


@pytest.mark.parametrize("path", GUEST or [None])
def test_guest_nginx(path):
    """strace -f -A of nginx's ExecStartPre and ExecStart in the qemu guest (see the guest manifest.json)."""
    if path is None:
        pytest.skip("no tests/data/guest/<arch>/strace-nginx.txt captured yet")
    arch = os.path.basename(os.path.dirname(path))
    collector = StraceCollector(abi=arch)
    assert collector.feed_file(path) == FORMAT_TRACE
    obs = list(collector.observations())
    assert collector.stats.warnings == []
    assert collector.stats.unknown_syscalls == {}
    assert collector.stats.unfinished == collector.stats.pairs
    abi = get_abi(arch).name
    # nginx only (master and workers fork, never exec): everything lands on its one exe and native ABI
    assert {(o.subject, o.abi) for o in obs} == {("/usr/sbin/nginx", abi)}
    nginx = {o.syscall for o in obs}
    # aarch64 has no epoll_wait: the generic syscall ABI only offers epoll_pwait
    epoll_wait = "epoll_pwait" if abi == "aarch64" else "epoll_wait"
    assert {"socket", "bind", "listen", "accept4", epoll_wait, "clone", "execve"} <= nginx

    audit_log = os.path.join(os.path.dirname(path), "audit.log")
    if not os.path.exists(audit_log):
        return
    # the same guest logged nginx through SystemCallLog= (audit.log): both views must agree, except
    # - execve: strace counts the first process's execve for the exe it starts; audit sees systemd's
    #   forked child make it, so it is filed under systemd's exe;
    # - setsid, umask: the audit run used nginx's default "daemon on" (daemonizing), the strace run
    #   "daemon off" (strace must stay attached).
    from seccomp_py.audit import AuditCollector

    audit = AuditCollector(by="exe")
    audit.feed_file(audit_log)
    logged = {o.syscall for o in audit.observations() if o.subject == "/usr/sbin/nginx" and o.abi == abi}
    assert nginx - logged <= {"execve"}
    assert logged - nginx <= {"setsid", "umask"}
