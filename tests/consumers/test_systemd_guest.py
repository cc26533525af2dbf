"""systemd in a qemu guest (the cached Debian bookworm x86_64 reference guest, systemd 252): a service runs
under the rendered drop-in, and fails (EPERM, or SIGSYS with kill) once a needed syscall is removed.

The profile comes from the guest itself, through the log-mode drop-in the profiler uses: with nothing known,
SystemCallLog=~<placeholder> must log every call (the placeholder is a name libseccomp resolves but the ABI
lacks, so systemd keeps a non-empty set and adds no rule for it). The test checks that claim against
`strace -f` of the same command in the guest, then re-arms with the known set minus one name and expects
exactly that name back (the profiler's iteration step).
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from seccomp_py.profile import Profile
from seccomp_py.render import log_dropin_path, render, render_log_dropin
from seccomp_py.syscalls import abi_for_audit

pytestmark = pytest.mark.qemu

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = "seccomp-py-demo.service"
COMMAND = "/usr/bin/stat -f /"
NEEDED = "statfs"
RUNTIME = f"/run/systemd/system/{UNIT}"


def _guest():
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "qemu"))
    try:
        import guest as guest_module  # tests/qemu/guest.py
    finally:
        sys.path.pop(0)
    return guest_module


@pytest.fixture(scope="module")
def target():
    if os.environ.get("SECCOMP_PY_SKIP_QEMU") == "1":
        pytest.skip("SECCOMP_PY_SKIP_QEMU=1")
    guest = _guest().find_guest("x86_64")
    if guest is None:
        pytest.skip("no cached x86_64 reference guest; build it with `python3 tests/qemu/guest.py build --arch x86_64`")
    with guest.target() as tgt:
        tgt.start()
        unit = ("[Unit]\nDescription=seccomp-py demo\n\n"
                f"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={COMMAND}\n")
        tgt.write_file(RUNTIME, unit)
        tgt.run("systemctl daemon-reload", check=True)
        yield tgt


def install(tgt, rel: str, text: str):
    tgt.run(f"rm -rf /run/systemd/system/{UNIT}.d && mkdir -p /run/systemd/system/{UNIT}.d", check=True)
    tgt.write_file(f"/run/systemd/system/{rel}", text)
    tgt.run("systemctl daemon-reload", check=True)


def run_unit(tgt):
    """Start the oneshot unit; return (Result, ExecMainStatus, ExecMainPID, journal text of this run)."""
    cursor = tgt.run("journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p'").stdout.strip()
    # RemainAfterExit keeps the unit loaded, so ExecMainPID still names the process afterwards.
    tgt.run(f"systemctl stop {UNIT}; systemctl reset-failed {UNIT}; systemctl start {UNIT}", timeout=120)
    show = tgt.run(f"systemctl show -p Result -p ExecMainStatus -p ExecMainPID {UNIT}", check=True).stdout
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    logs = tgt.run(f"journalctl -q -u {UNIT} --after-cursor='{cursor}' -o cat").stdout if cursor else ""
    return props.get("Result"), props.get("ExecMainStatus"), int(props.get("ExecMainPID", "0")), logs


def audit_names(tgt, pid: int) -> set:
    """Syscall names of SECCOMP audit records of one PID, waiting for journald to catch up."""
    names: set = set()
    stable = 0
    deadline = time.time() + 90
    while time.time() < deadline and stable < 3:
        out = tgt.run(f"journalctl -o json _TRANSPORT=audit _AUDIT_TYPE=1326 _PID={pid}").stdout
        found = set()
        for line in out.splitlines():
            record = json.loads(line)
            abi, number = abi_for_audit(int(record["_AUDIT_FIELD_ARCH"], 16), int(record["_AUDIT_FIELD_SYSCALL"]))
            found.add((abi.name, abi.name_of(number)))
        stable = stable + 1 if found == names and found else 0
        names = found
        time.sleep(2)
    return names


@pytest.fixture(scope="module")
def logged_profile(target):
    text = render_log_dropin([], "x86_64", unit=UNIT)
    install(target, log_dropin_path(UNIT), text)
    result, status, pid, _ = run_unit(target)
    assert result == "success" and status == "0" and pid > 0, (result, status, pid)
    pairs = audit_names(target, pid)
    assert pairs, "log mode produced no SECCOMP audit records"
    profile = Profile()
    for abi, name in pairs:
        profile.add(UNIT, abi, name, source="audit")
    return profile


def test_log_mode_placeholder_logs_every_call(target, logged_profile, report):
    logged = set(logged_profile.syscalls(UNIT, "x86_64"))
    # strace under systemd too, so the command sees the same stdio (the journal) as the service did.
    out = target.run(f"systemd-run --wait --quiet strace -f -qq -o /tmp/seccomp-py.trace {COMMAND} && "
                     f"cat /tmp/seccomp-py.trace", check=True).stdout
    traced = {line.split("(", 1)[0].split()[-1] for line in out.splitlines() if "(" in line}
    traced = {n for n in traced if n.replace("_", "").isalnum()}
    assert NEEDED in logged
    missing = traced - logged
    assert not missing, f"log mode missed calls strace saw: {sorted(missing)}"
    report(f"guest systemd: SystemCallLog=~<placeholder> logged {len(logged)} calls, a superset of the "
           f"{len(traced)} strace sees for `{COMMAND}`")


def test_rearm_with_known_set_logs_only_new_calls(target, logged_profile, report):
    known = set(logged_profile.syscalls(UNIT, "x86_64")) - {NEEDED}
    install(target, log_dropin_path(UNIT), render_log_dropin(known, "x86_64", unit=UNIT))
    result, _, pid, _ = run_unit(target)
    assert result == "success"
    new = audit_names(target, pid)
    names = {name for _, name in new}
    assert NEEDED in names
    assert not names & known, f"calls in the known set were logged: {sorted(names & known)}"
    report(f"guest systemd: re-armed with {len(known)} known calls, only {sorted(n for _, n in new)} logged")


def test_enforcing_dropin_runs_and_negative_controls_fail(target, logged_profile, report):
    files = render(logged_profile, "systemd", abi="x86_64")
    (rel, text), = files.items()
    install(target, rel, text)
    result, status, _, _ = run_unit(target)
    assert (result, status) == ("success", "0"), (result, status)

    (rel, text), = render(logged_profile.subtract([NEEDED]), "systemd", abi="x86_64").items()
    install(target, rel, text)
    result, status, _, logs = run_unit(target)
    assert result == "exit-code" and status != "0", (result, status)
    assert "Operation not permitted" in logs, logs

    (rel, text), = render(logged_profile.subtract([NEEDED]), "systemd", abi="x86_64", action="kill").items()
    install(target, rel, text)
    result, status, _, _ = run_unit(target)
    assert result == "signal" and status == "31", (result, status)  # SIGSYS
    report(f"guest systemd: `{COMMAND}` succeeds under the rendered drop-in; without {NEEDED} it gets EPERM "
           f"(Result=exit-code), and with SystemCallErrorNumber=kill it dies of SIGSYS")
