"""OCI runtime-spec ``linux.seccomp`` object, also accepted by ``docker run --security-opt seccomp=FILE``.

    {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
     "syscalls": [{"names": [...], "action": "SCMP_ACT_ALLOW"}]}

Architectures are the native ABI plus compat ABIs the profile has calls for; a call from an ABI not
listed fails the filter's architecture check, so unprofiled compat ABIs are denied. The runtime resolves
the one name list on each listed architecture. JSON has no comments, so there is no header.
"""

from __future__ import annotations

from typing import Dict, List

from ._core import Options, RenderError, Selection, render_template, slug

_DEFAULT_ACTIONS = {"errno": "SCMP_ACT_ERRNO", "kill": "SCMP_ACT_KILL_PROCESS", "log": "SCMP_ACT_LOG"}


def render(selections: List[Selection], options: Options) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for sel in selections:
        architectures = []
        for abi_set in sel.abis:
            token = abi_set.abi.info.oci_arch
            if token is None:
                raise RenderError(f"the OCI runtime spec has no architecture token for ABI {abi_set.name}")
            architectures.append(token)
        action = options.action
        text = render_template(
            "json", "oci.json.j2",
            default_action=_DEFAULT_ACTIONS[action.kind],
            errno_ret=action.errno_number if action.kind == "errno" else None,
            architectures=architectures,
            names=sel.union(),
        )
        out[f"{slug(sel.subject)}.json"] = text
    return out
