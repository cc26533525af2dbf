"""SECCOMP audit parsing on real host samples (tests/data/audit/host-x86_64, see its README) and unit logic."""

from __future__ import annotations

import json
import os
import re
from collections import Counter

import pytest

from seccomp_py import audit
from seccomp_py.audit import AuditCollector, SerialTracker, action_name, decode_untrusted, detect_format
from seccomp_py.errors import InputError
from seccomp_py.profile import Profile
from seccomp_py.syscalls import get_abi

HOST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "audit", "host-x86_64")


def host(name: str) -> str:
    return os.path.join(HOST, name)


def collect(*names: str, **kwargs) -> AuditCollector:
    collector = AuditCollector(**kwargs)
    for name in names:
        collector.feed_file(host(name))
    return collector


def syscall_sets(collector: AuditCollector):
    """{(subject basename, abi): {names}} - the capture's temp folder differs per file, the names do not."""
    out = {}
    for obs in collector.observations():
        out.setdefault((os.path.basename(obs.subject), obs.abi), set()).add(obs.syscall)
    return out


def raw_lines(name: str):
    with open(host(name), "rb") as handle:
        return handle.read().splitlines(keepends=True)


def kernel_lines(name: str):
    # not str.splitlines(): it also splits at 0x1d, which ENRICHED audit.log lines contain
    with open(host(name), encoding="utf-8", errors="replace") as handle:
        return [line for line in handle.read().split("\n") if line]


# -- detection ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,fmt", [
    ("kmsg.txt", "kmsg"), ("dmesg.txt", "kmsg"), ("dmesg-notime.txt", "kmsg"), ("kmsg-loss.txt", "kmsg"),
    ("audit.log", "audit-log"), ("syslog-traditional.log", "syslog"), ("syslog-rfc3339.log", "syslog"),
    ("journal-all.json", "journal-json"), ("journal-seccomp.json", "journal-json"),
    ("journal-compact.json", "journal-json"), ("journal-seq.json", "journal-json"),
    ("journal-message.json", "journal-json"),
    ("seccomp-demo.c", None), ("capture.sh", None), ("uname.txt", None), ("README.md", None),
])
def test_detect_format_on_host_samples(name, fmt):
    assert detect_format(host(name)) == fmt


def test_detect_format_rejects_strace_and_missing(tmp_path):
    strace_dir = os.path.join(os.path.dirname(HOST), "..", "strace")
    for path in os.listdir(strace_dir):
        full = os.path.join(strace_dir, path)
        if os.path.isfile(full) and path.endswith(".txt"):
            assert detect_format(full) is None, path
    assert detect_format(tmp_path / "nope") is None
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert detect_format(empty) is None


# -- kernel log (printk) copies -------------------------------------------------------------------------------

def test_kmsg_every_action_compat_x32_and_hex_names():
    collector = collect("kmsg.txt")
    stats = collector.stats
    assert set(stats.actions) == {"ERRNO", "TRAP", "TRACE", "USER_NOTIF", "KILL_THREAD", "KILL_PROCESS", "LOG"}
    sets = syscall_sets(collector)
    demo = sets[("seccomp-demo", "x86_64")]
    # the actions scenario: one syscall per action, see seccomp-demo.c
    assert {"getppid", "getpgrp", "getuid", "getgid", "geteuid", "getegid", "getsid"} <= demo
    assert sets[("seccomp-demo", "x86")] == {"getpid"}  # int $0x80: arch=40000003 compat=1
    assert sets[("seccomp-demo", "x32")] == {"getpid"}  # syscall=1073741863 on c000003e
    assert "execve" in sets[("seccomp demo", "x86_64")]  # comm= and exe= were hex in the record
    assert "openat" in sets[("ls", "x86_64")]
    assert stats.unknown == 0 and stats.bad_lines == 0 and stats.duplicates == 0


def test_kmsg_records_carry_compat_and_decoded_names():
    records = list(audit.iter_records(raw_lines("kmsg.txt"), path="kmsg.txt"))
    compat = [r for r in records if r.abi == "x86"]
    assert compat and all(r.compat is True and r.arch == 0x40000003 and r.number == 20 for r in compat)
    x32 = [r for r in records if r.abi == "x32"]
    assert x32 and x32[0].number == 0x40000000 | 39 and x32[0].compat is False
    hexed = [r for r in records if r.comm == "seccomp demo"]
    assert hexed and hexed[0].exe.endswith("/seccomp demo")
    kills = {r.action: r for r in records if r.action.startswith("KILL")}
    assert kills["KILL_THREAD"].code == 0 and kills["KILL_PROCESS"].code == 0x80000000
    assert all(r.serial is not None and r.timestamp > 1.7e9 and r.source == "kmsg" for r in records)
    assert [r.line for r in records] == sorted(r.line for r in records)


def test_kmsg_suppression_matches_serial_holes():
    collector = collect("kmsg.txt")
    stats = collector.stats
    announced = sum(int(m.group(1)) for line in kernel_lines("kmsg.txt")
                    for m in [re.search(r"kauditd_printk_skb: (\d+) callbacks suppressed", line)] if m)
    assert announced > 0 and stats.suppressed == announced
    # rate limiting is the only loss here: every suppressed record is a missing serial
    assert stats.missing_serials == announced and stats.serial_gaps == 3
    assert stats.gaps_checked and stats.possible_loss and stats.lost == 0
    printed = sum("type=1326 " in line for line in kernel_lines("kmsg.txt"))
    assert stats.records == printed


def test_dmesg_forms_agree_with_raw_kmsg():
    raw = collect("kmsg.txt")
    for name in ("dmesg.txt", "dmesg-notime.txt"):
        other = collect(name)
        assert syscall_sets(other) == syscall_sets(raw)
        a, b = raw.stats, other.stats
        assert (a.records, a.suppressed, a.serial_gaps, a.missing_serials) == \
               (b.records, b.suppressed, b.serial_gaps, b.missing_serials)
        assert {o.source for o in other.observations()} == {"kmsg"}


def test_kmsg_backlog_loss_is_counted():
    stats = collect("kmsg-loss.txt").stats
    causes = sum("backlog limit exceeded" in line for line in kernel_lines("kmsg-loss.txt"))
    counters = [int(m.group(1)) for line in kernel_lines("kmsg-loss.txt")
                for m in [re.search(r"audit_lost=(\d+)", line)] if m]
    assert causes == stats.loss_events >= 1
    # the first audit_lost= value may predate the input, so it counts 1; later lines add their growth
    assert stats.lost == 1 + (counters[-1] - counters[0])
    assert stats.lost_counter == max(counters)
    assert stats.possible_loss and stats.records == 0
    assert all(":" in w and "backlog limit exceeded" in w for w in stats.warnings)


# -- syslog ---------------------------------------------------------------------------------------------------

def test_syslog_templates_agree():
    trad = collect("syslog-traditional.log")
    rfc = collect("syslog-rfc3339.log")
    assert syscall_sets(trad) == syscall_sets(rfc)
    assert {o.source for o in trad.observations()} == {"syslog"}
    t, r = trad.stats, rfc.stats
    assert (t.records, t.suppressed, t.lost, t.serial_gaps) == (r.records, r.suppressed, r.lost, r.serial_gaps)
    printed = sum("type=1326 " in line for line in kernel_lines("syslog-rfc3339.log"))
    assert t.records == printed and t.lost >= 1 and t.possible_loss
    assert ("seccomp-demo", "x86") in syscall_sets(trad)


# -- audit.log ------------------------------------------------------------------------------------------------

def test_audit_log_enriched_complete_stream():
    collector = collect("audit.log")
    stats = collector.stats
    lines = kernel_lines("audit.log")
    assert stats.records == sum(line.startswith("type=SECCOMP ") for line in lines)
    assert stats.serial_gaps == 0 and not stats.possible_loss  # auditd got every record
    assert stats.other_records == sum(not line.startswith("type=SECCOMP ") for line in lines)
    exes = {o.exe for o in collector.observations()}
    assert all("\x1d" not in e and "AUID" not in e for e in exes)  # ENRICHED tail cut at 0x1d
    sets = syscall_sets(collector)
    assert sets[("seccomp-demo", "x32")] == {"getpid"} and sets[("seccomp-demo", "x86")] == {"getpid"}
    assert set(stats.actions) == {"ERRNO", "TRAP", "TRACE", "USER_NOTIF", "KILL_THREAD", "KILL_PROCESS", "LOG"}


def test_audit_log_daemon_records_do_not_make_gaps():
    # DAEMON_START/END carry auditd's own serial sequence; counting them would invent holes
    lines = kernel_lines("audit.log")
    assert any(line.startswith("type=DAEMON_") for line in lines)
    collector = AuditCollector()
    collector.feed_lines(lines, path="audit.log", fmt="audit-log")
    assert collector.stats.serial_gaps == 0


# -- journal JSON ---------------------------------------------------------------------------------------------

def journal_objects(name):
    with open(host(name), "rb") as handle:
        return [json.loads(line.lstrip(b"\x1e")) for line in handle if line.strip()]


def test_journal_both_transports_dedup_by_serial():
    objs = journal_objects("journal-all.json")
    audit_serials = {int(o["_AUDIT_ID"]) for o in objs if o.get("_AUDIT_TYPE") == "1326"}
    kernel_serials = [int(m.group(1)) for o in objs if o.get("_TRANSPORT") == "kernel"
                      for m in [re.search(r"type=1326 audit\(\d+\.\d+:(\d+)\)", o.get("MESSAGE", ""))] if m]
    assert kernel_serials and set(kernel_serials) <= audit_serials
    collector = collect("journal-all.json")
    stats = collector.stats
    assert stats.records == len(audit_serials)
    assert stats.duplicates == len(kernel_serials)
    # the kernel copies were rate limited, the audit transport was not: no loss
    assert stats.suppressed > 0 and stats.audit_transport and not stats.possible_loss
    assert stats.formats == Counter({"journal-json": len(audit_serials)})


def test_journal_matches_kernel_log_of_the_same_scenarios():
    journal = syscall_sets(collect("journal-all.json"))
    kmsg = syscall_sets(collect("kmsg.txt"))
    auditlog = syscall_sets(collect("audit.log"))
    # journald and auditd see every record; the kernel log shows a rate-limited subset
    assert journal == auditlog
    for key, names in kmsg.items():
        assert names <= journal[key], key


@pytest.mark.parametrize("name", ["journal-compact.json", "journal-message.json"])
def test_journal_compact_and_full_exports_agree(name):
    full = collect("journal-all.json")
    compact = collect(name)
    assert list(full.observations()) == list(compact.observations())
    assert compact.stats.records == full.stats.records and compact.stats.duplicates == 0


def test_journal_message_export_is_the_recommended_one():
    with open(host("journal-message.json"), "rb") as handle:
        keys = set(json.loads(handle.readline()))
    journalctl_adds = {"__CURSOR", "__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP", "_BOOT_ID"}
    assert keys - journalctl_adds == set(audit.JOURNAL_OUTPUT_FIELDS)


def test_journal_after_cursor_with_match_drops_the_first_record():
    # journalctl's quirk, reproduced by the capture: the filtered export lacks the first record
    everything = {int(o["_AUDIT_ID"]) for o in journal_objects("journal-all.json") if o.get("_AUDIT_TYPE") == "1326"}
    filtered = {int(o["_AUDIT_ID"]) for o in journal_objects("journal-seccomp.json")}
    assert everything - filtered == {min(everything)}
    stats = collect("journal-seccomp.json").stats
    # only SECCOMP records: the hole the other types would leave cannot be told from loss
    assert not stats.gaps_checked and not stats.possible_loss


def test_journal_json_seq():
    collector = collect("journal-seq.json")
    assert collector.stats.records == 5 and collector.stats.bad_lines == 0


def test_journal_fast_path_equals_generic_path():
    for name in ("journal-all.json", "journal-compact.json", "journal-seq.json", "journal-message.json"):
        fast = collect(name)
        slow = AuditCollector()
        records = list(slow.records(raw_lines(name), path=name))
        assert list(fast.observations()) == list(slow.observations()), name
        assert len(records) == fast.stats.records == slow.stats.records
        assert fast.stats.duplicates == slow.stats.duplicates


@pytest.mark.parametrize("name", ["journal-all.json", "journal-compact.json", "journal-seq.json",
                                  "journal-message.json"])
def test_journal_records_take_the_fast_path(name, monkeypatch):
    """Only lines that are not SECCOMP records (suppression notices, other types) use json.loads."""
    slow_lines = []
    original = AuditCollector._journal_line_slow

    def spy(self, line, path, lineno, want):
        slow_lines.append(line)
        return original(self, line, path, lineno, want)

    monkeypatch.setattr(AuditCollector, "_journal_line_slow", spy)
    collector = collect(name)
    assert collector.stats.records > 0
    for line in slow_lines:
        obj = json.loads(line.lstrip(b"\x1e"))
        assert obj.get("_AUDIT_TYPE") != "1326" and "type=1326" not in obj.get("MESSAGE", ""), line


def test_first_seen_is_the_audit_stamp():
    objs = [o for o in journal_objects("journal-compact.json") if o.get("_AUDIT_TYPE") == "1326"]
    first = min(objs, key=lambda o: int(o["_AUDIT_ID"]))
    us = int(first["_SOURCE_REALTIME_TIMESTAMP"])
    exe = first["_EXE"]
    name = get_abi("x86_64").name_of(int(first["_AUDIT_FIELD_SYSCALL"]))
    obs = [o for o in collect("journal-compact.json").observations() if o.exe == exe and o.syscall == name]
    import datetime
    expect = datetime.datetime.fromtimestamp(us // 1000000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert obs[0].first_seen == f"{expect}.{(us // 1000) % 1000:03d}Z"


def test_feeding_twice_counts_duplicates_not_records():
    collector = collect("journal-compact.json")
    before = list(collector.observations())
    records = collector.stats.records
    collector.feed_file(host("journal-compact.json"))
    assert collector.stats.records == records and collector.stats.duplicates == records
    assert list(collector.observations()) == before


def test_profile_from_collector_round_trips():
    profile = Profile()
    profile.add_observations(collect("journal-all.json", "kmsg.txt").observations())
    assert profile.count_syscalls() > 20
    assert Profile.loads(profile.dumps()) == profile


# -- subjects -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["journal-all.json", "journal-compact.json", "journal-message.json", "kmsg.txt",
                                  "audit.log"])
def test_subject_for_is_called_once_per_process_and_can_drop(name):
    calls = Counter()

    def subject_for(pid, exe, comm):
        calls[(pid, exe, comm)] += 1
        assert isinstance(pid, int) and pid > 0
        if comm == "ls":
            return None  # not one of ours
        return f"unit-{comm}"

    collector = AuditCollector(subject_for=subject_for)
    collector.feed_file(host(name))
    obs = list(collector.observations())
    stats = collector.stats
    assert max(calls.values()) == 1
    assert {o.subject for o in obs} <= {"unit-seccomp-demo", "unit-true", "unit-seccomp demo"}
    assert "unit-seccomp-demo" in {o.subject for o in obs}
    assert stats.unattributed == sum(1 for r in audit.iter_records(raw_lines(name)) if r.comm == "ls")
    assert stats.unattributed > 0


def test_by_comm():
    collector = collect("journal-compact.json", by="comm")
    subjects = {o.subject for o in collector.observations()}
    assert {"seccomp-demo", "ls", "true", "seccomp demo"} <= subjects
    assert all(not s.startswith("/") for s in subjects)
    # provenance keeps the executable
    assert {o.exe for o in collector.observations() if o.subject == "ls"} == {"/usr/bin/ls"}


def test_take_observations_keeps_serial_state():
    collector = AuditCollector()
    lines = raw_lines("journal-compact.json")
    half = len(lines) // 2
    collector.feed_lines(lines[:half], fmt="journal-json")
    first = collector.take_observations()
    collector.feed_lines(lines[half - 10:], fmt="journal-json")  # overlapping read, like a cursor re-read
    second = collector.take_observations()
    assert collector.stats.duplicates == 10
    assert sum(o.count for o in first) + sum(o.count for o in second) == collector.stats.records
    assert first and second


# -- bad input ------------------------------------------------------------------------------------------------

def seccomp_line() -> bytes:
    with open(host("journal-compact.json"), "rb") as handle:
        return handle.readline()


def test_truncated_json_line_warns_with_file_and_line(tmp_path):
    good = seccomp_line()
    path = tmp_path / "j.json"
    path.write_bytes(good + good[: len(good) // 2] + b"\n" + good.replace(b'"_AUDIT_ID":"', b'"_AUDIT_ID":"9'))
    collector = AuditCollector()
    assert collector.feed_file(path) == "journal-json"
    stats = collector.stats
    assert stats.records == 2 and stats.bad_lines == 1
    assert any(w.startswith(f"{path}:2: truncated JSON") for w in stats.warnings), stats.warnings


def test_unclosed_value_does_not_reach_into_the_next_line(tmp_path):
    good = seccomp_line()
    obj = json.loads(good)
    bad = good[:good.index(b'"_EXE":"') + 8] + b"/usr/bin/cut}\n"  # the value's closing quote is gone
    path = tmp_path / "j.json"
    path.write_bytes(bad + good.replace(b'"_AUDIT_ID":"', b'"_AUDIT_ID":"7'))
    collector = AuditCollector()
    collector.feed_file(path, "journal-json")
    assert {o.exe for o in collector.observations()} == {obj["_EXE"]}
    assert collector.stats.records == 1 and collector.stats.bad_lines == 1
    assert collector.stats.warnings[0].startswith(f"{path}:1: ")


def test_binary_garbage_is_an_error(tmp_path):
    path = tmp_path / "garbage"
    path.write_bytes(bytes(range(256)) * 40)
    assert detect_format(path) is None
    with pytest.raises(InputError) as err:
        AuditCollector().feed_file(path)
    assert str(path) in str(err.value)
    with pytest.raises(InputError) as err:
        AuditCollector().feed_file(path, "journal-json")
    assert err.value.path == str(path) and err.value.line == 1


def test_binary_journal_file_gets_a_hint(tmp_path):
    path = tmp_path / "system.journal"
    path.write_bytes(b"LPKSHHRH" + b"\x00" * 200)
    with pytest.raises(InputError, match="journalctl --file"):
        AuditCollector().feed_file(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.json"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty file") as err:
        AuditCollector().feed_file(path)
    assert err.value.path == str(path)
    collector = AuditCollector()
    assert collector.feed_file(path, "journal-json") == "journal-json"
    assert collector.stats.warnings == [f"{path}: empty file: no audit records"]
    collector = AuditCollector()
    collector.feed_file(path, "kmsg")
    assert collector.stats.warnings == [f"{path}: empty file: no audit records"]


def test_unknown_arch_and_number_warn_and_count(tmp_path):
    line = ('audit: type=1326 audit(1795367036.883:{serial}): auid=0 uid=0 gid=0 ses=1 pid=7 comm="x" '
            'exe="/x" sig=0 arch={arch} syscall={nr} compat=0 ip=0x1 code=0x7ffc0000')
    lines = [line.format(serial=1, arch="c000003e", nr=1),
             line.format(serial=2, arch="deadbeef", nr=1),          # no such audit arch
             line.format(serial=3, arch="c00000b7", nr=4000),       # outside the aarch64 table
             line.format(serial=4, arch="c00000b7", nr=4000)]
    path = tmp_path / "k.txt"
    path.write_text("\n".join(lines) + "\n")
    collector = AuditCollector()
    collector.feed_file(path)
    obs = list(collector.observations())
    stats = collector.stats
    assert [(o.abi, o.syscall) for o in obs] == [("x86_64", "write")]
    assert stats.unknown == 3 and stats.records == 4
    assert f"{path}:2: unknown audit arch 0xdeadbeef" in "\n".join(stats.warnings)
    assert f"{path}:3: syscall number 4000 is not in the aarch64 table" in "\n".join(stats.warnings)
    assert len(stats.warnings) == 2  # one warning per distinct (arch, number)


def test_unknown_format_name():
    with pytest.raises(InputError, match="unknown audit format"):
        AuditCollector().feed_lines([b"x"], fmt="pcap")


def test_journal_non_utf8_exe_as_byte_array():
    obj = json.loads(seccomp_line())
    obj["_EXE"] = list(b"/usr/bin/caf\xe9")
    collector = AuditCollector()
    collector.feed_lines([json.dumps(obj)], fmt="journal-json")
    (obs,) = list(collector.observations())
    assert obs.exe == "/usr/bin/caf\\xe9"


def test_journal_escaped_values_take_the_generic_path():
    obj = json.loads(seccomp_line())
    obj["_EXE"] = '/opt/we"ird\\path'
    obj["_COMM"] = "we\"ird"
    collector = AuditCollector()
    collector.feed_lines([json.dumps(obj)], fmt="journal-json")
    (obs,) = list(collector.observations())
    assert obs.exe == '/opt/we"ird\\path'


def test_journal_message_with_hex_names():
    # the audit transport with MESSAGE (and no _EXE/_COMM fields, as a trimmed export would have)
    obj = next(o for o in journal_objects("journal-all.json") if o.get("_COMM") == "seccomp demo")
    assert "comm=736563636F6D702064656D6F" in obj["MESSAGE"]
    del obj["_COMM"], obj["_EXE"]
    collector = AuditCollector()
    collector.feed_lines([json.dumps(obj)], fmt="journal-json")
    (obs,) = list(collector.observations())
    assert obs.subject.endswith("/seccomp demo")


# -- units ----------------------------------------------------------------------------------------------------

def test_action_names_every_code():
    assert action_name(0x7FFC0000) == "LOG"
    assert action_name(0x80000000) == "KILL_PROCESS"
    assert action_name(0) == "KILL_THREAD"
    assert action_name(0x00050001) == "ERRNO" and audit.action_data(0x00050001) == 1
    assert action_name(0x00030000) == "TRAP"
    assert action_name(0x7FF00000) == "TRACE"
    assert action_name(0x7FC00000) == "USER_NOTIF"
    assert action_name(0x7FFF0000) == "ALLOW"
    assert action_name(0x12340000) == "UNKNOWN"


def test_decode_untrusted():
    assert decode_untrusted('"nginx"') == "nginx"
    assert decode_untrusted("736563636F6D702064656D6F") == "seccomp demo"
    assert decode_untrusted("2F746D702F636166E9") == "/tmp/caf\\xe9"
    assert decode_untrusted("(null)") is None and decode_untrusted(None) is None


def test_serial_tracker_out_of_order_duplicates_and_gaps():
    tracker = SerialTracker()
    epoch = tracker.epoch("boot", 1, None)
    for serial in [5, 6, 7, 10, 9, 3, 20]:
        assert tracker.add(epoch, serial, True)
    assert not tracker.add(epoch, 6, True)  # seen
    assert tracker.add(epoch, 8, False) and tracker.add(epoch, 8, False)  # other types may repeat
    count, missing, holes = tracker.gaps()
    assert holes == [(4, 4), (11, 19)] and (count, missing) == (2, 10)
    assert epoch.seccomp == [[3, 3], [5, 7], [9, 10], [20, 20]] and epoch.other == [[8, 8]]


def test_serial_tracker_folds_but_keeps_counting(monkeypatch):
    monkeypatch.setattr(audit, "_INTERVAL_LIMIT", 16)
    tracker = SerialTracker()
    epoch = tracker.epoch("boot", 1, None)
    for serial in range(0, 3000, 3):  # a hole of 2 after every serial
        tracker.add(epoch, serial, True)
    count, missing, _ = tracker.gaps()
    assert count == 999 and missing == 1998
    assert len(epoch.seccomp) <= 17  # memory stays bounded
    assert not tracker.add(epoch, 3, True)  # below the folded floor: treated as seen


def test_serial_tracker_new_boot_without_boot_id():
    tracker = SerialTracker()
    a = tracker.epoch(None, 500, 1000)
    a.note_ts(500, 1000)
    b = tracker.epoch(None, 490, 900)  # lower serial, earlier stamp: a late record of the same boot
    assert b is a
    c = tracker.epoch(None, 3, 5000)  # lower serial, later stamp: the machine rebooted
    assert c is not a


def test_lost_accounting_hold_queue_is_not_loss():
    lines = [
        "audit: audit_lost=10 audit_rate_limit=0 audit_backlog_limit=64",
        "audit: kauditd hold queue overflow",
        "audit: audit_lost=50 audit_rate_limit=0 audit_backlog_limit=64",
        "audit: kauditd hold queue overflow",
        "audit: audit_lost=70 audit_rate_limit=0 audit_backlog_limit=64",
        "audit: backlog limit exceeded",
        "audit: audit_lost=75 audit_rate_limit=0 audit_backlog_limit=64",
        "audit: rate limit exceeded",
    ]
    collector = AuditCollector()
    collector.feed_lines(lines, path="k", fmt="kmsg")
    stats = collector.stats
    assert stats.hold_queue_lost == 1 + 40 and stats.lost == 20 + 5 and stats.loss_events == 2
    assert stats.lost_counter == 75 and stats.possible_loss
    # an audit_lost= whose cause line is still to come counts, conservatively
    collector.feed_lines(["audit: audit_lost=80 audit_rate_limit=0 audit_backlog_limit=64"], fmt="kmsg")
    assert collector.stats.lost == 30


def test_only_hold_queue_overflow_means_no_loss():
    collector = AuditCollector()
    collector.feed_lines(["audit: audit_lost=1 audit_rate_limit=0 audit_backlog_limit=64",
                          "audit: kauditd hold queue overflow"], fmt="kmsg")
    assert not collector.stats.possible_loss and collector.stats.lost == 0


def test_syslog_forwarded_audit_lines():
    # journald's ForwardToSyslog writes the audit transport as "audit[PID]: SECCOMP ..." (no serial)
    line = ('Nov 22 17:03:14 vm audit[4242]: SECCOMP auid=0 uid=0 gid=0 ses=1 pid=4242 comm="nginx" '
            'exe="/usr/sbin/nginx" sig=0 arch=c00000b7 syscall=57 compat=0 ip=0xffff code=0x7ffc0000')
    collector = AuditCollector()
    assert collector.feed_lines([line]) == "syslog"
    (obs,) = list(collector.observations())
    assert (obs.subject, obs.abi, obs.syscall) == ("/usr/sbin/nginx", "aarch64", "close")


def test_memory_is_independent_of_record_count():
    """Aggregates and serial ranges depend on distinct keys and holes, not on how many records came."""
    template = seccomp_line().decode()
    serial = int(json.loads(template)["_AUDIT_ID"])

    def lines(n, start):
        for i in range(n):
            yield template.replace(f'"_AUDIT_ID":"{serial}"', f'"_AUDIT_ID":"{start + i}"').encode()

    sizes = []
    for n in (2000, 20000):
        collector = AuditCollector()
        collector.feed_lines(lines(n, 10**6), fmt="journal-json")
        raw = collector._raw["journal-json"]
        epoch = collector._journal_epoch
        sizes.append((len(raw.message) + len(raw.fields) + len(raw.parsed), len(epoch.seccomp) + len(epoch.other)))
        assert collector.stats.records == n
    assert sizes[0] == sizes[1] == (1, 1)


@pytest.mark.parametrize("name", ["journal-compact.json", "journal-message.json"])
def test_attribution_memory_is_per_subject_not_per_process(name):
    """With subject_for, every record's pid differs here; the aggregate still keys on the subject."""
    template = json.loads(raw_lines(name)[0])
    pid = template.get("_PID") or re.search(r" pid=(\d+)", template["MESSAGE"]).group(1)

    def lines(n):
        for i in range(n):
            obj = dict(template, _AUDIT_ID=str(10**6 + i))
            if "_PID" in obj:
                obj["_PID"] = str(40000 + i)
            if "MESSAGE" in obj:
                obj["MESSAGE"] = obj["MESSAGE"].replace(f" pid={pid} ", f" pid={40000 + i} ")
            yield json.dumps(obj, separators=(",", ":"))

    collector = AuditCollector(subject_for=lambda pid, exe, comm: "unit.service" if pid % 2 else None)
    collector.feed_lines(lines(3000), fmt="journal-json")
    raw = collector._raw["journal-json"]
    assert len(raw.message) + len(raw.fields) == 2  # attributed, and not
    (obs,) = list(collector.observations())
    assert obs.subject == "unit.service" and obs.count == 1500
    assert collector.stats.unattributed == 1500


def test_bench_parse_runs():
    """bench/parse.py end to end on a small stream (numbers are printed, not asserted)."""
    import subprocess
    import sys

    bench = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "parse.py")
    out = subprocess.run([sys.executable, bench, "--records", "3000", "--repeat", "1", "--streams", "full,fields"],
                         check=True, capture_output=True, text=True, timeout=600).stdout
    assert out.count("ratio parser/baseline") == 2, out
    kept = [int(m.group(1).replace(",", "")) for m in re.finditer(r"parser result: ([\d,]+) records kept", out)]
    assert kept == [3000, 3000], out
    assert "0 unknown, 0 bad lines" in out
