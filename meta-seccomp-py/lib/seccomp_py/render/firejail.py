"""Firejail profile fragment: ``seccomp.block-secondary``, ``seccomp.keep <names>``, ``seccomp-error-action``.

Firejail's keep filter lets calls of any other architecture through, so the fragment always adds
``seccomp.block-secondary``. Compat ABIs cannot be rendered: firejail builds the ``seccomp.32.keep``
filter with its native syscall table (``fseccomp keep``, not ``keep32``; seen in firejail 0.9.72 and in
upstream src/firejail/seccomp.c seccomp_filter_keep), so the "32-bit" list ends up filtering native calls
and i386 calls stay unfiltered. tests/consumers/test_firejail.py checks that this is still so.
"""

from __future__ import annotations

from typing import Dict, List

from ._core import Options, RenderError, Selection, header_context, render_template, slug


def render(selections: List[Selection], options: Options) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for sel in selections:
        if sel.compat:
            abis = ", ".join(s.name for s in sel.compat)
            raise RenderError(f"{sel.subject}: Firejail cannot filter compat ABI calls ({abis}): its seccomp.32.keep "
                              f"is built with the native table and would block native calls; render another format "
                              f"or drop the compat ABI from the profile")
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
        text = render_template("line", "firejail.profile.j2", keep=keep, error_action=error_action,
                               **header_context(sel))
        out[f"{slug(sel.subject)}.profile"] = text
    return out
