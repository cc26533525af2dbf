"""seccomp-py doctor: can this target be profiled? Each failed check says how to fix it."""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ..errors import SeccompPyError
from ..progress import Progress
from ._target_options import TargetSession, add_target_arguments

HELP = "check a target for profiling: seccomp log action, a logged canary, journald audit socket, systemd, backlog"

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_SYSTEMD = 247
GOOD_BACKLOG = 8192


@dataclass
class DoctorCheck:
    name: str
    status: str
    detail: str
    fix: str = ""

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def setup_parser(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser, forward=False)
    parser.add_argument("--canary-timeout", type=float, default=60.0, metavar="S",
                        help="how long to wait for the canary's record in the journal (default: 60)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


# The facts, in one round trip. Each line is KEY=VALUE; missing files give empty values.
FACTS_SCRIPT = r"""
echo "machine=$(uname -m)"
echo "kernel=$(uname -r)"
echo "systemd=$(systemctl --version 2>/dev/null | head -n1)"
echo "actions_logged=$(cat /proc/sys/kernel/seccomp/actions_logged 2>/dev/null)"
echo "actions_avail=$(cat /proc/sys/kernel/seccomp/actions_avail 2>/dev/null)"
echo "cmdline=$(cat /proc/cmdline 2>/dev/null)"
echo "audit_socket=$(systemctl is-active systemd-journald-audit.socket 2>/dev/null)"
echo "audit_socket_enabled=$(systemctl is-enabled systemd-journald-audit.socket 2>/dev/null)"
echo "auditd=$(systemctl is-active auditd.service 2>/dev/null)"
t=; for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do [ -d "$d/instances" ] && t=$d && break; done
echo "tracefs=$t"
[ -n "$t" ] && echo "cgroup_events=$(ls "$t/events/cgroup" 2>/dev/null | grep -c attach_task)"
echo "cgroupfs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
"""


def parse_facts(text: str) -> Dict[str, str]:
    facts: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            facts[key.strip()] = value.strip()
    return facts


def backlog_limit(cmdline: str) -> Optional[int]:
    match = re.search(r"(?:^|\s)audit_backlog_limit=(\d+)", cmdline)
    return int(match.group(1)) if match else None


def evaluate(facts: Dict[str, str], canary: Optional[DoctorCheck] = None) -> List[DoctorCheck]:
    """Turn the target's facts (and the canary's outcome) into checks. Pure, so it is unit-tested."""
    from ..profiler import systemd_version_of

    checks: List[DoctorCheck] = []
    logged = facts.get("actions_logged", "").split()
    if not facts.get("actions_avail") and not logged:
        checks.append(DoctorCheck("seccomp in the kernel", FAIL, "/proc/sys/kernel/seccomp is missing",
                                  "build the kernel with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER"))
    elif "log" in logged:
        checks.append(DoctorCheck("'log' in actions_logged", OK, " ".join(logged)))
    else:
        value = " ".join([*logged, "log"])
        checks.append(DoctorCheck(
            "'log' in actions_logged", FAIL, f"actions_logged is {' '.join(logged) or 'empty'}",
            f"echo '{value}' > /proc/sys/kernel/seccomp/actions_logged (or sysctl kernel.seccomp.actions_logged)"))
    if canary is not None:
        checks.append(canary)
    socket = facts.get("audit_socket", "")
    if socket == "active":
        checks.append(DoctorCheck("journald audit socket", OK, "systemd-journald-audit.socket is active"))
    else:
        checks.append(DoctorCheck(
            "journald audit socket", FAIL, f"systemd-journald-audit.socket is {socket or 'unknown'}",
            "systemctl enable --now systemd-journald-audit.socket (Yocto: it is in systemd's journald package; "
            "check that PACKAGECONFIG has 'audit' if the unit is missing)"))
    version = systemd_version_of(facts.get("systemd", "").replace("systemd", " "))
    if version >= MIN_SYSTEMD:
        checks.append(DoctorCheck("systemd version", OK, f"systemd {version} (SystemCallLog= needs {MIN_SYSTEMD})"))
    else:
        checks.append(DoctorCheck("systemd version", FAIL,
                                  f"systemd {version or 'not found'}; SystemCallLog= needs {MIN_SYSTEMD} or later",
                                  "use a newer systemd (Yocto kirkstone ships 250, scarthgap 255)"))
    cmdline = facts.get("cmdline", "")
    if re.search(r"(?:^|\s)audit=0(?:\s|$)", cmdline):
        checks.append(DoctorCheck("audit enabled", FAIL, "the kernel command line has audit=0",
                                  "boot with audit=1 (qemu targets add it automatically)"))
    limit = backlog_limit(cmdline)
    if limit is not None and limit >= GOOD_BACKLOG:
        checks.append(DoctorCheck("audit backlog limit", OK, f"audit_backlog_limit={limit}"))
    else:
        shown = f"audit_backlog_limit={limit}" if limit is not None else "not set (kernel default 64)"
        checks.append(DoctorCheck(
            "audit backlog limit", WARN, shown,
            f"boot with audit_backlog_limit={GOOD_BACKLOG}: bursts beyond the backlog stall the service or, "
            f"where it cannot wait, drop records (the profile is then marked incomplete)"))
    if facts.get("tracefs") and facts.get("cgroup_events", "0") not in ("", "0"):
        checks.append(DoctorCheck("attribution", OK, f"tracefs at {facts['tracefs']} with fork and cgroup events: "
                                                     f"exact pid-to-unit attribution"))
    else:
        checks.append(DoctorCheck(
            "attribution", WARN, "no tracefs instances or cgroup trace events: falls back to sampling cgroup.procs",
            "enable CONFIG_FTRACE/CONFIG_TRACING (tracefs) in the kernel, or profile one unit at a time"))
    if facts.get("auditd") == "active":
        checks.append(DoctorCheck("auditd", WARN, "auditd is running; journald still gets the records, but "
                                  "auditd's own rate limits and rules apply", "systemctl stop auditd while profiling"))
    return checks


def run_canary(target, timeout: float) -> DoctorCheck:
    """Run a process under SystemCallLog= and wait for its SECCOMP record: proves the whole chain."""
    from .. import journal as jr

    run = jr.target_runner(target)
    try:
        cursor = jr.journal_tail_cursor(run)
    except SeccompPyError as exc:
        return DoctorCheck("logged canary", FAIL, f"journalctl failed: {exc}", "is systemd-journald running?")
    reader = jr.CursorReader(run, cursor, jr.AUDIT_FIELDS, ["_TRANSPORT=audit"])
    sentinel = jr.Sentinel()
    result = target.run(sentinel.command(), timeout=120)
    try:
        sentinel.parse_pid(result.stdout)
    except SeccompPyError:
        detail = (result.stderr or result.stdout).strip().splitlines()
        return DoctorCheck("logged canary", FAIL, "systemd-run could not run the canary: "
                           + (detail[-1] if detail else f"exit {result.status}"),
                           "the target needs systemd-run and SystemCallLog= support (systemd >= 247, built "
                           "with seccomp)")
    from ..audit import AuditCollector

    collector = AuditCollector(complete_stream=True)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for record in collector.records(reader.poll(), "journal-json", "journal"):
            if sentinel.matches(record.pid, record.syscall):
                return DoctorCheck("logged canary", OK, f"a uname(2) call under SystemCallLog= reached the journal "
                                   f"after {time.monotonic() - started:.1f} s (audit serial {record.serial})")
        time.sleep(1.0)
    return DoctorCheck(
        "logged canary", FAIL, f"no SECCOMP record for the canary (pid {sentinel.pid}) within {timeout:g} s",
        "the kernel needs CONFIG_AUDIT and CONFIG_AUDITSYSCALL, audit enabled (audit=1), 'log' in "
        "actions_logged, and journald's audit socket active")


def diagnose(target, canary_timeout: float = 60.0) -> List[DoctorCheck]:
    result = target.run(["sh", "-c", FACTS_SCRIPT], timeout=120)
    facts = parse_facts(result.stdout)
    return evaluate(facts, run_canary(target, canary_timeout))


def run(args: argparse.Namespace) -> int:
    progress = Progress(quiet=args.quiet or args.json)
    session = TargetSession.from_args(args)
    try:
        with session.started(progress), progress.phase("doctor", "checking"):
            checks = diagnose(session.target, args.canary_timeout)
    finally:
        progress.close()
    if args.json:
        print(json.dumps({"target": session.description, "checks": [c.to_json() for c in checks]}, indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            print(f"[{check.status:>4}] {check.name.ljust(width)}  {check.detail}")
            if check.status != OK and check.fix:
                print(f"{'':7}{'':{width}}  fix: {check.fix}")
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        raise SeccompPyError(f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}")
    return 0
