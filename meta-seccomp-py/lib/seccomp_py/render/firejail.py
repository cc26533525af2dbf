"""Firejail profile fragment: ``seccomp.keep`` (native ABI), ``seccomp.32.keep`` (i386 on x86_64).

Firejail's keep filter lets calls of any other architecture through, so when no 32-bit calls were
profiled the fragment adds ``seccomp.block-secondary``. Firejail only knows a 32-bit filter for i386;
x32 calls are always refused by its keep filter, and other compat ABIs cannot be listed.
"""

from __future__ import annotations

from typing import Dict, List

from ._core import Options, RenderError, Selection, header_context, render_template, slug


def render(selections: List[Selection], options: Options) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for sel in selections:
        keep32: List[str] = []
        for extra in sel.compat:
            if sel.native.name == "x86_64" and extra.name == "x86":
                keep32 = extra.names
            else:
                raise RenderError(f"Firejail cannot filter {extra.name} calls on {sel.native.name} separately; "
                                  f"render without that ABI or use another format")
        keep = sel.names_for(sel.native.name)
        if not keep:
            raise RenderError(f"{sel.subject}: no {sel.native.name} syscalls for seccomp.keep")
        action = options.action
        if action.kind == "errno":
            if action.errno_name is None:
                raise RenderError(f"errno {action.errno_number} has no name; Firejail needs a name such as EPERM")
            error_action = action.errno_name
        else:
            error_action = action.kind
        text = render_template(
            "line", "firejail.profile.j2",
            keep=keep, keep32=keep32, block_secondary=not keep32, error_action=error_action,
            **header_context(sel),
        )
        out[f"{slug(sel.subject)}.profile"] = text
    return out
