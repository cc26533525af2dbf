"""The profiling report: report.json (machine-readable) and report.md (for people).

The profiler builds the JSON document; this module only checks its shape lightly and renders Markdown.
Sections: status, target, per-unit counts, syscalls added per iteration (convergence), dangerous calls,
loss counters, attribution, time per phase, filters written, verification.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from .fileio import atomic_write

SCHEMA = "seccomp-py/report/v1"


def dumps(report: Dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _table(header: List[str], rows: List[List[Any]]) -> List[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for row in rows:
        out.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return out


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _heading(title: str) -> List[str]:
    return ["", f"## {title}", ""]


def _names(names: List[str], limit: int = 40) -> str:
    if not names:
        return "-"
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" … (+{len(names) - limit})" if len(names) > limit else "")


def render_markdown(report: Dict[str, Any]) -> str:
    lines: List[str] = []
    status = report.get("status", "unknown")
    lines.append(f"# seccomp-py {report.get('command', 'profile')} report")
    lines.append("")
    lines.append(f"**Status: {status}**" + (f" — {report['error']}" if report.get("error") else ""))
    reasons = report.get("incomplete_reasons") or []
    if reasons:
        lines.append("")
        lines.append("The profile is marked **incomplete**:")
        for reason in reasons:
            lines.append(f"- {reason}")
    target = report.get("target") or {}
    if target:
        lines += _heading("Target")
        rows = [[k, target[k]] for k in sorted(target)]
        lines += _table(["", "value"], rows)

    units = report.get("units") or {}
    if units:
        lines += _heading("Units")
        rows = []
        for unit in sorted(units):
            info = units[unit]
            counts = ", ".join(f"{abi}: {n}" for abi, n in sorted((info.get("syscalls") or {}).items())) or "0"
            how = ", ".join(f"{k} {v}" for k, v in sorted((info.get("attribution") or {}).items())) or "-"
            rows.append([f"`{unit}`", counts, info.get("records", 0), how,
                         ", ".join(info.get("exes") or []) or "-"])
        lines += _table(["unit", "syscalls", "records", "attributed by", "executables"], rows)

    iterations = report.get("iterations") or []
    if iterations:
        lines += _heading("Convergence (syscalls added per iteration)")
        rows = []
        for it in iterations:
            added = it.get("added") or {}
            total = sum(len(v) for v in added.values())
            detail = "; ".join(f"{u}: {_names(v, 12)}" for u, v in sorted(added.items()) if v) or "nothing new"
            secs = it.get("seconds") or {}
            kind = it.get("kind", "") + (" (armed at boot)" if it.get("armed") == "boot" else "")
            rows.append([it.get("round"), kind, total, it.get("records", 0),
                         " / ".join(f"{secs.get(k, 0):.1f}" for k in ("arm", "workload", "collect")), detail])
        lines += _table(["round", "kind", "new", "records", "arm / workload / collect s", "added"], rows)
        converged = report.get("converged")
        lines.append("")
        lines.append("Converged: " + ("yes (the last full round added nothing)" if converged else "**no**"))

    dangerous = {u: v.get("dangerous") for u, v in units.items() if v.get("dangerous")}
    lines += _heading("Dangerous syscalls seen")
    if dangerous:
        rows = [[f"`{u}`", f"`{d['name']}`", d.get("reason", "")] for u in sorted(dangerous)
                for d in dangerous[u]]
        lines += _table(["unit", "syscall", "why it matters"], rows)
    else:
        lines.append("None.")

    loss = report.get("loss") or {}
    if loss:
        lines += _heading("Loss accounting")
        rows = [[k, loss[k]] for k in sorted(loss) if k != "messages"]
        lines += _table(["counter", "value"], rows)
        for message in loss.get("messages") or []:
            lines.append(f"- `{message}`")

    records = report.get("records") or {}
    if records:
        lines += _heading("Records")
        rows = [[k, json.dumps(records[k]) if isinstance(records[k], (dict, list)) else records[k]]
                for k in sorted(records)]
        lines += _table(["", "count"], rows)
        unattributed = report.get("ambiguous_records") or []
        if unattributed:
            lines.append("")
            lines.append("Records that could not be tied to one unit (given to every candidate unit):")
            lines.append("")
            lines += _table(["pid", "exe", "comm", "syscall", "given to"],
                            [[r.get("pid"), r.get("exe"), r.get("comm"), r.get("syscall"),
                              ", ".join(r.get("units") or [])] for r in unattributed[:50]])

    timings = report.get("timings") or {}
    if timings:
        lines += _heading("Time per phase")
        lines += _table(["phase", "seconds"], [[k, f"{v:.1f}"] for k, v in timings.items()])

    workloads = report.get("workloads") or []
    if workloads:
        lines += _heading("Workload runs")
        lines += _table(["round", "workload", "status", "seconds"],
                        [[w.get("round"), w.get("label"), w.get("status"), f"{w.get('seconds', 0):.1f}"]
                         for w in workloads])

    filters = report.get("filters") or {}
    if filters:
        lines += _heading("Filters written")
        for fmt in sorted(filters):
            value = filters[fmt]
            if isinstance(value, dict) and value.get("error"):
                lines.append(f"- {fmt}: not written: {value['error']}")
            else:
                lines.append(f"- {fmt}: " + ", ".join(f"`{p}`" for p in value))

    verify = report.get("verify")
    if verify:
        lines += _heading("Verification")
        lines.append(f"Result: **{'pass' if verify.get('passed') else 'FAIL'}**")
        for check in verify.get("checks") or []:
            mark = "ok" if check.get("ok") else "FAIL"
            lines.append(f"- [{mark}] {check.get('name')}: {check.get('detail', '')}")
    notes = report.get("notes") or []
    if notes:
        lines += _heading("Notes")
        for note in notes:
            lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def write(report: Dict[str, Any], json_path: str, md_path: str) -> None:
    report.setdefault("schema", SCHEMA)
    atomic_write(json_path, dumps(report))
    atomic_write(md_path, render_markdown(report))
