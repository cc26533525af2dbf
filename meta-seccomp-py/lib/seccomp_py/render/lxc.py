"""LXC seccomp policy v2: ``2``, ``allowlist <default action>``, then one ``[section]`` per ABI.

Section names are LXC's, not ours (``[arm64]``, never ``[aarch64]``). liblxc skips sections for other
host architectures, so one file can carry several native ABIs. It has no log action. Every rule it
accepts is added to the native context and to each compat context (x86 and x32 on x86_64, arm on
arm64), by name; a compat ABI therefore gets the listed names it has, and the default action for the
rest. No blank lines: liblxc would parse one as an empty rule.
"""

from __future__ import annotations

from typing import Dict, List

from ._core import Options, RenderError, Selection, header_context, render_template, slug


def _section(abi_set) -> str:
    header = abi_set.abi.info.lxc_section
    if header is None:
        raise RenderError(f"LXC has no seccomp section for ABI {abi_set.name}")
    return header


def render(selections: List[Selection], options: Options) -> Dict[str, str]:
    action = options.action
    if action.kind == "log":
        raise RenderError("LXC seccomp policies have no log action; profile the container through its "
                          "systemd unit (the filter is inherited) or render the systemd log drop-in")
    default_action = "kill" if action.kind == "kill" else f"errno {action.errno_number}"
    first = selections[0]
    sections = []
    for sel in selections:
        for abi_set in sel.abis:
            if abi_set.names:
                sections.append({"header": _section(abi_set), "names": abi_set.names})
    combined = Selection(first.subject, first.native, [a for s in selections for a in s.abis], first.profile_name)
    context = header_context(combined)
    context["abi_line"] = "; ".join(header_context(s)["abi_line"] for s in selections)
    text = render_template("line", "lxc.seccomp.j2", default_action=default_action, sections=sections, **context)
    return {f"{slug(first.subject)}.seccomp": text}
