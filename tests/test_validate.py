"""Build-time validation: unknown and absent names, dangerous calls, severities, the check CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from seccomp_py.profile import Profile
from seccomp_py.syscalls import all_abis
from seccomp_py.validate import DANGEROUS, ERROR, INFO, WARNING, check_profile, count, has_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "seccomp-py")

ISSUE_DANGEROUS = [
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf", "ptrace",
    "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "unshare", "setns", "keyctl",
    "add_key", "request_key", "perf_event_open", "userfaultfd", "open_by_handle_at", "reboot", "swapon",
    "swapoff", "iopl", "ioperm", "personality",
]


def make(entries):
    profile = Profile()
    for subject, abi, name in entries:
        profile.add(subject, abi, name)
    return profile


def codes(findings):
    return sorted((f.severity, f.code, f.syscall) for f in findings)


def test_dangerous_list_covers_the_issue_and_is_real():
    assert set(ISSUE_DANGEROUS) <= set(DANGEROUS)
    everywhere = set().union(*(a.names() for a in all_abis()))
    assert set(DANGEROUS) <= everywhere


def test_clean_profile_has_no_findings():
    assert check_profile(make([("a.service", "x86_64", "read"), ("a.service", "x86_64", "write")]), "x86_64") == []


def test_unknown_and_absent_names_are_errors():
    profile = make([("a.service", "aarch64", "read"), ("a.service", "aarch64", "open"),
                    ("a.service", "aarch64", "frobnicate")])
    findings = check_profile(profile, "aarch64")
    assert codes(findings) == [(ERROR, "absent-on-abi", "open"), (ERROR, "unknown-syscall", "frobnicate")]
    assert "openat" in str(next(f for f in findings if f.syscall == "open"))
    assert has_errors(findings)


def test_dangerous_calls_warn_unless_allowed():
    profile = make([("a.service", "x86_64", "read"), ("a.service", "x86_64", "ptrace"),
                    ("a.service", "x86_64", "mount")])
    expected = [(WARNING, "dangerous", "mount"), (WARNING, "dangerous", "ptrace")]
    assert codes(check_profile(profile, "x86_64")) == expected
    findings = check_profile(profile, "x86_64", allow_dangerous=["ptrace", "read", "nosuch"])
    assert codes(findings) == [(ERROR, "allow-unknown", None), (INFO, "allow-not-dangerous", None),
                               (INFO, "dangerous-allowed", "ptrace"), (WARNING, "dangerous", "mount")]
    assert count(findings) == {"error": 1, "warning": 1, "info": 2}


def test_compat_abis_are_checked_other_abis_are_reported():
    profile = make([("a.service", "x86_64", "read"), ("a.service", "x86", "socketcall"),
                    ("a.service", "x86", "newfstatat"), ("a.service", "aarch64", "read")])
    findings = check_profile(profile, "x86_64")
    assert (ERROR, "absent-on-abi", "newfstatat") in codes(findings)
    assert any(f.code == "other-abi" and f.abi == "aarch64" and f.severity == INFO for f in findings)


def test_subject_without_calls_for_the_target_is_an_error():
    findings = check_profile(make([("a.service", "x86_64", "read")]), "riscv64")
    assert [(f.severity, f.code) for f in findings if f.severity == ERROR] == [(ERROR, "no-syscalls")]
    assert "translate" in str(findings[0])


def test_incomplete_profile_warns():
    profile = make([("a.service", "x86_64", "read")])
    profile.incomplete = True
    assert codes(check_profile(profile, "x86_64")) == [(WARNING, "incomplete", None)]


def test_check_cli(tmp_path):
    path = tmp_path / "p.json"
    make([("a.service", "x86_64", "read"), ("a.service", "x86_64", "bpf")]).save(str(path))
    run = lambda *a: subprocess.run([sys.executable, TOOL, "check", str(path), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    proc = run("--abi", "x86_64")
    assert proc.returncode == 0 and "warning: a.service [x86_64] bpf: dangerous" in proc.stdout
    assert run("--abi", "x86_64", "--strict").returncode == 1
    assert run("--abi", "x86_64", "--strict", "--allow-dangerous", "bpf").returncode == 0
    assert run("--abi", "aarch64").returncode == 1
    data = json.loads(run("--abi", "x86_64", "--json").stdout)
    assert data["counts"] == {"error": 0, "warning": 1, "info": 0}
