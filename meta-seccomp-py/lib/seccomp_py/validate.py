"""Build-time checks of a profile against a target ABI (used by the bbclass and `seccomp-py check`).

    findings = check_profile(profile, "aarch64", allow_dangerous=("ptrace",))
    for f in findings: print(f)            # "error: nginx.service [aarch64] open: ..."
    if has_errors(findings): fail the build

Severities:
- error: the filter would be wrong: a name no ABI knows, a name the target ABI lacks (the kernel would
  never see it, and the call the program really makes would be denied), a subject with no calls for the
  target at all, an unknown name in allow_dangerous.
- warning: a dangerous call is allowed (DANGEROUS, with the reason); the profile is marked incomplete.
- info: a dangerous call allowed on purpose (allow_dangerous); ABIs in the profile that this target
  does not use; a listed allow_dangerous name that is not in DANGEROUS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Union

from .errors import UnknownAbiError
from .profile import Profile
from .syscalls import Abi, all_abis, get_abi
from .translate import equivalent

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)

# Calls that give a process power over the kernel, other processes or the mount/namespace layout.
# Allowing one is sometimes right (a container manager needs mount); it should never be an accident.
DANGEROUS = {
    "kexec_load": "loads and boots another kernel",
    "kexec_file_load": "loads and boots another kernel",
    "init_module": "loads code into the kernel",
    "finit_module": "loads code into the kernel",
    "delete_module": "unloads kernel modules",
    "bpf": "loads eBPF programs into the kernel and reads kernel maps",
    "ptrace": "reads and writes another process's memory and registers",
    "process_vm_readv": "reads another process's memory",
    "process_vm_writev": "writes another process's memory",
    "mount": "changes the mount table (can hide or replace files)",
    "umount": "changes the mount table",
    "umount2": "changes the mount table",
    "pivot_root": "changes the root filesystem",
    "fsopen": "new mount API: same power as mount",
    "fsmount": "new mount API: same power as mount",
    "move_mount": "new mount API: same power as mount",
    "open_tree": "new mount API: same power as mount",
    "mount_setattr": "new mount API: changes mount flags",
    "unshare": "creates namespaces (user namespaces open a large kernel attack surface)",
    "setns": "joins other namespaces",
    "keyctl": "manages kernel keyrings, which are not namespaced",
    "add_key": "adds keys to kernel keyrings, which are not namespaced",
    "request_key": "requests keys from kernel keyrings, which are not namespaced",
    "perf_event_open": "kernel performance events: leaks kernel addresses, large attack surface",
    "userfaultfd": "lets a process stall kernel page faults, a common exploit primitive",
    "open_by_handle_at": "opens files by handle, bypassing path checks (the 'shocker' container escape)",
    "reboot": "reboots or halts the machine, or loads a kexec kernel",
    "swapon": "adds swap devices",
    "swapoff": "removes swap devices",
    "iopl": "raises I/O privilege level: direct hardware port access",
    "ioperm": "direct hardware port access",
    "personality": "changes the execution domain, e.g. turns off address space randomisation",
}


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    message: str
    subject: Optional[str] = None
    abi: Optional[str] = None
    syscall: Optional[str] = None

    def __str__(self) -> str:
        where = []
        if self.subject is not None:
            where.append(self.subject)
        if self.abi is not None:
            where.append(f"[{self.abi}]")
        if self.syscall is not None:
            where.append(self.syscall)
        prefix = " ".join(where)
        return f"{self.severity}: {prefix + ': ' if prefix else ''}{self.message}"

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == ERROR for f in findings)


def count(findings: Iterable[Finding]) -> dict:
    out = {s: 0 for s in SEVERITIES}
    for finding in findings:
        out[finding.severity] += 1
    return out


def check_profile(profile: Profile, abi: Union[str, Abi], allow_dangerous: Iterable[str] = (),
                  subjects: Optional[Sequence[str]] = None) -> List[Finding]:
    """Check every (chosen) subject's calls for the target ABI and its compat ABIs. See module docstring."""
    target = abi if isinstance(abi, Abi) else get_abi(abi)
    family = [target.name, *target.info.compat]
    allowed = set(allow_dangerous)
    everywhere = set().union(*(a.names() for a in all_abis()))
    findings: List[Finding] = []

    for name in sorted(allowed):
        if name not in everywhere:
            findings.append(Finding(ERROR, "allow-unknown", f"allow_dangerous names unknown syscall {name!r}"))
        elif name not in DANGEROUS:
            findings.append(Finding(INFO, "allow-not-dangerous",
                                    f"allow_dangerous lists {name}, which is not on the dangerous list"))
    if profile.incomplete:
        findings.append(Finding(WARNING, "incomplete", "the profile is marked incomplete (records were lost "
                                "while profiling); the filter may miss calls"))

    chosen = list(subjects) if subjects else profile.subjects()
    if not chosen:
        findings.append(Finding(ERROR, "no-subjects", "the profile has no subjects"))
    for subject in chosen:
        if subject not in profile.table:
            findings.append(Finding(ERROR, "no-subject", "subject is not in the profile", subject))
            continue
        present = profile.abis(subject)
        used = [a for a in family if a in present]
        if not any(profile.syscalls(subject, a) for a in used):
            others = [a for a in present if a not in family]
            hint = f" (it has {', '.join(others)}: translate it with `seccomp-py translate`)" if others else ""
            findings.append(Finding(ERROR, "no-syscalls", f"no syscalls for {target.name}{hint}", subject,
                                    target.name))
        for other in present:
            if other in family:
                continue
            try:
                get_abi(other)
            except UnknownAbiError:
                findings.append(Finding(ERROR, "unknown-abi", f"unknown ABI {other!r} in the profile", subject))
                continue
            findings.append(Finding(INFO, "other-abi", f"ABI {other} is not used on a {target.name} target; "
                                    f"not checked", subject, other))
        for abi_name in used:
            member = get_abi(abi_name)
            for name in profile.syscalls(subject, abi_name):
                findings.extend(_check_name(subject, member, name, everywhere, allowed))
    return findings


def _check_name(subject: str, abi: Abi, name: str, everywhere: set, allowed: set) -> List[Finding]:
    out: List[Finding] = []
    if not abi.has(name):
        if name not in everywhere:
            out.append(Finding(ERROR, "unknown-syscall", "not a syscall on any known ABI", subject, abi.name, name))
        else:
            replacement = equivalent(name, abi)
            hint = f"; the equivalent there is {replacement}" if replacement else ""
            out.append(Finding(ERROR, "absent-on-abi", f"does not exist on {abi.name}{hint}", subject, abi.name,
                               name))
        return out
    if name in DANGEROUS:
        if name in allowed:
            out.append(Finding(INFO, "dangerous-allowed", f"dangerous, allowed on purpose: {DANGEROUS[name]}",
                               subject, abi.name, name))
        else:
            out.append(Finding(WARNING, "dangerous", f"dangerous: {DANGEROUS[name]}", subject, abi.name, name))
    return out
