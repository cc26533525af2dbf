"""SECCOMP audit parsing on the real qemu guest samples (tests/data/guest/<arch>, see its README):
Debian bookworm, systemd 252, /bin/true, a 32-bit compat program and nginx under SystemCallLog=~kexec_load.

The samples are trimmed (at most two records per executable, arch and syscall), so serial holes there
come from the trimming; only journal-audit-true-full.json keeps contiguous serials."""

from __future__ import annotations

import json
import os
import re

import pytest

from seccomp_py.audit import AuditCollector, detect_format
from seccomp_py.strace import StraceCollector

GUEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "guest")
ARCHES = ["x86_64", "aarch64"]
COMPAT_ABI = {"x86_64": "x86", "aarch64": "arm"}
COMPAT_ARCH = {"x86_64": 0x40000003, "aarch64": 0x40000028}
NATIVE_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def guest(arch: str, name: str) -> str:
    return os.path.join(GUEST, arch, name)


def sets_of(arch: str, name: str, **kwargs):
    collector = AuditCollector(**kwargs)
    collector.feed_file(guest(arch, name))
    out = {}
    for obs in collector.observations():
        out.setdefault((obs.subject, obs.abi), set()).add(obs.syscall)
    return out, collector.stats


def lines_of(arch: str, name: str):
    with open(guest(arch, name), "rb") as handle:
        return [line for line in handle.read().split(b"\n") if line]


@pytest.mark.parametrize("arch", ARCHES)
def test_guest_samples_are_detected(arch):
    expect = {"journal-audit-true-full.json": "journal-json", "journal-audit.json": "journal-json",
              "journal-kernel.json": "journal-json", "journal-mixed.json": "journal-json",
              "journal-compact.json": "journal-json", "dmesg.txt": "kmsg", "syslog.txt": "syslog",
              "audit.log": "audit-log", "strace-nginx.txt": None, "manifest.json": None}
    assert sorted(os.listdir(os.path.join(GUEST, arch))) == sorted(expect)
    for name, fmt in expect.items():
        assert detect_format(guest(arch, name)) == fmt, name


@pytest.mark.parametrize("arch", ARCHES)
def test_true_untrimmed_contiguous(arch):
    sets, stats = sets_of(arch, "journal-audit-true-full.json")
    assert stats.records == len(lines_of(arch, "journal-audit-true-full.json"))
    assert stats.serial_gaps == 0 and stats.duplicates == 0 and stats.unknown == 0 and not stats.possible_loss
    true = sets[("/usr/bin/true", arch)]
    assert {"exit_group", "mmap", "close"} <= true
    # execve is checked on entry, while the forked manager ("(true)") still runs systemd's executable
    assert "execve" in sets[("/usr/lib/systemd/systemd", arch)]
    assert "execve" not in true
    assert set(stats.actions) == {"LOG"}


@pytest.mark.parametrize("arch", ARCHES)
def test_compat_program_resolves_in_the_32bit_table(arch):
    sets, _ = sets_of(arch, "journal-audit.json")
    assert sets[("/usr/local/bin/compat32", COMPAT_ABI[arch])] == {"getpid", "getuid32", "write", "exit"}
    assert ("/usr/local/bin/compat32", arch) not in sets  # a static 32-bit program makes no native call
    records = [o for o in map(json.loads, lines_of(arch, "journal-audit.json"))
               if o.get("_EXE") == "/usr/local/bin/compat32"]
    assert {int(o["_AUDIT_FIELD_ARCH"], 16) for o in records} == {COMPAT_ARCH[arch]}
    assert {o["_AUDIT_FIELD_COMPAT"] for o in records} == {"1"}


@pytest.mark.parametrize("arch", ARCHES)
def test_nginx_matches_strace_ground_truth(arch):
    """Every call strace saw nginx make after exec is in the audit records (recall 100%)."""
    sets, _ = sets_of(arch, "journal-audit.json")
    audit_nginx = sets[("/usr/sbin/nginx", arch)]
    strace = StraceCollector(abi=arch, by="exe")
    strace.feed_files([guest(arch, "strace-nginx.txt")])
    traced = {o.syscall for o in strace.observations() if o.subject == "/usr/sbin/nginx" and o.abi == arch}
    assert len(traced) > 40
    # strace puts nginx's own execve under nginx; the audit record has the caller's exe (systemd)
    assert traced - audit_nginx == {"execve"}
    # strace ran nginx with "daemon off", so it never daemonized
    assert audit_nginx - traced == {"setsid", "umask"}


@pytest.mark.parametrize("arch", ARCHES)
def test_complete_streams_agree(arch):
    """journald's audit transport, its --output-fields export, the mixed export and auditd's log
    (a second run of the same steps) all hold the same calls per executable."""
    reference, stats = sets_of(arch, "journal-audit.json")
    assert stats.records == len(lines_of(arch, "journal-audit.json"))
    for name in ("journal-compact.json", "journal-mixed.json", "audit.log"):
        sets, _ = sets_of(arch, name)
        assert sets == reference, name
    assert {"/usr/sbin/nginx", "/usr/sbin/start-stop-daemon", "/usr/bin/true"} <= {s for s, _ in reference}


@pytest.mark.parametrize("arch", ARCHES)
def test_mixed_export_drops_kernel_copies(arch):
    objs = [json.loads(line) for line in lines_of(arch, "journal-mixed.json")]
    audit = {int(o["_AUDIT_ID"]) for o in objs if o.get("_AUDIT_TYPE") == "1326"}
    kernel = [int(re.search(r"audit\(\d+\.\d+:(\d+)\)", o["MESSAGE"]).group(1)) for o in objs
              if o.get("_TRANSPORT") == "kernel" and "type=1326" in o.get("MESSAGE", "")]
    copies = [serial for serial in kernel if serial in audit]
    assert copies
    _, stats = sets_of(arch, "journal-mixed.json")
    # trimming dropped the audit twin of a few kernel copies: those count as records
    assert stats.duplicates == len(copies)
    assert stats.records == len(audit | set(kernel))
    assert stats.suppressed > 0 and stats.audit_transport


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", ["journal-kernel.json", "dmesg.txt", "syslog.txt"])
def test_kernel_log_copies_are_a_rate_limited_subset(arch, name):
    reference, _ = sets_of(arch, "journal-audit.json")
    sets, stats = sets_of(arch, name)
    assert sets and all(names <= reference[key] for key, names in sets.items())
    assert sum(map(len, sets.values())) < sum(map(len, reference.values()))
    announced = sum(int(line.split(b"kauditd_printk_skb: ")[1].split()[0])
                    for line in lines_of(arch, name) if b"kauditd_printk_skb: " in line)
    assert stats.suppressed == announced > 0
    assert stats.possible_loss  # printk copies alone: what was suppressed is gone


@pytest.mark.parametrize("arch", ARCHES)
def test_audit_log_enrichment_is_ignored(arch):
    # auditd names arch 40000028 "armeb"; the hex arch= decides the ABI
    sets, _ = sets_of(arch, "audit.log")
    assert ("/usr/local/bin/compat32", COMPAT_ABI[arch]) in sets


@pytest.mark.parametrize("arch", ARCHES)
def test_guest_attribution_by_pid(arch):
    """subject_for sees real pids: group nginx's master and workers into one unit."""
    pids = {}

    def subject_for(pid, exe, comm):
        pids[pid] = exe
        return "nginx.service" if exe in ("/usr/sbin/nginx", "/usr/sbin/start-stop-daemon") else None

    sets, stats = sets_of(arch, "journal-compact.json", subject_for=subject_for)
    assert set(sets) == {("nginx.service", arch)}
    assert len([p for p, e in pids.items() if e == "/usr/sbin/nginx"]) >= 2  # master and worker(s)
    assert stats.unattributed > 0
