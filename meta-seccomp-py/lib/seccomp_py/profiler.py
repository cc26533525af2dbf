"""The profiler: arm services in seccomp log mode, run workloads, collect, iterate to convergence.

One boot, several rounds on a started Target (see seccomp_py.target):

    round 1 (warm-up, --warmup-seconds > 0): arm every unit with nothing known (every call is logged),
        restart, run each workload for a few seconds only (workloads see SECCOMP_ROUND_KIND=warm-up and
        may run a light pass that still walks every code path). This learns the frequent calls at a
        small record volume: the volume is what makes journald lag.
    round N: re-arm with SystemCallLog=~<everything known>, so only new calls are logged; restart; run
        the full workloads; collect. Stop when a full round adds nothing (converged) or at
        --max-iterations. Every round ends by stopping the units, so the shutdown path is logged
        inside the round that ran it (otherwise round N+1 would find round N's shutdown calls).

When the image armed the units at boot (seccomp_py.bootarm: a generator and seccomp_py.log= on the
kernel command line, which the qemu front ends add), round 1 needs no drop-in, daemon-reload or restart:
it reads this boot's journal from its start, first start of each service included.

Per round: runtime drop-ins in /run/systemd/system/<unit>.d/ (nothing persists across reboot),
daemon-reload, restart; `--command` runs as a transient unit with the same property. Collection reads
the journal by cursor (seccomp_py.journal) until a sentinel run after the workloads shows up, so
journald has caught up; records are parsed by seccomp_py.audit (serial gaps, loss causes) and tied to
units by seccomp_py.attribution (kernel fork/cgroup-attach trace events). A name the service needs
but log mode cannot show is added next to the one that reveals it (COMPANIONS: clone3 with clone).

Every command sent to the target is an argv list quoted with shlex.quote (Target.run does it), or a
fixed script uploaded as a file; unit names are validated before they reach a path or a unit file.

    result = Profiler(target, ProfileConfig(units=["nginx.service"], workloads=[...])).run()
    write_outputs(result, "out/")
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from . import __version__, bootarm
from . import journal as jr
from .attribution import (
    HOW_AMBIGUOUS,
    HOW_EXE,
    HOW_PID_REUSE,
    HOW_SAMPLE,
    HOW_TRACE,
    TOOLS_SCRIPT,
    Attributor,
    parse_samples,
    slice_cgroup,
    split_gather_output,
)
from .audit import AuditCollector, AuditRecord
from .errors import SeccompPyError, UsageError
from .fileio import atomic_write
from .profile import Profile
from .progress import Progress
from .unitname import EXEC_UNIT_TYPES, unit_name_problem

SOURCE = "seccomp-log"
# Attributions that prove a record came from an armed unit (see attribution.py).
EVIDENCE = (HOW_TRACE, HOW_SAMPLE, HOW_EXE)
REMOTE_BASE = "/run/seccomp-py"
LOG_DROPIN = "50-seccomp-log.conf"
MIN_SYSTEMD = 247
FILTER_FORMATS = ("systemd", "lxc", "oci", "firejail")


# Leftovers of an interrupted run on the same target (the connection dropped, the host died): our
# runtime drop-ins, work folders and tracefs instances. Runs are not concurrent on one target (they
# restart the same units), so anything of ours still there is stale. Prints what it removed.
STALE_CLEANUP = r"""
found=
reload=
for f in /run/systemd/system/*.d/50-seccomp-log.conf /run/systemd/system/*.d/50-seccomp-py-verify.conf; do
    [ -e "$f" ] && rm -f "$f" && found="$found $f" && reload=1
done
for d in /run/seccomp-py/*; do
    [ -e "$d" ] && rm -rf "$d" && found="$found $d"
done
for t in /sys/kernel/tracing /sys/kernel/debug/tracing; do
    for i in "$t"/instances/seccomp-py-*; do
        [ -d "$i" ] || continue
        for ev in sched/sched_process_fork cgroup/cgroup_attach_task; do echo 0 > "$i/events/$ev/enable"; done
        rmdir "$i" 2>/dev/null && found="$found $i"
    done
done
[ -n "$reload" ] && systemctl daemon-reload
echo $found
"""

# Everything before the first round, run ahead of probe_target in its round trip (each costs a fraction
# of a second on TCG): the stale clean-up (its output first), the helper script from stdin, the trace
# instance (trace-setup's output; set up in the background: the kernel makes a folder per trace event,
# slow on TCG), the journal's tail cursor, and who runs in the units now when they may have been armed
# at boot (the boot round's evidence; then that round needs no round trip to start). Sections in any
# order after the clean-up's. args: WORKDIR TRACE_NAME|- BUFFER_KB UNITS|- (space-separated, see
# END_SCRIPT) N PATH TEXT ... (workload scripts in WORKDIR), then probe_target's.
PREPARE_SCRIPT = STALE_CLEANUP + r"""
dir=$1; name=$2; kb=$3; boot=$4; n=$5; shift 5
# The folder is new and this run's own: nothing reads tools.sh (or a workload) before this script has
# written it.
mkdir -p -- "$dir" && cat > "$dir/tools.sh" || exit 3
while [ "$n" -gt 0 ]; do
    printf '%s' "$2" > "$1" || exit 3
    shift 2
    n=$((n - 1))
done
[ "$name" = - ] || sh "$dir/tools.sh" trace-setup "$name" "$kb" > "$dir/trace.out" &
tpid=$!
echo "### seccomp-py cursor"
journalctl --no-pager -q -n 0 --show-cursor
echo "### seccomp-py boot sample"
# A unit's cgroup is its slice's folder and its name (ControlGroup is not known before the probe; slices
# nest as a.slice/a-b.slice): UNIT=PATH pairs after the units, then one cgroup sample. A function, so
# "$@" stays the probe's. (Globs over *.slice only: listing every cgroup folder costs 0.1 s on TCG.)
boot_sample() {
    set +f
    n=$#
    for u in "$@"; do
        for d in /sys/fs/cgroup/*.slice/"$u" /sys/fs/cgroup/*.slice/*.slice/"$u" \
                 /sys/fs/cgroup/*.slice/*.slice/*.slice/"$u"; do
            [ -d "$d" ] && set -- "$@" "$u=$d"
        done
    done
    shift "$n"
    [ "$#" -eq 0 ] || sh "$dir/tools.sh" sample once "" "$@"
}
if [ "$boot" != - ] && [ ! -e """ + bootarm.DONE_FLAG + r""" ]; then
    set -f
    boot_sample $boot
    set +f
fi
wait "$tpid"
echo "### seccomp-py trace"
[ -s "$dir/trace.out" ] && while IFS= read -r line; do printf '%s\n' "$line"; done < "$dir/trace.out"
"""
TRACE_MARKER = "### seccomp-py trace"
CURSOR_MARKER = "### seccomp-py cursor"
BOOT_SAMPLE_MARKER = "### seccomp-py boot sample"
PREPARE_MARKERS = (TRACE_MARKER, CURSOR_MARKER, BOOT_SAMPLE_MARKER)


# Calls a service makes that log mode cannot show, added next to the call that reveals them.
# clone3: glibc (2.34+) creates threads and processes with clone3 and falls back to clone only on
# ENOSYS. systemd answers clone3 with ENOSYS for units with RestrictNamespaces= (it cannot inspect
# clone3's flags), and an ERRNO verdict outranks LOG, so the attempt is never logged; only the clone
# fallback is. Under an allow-list without clone3 the attempt is denied with EPERM (no fallback: thread
# creation fails) or killed. Measured on the reference guest with redis-server (verify killed it).
COMPANIONS = {
    "clone": ("clone3", "glibc tries clone3 first and falls back to clone only on ENOSYS; units with "
                        "RestrictNamespaces= get ENOSYS for clone3, which log mode never shows"),
}


# One round's arming, one round trip (each costs seconds on a TCG guest). MODE restart: N drop-ins
# (path, text pairs), stop the boot-time generator (bootarm), daemon-reload, restart the units that
# follow. MODE start: the units were armed at boot (bootarm), only start those not running. Then an
# optional settle pause and their state, then (start mode) the attribution evidence of the processes
# started at boot (tools.sh gather).
# args: SETTLE MODE UNITS N PATH TEXT ... [sh TOOLS gather ARG ...]; UNITS space-separated (see END_SCRIPT)
ARM_SCRIPT = r"""
settle=$1; mode=$2; units=$3; n=$4; shift 4
i=0
while [ "$i" -lt "$n" ]; do
    mkdir -p -- "${1%/*}" && printf '%s' "$2" > "$1.tmp" && mv -f -- "$1.tmp" "$1" || exit 3
    shift 2
    i=$((i + 1))
done
if [ "$mode" = restart ]; then
    """ + bootarm.DISARM_SHELL + r""" || exit 3
    systemctl daemon-reload || exit 4
fi
[ -z "$units" ] && exit 0
set -f
systemctl "$mode" -- $units; rc=$?
[ "$settle" = 0 ] || sleep "$settle"
# The state when it tells something: a restart that succeeded with no settle pause shows every unit
# up (0.3 s on TCG); a unit that dies later is caught by the round's end or its failing workload.
if [ "$mode" = start ] || [ "$rc" != 0 ] || [ "$settle" != 0 ]; then
    echo "### seccomp-py state"
    systemctl show --property=Id,ActiveState,Type,Result,ExecMainPID,ExecStartPre,ExecStart,ExecStartPost -- $units
fi
[ "$#" -eq 0 ] || { echo "### seccomp-py gather"; "$@"; }
exit $rc
"""

# The end of a round, one round trip: the state of every armed unit after the workloads, stop them
# all (the shutdown path then lands in this round's records), the sentinel (journal.Sentinel) while the
# round's attribution evidence is gathered (tools.sh gather), then the journal from the readers' cursors:
# the audit entries once the sentinel's record is in (a few tries) while the kernel's notices are read.
# The sentinel and the notices go through files in WORKDIR (overwritten each round; read with shell
# builtins where they do: an exec costs ~0.05 s on TCG). Each section of the output starts with its
# marker, in any order. The profiler reads on by itself only when journald lags further behind.
# args: SENTINEL_UNIT UNITS SAMPLER AUDIT_CURSOR|- NOTICE_CURSOR|- WORKDIR [sh TOOLS gather ARG ...];
# UNITS space-separated (unit names have no spaces; globbing is off).
END_SCRIPT = r"""
sentinel=$1; units=$2; sampler=$3; acur=$4; ncur=$5; dir=$6; shift 6
set -f
systemctl show --property=Id,ActiveState,Type,Result,ExecMainStatus -- $units
echo "### seccomp-py stop"
systemctl stop -- $units; echo "stop=$?"
# Both mostly wait on systemd or the kernel: side by side they cost one of them (TCG guests).
(""" + jr.Sentinel.script('"$sentinel"') + r"""; exit $rc) > "$dir/sentinel.out" 2> "$dir/sentinel.err" &
spid=$!
echo "### seccomp-py gather"
[ "$sampler" = - ] || systemctl stop -- "$sampler" 2>/dev/null
[ "$#" -eq 0 ] || "$@"
wait "$spid"; rc=$?
echo "### seccomp-py sentinel"
pid=
while IFS= read -r line; do printf '%s\n' "$line"; pid=${pid:-$line}; done < "$dir/sentinel.out"
case $pid in '' | *[!0-9]*) pid= ;; esac
[ -s "$dir/sentinel.err" ] && cat -- "$dir/sentinel.err" >&2
(""" + jr.read_shell("$ncur", jr.NOTICE_FIELDS, jr.NOTICE_MATCHES) + r""") > "$dir/notices.out" &
npid=$!
echo "### seccomp-py journal"
if [ -n "$pid" ]; then
    i=0
    # the sentinel's own entry (an indexed lookup, cheap) before the one read of everything new
    until journalctl --no-pager -q -b -o cat _TRANSPORT=audit "_PID=$pid" 2>/dev/null | grep -q .; do
        i=$((i + 1)); [ "$i" -lt 25 ] || break
        sleep 0.2
    done
    """ + jr.read_shell("$acur", jr.AUDIT_FIELDS, ["_TRANSPORT=audit"]) + r"""
fi
wait "$npid"
echo "### seccomp-py notices"
[ -s "$dir/notices.out" ] && cat -- "$dir/notices.out"
exit $rc
"""
STATE_MARKER = "### seccomp-py state"
STOP_MARKER = "### seccomp-py stop"
SENTINEL_MARKER = "### seccomp-py sentinel"
GATHER_MARKER = "### seccomp-py gather"
JOURNAL_MARKER = "### seccomp-py journal"
NOTICES_MARKER = "### seccomp-py notices"
END_MARKERS = (STOP_MARKER, SENTINEL_MARKER, GATHER_MARKER, JOURNAL_MARKER, NOTICES_MARKER)


class ProfilingError(SeccompPyError):
    """Profiling stopped before a complete profile; partial results were saved (marked incomplete)."""


class UnitFailed(ProfilingError):
    """A profiled unit did not start or died during a round."""


class WorkloadFailed(ProfilingError):
    """A workload exited non-zero or timed out in a full round."""


class CatchUpTimeout(ProfilingError):
    """journald did not deliver the sentinel record in time."""


class ProbeFailed(SeccompPyError):
    """probe_target's round trip exited non-zero: status is its exit status (a prelude's own, e.g. 3 for
    "could not prepare"), prelude what the prelude printed before it stopped."""

    def __init__(self, message: str, status: int, prelude: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.prelude = prelude


class PreflightFailed(ProfilingError):
    """The target cannot profile (no log action, old systemd, missing unit)."""


# -- configuration -----------------------------------------------------------------------------------
@dataclass
class Workload:
    """A workload: a local script copied to the target ("script"), a script already on the target
    ("remote"), both run there with sh; or a shell command run on the host ("host")."""

    kind: str
    spec: str

    @property
    def label(self) -> str:
        if self.kind == "script":
            return f"script {os.path.basename(self.spec)}"
        if self.kind == "remote":
            return f"target {self.spec}"
        return f"host {self.spec}"


@dataclass
class ProfileConfig:
    units: List[str] = field(default_factory=list)
    commands: List[str] = field(default_factory=list)
    workloads: List[Workload] = field(default_factory=list)
    max_iterations: int = 5
    warmup_seconds: float = 5.0
    settle_seconds: float = 0.0
    workload_timeout: float = 900.0
    start_timeout: float = 180.0
    catchup_timeout: float = 300.0
    allow_loss: bool = False
    restore: bool = True
    sample_interval: float = 0.3
    # Read the journal in the background while workloads run, so the end of a round reads the last
    # records only (demo on a TCG guest: the warm-up round's end 7.0 s -> 2.9 s, with no measurable cost
    # to the workloads once host steal time was accounted for). Seconds between reads; a read that
    # finds nothing doubles the pause (up to 8x), so a quiet round costs few journalctl runs. 0: off.
    prefetch_interval: float = 1.5
    trace_buffer_kb: int = 4096
    host_env: Dict[str, str] = field(default_factory=dict)
    known: Dict[str, Set[str]] = field(default_factory=dict)  # unit -> names to start from (silenced)
    records_path: Optional[str] = None  # append the raw journal JSON of every audit entry read here
    attribution: str = "auto"  # auto (trace events when the target has them) | trace | sampling

    def validate(self) -> None:
        if not self.units and not self.commands:
            raise UsageError("nothing to profile: give at least one --unit or --command")
        seen = set()
        for unit in self.units:
            problem = unit_name_problem(unit, EXEC_UNIT_TYPES)
            if problem:
                raise UsageError(f"--unit {unit!r}: {problem}")
            if unit.startswith("seccomp-py-"):
                raise UsageError(f"--unit {unit!r}: the seccomp-py- prefix is reserved for the profiler's units")
            if unit in seen:
                raise UsageError(f"--unit {unit!r} given twice")
            seen.add(unit)
        if self.attribution not in ("auto", "trace", "sampling"):
            raise UsageError("--attribution must be auto, trace or sampling")
        if self.max_iterations < 1:
            raise UsageError("--max-iterations must be at least 1")
        if self.warmup_seconds < 0:
            raise UsageError("--warmup-seconds must not be negative")
        for workload in self.workloads:
            if workload.kind == "script" and not os.path.isfile(workload.spec):
                raise UsageError(f"--workload {workload.spec!r}: no such file")
            if workload.kind not in ("script", "remote", "host"):
                raise UsageError(f"unknown workload kind {workload.kind!r}")


def normalize_unit(name: str) -> str:
    """'nginx' -> 'nginx.service', as systemctl does."""
    if "." not in name or name.rsplit(".", 1)[1] not in (
            "service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice",
            "scope"):
        return name + ".service"
    return name


# -- results ---------------------------------------------------------------------------------------
@dataclass
class RoundResult:
    number: int
    kind: str  # warm-up | full
    armed: str = "restart"  # restart (drop-ins, daemon-reload, restart) | boot (bootarm: armed since boot)
    added: Dict[str, List[str]] = field(default_factory=dict)
    records: int = 0
    log_records: int = 0
    repeat_records: int = 0
    seconds: Dict[str, float] = field(default_factory=dict)
    catchup_seconds: float = 0.0

    @property
    def new_names(self) -> int:
        return sum(len(v) for v in self.added.values())

    def to_json(self) -> Dict[str, Any]:
        return {"round": self.number, "kind": self.kind, "armed": self.armed, "added": self.added,
                "records": self.records, "log_records": self.log_records, "repeat_records": self.repeat_records,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
                "catchup_seconds": round(self.catchup_seconds, 2)}


@dataclass
class ProfileResult:
    profile: Profile
    report: Dict[str, Any]
    converged: bool
    incomplete: bool
    error: Optional[str] = None
    lost_records: int = 0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.incomplete


# -- the target side ---------------------------------------------------------------------------------
class Remote:
    """Thin helpers over a Target for the commands the profiler needs."""

    def __init__(self, target, token: str) -> None:
        self.target = target
        self.token = token
        self.workdir = f"{REMOTE_BASE}/{token}"

    def run(self, argv: Sequence[str], timeout: float = 60.0, check: bool = False, input=None):
        return self.target.run(list(argv), timeout=timeout, check=check, input=input)

    @property
    def tools(self) -> str:
        return f"{self.workdir}/tools.sh"

    def systemctl_show(self, unit: str, props: Sequence[str]) -> Dict[str, str]:
        return self.show_units([unit], props)[unit]

    def show_units(self, units: Sequence[str], props: Sequence[str]) -> Dict[str, Dict[str, str]]:
        """`systemctl show` for several units in one round trip (blocks come back in order)."""
        result = self.run(["systemctl", "show", "--property=" + ",".join(["Id", *props]), "--", *units],
                          check=True)
        return parse_show_blocks(result.stdout, units)

    def install(self, path: str, data: str, mode: int = 0o644) -> None:
        """Create the folder and replace the file atomically, in one command."""
        folder = os.path.dirname(path)
        script = 'mkdir -p -- "$1" && cat > "$2.tmp" && chmod "$3" "$2.tmp" && mv -f -- "$2.tmp" "$2"'
        self.run(["sh", "-c", script, "sh", folder, path, f"{mode:o}"], input=data.encode(), check=True)

    def unit_diagnostics(self, unit: str, lines: int = 15) -> str:
        text = []
        with contextlib.suppress(SeccompPyError):
            status = self.run(["systemctl", "status", "--no-pager", "--lines=0", "--", unit], timeout=30)
            text.append(status.stdout.strip())
        with contextlib.suppress(SeccompPyError):
            logs = self.run(["journalctl", "--no-pager", "-q", "-o", "short-monotonic", "-n", str(lines),
                             "-u", unit], timeout=30)
            text.append(logs.stdout.strip())
        return "\n".join(t for t in text if t)


@dataclass
class TargetFacts:
    machine: str = ""
    abi: str = ""
    kernel: str = ""
    systemd_version: int = 0
    actions_logged: str = ""
    tracefs: bool = False
    boot_log_disarmed: bool = False  # a profiler run moved past the boot round (bootarm.DONE_FLAG)
    units: Dict[str, Dict[str, str]] = field(default_factory=dict)  # systemctl show, when asked for
    prelude: str = ""  # what a script run ahead of the probe printed (probe_target's prelude)


def systemd_version_of(text: str) -> int:
    for word in text.split()[:3]:
        digits = word.split(".")[0].split("~")[0]
        if digits.isdigit():
            return int(digits)
    return 0


# What the preflight asks systemd about each unit: LoadState, the cgroup, the drop-ins (armed at boot?),
# and what the ARM_SCRIPT's state has, for a boot round that needs no ARM_SCRIPT.
PREFLIGHT_PROPERTIES = ("LoadState", "ActiveState", "ControlGroup", "Slice", "DropInPaths", "Type", "Result",
                        "ExecMainPID", "ExecStartPre", "ExecStart", "ExecStartPost")
UNITS_MARKER = "### seccomp-py units"
PROBE_MARKER = "### seccomp-py probe"


def probe_target(remote: Remote, units: Sequence[str] = (), props: Sequence[str] = (), prelude: str = "",
                 prelude_args: Sequence[str] = (), input: Optional[bytes] = None) -> TargetFacts:
    """uname, systemd version, seccomp actions_logged, the boot-arming flag and `systemctl show` of units
    (facts.units) in one round trip. A prelude script (it shifts its prelude_args away, reads input) runs
    first in the same round trip; its output is facts.prelude, an exit status of its own ends the trip
    (ProbeFailed)."""
    # Shell builtins where they do: each exec costs ~0.15 s on a TCG guest.
    script = (f"{prelude}\necho '{PROBE_MARKER}'\n" if prelude else "")
    script += ("uname -m; read -r r < /proc/sys/kernel/osrelease; echo \"$r\"; "
              "systemctl --version | { read -r v; echo \"$v\"; }; "
              "{ read -r a < /proc/sys/kernel/seccomp/actions_logged; } 2>/dev/null && echo \"$a\" || echo '?'; "
              f"[ -e {bootarm.DONE_FLAG} ] && echo disarmed || echo -; "
              f'[ "$#" -gt 1 ] || exit 0; echo "{UNITS_MARKER}"; p=$1; shift; '
              'systemctl show --property="$p" -- "$@"')
    result = remote.run(["sh", "-c", script, "sh", *prelude_args, ",".join(["Id", *props]), *units],
                        timeout=120, input=input)
    prelude_out, probed = "", result.stdout
    if prelude:
        prelude_out, marker, probed = result.stdout.partition(PROBE_MARKER + "\n")
        if not marker:
            prelude_out, probed = result.stdout, ""
    if not result.ok:
        raise ProbeFailed(f"probing the target failed (exit {result.status}): "
                          f"{first_line(result.stderr) or first_line(probed)}", result.status, prelude_out)
    head, _, shown = probed.partition(UNITS_MARKER)
    lines = [*head.splitlines(), "", "", "", "", ""]
    from .syscalls import host_abi

    facts = TargetFacts(machine=lines[0].strip(), kernel=lines[1].strip(),
                        systemd_version=systemd_version_of(lines[2].replace("systemd", " ")),
                        actions_logged=lines[3].strip(), boot_log_disarmed=lines[4].strip() == "disarmed")
    facts.units = parse_show_blocks(shown, units)
    facts.prelude = prelude_out
    try:
        facts.abi = host_abi(facts.machine).name
    except SeccompPyError as exc:
        raise PreflightFailed(f"target machine {facts.machine!r} has no ABI seccomp-py knows: {exc}") from None
    return facts


# -- the profiler ------------------------------------------------------------------------------------
class Profiler:
    def __init__(self, target, config: ProfileConfig, progress: Optional[Progress] = None,
                 target_info: Optional[Dict[str, Any]] = None, forwarded: Optional[Dict[int, int]] = None,
                 host_address: Optional[Tuple[str, int]] = None) -> None:
        config.units = [normalize_unit(u) for u in config.units]
        config.validate()
        self.target = target
        self.config = config
        self.progress = progress or Progress(quiet=True)
        self.target_info = dict(target_info or {})
        self.forwarded = dict(forwarded or {})
        self.host_address = host_address
        self.token = uuid.uuid4().hex[:10]
        self.remote = Remote(target, self.token)
        self.workloads = WorkloadRunner(self.remote, config.workloads, self.progress,
                                        host_env=self.host_env())
        self.facts = TargetFacts()
        self.profile = Profile()
        self.rounds: List[RoundResult] = []
        self.command_units: Dict[str, str] = {}  # transient unit -> subject
        for i, command in enumerate(config.commands, 1):
            self.command_units[f"seccomp-py-cmd{i}-{self.token}.service"] = command_subject(command)
        self.cgroups: Dict[str, str] = {}
        self.attributor: Optional[Attributor] = None
        self.trace_instance: Optional[str] = None
        self.sampler_unit: Optional[str] = None
        # One collector for the whole run: it de-duplicates by serial and counts holes and loss notices.
        self.collector = AuditCollector(complete_stream=True)
        self.audit_reader: Optional[jr.CursorReader] = None
        self.notice_reader: Optional[jr.CursorReader] = None
        self.counts: Dict[str, Any] = {"seccomp": 0, "log": 0, "sentinel": 0, "unknown": 0,
                                       "non_log": {}, "audit_entries": 0, "repeat": 0, "unattributed": 0}
        self.unit_stats: Dict[str, Dict[str, Any]] = {}
        self.ambiguous: List[Dict[str, Any]] = []
        self.workload_runs: List[Dict[str, Any]] = []
        self.catchup_timeouts = 0
        self.incomplete_reasons: List[str] = []
        self.notes: List[str] = []
        self.armed = False
        self.sentinel: Optional[jr.Sentinel] = None
        self.interrupted = False
        self.records_file = None
        self._prefetched: List[bytes] = []
        self._end_notices: List[bytes] = []
        self.tail_cursor: Optional[str] = None  # the journal's end before the first round
        self.initially_active: Dict[str, bool] = {}
        self.error: Optional[str] = None
        self.converged = False
        self.remote_ready = False
        self.trace_name = "-"
        self.trace_out = ""
        self.boot_sample = ""  # PREPARE_SCRIPT's cgroup sample of the units, when they may be armed at boot
        self.boot_armed = False  # every unit runs in log mode since boot (bootarm): round 1 needs no re-arm
        self._seed_known = {normalize_unit(u): set(n) for u, n in config.known.items()}

    # -- subjects --------------------------------------------------------------------------------
    @property
    def armed_units(self) -> List[str]:
        return list(self.config.units) + list(self.command_units)

    def subject_of(self, unit: str) -> str:
        return self.command_units.get(unit, unit)

    def known_names(self, unit: str) -> Set[str]:
        """Names to silence for a unit: known on every ABI it was seen on (a name seen only on the compat
        ABI must still be logged natively), plus any names given up front."""
        subject = self.subject_of(unit)
        abis = self.profile.abis(subject)
        sets = [set(self.profile.syscalls(subject, abi)) for abi in abis]
        known = set.intersection(*sets) if sets else set()
        return known | self._seed_known.get(unit, set())

    # -- main ------------------------------------------------------------------------------------
    def run(self) -> ProfileResult:
        try:
            self._run()
        except KeyboardInterrupt:
            # Keep what was collected; the caller writes it and then exits 130.
            self.error = "interrupted (Ctrl-C)"
            self.interrupted = True
            self.incomplete_reasons.append("the run was interrupted")
            with contextlib.suppress(KeyboardInterrupt):
                self._cleanup()
            return self._result()
        except SeccompPyError as exc:
            self.error = describe_failure(exc, self.progress, self.target)
            self.incomplete_reasons.append(f"profiling stopped: {first_line(self.error)}")
        except Exception as exc:  # keep partial data even on a bug; the CLI shows the message
            self.error = f"{type(exc).__name__}: {exc}"
            self.incomplete_reasons.append(f"profiling stopped: {self.error}")
        self._cleanup()
        return self._result()

    def _run(self) -> None:
        with self.progress.phase("preflight"):
            self._preflight()
        with self.progress.phase("arm"):
            self._prepare_remote()
        self._start_journal()
        full_rounds = 0
        number = 0
        while True:
            number += 1
            warm = number == 1 and self.config.warmup_seconds > 0
            round_ = RoundResult(number, "warm-up" if warm else "full")
            self.rounds.append(round_)
            self.progress.log(f"round {number} ({round_.kind}): arming {len(self.armed_units)} unit(s)")
            self._round(round_)
            added = ", ".join(f"{self.subject_of(u)} +{len(v)}" for u, v in round_.added.items() if v)
            self.progress.log(f"round {number}: {round_.records} records, {round_.new_names} new syscalls"
                              + (f" ({added})" if added else ""))
            if not warm:
                full_rounds += 1
                if round_.new_names == 0:
                    self.converged = True
                    break
            if number >= self.config.max_iterations + (1 if self.config.warmup_seconds > 0 else 0):
                break
        if not self.converged:
            self.incomplete_reasons.append(
                f"did not converge: the last of {full_rounds} full round(s) still found new syscalls "
                f"(raise --max-iterations)")

    # -- preflight -------------------------------------------------------------------------------
    def _preflight(self) -> None:
        self.progress.status("probing the target, preparing " + self.remote.workdir)
        remote = self.remote
        self.trace_name = f"seccomp-py-{self.token}" if self.config.attribution != "sampling" else "-"
        inline = self.workloads.inline_files()
        try:
            self.facts = probe_target(remote, self.config.units, PREFLIGHT_PROPERTIES,
                                      prelude=PREPARE_SCRIPT, input=TOOLS_SCRIPT.encode(),
                                      prelude_args=[remote.workdir, self.trace_name, str(self.config.trace_buffer_kb),
                                                    " ".join(self.config.units) or "-", str(len(inline) // 2),
                                                    *inline])
        except ProbeFailed as exc:
            self.remote_ready = True  # the clean-up removes whatever the prelude made
            if exc.status == 3:
                raise ProfilingError(f"could not prepare {remote.workdir} on the target: {exc}") from None
            raise
        self.remote_ready = True
        stale, sections = split_sections(self.facts.prelude, PREPARE_MARKERS)
        self.trace_out, cursor_out, self.boot_sample = (sections[m] for m in PREPARE_MARKERS)
        if stale.strip():
            self.notes.append("removed leftovers of an earlier, interrupted run: " + " ".join(stale.split()))
        self.tail_cursor = jr.parse_show_cursor(cursor_out)
        if self.facts.systemd_version and self.facts.systemd_version < MIN_SYSTEMD:
            raise PreflightFailed(f"systemd {self.facts.systemd_version} on the target has no SystemCallLog= "
                                  f"(needs {MIN_SYSTEMD} or later)")
        if "log" not in self.facts.actions_logged.split():
            raise PreflightFailed(
                f"the kernel does not log the seccomp 'log' action (actions_logged: "
                f"{self.facts.actions_logged or 'missing'}); fix: echo '{self.facts.actions_logged} log' > "
                f"/proc/sys/kernel/seccomp/actions_logged (run 'seccomp-py doctor' for all checks)")
        shown = self.facts.units
        for unit in self.config.units:
            props = shown[unit]
            self.initially_active[unit] = props.get("ActiveState") in ("active", "reloading", "activating")
            if props.get("LoadState") != "loaded":
                raise PreflightFailed(f"unit {unit} is not known on the target (LoadState="
                                      f"{props.get('LoadState') or '?'})")
            self.cgroups[unit] = unit_cgroup(unit, props)
            self.unit_stats[unit] = {"records": 0, "exes": set(), "attribution": {}}
        for unit in self.command_units:
            self.cgroups[unit] = f"/system.slice/{unit}"
            self.unit_stats[unit] = {"records": 0, "exes": set(), "attribution": {}}
        self.attributor = Attributor(self.cgroups)
        self.boot_armed = bool(self.config.units) and all(
            bootarm.boot_armed(u, shown[u], self.facts.boot_log_disarmed) for u in self.config.units)
        self.progress.log(f"target: {self.facts.machine} ({self.facts.abi}), kernel {self.facts.kernel}, "
                          f"systemd {self.facts.systemd_version}"
                          + ("; units in log mode since boot (seccomp_py.log=)" if self.boot_armed else ""))

    def _prepare_remote(self) -> None:
        """The workloads to the target; the trace instance that PREPARE_SCRIPT set up (in _preflight)."""
        self.progress.status("uploading scripts")
        self.workloads.upload()
        trace_out = self.trace_out
        instance = ""
        if self.trace_name != "-":
            instance = trace_out.strip().splitlines()[-1] if trace_out.strip() else ""
            if self.config.attribution == "trace" and not instance.startswith("/"):
                raise PreflightFailed("--attribution trace: the target has no tracefs instances with the "
                                      "sched_process_fork and cgroup_attach_task events")
        if instance.startswith("/"):
            self.trace_instance = instance
            self.facts.tracefs = True
            # Events run from now on; each round reads and clears the buffer.
        elif self.config.attribution == "sampling":
            self.notes.append("attribution by sampling cgroup.procs, as asked (--attribution sampling)")
        else:
            self.notes.append("tracefs (sched_process_fork, cgroup_attach_task) is not available on the target: "
                              "attribution falls back to sampling cgroup.procs, which can miss short-lived "
                              "helpers when several units are profiled at once")

    def _start_journal(self) -> None:
        run = jr.target_runner(self.target)
        cursor = self.tail_cursor
        if cursor is None:
            raise PreflightFailed("journalctl on the target printed no cursor; is journald running?")
        if self.boot_armed:
            cursor = None  # the first round began at boot: read this boot's journal from its start
        self.audit_reader = jr.CursorReader(run, cursor, jr.AUDIT_FIELDS, ["_TRANSPORT=audit"],
                                            timeout=self.config.catchup_timeout + 60)
        self.notice_reader = jr.CursorReader(run, cursor, jr.NOTICE_FIELDS, jr.NOTICE_MATCHES, timeout=120)

    # -- one round -------------------------------------------------------------------------------
    def _round(self, round_: RoundResult) -> None:
        started = time.monotonic()
        with self.progress.phase("arm", f"round {round_.number}"):
            self._arm(round_)
        round_.seconds["arm"] = time.monotonic() - started
        started = time.monotonic()
        with self.progress.phase("workload", f"round {round_.number}"), self._prefetching():
            self._run_workloads(round_)
        round_.seconds["workload"] = time.monotonic() - started
        started = time.monotonic()
        with self.progress.phase("collect", f"round {round_.number}"):
            problem = self._end_round(round_)
            self._collect(round_)
        round_.seconds["collect"] = time.monotonic() - started
        if problem:  # after collecting: the records of a failed round are kept too
            raise UnitFailed(problem)

    def _arm(self, round_: RoundResult) -> None:
        """Drop-ins, daemon-reload and restart in one round trip (each costs seconds on a TCG guest)."""
        from .render import render_log_dropin

        abi = self.facts.abi
        files: List[str] = []
        mode = "restart"
        if round_.number == 1 and self.boot_armed:
            mode = round_.armed = "boot"
        for unit in self.config.units if mode == "restart" else ():
            text = render_log_dropin(sorted(self.known_names(unit)), abi, unit=unit,
                                     profile_name=f"seccomp-py profile round {round_.number}")
            files += [f"/run/systemd/system/{unit}.d/{LOG_DROPIN}", text]
        self._start_sampler()
        probed = self.facts.units
        sampled = {unit for unit, _ in parse_samples(self.boot_sample)}
        if self.config.units:
            self.armed = True  # from here on the clean-up has units to put back
        if mode == "boot" and all(unit_is_up(probed[u]) and (u in sampled or exec_pids(probed[u]))
                                  for u in self.config.units):
            # Running since boot, in log mode, and the probe saw them up: nothing to start, and the
            # evidence of who runs in them came with the probe (PREPARE_SCRIPT; ARM_SCRIPT gathers it
            # by systemd's cgroup paths when the sample by name found nobody).
            self.progress.status("armed at boot: " + " ".join(self.config.units) + " up since")
            self._feed_boot_evidence(probed, sample=self.boot_sample)
        elif self.config.units:
            self.progress.status("daemon-reload, restarting " + " ".join(self.config.units) if mode == "restart"
                                 else "armed at boot; starting any of " + " ".join(self.config.units) + " not running")
            # Armed at boot: the evidence of who runs in the units now comes in the same round trip.
            gather = self._gather_command() if mode == "boot" else []
            result = self.remote.run(["sh", "-c", ARM_SCRIPT, "sh", f"{self.config.settle_seconds:g}",
                                      "restart" if mode == "restart" else "start", " ".join(self.config.units),
                                      str(len(files) // 2), *files, *gather],
                                     timeout=self.config.start_timeout + 120)
            if result.status in (3, 4):
                raise ProfilingError(f"could not install the log-mode drop-ins (exit {result.status}): "
                                     f"{first_line(result.stderr)}")
            _, sections = split_sections(result.stdout, (STATE_MARKER, GATHER_MARKER))
            shown, gathered = sections[STATE_MARKER], sections[GATHER_MARKER]
            state = parse_show_blocks(shown, self.config.units)
            failed = [u for u in self.config.units if shown and not unit_is_up(state[u])]
            if not result.ok or failed:
                raise UnitFailed(self._unit_failure_message(failed or self.config.units,
                                                            "did not start" if not result.ok else
                                                            "did not stay up after start"))
            if mode == "boot":
                self._feed_boot_evidence(state, gathered=gathered)
        for unit, subject in self.command_units.items():
            self._start_command(unit, subject, round_)

    def _feed_boot_evidence(self, state: Dict[str, Dict[str, str]], gathered: str = "", sample: str = "") -> None:
        """Processes started at boot predate our trace events: a cgroup sample (in tools.sh gather output,
        or PREPARE_SCRIPT's) names the living ones, systemd's last pid of each Exec*= command the ones that
        are gone (ExecStartPre= checks)."""
        assert self.attributor is not None
        self.attributor.feed_samples("".join(f"C {u} {pid}\n" for u in self.config.units
                                             for pid in exec_pids(state[u])) + sample)
        if gathered:
            self._feed_gathered(gathered)

    def _start_command(self, unit: str, subject: str, round_: RoundResult) -> None:
        from .render import render_log_dropin

        self.remote.run(["sh", "-c", 'systemctl stop -- "$1" 2>/dev/null; systemctl reset-failed -- "$1" '
                         '2>/dev/null; true', "sh", unit], timeout=60)
        text = render_log_dropin(sorted(self.known_names(unit)), self.facts.abi, unit=unit)
        argv = ["systemd-run", "--quiet", f"--unit={unit}", "--property=RemainAfterExit=yes",
                "--property=Type=exec"]
        argv += [f"--property={prop}" for prop in dropin_properties(text) if not prop.endswith("=")]
        argv += ["--", "/bin/sh", "-c", systemd_literal(self.config.commands[list(self.command_units).index(unit)])]
        result = self.remote.run(argv, timeout=self.config.start_timeout)
        if not result.ok:
            raise UnitFailed(f"--command {subject!r} did not start: {first_line(result.stderr) or result.status}")

    def _unit_failure_message(self, units: Sequence[str], what: str) -> str:
        parts = [f"unit {', '.join(units)} {what} under seccomp log mode"]
        for unit in units:
            diag = self.remote.unit_diagnostics(unit)
            if diag:
                parts.append(f"--- {unit}:\n{diag}")
        return "\n".join(parts)

    def _end_round(self, round_: RoundResult) -> Optional[str]:
        """Check the units, stop them, run the sentinel and gather the attribution evidence (END_SCRIPT).
        Returns what went wrong with the units, if anything, for the caller to raise once the round's
        records are in."""
        self.sentinel = jr.Sentinel()
        units = [*self.config.units, *self.command_units]
        self.progress.status("stopping " + " ".join(self.config.units) + ", sentinel")
        sampler, self.sampler_unit = self.sampler_unit or "-", None
        assert self.audit_reader is not None and self.notice_reader is not None
        result = self.remote.run(["sh", "-c", END_SCRIPT, "sh", self.sentinel.unit, " ".join(units), sampler,
                                  self.audit_reader.cursor or "-", self.notice_reader.cursor or "-",
                                  self.remote.workdir, *self._gather_command()],
                                 timeout=self.config.start_timeout + 300)
        shown, sections = split_sections(result.stdout, END_MARKERS)
        stopped, sentinel_out, gathered, journal_out, notices_out = (sections[m] for m in END_MARKERS)
        if not result.ok:
            raise ProfilingError(f"the sentinel could not run (systemd-run exit {result.status}): "
                                 f"{first_line(result.stderr)}")
        self.sentinel.parse_pid(sentinel_out)
        self._feed_gathered(gathered)
        # the journal as END_SCRIPT read it: taken as the readers' next polls
        self._prefetched.extend(self.audit_reader.feed(journal_out.encode()))
        self._end_notices = self.notice_reader.feed(notices_out.encode())
        state = parse_show_blocks(shown, units)
        problems = []
        failed = [u for u in self.config.units if not unit_is_up(state[u])]
        if failed:
            problems.append(self._unit_failure_message(failed, f"was no longer running when the round "
                                                               f"{round_.number} workloads ended"))
        for unit, subject in self.command_units.items():
            if state[unit].get("Result") not in ("success", None, ""):
                problems.append(f"--command {subject!r} failed (result {state[unit].get('Result')}, exit status "
                                f"{state[unit].get('ExecMainStatus')})\n{self.remote.unit_diagnostics(unit)}")
        if "stop=0" not in stopped and not problems:
            problems.append(self._unit_failure_message(self.config.units, "did not stop cleanly"))
        return "\n".join(problems) or None

    def _start_sampler(self) -> None:
        """Without tracefs, sample cgroup.procs in the background; with it, one sample at round end."""
        if self.facts.tracefs:
            return
        unit = f"seccomp-py-sampler-{self.token}.service"
        self.remote.run(["sh", "-c", 'systemctl stop -- "$1" 2>/dev/null; systemctl reset-failed -- "$1" '
                         '2>/dev/null; true', "sh", unit], timeout=60)
        out = f"{self.remote.workdir}/samples"
        argv = ["systemd-run", "--quiet", f"--unit={unit}", f"--property=StandardOutput=append:{out}",
                "--", "/bin/sh", self.remote.tools, "sample", f"{self.config.sample_interval:g}",
                cgroup_root_expr(), *[f"{u}={p}" for u, p in self.cgroups.items()]]
        result = self.remote.run(argv, timeout=60)
        if result.ok:
            self.sampler_unit = unit
        else:
            self.notes.append(f"the cgroup sampler did not start: {first_line(result.stderr)}")

    def _gather_command(self) -> List[str]:
        """argv of tools.sh gather: the trace events so far (then cleared), a cgroup sample, the sampler's
        output."""
        return ["sh", self.remote.tools, "gather", self.trace_instance or "-", f"{self.remote.workdir}/samples",
                cgroup_root_expr(), *[f"{u}={p}" for u, p in self.cgroups.items()]]

    def _feed_gathered(self, text: str) -> None:
        assert self.attributor is not None
        trace, stats, samples = split_gather_output(text)
        self.attributor.feed_trace(trace)
        self.attributor.feed_overruns(stats)
        self.attributor.feed_samples(samples)

    # -- workloads --------------------------------------------------------------------------------
    def _run_workloads(self, round_: RoundResult) -> None:
        warm = round_.kind == "warm-up"
        env = {"SECCOMP_ROUND": str(round_.number), "SECCOMP_ROUND_KIND": round_.kind}
        try:
            self.workload_runs += self.workloads.run_all(
                f"round {round_.number}", budget=self.config.warmup_seconds if warm else None,
                timeout=self.config.workload_timeout, extra_env=env)
        except WorkloadFailed as exc:
            self.workload_runs += getattr(exc, "runs", [])
            down = self._units_down()
            if down:  # the likelier cause, and its diagnostics say why
                raise UnitFailed(self._unit_failure_message(down, f"stopped running during the round "
                                                                  f"{round_.number} workloads") + f"\n{exc}") from exc
            raise

    def _units_down(self) -> List[str]:
        """The armed units that are not up now (best effort: [] when the target cannot tell)."""
        if not self.config.units:
            return []
        try:
            state = self.remote.show_units(self.config.units, ["ActiveState", "Type", "Result"])
        except SeccompPyError:
            return []
        return [u for u in self.config.units if not unit_is_up(state[u])]

    def host_env(self) -> Dict[str, str]:
        """What host workloads need to reach the target (also the SSH port for scripts that log in)."""
        return host_workload_env(self.config.host_env, self.host_address, self.forwarded)

    # -- collection -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _prefetching(self):
        """Poll the audit reader in a thread while the body runs; _collect() takes the lines first.
        A failed poll only ends the prefetch: _collect()'s own poll reports the problem."""
        interval = self.config.prefetch_interval
        reader = self.audit_reader
        if interval <= 0 or reader is None:
            yield
            return
        stop = threading.Event()

        def loop() -> None:
            pause = interval
            while not stop.wait(pause):
                try:
                    lines = reader.poll()
                except Exception:  # reported by the next poll, in _collect()
                    return
                self._prefetched.extend(lines)
                pause = interval if lines else min(pause * 2, interval * 8)

        thread = threading.Thread(target=loop, name="seccomp-py-journal-prefetch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _collect(self, round_: RoundResult) -> None:
        assert self.audit_reader is not None and self.notice_reader is not None and self.sentinel is not None
        sentinel = self.sentinel
        started = time.monotonic()
        deadline = started + self.config.catchup_timeout
        records: List[AuditRecord] = []
        found = False
        delay = 0.3
        polls_before = self.audit_reader.polls
        lines, self._prefetched = self._prefetched, []  # read during the workloads and by END_SCRIPT
        polled = False
        while True:
            if polled or not lines:
                lines = self.audit_reader.poll()
            polled = True
            self.counts["audit_entries"] += len(lines)
            self._save_records(lines)
            for record in self.collector.records(lines, "journal-json", "journal"):
                if sentinel.matches(record.pid, record.syscall):
                    found = True
                    self.counts["sentinel"] += 1
                    continue
                records.append(record)
            self.progress.status(f"waiting for journald: {len(records)} records so far")
            if found:
                break
            if time.monotonic() >= deadline:
                self.catchup_timeouts += 1
                self._ingest(round_, records)
                raise CatchUpTimeout(f"journald did not deliver the round {round_.number} sentinel within "
                                     f"{self.config.catchup_timeout:g} s ({len(records)} records read); raise "
                                     f"--catchup-timeout or reduce the workload's record volume")
            time.sleep(delay)
            delay = min(2.0, delay * 1.5)
        round_.catchup_seconds = time.monotonic() - started
        self._read_notices(poll=self.audit_reader.polls > polls_before)
        self._ingest(round_, records)

    def _save_records(self, lines: List[bytes]) -> None:
        """Keep the raw journal entries (seccomp-py collect reads them again); written as they come, so a
        run that dies still leaves its evidence."""
        if not self.config.records_path or not lines:
            return
        if self.records_file is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.config.records_path)), exist_ok=True)
            self.records_file = open(self.config.records_path, "ab")  # noqa: SIM115 - closed in _result()
        self.records_file.write(b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
        self.records_file.flush()

    def _read_notices(self, poll: bool = True) -> None:
        """Kernel and journald messages about lost records; the kernel's printk copies of audit records
        themselves are left out (the audit transport has them, with their serials). END_SCRIPT read them
        already; poll again when the sentinel came later than that."""
        assert self.notice_reader is not None
        lines, self._end_notices = self._end_notices, []
        if poll:
            lines += self.notice_reader.poll()
        lines = [line for line in lines if b"audit: type=" not in line]
        if lines:
            list(self.collector.records(lines, "journal-json", "journal-notices"))

    def _ingest(self, round_: RoundResult, records: List[AuditRecord]) -> None:
        assert self.attributor is not None
        round_.records += len(records)
        self.counts["seccomp"] += len(records)
        before = {u: {abi: set(self.profile.syscalls(self.subject_of(u), abi))
                      for abi in self.profile.abis(self.subject_of(u))} for u in self.armed_units}
        log_records = [r for r in records if r.action == "LOG"]
        for record in records:
            if record.action != "LOG":
                key = record.action
                self.counts["non_log"][key] = self.counts["non_log"].get(key, 0) + 1
        attributions = self.attributor.resolve_all([(r.pid, r.exe) for r in log_records])
        for record, attribution in zip(log_records, attributions):
            if round_.armed == "boot" and attribution.how not in EVIDENCE:
                # Read from the boot's start: canaries and sentinels of earlier runs log too. A call of
                # ours dropped here is made again at round 2's restart, which then does not converge.
                self.counts["unattributed"] += 1
                continue
            self.counts["log"] += 1
            round_.log_records += 1
            if record.syscall is None or record.abi is None:
                self.counts["unknown"] += 1
                arch = f"0x{record.arch:08x}" if record.arch is not None else "?"
                self.notes.append(f"unresolved record: arch {arch} syscall {record.number} "
                                  f"(pid {record.pid}, exe {record.exe})")
                continue
            if attribution.how in (HOW_AMBIGUOUS, HOW_PID_REUSE) and len(self.ambiguous) < 200:
                self.ambiguous.append({"pid": record.pid, "exe": record.exe, "comm": record.comm,
                                       "syscall": record.syscall, "units": list(attribution.units),
                                       "how": attribution.how})
            for unit in attribution.units:
                subject = self.subject_of(unit)
                stats = self.unit_stats.setdefault(unit, {"records": 0, "exes": set(), "attribution": {}})
                stats["records"] += 1
                if record.exe:
                    stats["exes"].add(record.exe)
                stats["attribution"][attribution.how] = stats["attribution"].get(attribution.how, 0) + 1
                if record.syscall in before.get(unit, {}).get(record.abi, set()):
                    round_.repeat_records += 1
                    self.counts["repeat"] += 1
                self.profile.add(subject, record.abi, record.syscall, first_seen=iso_time(record.timestamp),
                                 source=SOURCE, exe=record.exe)
        for unit in self.armed_units:
            self._add_companions(self.subject_of(unit))
        for unit in self.armed_units:
            subject = self.subject_of(unit)
            new: Set[str] = set()
            for abi in self.profile.abis(subject):
                new |= set(self.profile.syscalls(subject, abi)) - before.get(unit, {}).get(abi, set())
            round_.added[subject] = sorted(new)

    def _add_companions(self, subject: str) -> None:
        """Calls the service makes that log mode cannot show (see COMPANIONS)."""
        from .syscalls import get_abi

        for abi in self.profile.abis(subject):
            names = set(self.profile.syscalls(subject, abi))
            table = get_abi(abi)
            for seen, (extra, why) in COMPANIONS.items():
                if seen in names and extra not in names and table.has(extra):
                    self.profile.add(subject, abi, extra, count=0, source="implied:" + seen)
                    self.notes.append(f"{subject}: added {extra} next to {seen}: {why}")

    # -- loss and cleanup -------------------------------------------------------------------------
    def loss(self) -> Dict[str, Any]:
        stats = self.collector.stats
        return {
            "serial_gaps": stats.serial_gaps,
            "missing_serials": stats.missing_serials,
            "gap_ranges": [list(r) for r in stats.gap_ranges],
            "lost": stats.lost,
            "loss_events": stats.loss_events,
            "journald_drops": stats.journal_drops,
            "kernel_audit_lost_counter": stats.lost_counter,
            "hold_queue_overflows": stats.hold_queue_lost,
            "printk_suppressed": stats.suppressed,
            "duplicates": stats.duplicates,
            "catchup_timeouts": self.catchup_timeouts,
            "trace_overruns": self.attributor.trace_overruns if self.attributor else 0,
            "possible_loss": stats.possible_loss,
        }

    def lost_records(self) -> int:
        stats = self.collector.stats
        if not stats.possible_loss:
            return 0
        return max(1, stats.missing_serials + stats.lost + stats.journal_drops)

    def _cleanup(self) -> None:
        """Undo what we did on the target. Best effort: the target may be gone."""
        if not self.remote_ready and not self.armed:
            return
        steps: List[Callable[[], object]] = []
        if self.sampler_unit:
            steps.append(lambda: self.remote.run(["systemctl", "stop", "--", self.sampler_unit], timeout=30))
        for unit in self.command_units:
            steps.append(lambda u=unit: self.remote.run(
                ["sh", "-c", 'systemctl stop -- "$1" 2>/dev/null; systemctl reset-failed -- "$1" 2>/dev/null; true',
                 "sh", u], timeout=60))
        if self.config.restore and self.armed and self.config.units:
            paths = [f"/run/systemd/system/{u}.d/{LOG_DROPIN}" for u in self.config.units]
            steps.append(lambda: self.remote.run(["sh", "-c", bootarm.DISARM_SHELL + ' && rm -f -- "$@" && '
                                                  'systemctl daemon-reload', "sh", *paths], timeout=120))
            back = [u for u in self.config.units if self.initially_active.get(u)]
            if back:
                steps.append(lambda: self.remote.run(["systemctl", "start", "--", *back],
                                                     timeout=self.config.start_timeout))
        if self.remote_ready:  # the trace instance and the work folder in one round trip
            steps.append(lambda: self.remote.run(
                ["sh", "-c", '[ "$1" = - ] || sh "$2/tools.sh" trace-collect "$1" remove >/dev/null; rm -rf -- "$2"',
                 "sh", self.trace_instance or "-", self.remote.workdir], timeout=60))
        with self.progress.phase("cleanup"):
            for step in steps:
                try:
                    step()
                except SeccompPyError as exc:
                    self.notes.append(f"cleanup on the target failed: {first_line(str(exc))}")
                    break  # the target is most likely gone; the rest would fail the same way

    # -- result ----------------------------------------------------------------------------------
    def _result(self) -> ProfileResult:
        loss = self.loss()
        lost = self.lost_records()
        if lost:
            self.incomplete_reasons.append(
                f"audit records were lost: {loss['missing_serials']} missing serial(s), {loss['lost']} dropped by "
                f"the kernel, {loss['journald_drops']} journald drop notice(s)")
        if self.counts["unattributed"]:
            self.notes.append(f"{self.counts['unattributed']} record(s) read from the boot's start came from processes "
                              f"outside the armed units (e.g. canaries or sentinels of earlier runs) and were "
                              f"left out")
        if loss["trace_overruns"]:
            self.notes.append(f"{loss['trace_overruns']} trace events were overwritten (ring buffer full); "
                              f"attribution fell back to samples/exe for those pids")
        incomplete = bool(self.incomplete_reasons)
        self.profile.incomplete = incomplete
        self.profile.notes = [f"profiled by seccomp-py {__version__} with seccomp log mode "
                              f"({len(self.rounds)} round(s), {'converged' if self.converged else 'not converged'})"]
        self.profile.notes += self.incomplete_reasons
        report = self._report(loss, incomplete)
        if self.records_file is not None:
            self.records_file.close()
            self.records_file = None
        return ProfileResult(self.profile, report, self.converged, incomplete, self.error, lost, self.interrupted)

    def _report(self, loss: Dict[str, Any], incomplete: bool) -> Dict[str, Any]:
        from .validate import DANGEROUS

        units: Dict[str, Any] = {}
        for unit in self.armed_units:
            subject = self.subject_of(unit)
            stats = self.unit_stats.get(unit, {"records": 0, "exes": set(), "attribution": {}})
            names = set()
            for abi in self.profile.abis(subject):
                names |= set(self.profile.syscalls(subject, abi))
            units[subject] = {
                "unit": unit,
                "syscalls": {abi: len(self.profile.syscalls(subject, abi)) for abi in self.profile.abis(subject)},
                "records": stats["records"],
                "exes": sorted(stats["exes"]),
                "attribution": dict(stats["attribution"]),
                "dangerous": [{"name": n, "reason": DANGEROUS[n]} for n in sorted(names & set(DANGEROUS))],
            }
        counts = dict(self.counts)
        counts["total_collected"] = counts["seccomp"] + counts["sentinel"]
        status = "complete"
        if self.error:
            status = "failed"
        elif incomplete:
            status = "incomplete"
        return {
            "schema": "seccomp-py/report/v1",
            "command": "profile",
            "tool_version": __version__,
            "status": status,
            "error": self.error,
            "converged": self.converged,
            "incomplete_reasons": list(self.incomplete_reasons),
            "target": {**self.target_info, "machine": self.facts.machine, "abi": self.facts.abi,
                       "kernel": self.facts.kernel, "systemd_version": self.facts.systemd_version,
                       "attribution": "tracefs (fork + cgroup attach events)" if self.facts.tracefs
                       else "cgroup.procs sampling"},
            "units": units,
            "iterations": [r.to_json() for r in self.rounds],
            "records": counts,
            "ambiguous_records": list(self.ambiguous),
            "loss": loss,
            "timings": self.progress.ordered_timings(),
            "workloads": list(self.workload_runs),
            "journal": {"polls": self.audit_reader.polls if self.audit_reader else 0,
                        "bytes": self.audit_reader.bytes_read if self.audit_reader else 0,
                        "max_catchup_seconds": round(max([r.catchup_seconds for r in self.rounds] or [0]), 2)},
            "notes": list(dict.fromkeys(self.notes)),
        }


# -- workloads ---------------------------------------------------------------------------------------
class WorkloadRunner:
    """Runs the workloads of one round: target scripts with sh (under timeout(1)), host commands in their
    own process group. budget (seconds, warm-up) caps the whole pass and makes failures expected."""

    def __init__(self, remote: Remote, workloads: Sequence[Workload], progress: Progress,
                 host_env: Optional[Dict[str, str]] = None) -> None:
        self.remote = remote
        self.workloads = list(workloads)
        self.progress = progress
        self.host_env = dict(host_env or {})
        self.paths: Dict[int, str] = {}
        self.inlined: Set[str] = set()  # paths handed out by inline_files(): written by the caller's script

    # Scripts small enough to travel as command-line words of a script that runs anyway (PREPARE_SCRIPT):
    # text only (no NUL), well inside one SSH packet.
    INLINE_LIMIT = 16 * 1024

    def _plan(self) -> None:
        for i, workload in enumerate(self.workloads):
            if workload.kind == "script":
                self.paths[i] = f"{self.remote.workdir}/w{i + 1}-{safe_basename(workload.spec)}"
            elif workload.kind == "remote":
                self.paths[i] = workload.spec

    def inline_files(self) -> List[str]:
        """PATH, TEXT pairs of the scripts a prelude writes itself (upload() then skips them): saves a
        transfer per script (0.1-0.2 s on a TCG guest). Run with sh, so they need no mode."""
        self._plan()
        pairs: List[str] = []
        size = 0
        for i, workload in enumerate(self.workloads):
            if workload.kind != "script":
                continue
            try:
                with open(workload.spec, "rb") as handle:
                    data = handle.read(self.INLINE_LIMIT + 1)
                text = data.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if "\0" in text or size + len(data) > self.INLINE_LIMIT:
                continue
            size += len(data)
            pairs += [self.paths[i], text]
            self.inlined.add(self.paths[i])
        return pairs

    def upload(self) -> None:
        """Copy the scripts to the target, except those inline_files() handed out."""
        self._plan()
        for i, workload in enumerate(self.workloads):
            if workload.kind == "script" and self.paths[i] not in self.inlined:
                self.remote.target.put(workload.spec, self.paths[i], 0o755)

    def run_all(self, label: str, budget: Optional[float], timeout: float,
                extra_env: Optional[Dict[str, str]] = None) -> List[Dict[str, Any]]:
        """Run every workload once. budget (warm-up): each workload runs at most that many seconds, so
        every one of them gets its first seconds exercised; being cut off is expected then.
        extra_env (SECCOMP_ROUND, SECCOMP_ROUND_KIND=warm-up|full|verify) reaches host commands and
        target scripts alike, so a workload can run a light pass in the warm-up that still walks
        every code path (the demo's redis workload does)."""
        warm = budget is not None
        runs: List[Dict[str, Any]] = []
        for i, workload in enumerate(self.workloads):
            limit = budget if budget is not None else timeout
            self.progress.status(f"{label}: {workload.label}")
            started = time.monotonic()
            if workload.kind == "host":
                status, tail = self._run_host(workload.spec, limit, extra_env or {})
            else:
                status, tail = self._run_on_target(self.paths[i], limit, warm, extra_env)
            text = "ok" if status == 0 else ("timed out" if status is None else f"exit {status}")
            if warm and status != 0:
                text += " (expected in a warm-up)"
            run = {"round": label, "label": workload.label, "status": text,
                   "seconds": round(time.monotonic() - started, 2)}
            if status != 0:
                run["output_tail"] = tail
            runs.append(run)
            if status != 0 and not warm:
                last = tail.strip().splitlines()[-1] if tail.strip() else ""
                error = WorkloadFailed(f"workload {workload.label} {text} ({label})" + (f": {last}" if last else ""))
                error.runs = runs  # type: ignore[attr-defined]
                raise error
        return runs

    def _run_on_target(self, path: str, timeout: float, warm: bool,
                       env: Optional[Dict[str, str]] = None) -> Tuple[Optional[int], str]:
        seconds = max(1, int(timeout + 0.999))
        assignments = [f"{k}={v}" for k, v in sorted((env or {}).items()) if k.startswith("SECCOMP_")]
        argv = ["timeout", "-s", "KILL" if warm else "TERM", str(seconds), "env", *assignments, "sh", path]
        result = self.remote.run(["sh", "-c", 'cd "$1" && shift && exec "$@" 2>&1', "sh", self.remote.workdir,
                                  *argv], timeout=seconds + 60)
        status: Optional[int] = result.status
        if status != 0 and result.duration >= seconds - 0.5:
            status = None  # timeout(1) ended it
        return status, tail_lines(result.stdout + result.stderr)

    def _run_host(self, command: str, timeout: float, extra_env: Dict[str, str]) -> Tuple[Optional[int], str]:
        env = dict(os.environ)
        env.update(self.host_env)
        env.update(extra_env)
        with subprocess.Popen(command, shell=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True) as proc:
            try:
                output, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                output, _ = proc.communicate()
                return None, tail_lines(output.decode("utf-8", errors="replace"))
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                raise
        return proc.returncode, tail_lines(output.decode("utf-8", errors="replace"))


# -- helpers --------------------------------------------------------------------------------------
def systemd_literal(word: str) -> str:
    """systemd expands $VAR in ExecStart= (systemd-run's command too) before the program sees it; '$$'
    is its escape for '$'. A --command is shell code for sh -c, so sh must get it unchanged."""
    return word.replace("$", "$$")


def describe_failure(exc: Exception, progress: Progress, target=None) -> str:
    """The error, with where it happened when the target went away (the message alone can be terse)."""
    from .target import ConnectionLost, TargetError

    text = str(exc).strip()
    where = progress.failed_in or progress.current() or "the run"
    # QemuTarget: pid is set once qemu was started; running turns False when it has exited.
    if isinstance(exc, TargetError) and getattr(target, "pid", None) and getattr(target, "running", True) is False:
        return f"qemu stopped during {where}: {text}"
    if isinstance(exc, ConnectionLost):
        return f"lost the connection to the target during {where}: {text}"
    if isinstance(exc, TargetError) and "qemu exited" in text:
        return f"qemu stopped during {where}: {text}"
    return text


def host_workload_env(base: Dict[str, str], host_address: Optional[Tuple[str, int]],
                      forwarded: Dict[int, int]) -> Dict[str, str]:
    env = dict(base)
    if host_address is not None:
        env["SECCOMP_TARGET_HOST"] = host_address[0]
        env["SECCOMP_TARGET_PORT"] = str(host_address[1])
    for guest, host in sorted(forwarded.items()):
        env[f"SECCOMP_TARGET_PORT_{guest}"] = str(host)
    return env


def iso_time(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    import datetime

    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def tail_lines(text: str, count: int = 15) -> str:
    lines = (text or "").rstrip().splitlines()
    return "\n".join(line[:300] for line in lines[-count:])


def first_line(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0][:300] if text else ""


def safe_basename(path: str) -> str:
    base = os.path.basename(path) or "workload"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:60]


def command_subject(command: str) -> str:
    """A --command's subject in the profile: its executable (first word), as written."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return words[0] if words else "command"


def split_sections(text: str, markers: Sequence[str]) -> Tuple[str, Dict[str, str]]:
    """A script's output in sections, each started by a line that is one of markers (in any order):
    the text before the first marker, and each marker's text ('' for a marker that did not come)."""
    head: List[str] = []
    sections: Dict[str, List[str]] = {m: [] for m in markers}
    current = head
    for line in text.splitlines(keepends=True):
        marker = line.rstrip("\n")
        if marker in sections:
            current = sections[marker]
            continue
        current.append(line)
    return "".join(head), {m: "".join(lines) for m, lines in sections.items()}


def parse_show_blocks(text: str, units: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """Split `systemctl show U1 U2 ...` output (blank-line separated blocks, Id= first) per unit."""
    blocks: List[Dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        key, sep, value = line.partition("=")
        if sep:  # a repeated key (one ExecStartPre= per command) keeps every value, one per line
            blocks[-1][key] = blocks[-1][key] + "\n" + value if key in blocks[-1] else value
    blocks = [b for b in blocks if b]
    out: Dict[str, Dict[str, str]] = {}
    for unit, block in zip(units, blocks):
        out[unit] = block
    for unit in units:
        out.setdefault(unit, {})
    return out


def exec_pids(props: Dict[str, str]) -> List[int]:
    """The pids systemd ran a unit's commands as (`pid=` of ExecStartPre=/ExecStart=/ExecStartPost=, the
    main pid), from `systemctl show` output parsed by parse_show_blocks."""
    text = "\n".join(props.get(k, "") for k in ("ExecStartPre", "ExecStart", "ExecStartPost"))
    pids = [int(p) for p in re.findall(r"\bpid=(\d+)", text)]
    main = props.get("ExecMainPID", "")
    if main.isdigit():
        pids.append(int(main))
    return sorted({p for p in pids if p > 1})


def unit_is_up(props: Dict[str, str]) -> bool:
    if props.get("ActiveState") in ("active", "reloading", "activating"):
        return True
    # A oneshot that ran to completion is fine.
    return props.get("Type") == "oneshot" and props.get("Result") == "success"


def unit_cgroup(unit: str, props: Dict[str, str]) -> str:
    """The unit's cgroup path; before it first runs ControlGroup is empty, so derive it from its slice."""
    group = props.get("ControlGroup") or ""
    if group:
        return group
    return f"{slice_cgroup(props.get('Slice') or 'system.slice')}/{unit}"


def cgroup_root_expr() -> str:
    # cgroup v2 (unified) at /sys/fs/cgroup; v1/hybrid keeps systemd's tree at /sys/fs/cgroup/systemd.
    return "/sys/fs/cgroup"


def dropin_properties(text: str) -> List[str]:
    """Key=Value lines of a rendered drop-in's [Service] section, for systemd-run --property."""
    props: List[str] = []
    in_service = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            in_service = line == "[Service]"
            continue
        if in_service and "=" in line:
            props.append(line)
    return props


# -- outputs --------------------------------------------------------------------------------------
def render_filters(profile: Profile, abi: str, out_dir: str, action: str = "errno",
                   systemd_version: Optional[int] = None) -> Dict[str, Any]:
    """filters/<format>/... for every format; a format that cannot express the profile records why."""
    from .render import render

    written: Dict[str, Any] = {}
    subjects = [s for s in profile.subjects() if any(profile.syscalls(s, a) for a in profile.abis(s))]
    if not subjects:
        return {fmt: {"error": "the profile has no syscalls"} for fmt in FILTER_FORMATS}
    for fmt in FILTER_FORMATS:
        chosen = [s for s in subjects if fmt != "systemd" or unit_name_problem(s, EXEC_UNIT_TYPES) is None]
        if not chosen:
            written[fmt] = {"error": "no subject is a systemd unit"}
            continue
        try:
            files = render(profile, fmt, subjects=chosen, abi=abi, action=action,
                           systemd_version=systemd_version if fmt == "systemd" else None)
        except SeccompPyError as exc:
            written[fmt] = {"error": first_line(str(exc))}
            continue
        paths = []
        for rel, text in sorted(files.items()):
            path = os.path.join(out_dir, "filters", fmt, rel)
            atomic_write(path, text)
            paths.append(os.path.relpath(path, out_dir))
        written[fmt] = paths
    return written


def failed_result(error: str, target_info: Optional[Dict[str, Any]] = None,
                  timings: Optional[Dict[str, float]] = None) -> ProfileResult:
    """The outputs of a run that never reached the profiler (no boot, no SSH): empty and incomplete."""
    profile = Profile()
    profile.incomplete = True
    profile.notes = [f"profiling failed before any record was collected: {first_line(error)}"]
    report = {"schema": "seccomp-py/report/v1", "command": "profile", "tool_version": __version__,
              "status": "failed", "error": error, "converged": False,
              "incomplete_reasons": [f"profiling stopped: {first_line(error)}"], "target": dict(target_info or {}),
              "units": {}, "iterations": [], "timings": dict(timings or {})}
    return ProfileResult(profile, report, False, True, error)


def write_outputs(result: ProfileResult, out_dir: str, abi: Optional[str] = None, action: str = "errno") -> None:
    """profile.json, report.json, report.md, filters/<format>/... into out_dir."""
    from . import report as report_mod

    os.makedirs(out_dir, exist_ok=True)
    result.profile.save(os.path.join(out_dir, "profile.json"))
    abi = abi or result.report.get("target", {}).get("abi") or None
    if abi and result.profile.subjects():
        result.report["filters"] = render_filters(result.profile, abi, out_dir, action=action)
    report_mod.write(result.report, os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md"))


# -- BitBake ---------------------------------------------------------------------------------------
def profile_for_bitbake(request):
    """do_seccomp_profile's entry point (seccomp_py.bitbake.run_profiler): boot the image once, profile
    the declared units with the declared on-target workloads, write the outputs to request.output_dir."""
    from .bitbake import ProfileOutcome
    from .target import QemuTarget
    from .target.qemu import PROFILING_KERNEL_ARGS

    extra = dict(request.extra or {})
    progress = Progress()
    os.makedirs(request.output_dir, exist_ok=True)
    records = os.path.join(request.output_dir, "audit-records.json")
    config = ProfileConfig(units=list(request.units),
                           workloads=[Workload("remote", w) for w in request.workloads],
                           max_iterations=request.max_iterations, allow_loss=request.allow_loss, restore=False,
                           records_path=records + ".partial")
    target = QemuTarget(
        request.qemuboot, user=request.ssh_user or "root",
        password=extra.get("password", ""), key_filename=extra.get("key_filename") or None,
        host_key=extra.get("host_key") or None,
        insecure_accept_host_key=extra.get("insecure_accept_host_key", "") in ("1", "yes", "true"),
        kernel_args=[*PROFILING_KERNEL_ARGS, *request.kernel_args,
                     *bootarm.kernel_args_for_qemuboot(request.qemuboot, config.units)],
        workdir=os.path.join(request.output_dir, "qemu"))
    graceful = False
    try:
        with progress.phase("boot"):
            target.start()
        result = Profiler(target, config, progress, target_info={"kind": "qemu", "qemuboot": request.qemuboot},
                          forwarded=target.forwarded, host_address=("127.0.0.1", int(target.ssh_port))).run()
        graceful = not result.interrupted
    finally:
        target.stop(graceful=graceful)
        progress.close()
    if os.path.exists(records + ".partial"):
        os.replace(records + ".partial", records)
    result.report["timings"] = {"boot": round(target.boot_seconds or 0.0, 2),
                                **{k: v for k, v in progress.ordered_timings().items() if k != "boot"}}
    write_outputs(result, request.output_dir)
    if result.interrupted:
        raise KeyboardInterrupt
    if result.error:
        raise ProfilingError(f"{first_line(result.error)} (report: {request.output_dir}/report.md)")
    abi = result.report.get("target", {}).get("abi")
    if abi and request.abi and abi != request.abi:
        raise ProfilingError(f"the image runs {abi}, but the build targets {request.abi}")
    return ProfileOutcome(result.profile, result.converged, result.lost_records,
                          os.path.join(request.output_dir, "report.md"))
