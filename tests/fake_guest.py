"""A pretend systemd guest for the profiler's pure-logic tests (tests/test_profiler_sim.py).

It answers exactly the commands the profiler, verifier and doctor send (argv lists, as over SSH) and
behaves like the kernel where it matters: a unit armed with SystemCallLog=~KNOWN emits a SECCOMP LOG
record for every call outside KNOWN, children inherit their parent's unit and filter, an enforcing
SystemCallFilter with the kill action emits a KILL record and kills the process, errno denials leave no
record. Audit serials, journal cursors (with --cursor inclusive), trace events (fork + cgroup attach)
and cgroup samples are simulated. Real guests are covered by tests/qemu/.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from seccomp_py.bootarm import DISARM_SHELL, DONE_FLAG, generator_dropin
from seccomp_py.syscalls import get_abi
from seccomp_py.target.base import CommandResult, ConnectionLost

LOG = 0x7FFC0000
KILL = 0x80000000
XATTR_CALLS = ("getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr",
               "llistxattr", "flistxattr", "removexattr")
IMPLICIT = {"execve", "exit", "exit_group", "rt_sigreturn", "brk", "mmap", "munmap", "mprotect", "getpid"}


@dataclass
class Service:
    name: str
    exe: str
    start: List[str]
    workload: List[str] = field(default_factory=list)
    stop: List[str] = field(default_factory=list)
    helper: List[str] = field(default_factory=list)  # calls of a forked `sh -c` child, during the workload
    helper_exe: str = "/bin/sh"
    fail_start: bool = False
    extra_per_round: bool = False  # makes a new call every time it runs (never converges)
    crash_in_workload: bool = False  # dies right after its workload calls
    dies_after_start: int = 0  # this start (1 = the first) succeeds, then the process exits (Type=simple)
    runs: int = 0


class FakeGuest:
    def __init__(self, services: Sequence[Service], abi: str = "x86_64", tracefs: bool = True,
                 actions_logged: str = "kill_process kill_thread trap errno user_notif trace log",
                 systemd: str = "systemd 252 (252.39-1~deb12u2)", boot_log: Sequence[str] = ()) -> None:
        self.abi = get_abi(abi)
        self.services = {s.name: s for s in services}
        self.tracefs = tracefs
        self.actions_logged = actions_logged
        self.systemd = systemd
        self.files: Dict[str, bytes] = {}
        self.journal: List[dict] = [self._entry({"_TRANSPORT": "journal", "MESSAGE": "boot"})]
        self.serial = 100
        self.pid = 1000
        self.state: Dict[str, str] = {s: "active" for s in self.services}
        self.result: Dict[str, str] = {s: "success" for s in self.services}
        self.procs: Dict[str, List[int]] = {s: [] for s in self.services}
        self.filters: Dict[str, Optional[dict]] = {s: None for s in self.services}  # loaded at daemon-reload
        self.running_filter: Dict[str, Optional[dict]] = {s: None for s in self.services}
        self.trace: List[str] = []
        self.commands: List[List[str]] = []
        self.transient: Dict[str, dict] = {}
        # fault knobs
        self.skip_serial_on_poll: Optional[int] = None  # drop one serial before the Nth journal read
        self.hide_sentinel = False  # journald never catches up
        self.cgroups_by_name = True  # PREPARE_SCRIPT's boot sample finds each unit's cgroup by its name
        self.lag_polls = 0  # sentinel records become visible only after this many polls
        self.disconnect_on: Optional[str] = None  # raise ConnectionLost on a command containing this
        self.polls = 0
        self.lock = threading.RLock()
        self.workload_seconds = 0.0  # each workload takes this long (the profiler's journal prefetch runs meanwhile)
        self._visible_after: Dict[int, int] = {}
        # seccomp_py.log=<boot_log> on the kernel command line: the generator armed these units at boot,
        # and they started (their start-up logged) before anyone connected.
        self.boot_log = list(boot_log)
        self._generate()
        for unit in self.services:
            self.filters[unit] = self._parse_dropins(unit)
            if self.filters[unit] is not None:
                self._start(unit)
        self.trace = []  # nobody traced the boot: the profiler's trace instance starts later

    # -- the Target interface ----------------------------------------------------------------------
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def put(self, local, remote, mode=None) -> None:
        with open(local, "rb") as handle:
            self.files[remote] = handle.read()

    def write_file(self, remote, data, mode=0o644) -> None:
        self.files[remote] = data.encode() if isinstance(data, str) else data

    def run(self, cmd, timeout=None, check=False, input=None) -> CommandResult:
        argv = list(cmd)
        self.commands.append(argv)
        joined = " ".join(argv)
        if self.disconnect_on and self.disconnect_on in joined:
            raise ConnectionLost("SSH connection to fake was lost while running: " + joined[:60])
        if self.workload_seconds and argv[:2] == ["sh", "-c"] and argv[2].startswith('cd "$1" && shift && exec'):
            time.sleep(self.workload_seconds)  # outside the lock: workloads may run side by side
        with self.lock:  # one command at a time changes the guest (the profiler's threads run commands too)
            status, out, err = self._dispatch(argv, input)
        result = CommandResult(joined, status, out, err, 0.01)
        return result.check() if check else result

    def run_to_file(self, cmd, sink, timeout=None, check=False) -> CommandResult:
        result = self.run(cmd, timeout, check)
        sink.write(result.stdout.encode())
        return CommandResult(result.command, result.status, "", result.stderr, 0.01)

    # -- journal and kernel ----------------------------------------------------------------------
    def _entry(self, fields: dict) -> dict:
        entry = {"__CURSOR": f"s=fake;i={len(getattr(self, 'journal', []))}", "_BOOT_ID": "b0",
                 "__REALTIME_TIMESTAMP": str(1795367324000000 + len(getattr(self, 'journal', [])))}
        entry.update({k: str(v) for k, v in fields.items()})
        return entry

    def _append(self, fields: dict, hidden: bool = False) -> None:
        entry = self._entry(fields)
        self.journal.append(entry)
        if hidden:
            self._visible_after[len(self.journal) - 1] = self.polls + self.lag_polls

    def _next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def audit_other(self, type_: int = 1130) -> None:
        self._append({"_TRANSPORT": "audit", "_AUDIT_TYPE": type_, "_AUDIT_ID": self._next_serial(),
                      "MESSAGE": "SERVICE_START"})

    def seccomp(self, pid: int, exe: str, name: str, code: int, hidden: bool = False) -> None:
        self._append({"_TRANSPORT": "audit", "_AUDIT_TYPE": 1326, "_AUDIT_ID": self._next_serial(), "_PID": pid,
                      "_EXE": exe, "_COMM": exe.rsplit("/", 1)[-1][:15],
                      "_AUDIT_FIELD_ARCH": f"{self.abi.audit_arch:08x}",
                      "_AUDIT_FIELD_SYSCALL": self.abi.number(name), "_AUDIT_FIELD_CODE": f"0x{code:08x}",
                      "_AUDIT_FIELD_COMPAT": 0}, hidden=hidden)

    def calls(self, unit: str, pid: int, exe: str, names: Sequence[str]) -> bool:
        """The process makes these calls under the unit's running filter; False if it was killed."""
        filt = self.running_filter.get(unit) or self.transient.get(unit, {}).get("filter")
        for name in names:
            if filt is None:
                continue
            if filt["kind"] == "log":
                if name not in filt["known"]:
                    self.seccomp(pid, exe, name, LOG)
            elif name not in filt["allow"] and name not in IMPLICIT and filt["action"] == "kill":
                self.seccomp(pid, exe, name, KILL)
                return False
            elif "also_log" in filt and name not in filt["also_log"]:
                self.seccomp(pid, exe, name, LOG)
        return True

    def fork(self, parent: int, unit: Optional[str] = None) -> int:
        self.pid += 1
        self.trace.append(f"  x-{parent} [000] .....   1.0: sched_process_fork: comm=x pid={parent} "
                          f"child_comm=x child_pid={self.pid}")
        if unit is not None:
            self.trace.append(f"  systemd-1 [000] d..1.   1.0: cgroup_attach_task: dst_root=0 dst_id=1 dst_level=2 "
                              f"dst_path=/system.slice/{unit} pid={self.pid} comm=x")
        return self.pid

    # -- units -------------------------------------------------------------------------------------
    def _generate(self) -> None:
        """The seccomp-py-boot-log generator (it runs at boot and at every daemon-reload)."""
        for unit in self.boot_log:
            self.files.pop(generator_dropin(unit), None)
            if DONE_FLAG not in self.files:
                self.files[generator_dropin(unit)] = b"[Service]\nSystemCallLog=\nSystemCallLog=~arm_fadvise64_64\n"

    def _parse_dropins(self, unit: str) -> Optional[dict]:
        # same-named drop-ins: /run/systemd/system wins over the generator's, which wins over a baked one
        log = self.files.get(f"/run/systemd/system/{unit}.d/50-seccomp-log.conf",
                             self.files.get(generator_dropin(unit),
                                            self.files.get(f"/usr/lib/systemd/system/{unit}.d/50-seccomp-log.conf")))
        enforce = self.files.get(f"/run/systemd/system/{unit}.d/50-seccomp-py-verify.conf")
        if enforce is not None:
            filt = parse_enforce(enforce.decode())
            logged = parse_log(log.decode()) if log is not None else None
            if logged is not None:  # systemd applies both: the enforcing filter and the log filter
                filt["also_log"] = logged["known"]
            return filt
        if log is not None:
            return parse_log(log.decode())  # None for a reset-only drop-in (SystemCallLog= empty)
        return None

    def _start(self, unit: str) -> bool:
        svc = self.services[unit]
        self.running_filter[unit] = self.filters[unit]
        self.audit_other()
        svc.runs += 1
        main = self.fork(1, unit)
        names = list(svc.start)
        if svc.extra_per_round:
            names.append(XATTR_CALLS[svc.runs % len(XATTR_CALLS)])
        ok = self.calls(unit, main, svc.exe, names) and not svc.fail_start
        if ok and svc.runs == svc.dies_after_start:
            self.procs[unit] = []
            self.state[unit], self.result[unit] = "failed", "exit-code"
        elif ok:
            worker = self.fork(main)
            self.procs[unit] = [main, worker]
            self.state[unit], self.result[unit] = "active", "success"
        else:
            self.procs[unit] = []
            self.state[unit], self.result[unit] = "failed", "exit-code" if svc.fail_start else "signal"
        return ok

    def _stop(self, unit: str) -> None:
        svc = self.services[unit]
        if self.state[unit] == "active" and self.procs[unit]:
            ok = self.calls(unit, self.procs[unit][0], svc.exe, svc.stop)
            self.result[unit] = "success" if ok else "signal"
        self.state[unit] = "inactive" if self.result[unit] == "success" else "failed"
        self.procs[unit] = []

    def drive(self, unit: str) -> bool:
        svc = self.services[unit]
        if self.state[unit] != "active":
            return False
        worker = self.procs[unit][-1]
        if not self.calls(unit, worker, svc.exe, svc.workload):
            self.state[unit], self.result[unit] = "failed", "signal"
            return False
        if svc.helper:
            child = self.fork(worker)
            self.calls(unit, child, svc.helper_exe, svc.helper)
        if svc.crash_in_workload:
            self.state[unit], self.result[unit], self.procs[unit] = "failed", "core-dump", []
        return True

    def show(self, unit: str, props: Sequence[str]) -> str:
        known = unit in self.services or unit in self.transient
        values = {"Id": unit, "LoadState": "loaded" if known else "not-found",
                  "ActiveState": self.state.get(unit, self.transient.get(unit, {}).get("state", "inactive")),
                  "Result": self.result.get(unit, self.transient.get(unit, {}).get("result", "success")),
                  "Type": "forking", "ControlGroup": f"/system.slice/{unit}" if known else "",
                  "Slice": "system.slice", "SubState": "running", "ExecMainStatus": "0", "ExecMainPID": "0",
                  "DropInPaths": " ".join(p for p in (generator_dropin(unit),
                                                      f"/run/systemd/system/{unit}.d/50-seccomp-log.conf")
                                          if p in self.files)}
        return "\n".join(f"{p}={values.get(p, '')}" for p in props) + "\n"

    # -- command dispatch --------------------------------------------------------------------------
    def _dispatch(self, argv: List[str], input_data) -> tuple:
        if argv[:2] == ["sh", "-c"]:
            return self._shell(argv[2], argv[3:], input_data)
        if argv[0] == "systemctl":
            return self._systemctl(argv[1:])
        if argv[0] == "journalctl":
            return self._journalctl(argv[1:])
        if argv[0] == "sh" and argv[1].endswith("/tools.sh"):
            return self._tools(argv[2], argv[3:])
        if argv[0] == "systemd-run":
            return self._systemd_run(argv[1:])
        if argv[0] in ("rm", "mkdir"):
            if argv[:2] == ["rm", "-f"]:
                for path in argv[3:]:
                    self.files.pop(path, None)
            return 0, "", ""
        return 127, "", f"fake guest: unknown command {argv}"

    def _shell(self, script: str, args: List[str], input_data) -> tuple:
        if "uname -m" in script and "actions_logged" in script and "machine=" not in script:
            prelude = ""
            if "### seccomp-py cursor" in script:  # PREPARE_SCRIPT ahead of the probe
                workdir, name = args[1], args[2]
                self.files[f"{workdir}/tools.sh"] = input_data if isinstance(input_data, bytes) else input_data.encode()
                trace = self._tools("trace-setup", [name])[1] if name != "-" else ""
                cursor = self._journalctl(["--show-cursor"])[1]
                sample = ""
                if args[4] != "-" and DONE_FLAG not in self.files and self.cgroups_by_name:
                    sample = self._tools("sample", ["once", "", *(f"{u}=/sys/fs/cgroup/system.slice/{u}"
                                                                  for u in args[4].split())])[1]
                prelude = (f"### seccomp-py cursor\n{cursor}### seccomp-py boot sample\n{sample}"
                           f"### seccomp-py trace\n{trace}### seccomp-py probe\n")
                count = int(args[5])
                for path, text in zip(args[6:6 + 2 * count:2], args[7:7 + 2 * count:2]):
                    self.files[path] = text.encode()
                args = [args[0], *args[6 + 2 * count:]]
            out = prelude + (f"{self.abi.name}\n6.1.0-fake\n{self.systemd}\n{self.actions_logged}\n"
                   f"{'disarmed' if DONE_FLAG in self.files else '-'}\n")
            if len(args) > 2:  # systemctl show of the units asked for, in the same round trip
                out += "### seccomp-py units\n" + self._systemctl(["show", "--property=" + args[1], "--",
                                                                     *args[2:]])[1]
            return 0, out, ""
        if "machine=" in script:  # doctor facts
            return 0, (f"machine={self.abi.name}\nkernel=6.1.0\nsystemd={self.systemd}\n"
                       f"actions_logged={self.actions_logged}\nactions_avail={self.actions_logged}\n"
                       f"cmdline=root=/dev/vda audit=1 audit_backlog_limit=8192\naudit_socket=active\n"
                       f"auditd=inactive\ntracefs={'/sys/kernel/tracing' if self.tracefs else ''}\n"
                       f"cgroup_events={1 if self.tracefs else 0}\n"), ""
        if script.startswith("\nsettle=$1; mode=$2; units=$3; n=$4"):  # ARM_SCRIPT: drop-ins, reload, restart
            mode, units, count = args[2], args[3].split(), int(args[4])
            pairs = args[5:5 + 2 * count]
            gather = args[5 + 2 * count:]
            for path, text in zip(pairs[::2], pairs[1::2]):
                self.files[path] = text.encode()
            if mode == "restart":
                self.files[DONE_FLAG] = b""
                self._systemctl(["daemon-reload"])
            if not units:
                return 0, "", ""
            status, _, err = self._systemctl([mode, "--", *units])
            state = ""
            if mode == "start" or status != 0 or args[1] != "0":
                state = "### seccomp-py state\n" + self._systemctl(["show", "--property=Id,ActiveState,Type,Result",
                                                                    "--", *units])[1]
            gathered = ("### seccomp-py gather\n" + self._tools("gather", gather[3:])[1]) if gather else ""
            return status, state + gathered, err
        if script.startswith("\nsentinel=$1; units=$2; sampler=$3; acur=$4; ncur=$5; dir=$6; shift 6"):
            # END_SCRIPT: state, stop, gather (beside the sentinel), one read of the journal from each cursor
            units, acur, ncur, gather = args[2].split(), args[4], args[5], args[7:]
            state = self._systemctl(["show", "--property=Id,ActiveState,Type,Result,ExecMainStatus", "--",
                                     *units])[1]
            stop = self._systemctl(["stop", "--", *units])[0]
            status, pid, err = self._shell("--property=SystemCallLog=uname", [], None)
            gathered = self._tools("gather", gather[3:])[1] if gather else ""
            audit = self._journalctl([*(["--cursor", acur] if acur != "-" else []), "_TRANSPORT=audit"])[1]
            notices = self._journalctl([*(["--cursor", ncur] if ncur != "-" else []), "_TRANSPORT=kernel",
                                        "_TRANSPORT=driver"])[1]
            return status, (f"{state}### seccomp-py stop\nstop={stop}\n### seccomp-py gather\n{gathered}"
                            f"### seccomp-py sentinel\n{pid}Linux\n### seccomp-py journal\n{audit}"
                            f"### seccomp-py notices\n{notices}"), err
        if 'trace-collect "$1" remove' in script and "rm -rf" in script:  # clean-up: trace, work folder
            return 0, "", ""
        if script.startswith('mkdir -p -- "$1" && cat > "$2.tmp"'):
            self.files[args[2]] = input_data if isinstance(input_data, bytes) else input_data.encode()
            return 0, "", ""
        if script.startswith("--property=SystemCallLog=uname") or (
                "--property=SystemCallLog=uname" in script and "sentinel=$1" not in script):  # the sentinel
            pid = self.fork(1)
            if self.hide_sentinel:
                self.serial += 1  # the kernel emitted it; journald never delivers it
            else:
                self.seccomp(pid, "/usr/bin/uname", "uname", LOG, hidden=True)
            return 0, f"{pid}\n", ""
        if script.startswith('cd "$1" && shift && exec "$@"'):
            path = args[-1]
            return self._workload(self.files.get(path, b"").decode())
        if script.startswith(DISARM_SHELL + ' && rm -f -- "$@" && systemctl daemon-reload') or \
                script.startswith('rm -f -- "$@" && systemctl daemon-reload'):
            if script.startswith(DISARM_SHELL):
                self.files[DONE_FLAG] = b""
            for path in args[1:]:
                self.files.pop(path, None)
            return self._systemctl(["daemon-reload"])
        if script == DISARM_SHELL + " && systemctl daemon-reload":
            self.files[DONE_FLAG] = b""
            return self._systemctl(["daemon-reload"])
        if "systemctl stop" in script:
            unit = args[-1]
            self.transient.pop(unit, None)
            return 0, "", ""
        if "/run/seccomp-py/*" in script:  # stale cleanup
            return 0, "", ""
        if script.startswith('cat -- "$1"'):
            return 0, "", ""
        return 127, "", f"fake guest: unknown script {script[:60]}"

    def _workload(self, text: str) -> tuple:
        for unit in re.findall(r"drive (\S+)", text):
            if unit in self.services:
                if not self.drive(unit):
                    return 7, "", f"{unit} did not answer"
            elif unit in self.transient:
                pass
        match = re.search(r"exit (\d+)", text)
        return (int(match.group(1)) if match else 0), "workload output\n", ""

    def _systemctl(self, args: List[str]) -> tuple:
        verb = args[0]
        units = [a for a in args[1:] if not a.startswith("-")]
        if verb == "show":
            props = next(a for a in args if a.startswith("--property="))[len("--property="):].split(",")
            return 0, "\n".join(self.show(u, props) for u in units), ""
        if verb == "daemon-reload":
            self._generate()
            for unit in self.services:
                self.filters[unit] = self._parse_dropins(unit)
            return 0, "", ""
        if verb in ("restart", "start"):
            ok = True
            for unit in units:
                if verb == "restart" or self.state[unit] != "active":
                    self._stop(unit)
                    ok = self._start(unit) and ok
            return (0 if ok else 1), "", "" if ok else "Job failed. See journalctl -xe"
        if verb == "stop":
            for unit in units:
                if unit in self.services:
                    self._stop(unit)
                else:
                    self.transient.pop(unit, None)
            return 0, "", ""
        if verb in ("reset-failed", "status", "try-restart"):
            return 0, "", ""
        return 1, "", f"unknown systemctl verb {verb}"

    def _journalctl(self, args: List[str]) -> tuple:
        if "--show-cursor" in args:
            return 0, f"-- No entries --\n-- cursor: {self.journal[-1]['__CURSOR']}\n", ""
        if "-u" in args:
            return 0, "fake unit log line\n", ""
        self.polls += 1
        if self.skip_serial_on_poll == self.polls:
            self.serial += 1  # a record journald never received
        start = 0
        if "--cursor" in args:
            cursor = args[args.index("--cursor") + 1]
            start = [e["__CURSOR"] for e in self.journal].index(cursor)
        matches: Dict[str, set] = {}
        for i, word in enumerate(args):
            if i > 0 and args[i - 1] == "--cursor":
                continue
            if "=" in word and not word.startswith("-"):
                key, value = word.split("=", 1)
                matches.setdefault(key, set()).add(value)
        out = []
        for index in range(start, len(self.journal)):
            if self._visible_after.get(index, 0) > self.polls:
                break  # journald has not written it yet, nor anything after it
            entry = self.journal[index]
            if all(entry.get(k) in v for k, v in matches.items()):
                out.append(json.dumps(entry))
        return 0, "".join(line + "\n" for line in out), ""

    def _tools(self, command: str, args: List[str]) -> tuple:
        if command == "trace-setup":
            return 0, (f"/sys/kernel/tracing/instances/{args[0]}\n" if self.tracefs else ""), ""
        if command == "trace-collect":
            return 0, "", ""
        if command == "gather":
            out = ""
            if args[0] != "-":
                out += "\n".join(self.trace) + "\n### seccomp-py stats\noverrun: 0\n"
                self.trace = []
            out += "### seccomp-py samples\n"
            for spec in args[3:]:
                unit = spec.split("=", 1)[0]
                for pid in self.procs.get(unit, []):
                    out += f"C {unit} {pid}\n"
            return 0, out, ""
        if command == "sample":  # "once": the processes in each cgroup; the background sampler: nothing
            if args[0] != "once":
                return 0, "", ""
            units = [spec.split("=", 1)[0] for spec in args[2:]]
            return 0, "".join(f"C {u} {pid}\n" for u in units for pid in self.procs.get(u, [])), ""
        return 2, "", "unknown tool"

    def _systemd_run(self, args: List[str]) -> tuple:
        unit = next(a for a in args if a.startswith("--unit="))[len("--unit="):]
        props = [a[len("--property="):] for a in args if a.startswith("--property=")]
        command = args[-1]
        known = set()
        allow = None
        action = "errno"
        for prop in props:
            if prop.startswith("SystemCallLog=~"):
                known |= set(prop[len("SystemCallLog=~"):].split())
            elif prop.startswith("SystemCallFilter=") and not prop.startswith("SystemCallFilter=~"):
                allow = (allow or set()) | set(prop[len("SystemCallFilter="):].split())
            elif prop.startswith("SystemCallErrorNumber="):
                action = "kill" if prop.endswith("kill") else "errno"
        filt = {"kind": "enforce", "allow": allow, "action": action} if allow is not None else \
            {"kind": "log", "known": known}
        self.transient[unit] = {"filter": filt, "state": "active", "result": "success"}
        pid = self.fork(1, unit)
        names = re.findall(r"call (\w+)", command)
        ok = self.calls(unit, pid, "/usr/bin/tool", names)
        self.transient[unit]["result"] = "success" if ok else "signal"
        return 0, "", ""


def parse_log(text: str) -> Optional[dict]:
    known: Optional[set] = None
    for line in text.splitlines():
        if line.startswith("SystemCallLog=~"):
            known = (known or set()) | set(line[len("SystemCallLog=~"):].split())
        elif line.strip() == "SystemCallLog=":
            known = None  # the empty assignment resets the list: nothing is logged
    return None if known is None else {"kind": "log", "known": known}


def parse_enforce(text: str) -> dict:
    allow = set()
    action = "errno"
    for line in text.splitlines():
        if line.startswith("SystemCallFilter=") and not line.startswith("SystemCallFilter=~"):
            allow |= set(line[len("SystemCallFilter="):].split())
        if line.startswith("SystemCallErrorNumber="):
            action = "kill" if line.strip().endswith("kill") else "errno"
    return {"kind": "enforce", "allow": allow, "action": action}
