"""Render a profile into filters that real systems load: systemd drop-ins, LXC, OCI/Docker, Firejail.

Library API (used by the CLI, the bbclass and the profiler)::

    from seccomp_py.render import render, render_log_dropin

    files = render(profile, "systemd", subjects=["nginx.service"], abi="x86_64",
                   action="errno", errno="EPERM", systemd_version=252)
    # -> {"nginx.service.d/50-seccomp.conf": "...text..."}; paths are relative, write them with atomic_write

    text = render_log_dropin(known_names, "aarch64", unit="nginx.service")  # the profiler's log mode

render(profile, fmt, *, subjects=None, abi=None, action="errno", errno="EPERM", systemd_version=None,
       profile_name="profile", unit=None, dropin_name="50-seccomp.conf") -> {relative path: text}

- fmt: systemd | lxc | oci | docker (same JSON as oci) | firejail.
- subjects: default all. Each subject gives its own file (systemd: ``<unit>.d/<dropin_name>``,
  LXC ``<slug>.seccomp``, OCI/Docker ``<slug>.json``, Firejail ``<slug>.profile``).
- abi: the target's native ABI (any token get_abi accepts). The subject's calls for that ABI and for
  its compat ABIs (x86/x32 on x86_64, arm on aarch64) are used; compat ABIs without calls are denied.
  Without abi it is inferred; several native ABIs are an error except for LXC (one section each).
- action: errno (with errno name or number, default EPERM) | kill | log. log gives the systemd
  log-mode drop-in, OCI SCMP_ACT_LOG and Firejail's log action; LXC has none (error).
- systemd_version: compress the systemd list with groups of that version (exact data required).
- unit: systemd unit name when the subject is not one (single subject only).

Errors (seccomp_py.errors): a name missing from its ABI's table, an invalid unit name, an errno the
target cannot take, or a format that cannot express the profile. Nothing is dropped silently.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Union

from ..errors import UsageError
from ..profile import Profile
from ..syscalls import get_abi
from . import firejail, lxc, oci, systemd
from ._core import ACTIONS, Options, RenderError, Selection, pairs, resolve_action, select

FORMATS = ("systemd", "lxc", "oci", "docker", "firejail")

__all__ = ["ACTIONS", "FORMATS", "RenderError", "log_dropin_path", "render", "render_log_dropin"]


def render(
    profile: Profile,
    fmt: str,
    *,
    subjects: Optional[Sequence[str]] = None,
    abi: Optional[str] = None,
    action: str = "errno",
    errno: Union[str, int, None] = "EPERM",
    systemd_version: Optional[int] = None,
    profile_name: str = "profile",
    unit: Optional[str] = None,
    dropin_name: str = "50-seccomp.conf",
    log_dropin_name: str = "50-seccomp-log.conf",
) -> Dict[str, str]:
    """Render one format for the chosen subjects; see the module docstring."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (use one of: {', '.join(FORMATS)})")
    chosen = list(subjects) if subjects else profile.subjects()
    if not chosen:
        raise RenderError("the profile has no subjects")
    if unit is not None and len(chosen) != 1:
        raise UsageError("a unit name override needs exactly one subject")
    out: List = []
    for subject in chosen:
        selections = select(profile, subject, abi, profile_name, allow_multi=(fmt == "lxc"))
        family = [a.abi for sel in selections for a in sel.abis]
        options = Options(
            action=resolve_action(action, errno, family),
            systemd_version=systemd_version,
            dropin_name=dropin_name,
            log_dropin_name=log_dropin_name,
            unit=unit,
        )
        out.extend(_render_one(fmt, selections, options).items())
    return pairs(out)


def _render_one(fmt: str, selections: List[Selection], options: Options) -> Dict[str, str]:
    if fmt == "systemd":
        result: Dict[str, str] = {}
        for sel in selections:
            result.update(systemd.render_enforce(sel, options))
        return result
    if fmt == "lxc":
        return lxc.render(selections, options)
    if fmt in ("oci", "docker"):
        return oci.render(selections, options)
    return firejail.render(selections, options)


def render_log_dropin(known: Iterable[str], abi: str, *, unit: str, profile_name: str = "-") -> str:
    """The profiler's log-mode drop-in text: SystemCallLog=~<known>; everything else is logged.

    known may be empty (then a placeholder that logs every call is used; see render.systemd). Install it
    as /run/systemd/system/<unit>.d/50-seccomp-log.conf (runtime only) and daemon-reload.
    """
    native = get_abi(abi)
    return systemd.log_dropin_text(known, native.name, unit=unit, profile_name=profile_name)


def log_dropin_path(unit: str, name: str = "50-seccomp-log.conf") -> str:
    return systemd.dropin_path(unit, name)
