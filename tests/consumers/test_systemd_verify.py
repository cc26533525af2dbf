"""systemd: `systemd-analyze verify` parses a unit plus the rendered drop-in on the host (systemd 252).

What works here: systemd is not PID 1 in this container, so units cannot be started; `systemd-analyze verify`
still runs systemd's own unit-file parser, loads drop-ins from `<unit>.d/` next to the unit, and prints a
warning for every setting it rejects or ignores (unknown syscall or group, bad errno, unknown architecture)
while exiting 0. So the check fails on any output line that names our drop-in or unit. A hand-broken
drop-in shows that the check catches such lines. Running services under the filter (and the negative
control) is the qemu guest's job (tests/qemu).

The profile comes from a real run: `strace -f` of the workload on the host.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from _helpers import NEEDED, WORKLOAD, host_abi, profile_from_names, require_tools

from seccomp_py import systemd_groups
from seccomp_py.render import render, render_log_dropin

UNIT = "seccomp-py-demo.service"


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    require_tools("strace")
    if not shutil.which(WORKLOAD[0]):
        pytest.skip(f"{WORKLOAD[0]} missing (apt-get install busybox-static)")
    trace = tmp_path_factory.mktemp("systemd-trace") / "trace"
    proc = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), *WORKLOAD], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = set(re.findall(r"^\d+\s+([a-z_][a-z0-9_]*)\(", trace.read_text(), re.M))
    assert NEEDED in names and "execve" in names
    return profile_from_names(names, "strace")


@pytest.fixture(scope="module")
def systemd_version():
    require_tools("systemd-analyze")
    out = subprocess.run(["systemd-analyze", "--version"], capture_output=True, text=True, check=True).stdout
    return systemd_groups.parse_version(out)


def verify(tmp_path, dropins: dict):
    """Write the unit and drop-ins, run verify, return (lines naming our files, all output)."""
    (tmp_path / UNIT).write_text(
        "[Unit]\nDescription=seccomp-py verify check\n\n"
        f"[Service]\nType=oneshot\nExecStart={' '.join(WORKLOAD)}\n"
    )
    for rel, text in dropins.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(tmp_path / UNIT)], capture_output=True, text=True,
                          timeout=120)
    output = proc.stdout + proc.stderr
    ours = [line for line in output.splitlines() if UNIT in line]
    assert proc.returncode == 0 or ours, output
    return ours, output


def dropin_of(files):
    assert len(files) == 1
    return files


@pytest.mark.parametrize("options", [
    {"action": "errno"},
    {"action": "errno", "errno": "EACCES"},
    {"action": "kill"},
    {"action": "log"},
], ids=["errno", "eacces", "kill", "log"])
def test_rendered_dropin_verifies_clean(tmp_path, traced, options, systemd_version, report):
    files = dropin_of(render(traced, "systemd", unit=UNIT, **options))
    ours, output = verify(tmp_path, files)
    assert ours == [], output
    body = next(iter(files.values()))
    keys = [line for line in body.splitlines() if line.startswith(("SystemCallErrorNumber=", "SystemCallLog=~"))]
    shown = keys[0] if keys else ""
    report(f"systemd {systemd_version} verify: {next(iter(files))} ({shown[:60]}) accepted without warnings")


def test_group_compressed_dropin_verifies_clean(tmp_path, traced, systemd_version, report):
    if systemd_version not in systemd_groups.available_versions():
        pytest.skip(f"no group data for the host's systemd {systemd_version}")
    profile = traced.copy()
    table = systemd_groups.load(systemd_version)
    from seccomp_py.syscalls import get_abi

    for name in table.effective("@signal", get_abi(host_abi())):  # make at least one group fit
        profile.add("workload", host_abi(), name)
    files = dropin_of(render(profile, "systemd", unit=UNIT, systemd_version=systemd_version))
    text = next(iter(files.values()))
    assert "@signal" in text
    ours, output = verify(tmp_path, files)
    assert ours == [], output
    report(f"systemd {systemd_version} verify: group-compressed drop-in (@signal + names) accepted")


def test_compat_architecture_line_verifies_clean(tmp_path, traced, report):
    if host_abi() != "x86_64":
        pytest.skip(f"compat check written for x86_64 hosts; this one is {host_abi()}")
    profile = traced.copy()
    profile.add("workload", "x86", "socketcall")
    files = dropin_of(render(profile, "systemd", unit=UNIT))
    assert "SystemCallArchitectures=native x86" in next(iter(files.values()))
    ours, output = verify(tmp_path, files)
    assert ours == [], output
    report("systemd verify: SystemCallArchitectures=native x86 with an x86-only name (socketcall) accepted")


@pytest.mark.parametrize("known", [[], ["kexec_load", "read"]], ids=["empty-placeholder", "kexec_load-known"])
def test_log_dropin_verifies_clean(tmp_path, known, report):
    require_tools("systemd-analyze")
    text = render_log_dropin(known, host_abi(), unit=UNIT)
    ours, output = verify(tmp_path, {f"{UNIT}.d/50-seccomp-log.conf": text})
    assert ours == [], output
    line = next(ln for ln in text.splitlines() if ln.startswith("SystemCallLog=~"))
    why = " (the placeholder resolves, so systemd keeps a non-empty set)" if not known else ""
    report(f"systemd verify: log drop-in `{line}` accepted{why}")


def test_the_check_catches_bad_lines(tmp_path, traced, report):
    files = dropin_of(render(traced, "systemd", unit=UNIT))
    rel, text = next(iter(files.items()))
    broken = text.replace("SystemCallErrorNumber=EPERM", "SystemCallErrorNumber=log")
    broken = broken.replace("SystemCallFilter=\n", "SystemCallFilter=\nSystemCallFilter=no_such_call @no-group\n")
    ours, _ = verify(tmp_path, {rel: broken})
    joined = "\n".join(ours)
    assert "no_such_call" in joined and "@no-group" in joined and "log" in joined, joined
    report(f"systemd verify flags a hand-broken drop-in ({len(ours)} warnings naming it), so the clean runs mean "
           f"something")
