"""LXC: lxc-execute loads the rendered v2 policy; liblxc's DEBUG log must show every rule added.

Container: lxc.rootfs.path = dir:/ (the host's root), no network. The profile comes from a real run: strace
of lxc-execute under a permissive rendered policy, keeping the calls made after liblxc loaded the filter
(its own init included).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid

import pytest
from _helpers import (
    NEEDED,
    SUBJECT,
    WORKLOAD,
    host_abi,
    permissive_profile,
    profile_from_trace,
    require_sandbox,
    strace_argv,
)

from seccomp_py.profile import Profile
from seccomp_py.render import render

pytestmark = pytest.mark.usefixtures("lxc_ready")


@pytest.fixture(scope="module")
def lxc_ready():
    require_sandbox("lxc-execute")


def lxc_run(tmp_path, policy_text: str, argv=WORKLOAD, trace_file=None):
    policy = tmp_path / "policy.seccomp"
    policy.write_text(policy_text)
    conf = tmp_path / "lxc.conf"
    conf.write_text(
        "lxc.uts.name = seccomp-py-test\n"
        "lxc.rootfs.path = dir:/\n"
        "lxc.net.0.type = empty\n"
        f"lxc.seccomp.profile = {policy}\n"
    )
    log = tmp_path / "lxc.log"
    if log.exists():
        log.unlink()
    name = f"sp-{uuid.uuid4().hex[:8]}"
    cmd = ["lxc-execute", "-n", name, "-P", str(tmp_path), "-f", str(conf), "-l", "DEBUG", "-o", str(log), "--", *argv]
    if trace_file:
        cmd = strace_argv(trace_file, cmd)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    return proc, log.read_text(errors="replace") if log.exists() else ""


@pytest.fixture(scope="module")
def traced(lxc_ready, tmp_path_factory):
    """The profile from a real run (see module docstring)."""
    tmp = tmp_path_factory.mktemp("lxc-trace")
    trace = str(tmp / "trace")
    policy = next(iter(render(permissive_profile(), "lxc").values()))
    proc, _ = lxc_run(tmp, policy, trace_file=trace)
    return profile_from_trace(proc, trace, "strace:lxc-execute")


def rule_lines(policy_text: str):
    """(section, name) for every rule line of a rendered policy."""
    section = None
    out = []
    for line in policy_text.splitlines()[2:]:
        if line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        out.append((section, line))
    return out


def check_log(log: str, policy_text: str, native_section: str):
    seccomp_lines = [line for line in log.splitlines() if " seccomp - " in line]
    assert seccomp_lines, "liblxc logged nothing about seccomp"
    bad = [line for line in seccomp_lines if re.search(r"Unrecognized|undefined|Unsupported|ERROR|Failed", line)]
    assert not bad, bad
    added = set(re.findall(r"Adding native rule for syscall\[\d+:([a-z0-9_]+)\]", log))
    processed = set(re.findall(r'Processing "([^"]+)"', log))
    rules = rule_lines(policy_text)
    for section, name in rules:
        assert name in processed, f"liblxc never processed {name}"
        if section == native_section:
            assert name in added, f"no native rule added for {name}"
    return len(rules)


def test_allowed_command_runs_and_every_rule_is_parsed(tmp_path, traced: Profile, report):
    policy = next(iter(render(traced, "lxc", profile_name="traced").values()))
    proc, log = lxc_run(tmp_path, policy)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Type:" in proc.stdout
    native = host_abi()
    section = {"x86_64": "x86_64", "aarch64": "arm64"}.get(native, native)
    count = check_log(log, policy, section)
    report(f"LXC ran `{' '.join(WORKLOAD)}` under a {count}-rule policy from a real run; DEBUG log shows all "
           f"{count} rules processed and added, nothing unrecognized or skipped")


def test_missing_syscall_gets_errno(tmp_path, traced: Profile, report):
    policy = next(iter(render(traced.subtract([NEEDED]), "lxc").values()))
    proc, _ = lxc_run(tmp_path, policy)
    assert proc.returncode != 0
    assert "Operation not permitted" in proc.stderr, proc.stderr
    report(f"LXC without {NEEDED}: exit {proc.returncode}, busybox got EPERM")


def test_missing_syscall_with_kill_action(tmp_path, traced: Profile, report):
    policy = next(iter(render(traced.subtract([NEEDED]), "lxc", action="kill").values()))
    assert policy.splitlines()[1] == "allowlist kill"
    proc, _ = lxc_run(tmp_path, policy)
    assert proc.returncode == 128 + signal.SIGSYS, (proc.returncode, proc.stderr)
    report(f"LXC kill action without {NEEDED}: workload killed by SIGSYS (exit {proc.returncode})")


def test_compat_and_foreign_sections(tmp_path, traced: Profile, report):
    if host_abi() != "x86_64":
        pytest.skip(f"the compat-section check is written for x86_64 hosts; this one is {host_abi()}")
    profile = traced.copy()
    profile.add(SUBJECT, "x86", "socketcall")
    profile.add(SUBJECT, "aarch64", "read")
    policy = next(iter(render(profile, "lxc").values()))
    assert "[x86]" in policy and "[arm64]" in policy
    proc, log = lxc_run(tmp_path, policy)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"Adding compat rule for syscall\[-?\d+:socketcall\] action\[\d+:allow\] arch\[1073741827\]", log)
    assert "Unsupported architecture" not in log
    # LXC's own spelling matters: the same policy with [aarch64] is refused.
    proc, log = lxc_run(tmp_path, policy.replace("[arm64]", "[aarch64]"))
    assert proc.returncode != 0 and 'Unsupported architecture "[aarch64]"' in log
    report("LXC: [x86] rule added to the i386 compat context, [arm64] skipped on x86_64, [aarch64] refused")


def test_policy_file_has_no_blank_lines_for_liblxc(traced: Profile):
    policy = next(iter(render(traced, "lxc").values()))
    assert "" not in policy.splitlines() and os.linesep == "\n"
