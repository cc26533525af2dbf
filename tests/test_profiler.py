"""Pure logic of the profiler: journal cursor reading, loss accounting, attribution, progress, report."""

from __future__ import annotations

import io
import json
import shlex

import pytest

from seccomp_py import journal as jr
from seccomp_py.attribution import (
    HOW_AMBIGUOUS,
    HOW_EXE,
    HOW_ONLY_UNIT,
    HOW_PID_REUSE,
    HOW_SAMPLE,
    HOW_TRACE,
    Attributor,
    slice_cgroup,
    split_trace_output,
)
from seccomp_py.errors import UsageError
from seccomp_py.profiler import (
    ProfileConfig,
    Remote,
    Workload,
    WorkloadRunner,
    command_subject,
    dropin_properties,
    normalize_unit,
    split_sections,
    systemd_version_of,
    unit_cgroup,
)
from seccomp_py.progress import Progress
from seccomp_py.report import render_markdown

# -- journal ---------------------------------------------------------------------------------------

SHOW_CURSOR = """-- No entries --
-- cursor: s=85d8;i=240;b=5856;m=8d963c7;t=660e086e638ac;x=d1db
"""


def test_split_sections_takes_markers_in_any_order():
    text = "Id=a.service\n### b\nB1\nB2\n### a\n### c\nC1 ### b\n"
    head, sections = split_sections(text, ["### a", "### b", "### c", "### d"])
    assert head == "Id=a.service\n"
    assert sections == {"### a": "", "### b": "B1\nB2\n", "### c": "C1 ### b\n", "### d": ""}
    # only a whole line is a marker; no marker at all: everything is the head
    assert split_sections("x ### a\n", ["### a"]) == ("x ### a\n", {"### a": ""})


def test_parse_show_cursor():
    assert jr.parse_show_cursor(SHOW_CURSOR) == "s=85d8;i=240;b=5856;m=8d963c7;t=660e086e638ac;x=d1db"
    assert jr.parse_show_cursor("-- No entries --\n") is None


def test_read_shell_runs_read_command_from_a_shell_variable():
    code = jr.read_shell("$acur", jr.AUDIT_FIELDS, ["_TRANSPORT=audit"])
    from_boot = shlex.join(jr.read_command(None, jr.AUDIT_FIELDS, ["_TRANSPORT=audit"]))
    from_cursor = shlex.join(jr.read_command("CUR", jr.AUDIT_FIELDS, ["_TRANSPORT=audit"])).replace("CUR", '"$acur"')
    assert code == f'if [ "$acur" = - ]; then {from_boot}; else {from_cursor}; fi'
    for var in ("$(reboot)", "x", "$a b"):
        with pytest.raises(ValueError):
            jr.read_shell(var, ["MESSAGE"], [])


def test_read_command_never_uses_after_cursor():
    argv = jr.read_command("C1", jr.AUDIT_FIELDS, ["_TRANSPORT=audit"])
    assert "--after-cursor" not in argv
    assert argv[argv.index("--cursor") + 1] == "C1"
    assert argv[-1] == "_TRANSPORT=audit"
    assert any(a.startswith("--output-fields=") and "_AUDIT_ID" in a for a in argv)
    assert "-b" in jr.read_command(None, ["MESSAGE"], [])


def entry(cursor, **fields):
    out = {"__CURSOR": cursor}
    out.update({k: str(v) for k, v in fields.items()})
    return out


def test_split_lines_skips_only_the_start_cursor():
    lines = [entry("A", _AUDIT_ID=1), entry("B", _AUDIT_ID=2), entry("C", _AUDIT_ID=3)]
    data = ("\n".join(json.dumps(e) for e in lines) + "\n\n").encode()
    result = jr.split_lines(data, "A")
    assert [jr.cursor_of(line) for line in result.lines] == ["B", "C"]
    assert result.cursor == "C"
    # a start cursor that is not in the output (a non-matching entry) drops nothing
    assert len(jr.split_lines(data, "Z").lines) == 3
    assert jr.split_lines(b"", "A").lines == [] and jr.split_lines(b"", "A").cursor is None
    # a cursor-looking text inside a message value is not the entry's cursor
    tricky = json.dumps({"MESSAGE": 'x "__CURSOR":"A"', "__CURSOR": "D"}).encode()
    assert jr.cursor_of(tricky) == "D"


class FakeJournal:
    """journalctl's cursor semantics: --cursor is inclusive, matches on the same field are ORed."""

    def __init__(self, entries):
        self.entries = entries
        self.calls = []

    def __call__(self, argv, timeout):
        self.calls.append(argv)
        if "--show-cursor" in argv:
            return f"-- cursor: {self.entries[-1]['__CURSOR']}\n".encode()
        start = 0
        if "--cursor" in argv:
            cursor = argv[argv.index("--cursor") + 1]
            start = [e["__CURSOR"] for e in self.entries].index(cursor)
        matches = {}
        for word in argv:
            if "=" in word and not word.startswith("-"):
                key, value = word.split("=", 1)
                matches.setdefault(key, set()).add(value)
        out = [e for e in self.entries[start:] if all(e.get(k) in v for k, v in matches.items())]
        return "".join(json.dumps(e) + "\n" for e in out).encode()


def test_cursor_reader_reads_every_record_once_across_polls():
    # A non-audit entry at the start cursor is exactly the case where --after-cursor + match lost one.
    entries = [entry("c0", _TRANSPORT="journal")]
    journal = FakeJournal(entries)
    reader = jr.CursorReader(journal, jr.journal_tail_cursor(journal), jr.AUDIT_FIELDS, ["_TRANSPORT=audit"])
    assert reader.poll() == []
    seen = []
    serial = 0
    for batch in (3, 0, 2, 5):
        for _ in range(batch):
            serial += 1
            entries.append(entry(f"c{len(entries)}", _TRANSPORT="audit", _AUDIT_ID=serial))
            entries.append(entry(f"c{len(entries)}", _TRANSPORT="journal"))
        seen += [int(json.loads(line)["_AUDIT_ID"]) for line in reader.poll()]
    assert seen == list(range(1, serial + 1))
    assert reader.polls == 5


def test_sentinel_command_and_pid():
    sentinel = jr.Sentinel()
    argv = sentinel.command()
    assert argv[:2] == ["sh", "-c"] and "--property=SystemCallLog=uname" in argv[2]
    # systemd expands '$' in command lines: the shell's $$ must reach systemd-run as $$$$
    assert "--wait" in argv[2] and "--pipe" in argv[2] and "--collect" in argv[2]
    assert "'echo $$$$; exec uname'" in argv[2] and argv[-1] == sentinel.unit
    assert sentinel.unit.startswith("seccomp-py-sentinel-")
    with pytest.raises(Exception, match="pid"):
        sentinel.parse_pid("0\n")
    assert jr.Sentinel().parse_pid("4243\nLinux\n") == 4243  # echo $$, then uname's own output
    assert sentinel.parse_pid("4242\n") == 4242
    assert sentinel.matches(4242, "uname") and not sentinel.matches(4242, "read")
    assert not sentinel.matches(4243, "uname")


# -- attribution -----------------------------------------------------------------------------------

# Captured on the x86_64 reference guest: `systemctl restart nginx` with both events enabled.
TRACE = "".join([
    '# tracer: nop\n',
    '         systemd-1       [001] .....   201.968786: sched_process_fork: comm=systemd pid=1 '
    'child_comm=systemd child_pid=370\n',
    '         systemd-1       [001] d..1.   201.983380: cgroup_attach_task: dst_root=0 dst_id=1'
    '594 dst_level=2 dst_path=/system.slice/nginx.service pid=370 comm=(p-daemon)\n',
    '      (p-daemon)-370     [000] d..1.   201.986989: cgroup_attach_task: dst_root=0 dst_id=1'
    '594 dst_level=2 dst_path=/system.slice/nginx.service pid=370 comm=(p-daemon)\n',
    '         systemd-1       [001] .....   202.662985: sched_process_fork: comm=systemd pid=1 '
    'child_comm=systemd child_pid=372\n',
    '         systemd-1       [001] d..1.   202.684426: cgroup_attach_task: dst_root=0 dst_id=1'
    '816 dst_level=2 dst_path=/system.slice/nginx.service pid=372 comm=(nginx)\n',
    '           nginx-372     [000] .....   203.114919: sched_process_fork: comm=nginx pid=372 '
    'child_comm=nginx child_pid=373\n',
    '           nginx-373     [001] .....   203.128958: sched_process_fork: comm=nginx pid=373 '
    'child_comm=nginx child_pid=374\n',
    '           nginx-374     [001] .....   203.228958: sched_process_fork: comm=nginx pid=374 '
    'child_comm=sh -c x child_pid=380\n',
    '         systemd-1       [001] .....   204.000000: sched_process_fork: comm=systemd pid=1 '
    'child_comm=systemd child_pid=390\n',
    '         systemd-1       [001] d..1.   204.000100: cgroup_attach_task: dst_root=0 dst_id=1'
    '900 dst_level=2 dst_path=/system.slice/redis-server.service pid=390 comm=(redis)\n',
    '           redis-390     [001] .....   204.100000: sched_process_fork: comm=redis-server p'
    'id=390 child_comm=redis-server child_pid=391\n',
    '           bash-500      [000] .....   205.000000: sched_process_fork: comm=bash pid=500 c'
    'hild_comm=bash child_pid=501\n',
    '           nginx-373     [000] d..1.   206.000000: cgroup_attach_task: dst_root=0 dst_id=1'
    ' dst_level=1 dst_path=/user.slice pid=374 comm=nginx\n',
])

CGROUPS = {"nginx.service": "/system.slice/nginx.service",
           "redis-server.service": "/system.slice/redis-server.service"}


def test_trace_replay_follows_forks_and_attaches():
    att = Attributor(dict(CGROUPS))
    att.feed_trace(TRACE)
    assert att.unit_for(372, None) == att.unit_for(373, None)
    assert att.unit_for(372, None).units == ("nginx.service",) and att.unit_for(372, None).how == HOW_TRACE
    # a child running another program (sh -c) stays with its unit
    assert att.unit_for(380, "/bin/sh").units == ("nginx.service",)
    assert att.unit_for(391, None).units == ("redis-server.service",)
    # leaving the cgroup does not disarm: the filter goes with the process
    assert att.unit_for(374, None).units == ("nginx.service",)
    # processes outside both units (an SSH shell) are not attributed by trace
    assert att.unit_for(501, None).how == HOW_AMBIGUOUS
    assert att.trace_events == 13


def test_pid_reuse_across_units_gives_both():
    att = Attributor(dict(CGROUPS))
    att.feed_trace(TRACE)
    att.feed_trace("x: cgroup_attach_task: dst_root=0 dst_id=2 dst_level=2 "
                   "dst_path=/system.slice/redis-server.service pid=373 comm=redis\n")
    result = att.unit_for(373, None)
    assert result.how == HOW_PID_REUSE and set(result.units) == set(CGROUPS)


def test_delegated_subcgroups_belong_to_their_unit():
    att = Attributor({"box.service": "/system.slice/box.service"})
    att.feed_trace("x: cgroup_attach_task: dst_root=0 dst_id=2 dst_level=3 "
                   "dst_path=/system.slice/box.service/payload pid=77 comm=p\n")
    att.feed_trace("x: cgroup_attach_task: dst_root=0 dst_id=2 dst_level=3 "
                   "dst_path=/system.slice/box.service2 pid=78 comm=p\n")
    assert att.unit_for(77, None).how == HOW_TRACE
    assert att.unit_for(78, None).how == HOW_ONLY_UNIT  # not traced; only one unit armed


def test_fallbacks_samples_exe_single_unit_ambiguous():
    att = Attributor(dict(CGROUPS))
    att.feed_samples("C nginx.service 10\nC redis-server.service 20\nC other.service 30\ngarbage\n")
    assert att.unit_for(10, None) == type(att.unit_for(10, None))(("nginx.service",), HOW_SAMPLE)
    assert att.unit_for(30, None).how == HOW_AMBIGUOUS
    results = att.resolve_all([(10, "/usr/sbin/nginx"), (99, "/usr/sbin/nginx"), (98, "/bin/true")])
    assert results[1].units == ("nginx.service",) and results[1].how == HOW_EXE
    assert results[2].how == HOW_AMBIGUOUS and set(results[2].units) == set(CGROUPS)
    single = Attributor({"nginx.service": "/system.slice/nginx.service"})
    assert single.unit_for(12345, "/bin/true").how == HOW_ONLY_UNIT


def test_overruns_and_stats_split():
    trace, stats = split_trace_output("a\nb\n### seccomp-py stats\nentries: 5\noverrun: 3\n"
                                      "entries: 1\noverrun: 4\n")
    assert trace == "a\nb\n"
    att = Attributor({})
    att.feed_overruns(stats)
    assert att.trace_overruns == 7
    assert split_trace_output("only trace") == ("only trace", "")


def test_slice_paths():
    assert slice_cgroup("system.slice") == "/system.slice"
    assert slice_cgroup("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert slice_cgroup("-.slice") == ""
    assert unit_cgroup("x.service", {"ControlGroup": "", "Slice": "system.slice"}) == "/system.slice/x.service"
    assert unit_cgroup("x.service", {"ControlGroup": "/custom/x.service"}) == "/custom/x.service"


# -- configuration helpers --------------------------------------------------------------------------

def test_config_validation():
    ProfileConfig(units=["nginx.service"]).validate()
    with pytest.raises(UsageError, match="nothing to profile"):
        ProfileConfig().validate()
    for bad in ("bad name.service", "x.service\n[Service]", "../../etc/passwd.service", "a.target"):
        with pytest.raises(UsageError):
            ProfileConfig(units=[bad]).validate()
    with pytest.raises(UsageError, match="reserved"):
        ProfileConfig(units=["seccomp-py-x.service"]).validate()
    with pytest.raises(UsageError, match="twice"):
        ProfileConfig(units=["a.service", "a.service"]).validate()
    with pytest.raises(UsageError, match="no such file"):
        ProfileConfig(units=["a.service"], workloads=[Workload("script", "/nonexistent")]).validate()
    assert normalize_unit("nginx") == "nginx.service"
    assert normalize_unit("nginx.socket") == "nginx.socket"
    assert normalize_unit("getty@tty1") == "getty@tty1.service"


def test_small_helpers():
    assert systemd_version_of(" 252 (252.39-1~deb12u2)") == 252
    assert systemd_version_of("systemd 255 (255.4)".replace("systemd", " ")) == 255
    assert command_subject("/usr/bin/redis-server --port 0") == "/usr/bin/redis-server"
    assert command_subject("'unbalanced") == "'unbalanced"
    text = "# c\n[Unit]\nA=1\n[Service]\nSystemCallLog=\nSystemCallLog=~read write\n; x\n"
    assert dropin_properties(text) == ["SystemCallLog=", "SystemCallLog=~read write"]


# -- progress and report ---------------------------------------------------------------------------

def test_progress_plain_lines_and_timings():
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(stream=stream, live=False, clock=lambda: now[0])
    with progress.phase("boot"):
        now[0] += 2
        progress.status("waiting for SSH")
        now[0] += 1
    with progress.phase("collect", "round 1"):
        now[0] += 4
        progress.log("round 1: 3 new")
    with progress.phase("boot"):
        now[0] += 1
    assert progress.ordered_timings() == {"boot": 4.0, "collect": 4.0}
    text = stream.getvalue()
    assert "boot: waiting for SSH" in text and "collect: round 1" in text and "round 1: 3 new" in text
    assert "\r" not in text


def test_progress_live_redraws_in_place():
    stream = io.StringIO()
    progress = Progress(stream=stream, live=True)
    with progress.phase("boot"):
        progress.status("x")
        progress.log("kept line")
    progress.close()
    text = stream.getvalue()
    assert "\r" in text and "kept line\n" in text


def test_report_markdown_has_every_section():
    report = {
        "status": "incomplete", "error": None, "converged": False,
        "incomplete_reasons": ["did not converge"],
        "target": {"abi": "x86_64"},
        "units": {"nginx.service": {"syscalls": {"x86_64": 60}, "records": 900, "exes": ["/usr/sbin/nginx"],
                                    "attribution": {"trace": 900},
                                    "dangerous": [{"name": "ptrace", "reason": "reads memory"}]}},
        "iterations": [{"round": 1, "kind": "warm-up", "added": {"nginx.service": ["read", "write"]},
                        "records": 800, "seconds": {"arm": 1, "workload": 5, "collect": 2}},
                       {"round": 2, "kind": "full", "added": {"nginx.service": []}, "records": 3,
                        "seconds": {}}],
        "records": {"seccomp": 803, "non_log": {"kill_process": 1}},
        "ambiguous_records": [{"pid": 5, "exe": "/bin/sh", "comm": "sh", "syscall": "read", "units": ["a", "b"]}],
        "loss": {"serial_gaps": 0, "messages": ["audit: backlog limit exceeded"]},
        "timings": {"boot": 61.0, "arm": 3.0},
        "workloads": [{"round": 1, "label": "host curl", "status": "ok", "seconds": 1.0}],
        "filters": {"systemd": ["filters/systemd/nginx.service.d/50-seccomp.conf"], "lxc": {"error": "no"}},
        "verify": {"passed": True, "checks": [{"name": "units active", "ok": True, "detail": "1/1"}]},
        "notes": ["a note"],
    }
    text = render_markdown(report)
    for needle in ("Status: incomplete", "did not converge", "| `nginx.service` | x86_64: 60 | 900",
                   "`read`, `write`", "nothing new", "Converged: **no**", "`ptrace`", "backlog limit exceeded",
                   "| boot | 61.0 |", "host curl", "50-seccomp.conf", "lxc: not written: no",
                   "Result: **pass**", "a note", "given to every candidate unit"):
        assert needle in text, needle


def test_failure_messages_say_where_the_target_went_away():
    from seccomp_py.profiler import describe_failure
    from seccomp_py.target import ConnectionLost

    class DeadQemu:
        pid, running = 4242, False

    progress = Progress(quiet=True)
    with pytest.raises(ConnectionLost), progress.phase("collect", "round 2"):
        raise ConnectionLost("cannot open a channel")
    assert describe_failure(ConnectionLost("x"), progress) == \
        "lost the connection to the target during collect (round 2): x"
    assert describe_failure(ConnectionLost("x"), progress, DeadQemu()).startswith("qemu stopped during collect")
    assert describe_failure(ValueError("plain"), progress) == "plain"


def test_small_text_scripts_travel_inline_and_the_rest_is_copied(tmp_path):
    class Target:
        def __init__(self):
            self.put_paths = []

        def put(self, local, remote, mode=None):
            self.put_paths.append(remote)

    small = tmp_path / "small.sh"
    small.write_text("echo 'it''s' \"$x\"\n")
    binary = tmp_path / "binary.sh"
    binary.write_bytes(b"echo a\0b\n")
    big = tmp_path / "big.sh"
    big.write_text("#" * (WorkloadRunner.INLINE_LIMIT + 1))
    target = Target()
    workloads = [Workload("script", str(p)) for p in (small, binary, big)] + [Workload("host", "true")]
    runner = WorkloadRunner(Remote(target, "tok"), workloads, Progress(quiet=True))
    inline = runner.inline_files()
    assert inline == ["/run/seccomp-py/tok/w1-small.sh", small.read_text()]
    runner.upload()
    assert target.put_paths == ["/run/seccomp-py/tok/w2-binary.sh", "/run/seccomp-py/tok/w3-big.sh"]
    WorkloadRunner(Remote(target, "tok"), workloads, Progress(quiet=True)).upload()  # alone (the verifier)
    assert target.put_paths[2:] == ["/run/seccomp-py/tok/w1-small.sh", *target.put_paths[:2]]
