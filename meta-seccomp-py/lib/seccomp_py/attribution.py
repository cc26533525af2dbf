"""Which profiled unit made a SECCOMP record: pid -> unit, including forked and exec'd children.

SECCOMP records carry _PID, _EXE and _COMM but no unit (there is no _SYSTEMD_UNIT on the audit
transport), and the process is often gone by the time journald has the record. auid/ses do not help:
every systemd service runs with auid and ses unset (4294967295), so they cannot tell two units apart.

What we use, in order of trust:

1. Kernel trace events, recorded in a private tracefs instance while a round runs:
   ``cgroup:cgroup_attach_task`` (systemd moves every process it spawns for a unit — ExecStartPre,
   ExecStart, ExecReload, ExecStop helpers — into the unit's cgroup) and ``sched:sched_process_fork``
   (children inherit their parent's unit, as they inherit its seccomp filter). Replayed in order, this
   maps every pid that lived during the round to the unit whose filter it runs under, however short-lived.
   A pid that leaves for another cgroup keeps its unit: the filter goes with the process.
2. cgroup.procs samples of each unit's cgroup (periodic when tracefs is missing; once per round otherwise).
3. The executable: an exe seen only in one unit's attributed records.
4. When a single unit is armed, every LOG record belongs to it: only armed process trees log.
5. Otherwise the record is ambiguous. It is given to every armed unit (a filter that allows a call too
   many is safer than one that kills the service) and reported as such, never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Set, Tuple

TRACE_EVENTS = ("sched/sched_process_fork", "cgroup/cgroup_attach_task")

_FORK = re.compile(r"sched_process_fork: comm=.*? pid=(\d+) child_comm=.*? child_pid=(\d+)\s*$")
_ATTACH = re.compile(r"cgroup_attach_task: .*?dst_path=(\S+) pid=(\d+) comm=")
_SAMPLE = re.compile(r"^C (\S+) (\d+)\s*$")
_OVERRUN = re.compile(r"^overrun: (\d+)", re.M)

HOW_TRACE = "trace"
HOW_SAMPLE = "cgroup-sample"
HOW_EXE = "exe"
HOW_ONLY_UNIT = "only-armed-unit"
HOW_AMBIGUOUS = "ambiguous"
HOW_PID_REUSE = "pid-reuse"


@dataclass(frozen=True)
class Attribution:
    units: Tuple[str, ...]
    how: str


@dataclass
class Attributor:
    """Build from unit -> cgroup path (as `systemctl show -P ControlGroup` prints it), feed trace
    text and samples, then ask unit_for(pid, exe)."""

    cgroups: Mapping[str, str]
    owners: Dict[int, Set[str]] = field(default_factory=dict)
    sampled: Dict[int, Set[str]] = field(default_factory=dict)
    exes: Dict[str, Set[str]] = field(default_factory=dict)
    trace_events: int = 0
    trace_overruns: int = 0

    def __post_init__(self) -> None:
        self._current: Dict[int, Optional[str]] = {}

    def unit_of_cgroup(self, path: str) -> Optional[str]:
        """The armed unit whose cgroup is path or contains it (delegated sub-cgroups)."""
        path = path.rstrip("/") or "/"
        for unit, root in self.cgroups.items():
            root = root.rstrip("/")
            if root and (path == root or path.startswith(root + "/")):
                return unit
        # cgroup v1 named hierarchies print the same path; v2 paths may come without the leading slash
        if not path.startswith("/"):
            return self.unit_of_cgroup("/" + path)
        return None

    # -- feeding --------------------------------------------------------------------------------
    def feed_trace(self, text: str) -> None:
        """Replay `trace` output of the instance, in order."""
        for line in text.splitlines():
            match = _FORK.search(line)
            if match:
                parent, child = int(match.group(1)), int(match.group(2))
                self._set(child, self._current.get(parent))
                self.trace_events += 1
                continue
            match = _ATTACH.search(line)
            if match:
                unit = self.unit_of_cgroup(match.group(1))
                pid = int(match.group(2))
                # Entering our cgroup arms the process; leaving does not disarm it (the filter stays).
                if unit is not None:
                    self._set(pid, unit)
                self.trace_events += 1

    def feed_overruns(self, stats_text: str) -> None:
        """per_cpu/cpuN/stats of the instance: events lost to a full ring buffer."""
        for match in _OVERRUN.finditer(stats_text):
            self.trace_overruns += int(match.group(1))

    def _set(self, pid: int, unit: Optional[str]) -> None:
        self._current[pid] = unit
        if unit is not None:
            self.owners.setdefault(pid, set()).add(unit)

    def feed_samples(self, text: str) -> None:
        """Lines 'C <unit> <pid>' from the in-guest sampler."""
        for unit, pid in parse_samples(text):
            if unit in self.cgroups:
                self.sampled.setdefault(pid, set()).add(unit)
                # A process that predates the trace (started at boot): its later forks inherit the unit.
                if pid not in self._current and len(self.sampled[pid]) == 1:
                    self._current[pid] = unit

    def note_exe(self, unit: str, exe: Optional[str]) -> None:
        if exe:
            self.exes.setdefault(exe, set()).add(unit)

    # -- asking ---------------------------------------------------------------------------------
    def unit_for(self, pid: Optional[int], exe: Optional[str]) -> Attribution:
        armed = tuple(sorted(self.cgroups))
        if pid is not None:
            traced = self.owners.get(pid)
            if traced:
                if len(traced) == 1:
                    return Attribution(tuple(traced), HOW_TRACE)
                return Attribution(tuple(sorted(traced)), HOW_PID_REUSE)
            sampled = self.sampled.get(pid)
            if sampled:
                return Attribution(tuple(sorted(sampled)), HOW_SAMPLE if len(sampled) == 1 else HOW_PID_REUSE)
        if exe and len(self.exes.get(exe, ())) == 1:
            return Attribution(tuple(self.exes[exe]), HOW_EXE)
        if len(armed) == 1:
            return Attribution(armed, HOW_ONLY_UNIT)
        if exe and self.exes.get(exe):
            return Attribution(tuple(sorted(self.exes[exe])), HOW_AMBIGUOUS)
        return Attribution(armed, HOW_AMBIGUOUS)

    def resolve_all(self, records: Iterable[Tuple[Optional[int], Optional[str]]]) -> List[Attribution]:
        """Two passes: pid-attributed records teach exe -> unit first, then the rest use it."""
        items = list(records)
        first = [self.unit_for(pid, None) if pid is not None else None for pid, _exe in items]
        for (_pid, exe), result in zip(items, first):
            if result is not None and result.how in (HOW_TRACE, HOW_SAMPLE):
                self.note_exe(result.units[0], exe)
        return [self.unit_for(pid, exe) for pid, exe in items]


# -- the in-guest side ------------------------------------------------------------------------------
def slice_cgroup(slice_name: str) -> str:
    """systemd's slice nesting: a-b-c.slice lives at /a.slice/a-b.slice/a-b-c.slice."""
    if slice_name in ("", "-.slice"):
        return ""
    stem = slice_name[: -len(".slice")] if slice_name.endswith(".slice") else slice_name
    parts = stem.split("-")
    path = ""
    for i in range(1, len(parts) + 1):
        path += "/" + "-".join(parts[:i]) + ".slice"
    return path


# One script uploaded once per run: `sh tools.sh <command> ...`. Kept POSIX (dash, busybox ash).
TOOLS_SCRIPT = r"""#!/bin/sh
# seccomp-py helpers on the target.
#   sample INTERVAL|once CGROUP_ROOT UNIT=CGROUP_PATH...   print "C <unit> <pid>" per process in each cgroup
#   trace-setup NAME BUFFER_KB                            private tracefs instance with fork + cgroup attach
#                                                         events; prints its folder, or nothing if unavailable
#   trace-collect INSTANCE [remove]                       print the trace, a marker, the stats; clear
#   gather INSTANCE|- SAMPLES ROOT UNIT=PATH...           trace-collect, then a marker and cgroup samples
cmd=$1; shift
case "$cmd" in
sample)
    interval=$1; root=$2; shift 2
    while :; do
        for spec in "$@"; do
            unit=${spec%%=*}
            dir=$root${spec#*=}
            for f in "$dir/cgroup.procs" "$dir"/*/cgroup.procs "$dir"/*/*/cgroup.procs; do
                [ -r "$f" ] || continue
                while read -r p; do echo "C $unit $p"; done < "$f"
            done
        done
        [ "$interval" = once ] && exit 0
        sleep "$interval"
    done
    ;;
trace-setup)
    name=$1; kb=$2; t=
    for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
        if [ -d "$d/instances" ]; then t=$d; break; fi
    done
    if [ -z "$t" ]; then
        mkdir -p /sys/kernel/tracing 2>/dev/null
        mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null && t=/sys/kernel/tracing
        [ -n "$t" ] && [ -d "$t/instances" ] || exit 0
    fi
    inst=$t/instances/$name
    [ -d "$inst" ] || mkdir "$inst" 2>/dev/null || exit 0
    echo "$kb" > "$inst/buffer_size_kb" 2>/dev/null
    ok=1
    for ev in sched/sched_process_fork cgroup/cgroup_attach_task; do
        if [ -w "$inst/events/$ev/enable" ]; then
            echo 1 > "$inst/events/$ev/enable" || ok=
        else
            ok=
        fi
    done
    if [ -z "$ok" ]; then
        for ev in sched/sched_process_fork cgroup/cgroup_attach_task; do
            echo 0 > "$inst/events/$ev/enable" 2>/dev/null
        done
        rmdir "$inst" 2>/dev/null
        exit 0
    fi
    echo "$inst"
    ;;
trace-collect|gather)
    # gather INSTANCE|- SAMPLES_FILE CGROUP_ROOT UNIT=PATH...: trace (then stats), then cgroup samples
    # trace-collect INSTANCE [remove]: trace and stats only
    inst=$1
    if [ "$cmd" = gather ]; then samples=$2; root=$3; shift 3; fi
    if [ "$inst" != - ] && [ -d "$inst" ]; then
        for ev in sched/sched_process_fork cgroup/cgroup_attach_task; do
            echo 0 > "$inst/events/$ev/enable" 2>/dev/null
        done
        cat "$inst/trace"
        echo "### seccomp-py stats"
        cat "$inst"/per_cpu/cpu*/stats 2>/dev/null
        if [ "$cmd" = trace-collect ] && [ "$2" = remove ]; then
            rmdir "$inst" 2>/dev/null
        else
            : > "$inst/trace"
            for ev in sched/sched_process_fork cgroup/cgroup_attach_task; do
                echo 1 > "$inst/events/$ev/enable" 2>/dev/null
            done
        fi
    fi
    if [ "$cmd" = gather ]; then
        echo "### seccomp-py samples"
        sh "$0" sample once "$root" "$@"
        if [ -f "$samples" ]; then cat "$samples"; : > "$samples"; fi
    fi
    ;;
*)
    echo "tools.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
exit 0
"""

STATS_MARKER = "### seccomp-py stats"
SAMPLES_MARKER = "### seccomp-py samples"


def split_trace_output(text: str) -> Tuple[str, str]:
    head, sep, tail = text.partition(STATS_MARKER)
    return head, tail if sep else ""


def parse_samples(text: str) -> List[Tuple[str, int]]:
    """(unit, pid) of each 'C <unit> <pid>' line of a cgroup sample (tools.sh sample/gather output)."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match:
            found.append((match.group(1), int(match.group(2))))
    return found


def split_gather_output(text: str) -> Tuple[str, str, str]:
    """tools.sh gather output -> (trace, stats, samples)."""
    head, _sep, samples = text.partition(SAMPLES_MARKER)
    trace, stats = split_trace_output(head)
    return trace, stats, samples
