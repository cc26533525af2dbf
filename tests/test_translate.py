"""Cross-ABI translation: the equivalence table, reporting of calls without equivalent, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from seccomp_py.errors import InputError, UsageError
from seccomp_py.profile import Profile
from seccomp_py.syscalls import all_abis, get_abi
from seccomp_py.translate import EQUIVALENTS, equivalent, translate_profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "seccomp-py")

# The issue's examples, x86_64 -> aarch64.
ISSUE_EXAMPLES = {
    "open": "openat", "stat": "newfstatat", "lstat": "newfstatat", "fork": "clone", "vfork": "clone",
    "poll": "ppoll", "select": "pselect6", "dup2": "dup3", "pipe": "pipe2", "epoll_wait": "epoll_pwait",
    "getdents": "getdents64", "time": "clock_gettime", "alarm": "setitimer", "access": "faccessat",
}


def make(names, abi="x86_64", subject="demo.service"):
    profile = Profile()
    for name in names:
        profile.add(subject, abi, name, source="strace", exe="/usr/bin/demo", first_seen="2024-01-01T00:00:00Z")
    return profile


@pytest.mark.parametrize("old,new", sorted(ISSUE_EXAMPLES.items()))
def test_issue_examples(old, new):
    assert equivalent(old, get_abi("aarch64")) == new


def test_table_entries_are_real_names():
    everywhere = set().union(*(a.names() for a in all_abis()))
    for old, news in EQUIVALENTS.items():
        assert old in everywhere, old
        for new in news:
            assert new in everywhere, (old, new)


def test_first_alternative_the_target_has():
    assert equivalent("rename", get_abi("aarch64")) == "renameat"
    assert equivalent("rename", get_abi("riscv64")) == "renameat2"  # riscv has no renameat
    assert equivalent("open", get_abi("x86_64")) == "open"  # present: kept
    assert equivalent("arch_prctl", get_abi("aarch64")) is None


def test_translate_profile_maps_keeps_and_reports():
    profile = make(["read", "open", "stat", "fork", "arch_prctl", "openat"])
    profile.add("demo.service", "x86", "socketcall")
    result = translate_profile(profile, "x86_64", "aarch64")
    out = result.profile
    assert out.abis("demo.service") == ["aarch64", "x86"], "other ABIs are left alone"
    assert out.syscalls("demo.service", "aarch64") == ["clone", "newfstatat", "openat", "read"]
    assert result.mapped["demo.service"] == {"open": "openat", "stat": "newfstatat", "fork": "clone"}
    assert result.kept["demo.service"] == ["openat", "read"]
    assert result.unmapped["demo.service"] == ["arch_prctl"]
    assert any("arch_prctl" in note for note in out.notes)
    prov = out.provenance("demo.service", "aarch64", "openat")
    assert prov.count == 2 and "translate:x86_64:open" in prov.sources and "/usr/bin/demo" in prov.exes
    assert prov.first_seen == "2024-01-01T00:00:00Z"


def test_translate_errors():
    with pytest.raises(UsageError):
        translate_profile(make(["read"]), "x86_64", "x86-64")
    with pytest.raises(InputError, match="no subject has syscalls for ABI aarch64"):
        translate_profile(make(["read"]), "aarch64", "x86_64")
    with pytest.raises(InputError, match="bogus"):
        translate_profile(make(["read", "bogus"]), "x86_64", "aarch64")


def test_every_x86_64_call_is_mapped_or_reported():
    names = sorted(get_abi("x86_64").names())
    result = translate_profile(make(names), "x86_64", "aarch64")
    accounted = set(result.kept["demo.service"]) | set(result.mapped["demo.service"]) | set(
        result.unmapped["demo.service"])
    assert accounted == set(names)
    for name in result.profile.syscalls("demo.service", "aarch64"):
        assert get_abi("aarch64").has(name)


def cli(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=60)


def test_cli_refuses_unmapped_unless_allowed(tmp_path):
    src = tmp_path / "p.json"
    make(["read", "open", "arch_prctl"]).save(str(src))
    out = tmp_path / "out.json"
    proc = cli("translate", str(src), "--from", "x86_64", "--to", "aarch64", "-o", str(out))
    assert proc.returncode == 1 and "arch_prctl: no equivalent on aarch64" in proc.stderr and not out.exists()
    proc = cli("translate", str(src), "--from", "x86_64", "--to", "aarch64", "-o", str(out), "--allow-unmapped")
    assert proc.returncode == 0, proc.stderr
    assert "open -> openat" in proc.stdout
    data = json.loads(out.read_text())
    assert data["subjects"]["demo.service"]["syscalls"] == {"aarch64": ["openat", "read"]}
    assert any("arch_prctl" in n for n in data["meta"]["notes"])
