"""End to end on the aarch64 reference guest: profile -> collect -> resolve (audit arch c00000b7) and
one verify, on one boot (everything runs emulated here, so the workload is small)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from guest_fixtures import guest_or_skip

from seccomp_py.profile import Profile
from seccomp_py.syscalls import get_abi
from seccomp_py.target import QemuTarget

pytestmark = pytest.mark.qemu
ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "seccomp-py"
WORKLOADS = ROOT / "tests" / "qemu" / "workloads"


def cli(*args, timeout=3600):
    proc = subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    print(proc.stdout[-3000:])
    print(proc.stderr[-3000:], file=sys.stderr)
    return proc


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    built = guest_or_skip("aarch64")
    target = QemuTarget(built.qemuboot, key_filename=str(built.ssh_key), host_key=str(built.host_key),
                        workdir=tmp_path_factory.mktemp("qemu-aarch64"), boot_timeout=900, default_timeout=900)
    with target:
        print(f"aarch64 boot to SSH: {target.boot_seconds:.1f} s")
        target.run("systemctl is-system-running --wait", timeout=600)
        yield target, built


def test_aarch64_profile_collect_resolve_verify(booted, tmp_path):
    target, built = booted
    out = tmp_path / "out"
    ssh = ["--ssh", f"root@127.0.0.1:{target.ssh_port}", "-i", built.ssh_key, "--host-key", built.host_key]
    started = time.monotonic()
    proc = cli("profile", *ssh, "--unit", "nginx", "--workload", WORKLOADS / "nginx-curl.sh", "--verify",
               "--workload-timeout", "1200", "--output", out)
    print(f"aarch64 profile + verify: {time.monotonic() - started:.0f} s")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["target"]["abi"] == "aarch64" and report["converged"] and report["verify"]["passed"]
    profile = Profile.load(str(out / "profile.json"))
    assert profile.abis("nginx.service") == ["aarch64"]
    names = set(profile.syscalls("nginx.service", "aarch64"))
    aarch64 = get_abi("aarch64")
    assert all(aarch64.has(n) for n in names)
    assert "openat" in names and "open" not in names  # aarch64 has no open(2)

    # collect: the raw records carry AUDIT_ARCH_AARCH64, and the offline collector resolves them
    records = [json.loads(line) for line in (out / "audit-records.json").read_text().splitlines() if line]
    seccomp = [r for r in records if r.get("_AUDIT_TYPE") == "1326"]
    assert seccomp and {r["_AUDIT_FIELD_ARCH"] for r in seccomp} == {"c00000b7"}
    again = tmp_path / "collected.json"
    assert cli("collect", "-i", out / "audit-records.json", "-o", again).returncode == 0
    offline = Profile.load(str(again))
    assert {abi for s in offline.subjects() for abi in offline.abis(s)} == {"aarch64"}

    # resolve: the numbers in the records name the same calls as the profile
    numbers = sorted({int(r["_AUDIT_FIELD_SYSCALL"]) for r in seccomp})
    proc = cli("resolve", "-a", "c00000b7", *numbers[:40])
    assert proc.returncode == 0
    resolved = set(proc.stdout.split())
    assert resolved and resolved <= names | {"uname"}  # uname: the collection sentinel
