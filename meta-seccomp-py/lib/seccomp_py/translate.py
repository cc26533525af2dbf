"""Cross-ABI translation of a profile with an explicit equivalence table.

A name that exists on the target ABI is kept. A name the target lacks is replaced by the first
alternative in EQUIVALENTS that the target has (the order follows what glibc and musl call on ABIs
without the legacy call: open -> openat, stat -> newfstatat, fork -> clone, ...). A name with no
equivalent on the target is reported in the result and in the output profile's notes, never dropped
silently.

    result = translate_profile(profile, "x86_64", "aarch64")
    result.profile                 # the profile with each subject's x86_64 set replaced by an aarch64 set
    result.mapped[subject]         # {"open": "openat", ...}
    result.unmapped[subject]       # ["arch_prctl", ...]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .errors import InputError, UsageError
from .profile import Profile
from .syscalls import Abi, get_abi

# legacy or ABI-specific name -> replacements in order of preference
EQUIVALENTS: Dict[str, Tuple[str, ...]] = {
    # path-based calls without a dirfd: the *at forms
    "open": ("openat",),
    "creat": ("openat",),
    "access": ("faccessat", "faccessat2"),
    "stat": ("newfstatat", "fstatat64", "statx"),
    "lstat": ("newfstatat", "fstatat64", "statx"),
    "fstat": ("newfstatat", "fstatat64", "statx"),
    "stat64": ("fstatat64", "newfstatat", "statx"),
    "lstat64": ("fstatat64", "newfstatat", "statx"),
    "fstat64": ("fstat", "fstatat64", "newfstatat", "statx"),
    "newfstatat": ("fstatat64", "statx"),
    "fstatat64": ("newfstatat", "statx"),
    "chmod": ("fchmodat",),
    "chown": ("fchownat",),
    "lchown": ("fchownat",),
    "chown32": ("chown", "fchownat"),
    "lchown32": ("lchown", "fchownat"),
    "fchown32": ("fchown",),
    "link": ("linkat",),
    "unlink": ("unlinkat",),
    "rmdir": ("unlinkat",),
    "mkdir": ("mkdirat",),
    "mknod": ("mknodat",),
    "rename": ("renameat", "renameat2"),
    "renameat": ("renameat2",),
    "symlink": ("symlinkat",),
    "readlink": ("readlinkat",),
    "utime": ("utimensat", "utimensat_time64"),
    "utimes": ("utimensat", "utimensat_time64"),
    "futimesat": ("utimensat", "utimensat_time64"),
    "inotify_init": ("inotify_init1",),
    "umount": ("umount2",),
    # process creation and waiting
    "fork": ("clone",),
    "vfork": ("clone",),
    "waitpid": ("wait4",),
    # descriptors, polling, events
    "dup2": ("dup3",),
    "pipe": ("pipe2",),
    "poll": ("ppoll", "ppoll_time64"),
    "select": ("pselect6", "pselect6_time64"),
    "_newselect": ("pselect6", "pselect6_time64"),
    "epoll_wait": ("epoll_pwait",),
    "epoll_create": ("epoll_create1",),
    "eventfd": ("eventfd2",),
    "signalfd": ("signalfd4",),
    "getdents": ("getdents64",),
    "readdir": ("getdents64",),
    "pause": ("ppoll", "ppoll_time64", "rt_sigsuspend"),
    # time
    "time": ("clock_gettime", "clock_gettime64"),
    "alarm": ("setitimer",),
    "stime": ("clock_settime", "clock_settime64"),
    "clock_gettime64": ("clock_gettime",),
    "clock_settime64": ("clock_settime",),
    "clock_getres_time64": ("clock_getres",),
    "clock_nanosleep_time64": ("clock_nanosleep",),
    "futex_time64": ("futex",),
    "ppoll_time64": ("ppoll",),
    "pselect6_time64": ("pselect6",),
    "utimensat_time64": ("utimensat",),
    "timerfd_gettime64": ("timerfd_gettime",),
    "timerfd_settime64": ("timerfd_settime",),
    "timer_gettime64": ("timer_gettime",),
    "timer_settime64": ("timer_settime",),
    "recvmmsg_time64": ("recvmmsg",),
    "semtimedop_time64": ("semtimedop",),
    "rt_sigtimedwait_time64": ("rt_sigtimedwait",),
    "mq_timedsend_time64": ("mq_timedsend",),
    "mq_timedreceive_time64": ("mq_timedreceive",),
    "io_pgetevents_time64": ("io_pgetevents",),
    "sched_rr_get_interval_time64": ("sched_rr_get_interval",),
    "clock_adjtime64": ("clock_adjtime",),
    # legacy signal calls of 32-bit ABIs
    "signal": ("rt_sigaction",),
    "sigaction": ("rt_sigaction",),
    "sigprocmask": ("rt_sigprocmask",),
    "sigreturn": ("rt_sigreturn",),
    "sigsuspend": ("rt_sigsuspend",),
    "sigpending": ("rt_sigpending",),
    # 32-bit wide-id and large-file variants
    "getuid32": ("getuid",), "getgid32": ("getgid",), "geteuid32": ("geteuid",), "getegid32": ("getegid",),
    "setuid32": ("setuid",), "setgid32": ("setgid",), "setreuid32": ("setreuid",), "setregid32": ("setregid",),
    "getresuid32": ("getresuid",), "setresuid32": ("setresuid",), "getresgid32": ("getresgid",),
    "setresgid32": ("setresgid",), "getgroups32": ("getgroups",), "setgroups32": ("setgroups",),
    "setfsuid32": ("setfsuid",), "setfsgid32": ("setfsgid",),
    "mmap2": ("mmap",),
    "_llseek": ("lseek",),
    "fcntl64": ("fcntl",),
    "truncate64": ("truncate",),
    "ftruncate64": ("ftruncate",),
    "statfs64": ("statfs",),
    "fstatfs64": ("fstatfs",),
    "sendfile64": ("sendfile",),
    "fadvise64_64": ("fadvise64",),
    "arm_fadvise64_64": ("fadvise64", "fadvise64_64"),
    "sync_file_range2": ("sync_file_range",),
    "ugetrlimit": ("getrlimit", "prlimit64"),
    "getrlimit": ("prlimit64",),
    "setrlimit": ("prlimit64",),
    # the reverse direction, 64-bit -> 32-bit
    "lseek": ("_llseek",),
    "mmap": ("mmap2",),
    "fcntl": ("fcntl64",),
    "getpgrp": ("getpgid",),
    "recv": ("recvfrom",),
    "send": ("sendto",),
    "nice": ("setpriority",),
}


@dataclass
class TranslationResult:
    profile: Profile
    from_abi: str
    to_abi: str
    kept: Dict[str, List[str]] = field(default_factory=dict)
    mapped: Dict[str, Dict[str, str]] = field(default_factory=dict)
    unmapped: Dict[str, List[str]] = field(default_factory=dict)

    @property
    def has_unmapped(self) -> bool:
        return any(self.unmapped.values())


def equivalent(name: str, target: Abi) -> Optional[str]:
    """The name to use on target for name: itself if the target has it, else the first equivalent it has."""
    if target.has(name):
        return name
    for candidate in EQUIVALENTS.get(name, ()):
        if target.has(candidate):
            return candidate
    return None


def translate_profile(profile: Profile, from_abi: str, to_abi: str,
                      subjects: Optional[Sequence[str]] = None) -> TranslationResult:
    source = get_abi(from_abi)
    target = get_abi(to_abi)
    if source.name == target.name:
        raise UsageError(f"--from and --to are the same ABI ({source.name})")
    chosen = list(subjects) if subjects else [s for s in profile.subjects() if source.name in profile.abis(s)]
    if not chosen:
        raise InputError(f"no subject has syscalls for ABI {source.name}")
    out = profile.copy()
    result = TranslationResult(out, source.name, target.name)
    for subject in chosen:
        names = profile.syscalls(subject, source.name)
        if not names:
            raise InputError(f"subject {subject!r} has no syscalls for ABI {source.name}")
        bad = [n for n in names if not source.has(n)]
        if bad:
            raise InputError(f"subject {subject!r}: not syscalls of ABI {source.name}: {', '.join(bad)}")
        kept, mapped, unmapped = [], {}, []
        for name in names:
            new = equivalent(name, target)
            prov = profile.provenance(subject, source.name, name)
            if new is None:
                unmapped.append(name)
                continue
            if new == name:
                kept.append(name)
            else:
                mapped[name] = new
            out.add(subject, target.name, new, count=prov.count if prov else 1,
                    first_seen=prov.first_seen if prov else None,
                    source=f"translate:{source.name}:{name}")
            if prov:
                for exe in prov.exes:
                    out.add(subject, target.name, new, count=0, exe=exe)
        out.table[subject].pop(source.name, None)
        result.kept[subject] = kept
        result.mapped[subject] = mapped
        result.unmapped[subject] = unmapped
        if unmapped:
            out.notes.append(f"translate {source.name}->{target.name}: {subject}: no equivalent on "
                             f"{target.name} for {', '.join(unmapped)}")
    return result
