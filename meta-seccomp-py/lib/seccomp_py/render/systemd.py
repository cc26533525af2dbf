"""systemd drop-ins: the enforcing filter and the profiler's log-mode drop-in.

Enforcing drop-in (``<unit>.d/50-seccomp.conf``)::

    [Service]
    SystemCallFilter=                  # reset: a unit's own allow-list would be merged with ours
    SystemCallFilter=read write ...    # the allow-list, optionally with fully-contained @groups
    SystemCallErrorNumber=EPERM        # or kill
    SystemCallArchitectures=
    SystemCallArchitectures=native     # plus compat ABIs the profile has calls for (e.g. x86)

systemd adds @default (execve, exit_group, ...) to every allow-list by itself; the drop-in still lists
every profiled name, so the file says what was observed. Names of all listed ABIs form one list: systemd
resolves it per architecture, so a compat ABI allows every listed name that exists on it.

Log-mode drop-in (``SystemCallLog=~<known set>``): logs every call outside the known set and blocks
nothing. An empty set cannot be written as ``SystemCallLog=~`` (systemd then installs no filter at
all), so it becomes a placeholder name that libseccomp resolves but that does not exist on the target's
ABIs: systemd keeps it (as a pseudo syscall number) and skips its rule on every architecture, so every
call is logged and there is no blind spot. ``kexec_load``, the classic placeholder, exists on every ABI:
a service that calls it would go unlogged in that pass. When kexec_load is in the known set it is just
another known name, and no placeholder is needed. tests/consumers/test_systemd_guest.py checks on systemd
252 that the placeholder drop-in logs every call strace sees, and that a re-armed drop-in logs only new ones.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

from ..errors import InputError
from ..syscalls import Abi, all_abis, get_abi
from ..systemd_groups import load as load_groups
from ..unitname import EXEC_UNIT_TYPES, validate_unit_name
from ._core import Options, RenderError, Selection, check_names, header_context, printable, render_template

# Placeholders for an empty known set, tried in order: each is absent on some ABI families and known to
# libseccomp since 2.x. The last resort exists everywhere and leaves that one call unlogged.
PLACEHOLDER_CANDIDATES = ("arm_fadvise64_64", "arch_prctl", "s390_runtime_instr")
FALLBACK_PLACEHOLDER = "kexec_load"


def dropin_path(unit: str, name: str) -> str:
    return f"{unit}.d/{name}"


def _unit_for(sel: Selection, options: Options) -> str:
    unit = options.unit or sel.subject
    validate_unit_name(unit, EXEC_UNIT_TYPES)
    return unit


def _check_dropin_name(name: str) -> str:
    if "/" in name or not name.endswith(".conf") or printable(name) != name or name.startswith("."):
        raise InputError(f"drop-in file name {printable(name)!r} must be a plain NAME.conf")
    return name


def render_enforce(sel: Selection, options: Options) -> Dict[str, str]:
    unit = _unit_for(sel, options)
    action = options.action
    if action.kind == "log":
        return render_log(sel, options)
    if action.kind == "kill":
        error_number = "kill"
    else:
        if action.errno_name is None:
            raise RenderError(f"errno {action.errno_number} has no name here; systemd needs a name such as EPERM")
        error_number = action.errno_name
    names = sel.union()
    groups: List[str] = []
    if options.systemd_version is not None:
        table = load_groups(options.systemd_version)
        # Group members must be on every listed ABI's allow-list; the native ABI decides containment,
        # and compat ABIs are checked too, because systemd expands a group on each of them.
        compression = table.compress(names, sel.native)
        groups = compression.groups
        for extra in sel.compat:
            groups = [g for g in groups if table.effective(g, extra.abi) <= set(names)]
        covered = set()
        for group in groups:
            for member in sel.abis:
                covered |= table.effective(group, member.abi)
        names = sorted(set(names) - covered)
    architectures = ["native"] + [s.abi.info.systemd_name for s in sel.compat]
    text = render_template(
        "line", "systemd-dropin.conf.j2",
        unit=unit,
        filter_lines=[*groups, *names],
        groups=groups,
        systemd_version=options.systemd_version,
        error_number=error_number,
        architectures=" ".join(architectures),
        **header_context(sel),
    )
    return {dropin_path(unit, _check_dropin_name(options.dropin_name)): text}


def placeholder_for(abis: Sequence[Abi]) -> str:
    """A name libseccomp knows that none of these ABIs has (see the module docstring)."""
    known_somewhere = set().union(*(a.names() for a in all_abis()))
    for name in PLACEHOLDER_CANDIDATES:
        if name in known_somewhere and not any(a.has(name) for a in abis):
            return name
    return FALLBACK_PLACEHOLDER


def log_known_set(sel: Selection) -> List[str]:
    """Names every profiled ABI of the family already has: a name known on one ABI only must still be
    logged on the others, and SystemCallLog= cannot tell ABIs apart."""
    sets = [set(s.names) for s in sel.abis if s.names or s.abi.name == sel.native.name]
    return sorted(set.intersection(*sets)) if sets else []


def render_log(sel: Selection, options: Options) -> Dict[str, str]:
    unit = _unit_for(sel, options)
    text = log_dropin_text(log_known_set(sel), sel.native.name, unit=unit,
                           compat=[s.name for s in sel.compat], profile_name=sel.profile_name)
    return {dropin_path(unit, _check_dropin_name(options.log_dropin_name)): text}


def log_dropin_text(known: Iterable[str], abi: str, *, unit: str, compat: Sequence[str] = (),
                    profile_name: str = "-") -> str:
    """The log-mode drop-in for one unit: SystemCallLog=~<known>, everything else is logged.

    known: syscall names already profiled (checked against abi and its compat ABIs); may be empty.
    """
    validate_unit_name(unit, EXEC_UNIT_TYPES)
    native = get_abi(abi)
    family = [native] + [get_abi(c) for c in native.info.compat]
    known = sorted(set(known))
    unknown = [n for n in known if not any(a.has(n) for a in family)]
    if unknown:
        check_names(native, unknown, f"{printable(unit)} known set")
    placeholder: Optional[str] = None
    entries = known
    if not entries:
        placeholder = placeholder_for(family)
        entries = [placeholder]
    return render_template(
        "line", "systemd-log-dropin.conf.j2",
        unit=unit,
        profile_name=printable(profile_name),
        abi_line=native.name + (f" (compat: {', '.join(compat)})" if compat else ""),
        known_count=len(known),
        placeholder=placeholder,
        placeholder_blind=placeholder == FALLBACK_PLACEHOLDER,
        entries=entries,
    )
