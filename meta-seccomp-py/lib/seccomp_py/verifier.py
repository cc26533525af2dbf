"""Verify a profile by enforcing it: install the rendered systemd drop-ins, restart, re-run the workloads.

Passes only if every unit comes up and stays up, every workload succeeds, the units stop cleanly, and the
journal holds zero SECCOMP denials or kills in that window. Then a negative control: the same filter
with one syscall the unit really uses removed must produce a kill record for exactly that call. Without
it, a verify that "passes" could just mean that enforcement or logging never happened.

Enforcement uses the kill action by default: systemd's errno denials are not audited (checked on systemd
252: SystemCallErrorNumber=EPERM produced no SECCOMP record), so only kill makes every miss visible. The
negative control always uses kill for that reason.

    result = Verifier(target, profile, VerifyConfig(units=["nginx.service"], workloads=[...])).run()
    result.passed, result.to_json(), result.write("out/")
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from . import bootarm
from . import journal as jr
from .audit import AuditCollector, AuditRecord
from .errors import SeccompPyError, UsageError
from .fileio import atomic_write
from .profile import Profile
from .profiler import (
    LOG_DROPIN,
    Remote,
    TargetFacts,
    Workload,
    WorkloadFailed,
    WorkloadRunner,
    dropin_properties,
    first_line,
    host_workload_env,
    normalize_unit,
    probe_target,
    systemd_literal,
    unit_is_up,
)
from .progress import Progress
from .unitname import EXEC_UNIT_TYPES, unit_name_problem

VERIFY_DROPIN = "50-seccomp-py-verify.conf"
LOG_RESET_DROPIN = ("# seccomp-py verify: no seccomp log mode while the enforcing filter is checked\n"
                    "[Service]\nSystemCallLog=\n")
# Calls systemd allows in every filter anyway, and calls whose denial would not be a clean signal.
_NOT_FOR_NEGATIVE_CONTROL = {"execve", "execveat", "exit", "exit_group", "rt_sigreturn", "sigreturn",
                             "restart_syscall", "kill", "tgkill", "tkill"}


@dataclass
class VerifyConfig:
    units: List[str] = field(default_factory=list)
    commands: List[str] = field(default_factory=list)
    workloads: List[Workload] = field(default_factory=list)
    action: str = "kill"
    errno: str = "EPERM"
    negative_control: bool = True
    workload_timeout: float = 900.0
    start_timeout: float = 180.0
    catchup_timeout: float = 300.0
    settle_seconds: float = 1.0
    restore: bool = True
    host_env: Dict[str, str] = field(default_factory=dict)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class VerifyResult:
    checks: List[Check] = field(default_factory=list)
    denials: List[Dict[str, Any]] = field(default_factory=list)
    negative_control: Dict[str, Any] = field(default_factory=dict)
    workloads: List[Dict[str, Any]] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    error: Optional[str] = None
    action: str = "kill"

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def summary(self) -> str:
        if self.error:
            return self.error.splitlines()[0]
        failed = [c for c in self.checks if not c.ok]
        if not failed:
            return f"{len(self.checks)} checks passed"
        return "; ".join(f"{c.name}: {first_line(c.detail)}" for c in failed)

    def to_json(self) -> Dict[str, Any]:
        return {"passed": self.passed, "action": self.action, "error": self.error,
                "checks": [c.to_json() for c in self.checks], "denials": self.denials,
                "negative_control": self.negative_control, "workloads": self.workloads,
                "timings": self.timings}

    def markdown(self) -> str:
        lines = ["# seccomp-py verify report", "", f"Result: **{'pass' if self.passed else 'FAIL'}** "
                 f"(enforced with the {self.action} action)"]
        if self.error:
            lines += ["", f"Error: {self.error}"]
        lines += ["", "## Checks", ""]
        for check in self.checks:
            lines.append(f"- [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if self.denials:
            lines += ["", "## Denials", "", "| unit | pid | exe | syscall | action |",
                      "| --- | --- | --- | --- | --- |"]
            for d in self.denials[:100]:
                lines.append(f"| {d.get('unit')} | {d.get('pid')} | {d.get('exe')} | {d.get('syscall')} | "
                             f"{d.get('action')} |")
        if self.negative_control:
            nc = self.negative_control
            lines += ["", "## Negative control", "",
                      f"Removed `{nc.get('syscall')}` from `{nc.get('unit')}`: "
                      + ("denial seen" if nc.get("denied") else "**no denial seen**")
                      + (f" ({nc.get('detail')})" if nc.get("detail") else "")]
        if self.timings:
            lines += ["", "## Time", ""] + [f"- {k}: {v:.1f} s" for k, v in self.timings.items()]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str) -> None:
        import json
        import os

        atomic_write(os.path.join(out_dir, "verify.json"),
                     json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        atomic_write(os.path.join(out_dir, "verify.md"), self.markdown())


class Verifier:
    def __init__(self, target, profile: Profile, config: VerifyConfig, progress: Optional[Progress] = None,
                 forwarded: Optional[Dict[int, int]] = None, host_address: Optional[Tuple[str, int]] = None) -> None:
        self.target = target
        self.profile = profile
        self.config = config
        self.progress = progress or Progress(quiet=True)
        self.token = uuid.uuid4().hex[:10]
        self.remote = Remote(target, self.token)
        env = host_workload_env(config.host_env, host_address, forwarded or {})
        env["SECCOMP_ROUND_KIND"] = "verify"
        self.runner = WorkloadRunner(self.remote, config.workloads, self.progress, host_env=env)
        self.facts = TargetFacts()
        self.result = VerifyResult(action=config.action)
        self.units = [normalize_unit(u) for u in config.units]
        self.command_units: Dict[str, str] = {}
        self.installed: List[str] = []
        self.initially_active: Dict[str, bool] = {}
        self.reader: Optional[jr.CursorReader] = None
        self.collector = AuditCollector(complete_stream=True)
        self.remote_ready = False
        self._validate()

    def _validate(self) -> None:
        from .profiler import command_subject

        if not self.units and not self.config.commands:
            raise UsageError("nothing to verify: give --unit or --command (or a profile with unit subjects)")
        subjects = set(self.profile.subjects())
        for unit in self.units:
            problem = unit_name_problem(unit, EXEC_UNIT_TYPES)
            if problem:
                raise UsageError(f"--unit {unit!r}: {problem}")
            if unit not in subjects:
                raise UsageError(f"the profile has no subject {unit!r} (it has: {', '.join(sorted(subjects))})")
        for i, command in enumerate(self.config.commands, 1):
            subject = command_subject(command)
            if subject not in subjects:
                raise UsageError(f"--command {command!r}: the profile has no subject {subject!r}")
            self.command_units[f"seccomp-py-vcmd{i}-{self.token}.service"] = subject
        if self.config.action not in ("kill", "errno"):
            raise UsageError("--action must be kill or errno")

    # -- main ------------------------------------------------------------------------------------
    def run(self) -> VerifyResult:
        try:
            self._run()
        except KeyboardInterrupt:
            self.result.error = "interrupted (Ctrl-C)"
            self._cleanup()
            raise
        except SeccompPyError as exc:
            self.result.error = str(exc)
        except Exception as exc:
            self.result.error = f"{type(exc).__name__}: {exc}"
        self._cleanup()
        return self.result

    def _timed(self, name: str, started: float) -> None:
        self.result.timings[name] = round(self.result.timings.get(name, 0.0) + time.monotonic() - started, 2)

    def _run(self) -> None:
        started = time.monotonic()
        with self.progress.phase("verify", "enforcing the profile"):
            self.facts = probe_target(self.remote, self.units, ["LoadState", "ActiveState"])
            self._remember_state()
            self.remote.run(["mkdir", "-p", self.remote.workdir], check=True)
            self.remote_ready = True
            self.runner.upload()
            self._start_reader()
            self._install(self.profile, self.config.action)
            self._timed("install", started)
            started = time.monotonic()
            up = self._start_all()
            self._timed("start", started)
            started = time.monotonic()
            if up:
                self._workloads()
            self._timed("workload", started)
            started = time.monotonic()
            self._stop_all()
            self._timed("stop", started)
            started = time.monotonic()
            self._denials()
            self._timed("collect", started)
        if self.config.negative_control:
            started = time.monotonic()
            with self.progress.phase("verify", "negative control"):
                self._negative_control()
            self._timed("negative_control", started)

    def _remember_state(self) -> None:
        if not self.units:
            return
        shown = self.facts.units  # probe_target asked for them, in the same round trip
        for unit in self.units:
            if shown[unit].get("LoadState") != "loaded":
                raise SeccompPyError(f"unit {unit} is not known on the target")
            self.initially_active[unit] = shown[unit].get("ActiveState") in ("active", "reloading", "activating")

    def _start_reader(self) -> None:
        run = jr.target_runner(self.target)
        cursor = jr.journal_tail_cursor(run)
        if cursor is None:
            raise SeccompPyError("journalctl on the target printed no cursor; is journald running?")
        self.reader = jr.CursorReader(run, cursor, jr.AUDIT_FIELDS, ["_TRANSPORT=audit"],
                                      timeout=self.config.catchup_timeout + 60)

    # -- enforcing -------------------------------------------------------------------------------
    def _render(self, profile: Profile, subject: str, unit: str, action: str) -> str:
        from .render import render

        files = render(profile, "systemd", subjects=[subject], abi=self.facts.abi, action=action,
                       errno=self.config.errno, unit=unit, dropin_name=VERIFY_DROPIN)
        return next(iter(files.values()))

    def _install(self, profile: Profile, action: str, only: Optional[Sequence[str]] = None) -> None:
        self.progress.status("installing enforcing drop-ins")
        for unit in only or self.units:
            text = self._render(profile, unit, unit, action)
            folder = f"/run/systemd/system/{unit}.d"
            self.remote.install(f"{folder}/{VERIFY_DROPIN}", text)
            self.installed.append(f"{folder}/{VERIFY_DROPIN}")
            # A log-mode drop-in of the same name (left by profiling in this boot, or baked into a profiling
            # image by seccomp.bbclass, SECCOMP_MODE = "log") would keep logging beside the filter under
            # test: this one in /run takes precedence over both and resets SystemCallLog=.
            self.remote.install(f"{folder}/{LOG_DROPIN}", LOG_RESET_DROPIN)
            self.installed.append(f"{folder}/{LOG_DROPIN}")
        if self.units:
            # The boot-time log-everything drop-in (seccomp_py.bootarm) must not come back with the reload.
            self.remote.run(["sh", "-c", bootarm.DISARM_SHELL + " && systemctl daemon-reload"], timeout=120,
                            check=True)

    def _start_all(self) -> bool:
        ok = True
        if self.units:
            self.progress.status("restarting " + " ".join(self.units))
            self.remote.run(["systemctl", "restart", "--", *self.units], timeout=self.config.start_timeout)
            time.sleep(self.config.settle_seconds)
            shown = self.remote.show_units(self.units, ["ActiveState", "SubState", "Result", "Type"])
            down = [u for u in self.units if not unit_is_up(shown[u])]
            detail = ", ".join(f"{u}: {shown[u].get('ActiveState')}/{shown[u].get('Result')}" for u in self.units)
            self.result.checks.append(Check("units start under the filter", not down, detail))
            ok = not down
        for unit, subject in self.command_units.items():
            text = self._render(self.profile, subject, unit, self.config.action)
            index = list(self.command_units).index(unit)
            argv = ["systemd-run", "--quiet", f"--unit={unit}", "--property=RemainAfterExit=yes",
                    "--property=Type=exec"]
            argv += [f"--property={p}" for p in dropin_properties(text) if not p.endswith("=")]
            argv += ["--", "/bin/sh", "-c", systemd_literal(self.config.commands[index])]
            result = self.remote.run(argv, timeout=self.config.start_timeout)
            self.result.checks.append(Check(f"command {subject} starts under the filter", result.ok,
                                            first_line(result.stderr) or "started"))
            ok = ok and result.ok
        return ok

    def _workloads(self) -> None:
        try:
            runs = self.runner.run_all("verify", budget=None, timeout=self.config.workload_timeout,
                                       extra_env={"SECCOMP_ROUND_KIND": "verify"})
            self.result.workloads += runs
            self.result.checks.append(Check("workloads succeed", True, f"{len(runs)} workload(s) ok"))
        except WorkloadFailed as exc:
            self.result.workloads += getattr(exc, "runs", [])
            self.result.checks.append(Check("workloads succeed", False, str(exc)))
        if self.units:
            shown = self.remote.show_units(self.units, ["ActiveState", "Result", "Type"])
            down = [u for u in self.units if not unit_is_up(shown[u])]
            self.result.checks.append(Check("units stay active through the workloads", not down,
                                            ", ".join(f"{u}: {shown[u].get('ActiveState')}" for u in self.units)))
        for unit, subject in self.command_units.items():
            props = self.remote.systemctl_show(unit, ["Result", "ExecMainStatus"])
            ok = props.get("Result") in ("success", "")
            self.result.checks.append(Check(f"command {subject} succeeds", ok,
                                            f"result {props.get('Result')}, status {props.get('ExecMainStatus')}"))

    def _stop_all(self) -> None:
        if self.units:
            self.remote.run(["systemctl", "stop", "--", *self.units], timeout=self.config.start_timeout)
            shown = self.remote.show_units(self.units, ["Result"])
            bad = [u for u in self.units if shown[u].get("Result") not in ("success", "")]
            self.result.checks.append(Check("units stop cleanly (shutdown path allowed)", not bad,
                                            ", ".join(f"{u}: {shown[u].get('Result')}" for u in self.units)))
        for unit in self.command_units:
            self.remote.run(["sh", "-c", 'systemctl stop -- "$1"; systemctl reset-failed -- "$1" 2>/dev/null; true',
                             "sh", unit], timeout=self.config.start_timeout)

    # -- journal ---------------------------------------------------------------------------------
    def _read_until_sentinel(self) -> List[AuditRecord]:
        assert self.reader is not None
        sentinel = jr.Sentinel()
        result = self.remote.run(sentinel.command(), timeout=120)
        if not result.ok:
            raise SeccompPyError(f"the sentinel could not run: {first_line(result.stderr)}")
        sentinel.parse_pid(result.stdout)
        deadline = time.monotonic() + self.config.catchup_timeout
        records: List[AuditRecord] = []
        delay = 0.3
        while True:
            found = False
            for record in self.collector.records(self.reader.poll(), "journal-json", "journal"):
                if sentinel.matches(record.pid, record.syscall):
                    found = True
                else:
                    records.append(record)
            if found:
                return records
            if time.monotonic() > deadline:
                raise SeccompPyError(f"journald did not deliver the sentinel within {self.config.catchup_timeout:g} s")
            time.sleep(delay)
            delay = min(2.0, delay * 1.5)

    def _denials(self) -> None:
        records = self._read_until_sentinel()
        denials = [r for r in records if r.action != "LOG"]
        for record in denials:
            self.result.denials.append({"pid": record.pid, "exe": record.exe, "comm": record.comm,
                                        "abi": record.abi, "syscall": record.syscall or record.number,
                                        "action": record.action, "unit": self._guess_unit(record)})
        detail = "none" if not denials else ", ".join(
            sorted({f"{d['syscall']} ({d['exe']}, {d['action']})" for d in self.result.denials}))
        self.result.checks.append(Check("zero seccomp denials or kills in the journal", not denials, detail))

    def _guess_unit(self, record: AuditRecord) -> str:
        for unit in self.units:
            exes = set()
            for abi in self.profile.abis(unit):
                for name in self.profile.syscalls(unit, abi):
                    prov = self.profile.provenance(unit, abi, name)
                    if prov is not None:
                        exes |= prov.exes
            if record.exe in exes:
                return unit
        return "?"

    # -- negative control ------------------------------------------------------------------------
    def choose_control(self) -> Optional[Tuple[str, str]]:
        """(subject, syscall): a unit's (else a command's) most used call that systemd does not allow
        implicitly: removing it must be denied."""
        from .systemd_groups import load as load_groups

        implicit: Set[str] = set(_NOT_FOR_NEGATIVE_CONTROL)
        try:
            implicit |= load_groups(self.facts.systemd_version or 252).implicit()
        except SeccompPyError:
            implicit |= load_groups(252).implicit()
        for subject in [*self.units, *self.command_units.values()]:
            best: Optional[Tuple[int, str]] = None
            for abi in self.profile.abis(subject):
                if abi != self.facts.abi:
                    continue
                for name in self.profile.syscalls(subject, abi):
                    if name in implicit:
                        continue
                    prov = self.profile.provenance(subject, abi, name)
                    count = prov.count if prov else 0
                    if best is None or count > best[0]:
                        best = (count, name)
            if best is not None:
                return subject, best[1]
        return None

    def _negative_control(self) -> None:
        choice = self.choose_control()
        if choice is None:
            self.result.checks.append(Check("negative control", False, "no subject with a syscall to remove"))
            return
        subject, syscall = choice
        self.progress.status(f"negative control: {subject} without {syscall}")
        weakened = self.profile.subtract([syscall], subject=subject)
        if subject in self.units:
            hits, detail = self._control_unit(subject, weakened, syscall)
        else:
            hits, detail = self._control_command(subject, weakened, syscall)
        self.result.negative_control = {"unit": subject, "syscall": syscall, "denied": bool(hits),
                                        "records": len(hits), "detail": detail if hits else "no kill record"}
        self.result.checks.append(Check(f"negative control: removing {syscall} from {subject} is denied",
                                        bool(hits), f"{len(hits)} kill record(s)" if hits else
                                        "no denial: enforcement or audit logging is not working, so the passes "
                                        "above prove nothing"))

    def _control_unit(self, unit: str, weakened: Profile, syscall: str) -> Tuple[List[AuditRecord], str]:
        self._install(weakened, "kill", only=[unit])
        self.remote.run(["systemctl", "restart", "--", unit], timeout=self.config.start_timeout)
        time.sleep(self.config.settle_seconds)
        hits = [r for r in self._read_until_sentinel() if r.action != "LOG" and r.syscall == syscall]
        detail = "killed at start-up"
        if not hits:
            # Not used at start-up after all: drive the workloads, then look again.
            with contextlib.suppress(WorkloadFailed):
                self.runner.run_all("negative control", budget=None, timeout=self.config.workload_timeout)
            self.remote.run(["systemctl", "stop", "--", unit], timeout=self.config.start_timeout)
            hits = [r for r in self._read_until_sentinel() if r.action != "LOG" and r.syscall == syscall]
            detail = "killed during the workloads"
        else:
            self.remote.run(["systemctl", "stop", "--", unit], timeout=self.config.start_timeout)
        self.remote.run(["systemctl", "reset-failed", "--", unit], timeout=30)
        return hits, detail

    def _control_command(self, subject: str, weakened: Profile, syscall: str) -> Tuple[List[AuditRecord], str]:
        unit = next(u for u, s in self.command_units.items() if s == subject)
        command = self.config.commands[list(self.command_units).index(unit)]
        text = self._render(weakened, subject, unit, "kill")
        argv = ["systemd-run", "--quiet", "--wait", "--collect", f"--unit={unit}", "--property=Type=exec"]
        argv += [f"--property={p}" for p in dropin_properties(text) if not p.endswith("=")]
        argv += ["--", "/bin/sh", "-c", systemd_literal(command)]
        self.remote.run(argv, timeout=self.config.workload_timeout)
        hits = [r for r in self._read_until_sentinel() if r.action != "LOG" and r.syscall == syscall]
        return hits, "the command was killed"

    # -- cleanup ---------------------------------------------------------------------------------
    def _cleanup(self) -> None:
        steps = []
        if self.config.restore and self.installed:
            paths = list(dict.fromkeys(self.installed))
            steps.append(lambda: self.remote.run(["sh", "-c", 'rm -f -- "$@" && systemctl daemon-reload', "sh",
                                                  *paths], timeout=120))
            back = [u for u in self.units if self.initially_active.get(u)]
            if back:
                steps.append(lambda: self.remote.run(["systemctl", "start", "--", *back],
                                                     timeout=self.config.start_timeout))
        for unit in self.command_units:
            steps.append(lambda u=unit: self.remote.run(
                ["sh", "-c", 'systemctl stop -- "$1" 2>/dev/null; systemctl reset-failed -- "$1" 2>/dev/null; true',
                 "sh", u], timeout=60))
        if self.remote_ready:
            steps.append(lambda: self.remote.run(["rm", "-rf", "--", self.remote.workdir], timeout=30))
        for step in steps:
            try:
                step()
            except SeccompPyError:
                break
