"""seccomp-py collect: build a profile from audit logs or strace output."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from ..errors import InputError
from ..profile import Profile

HELP = "build a profile from journal/kmsg/audit.log/syslog SECCOMP records or strace output"

AUDIT_FORMATS = ("journal-json", "kmsg", "audit-log", "syslog")
STRACE_FORMATS = ("strace", "strace-summary")
FORMATS = ("auto", *AUDIT_FORMATS, *STRACE_FORMATS)


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Several inputs of the same boot in any formats (journal JSON with both transports, "
                     "dmesg/kmsg, syslog, audit.log) count each SECCOMP record once: a record is its boot plus "
                     "its audit serial. Inputs without a boot id (dmesg, syslog, audit.log) are placed in a boot "
                     "by their audit(SEC.MS:SERIAL) stamps; the count goes to the input read first.")
    parser.add_argument("-i", "--input", action="append", required=True, metavar="FILE",
                        help="input file (repeatable; '-' reads standard input)")
    parser.add_argument("-f", "--format", choices=FORMATS, default="auto",
                        help="input format (default: detected per file)")
    parser.add_argument("--by", choices=("exe", "comm"), default="exe",
                        help="what names a subject: the executable path or the process name (default: exe)")
    parser.add_argument("--subject", help="put everything under this subject (e.g. a unit name)")
    parser.add_argument("-a", "--abi", help="native ABI of strace input (default: this host's)")
    parser.add_argument("-o", "--output", required=True, help="profile JSON to write")
    parser.add_argument("--merge-into", action="store_true",
                        help="merge with the existing output profile instead of replacing it")


def _detect(path: str) -> Optional[str]:
    from .. import audit, strace

    return audit.detect_format(path) or strace.detect_format(path)


def run(args: argparse.Namespace) -> int:
    from .. import audit, strace

    inputs: List[str] = ["/dev/stdin" if path == "-" else path for path in args.input]
    formats = {}
    for path in inputs:
        if args.format != "auto":
            fmt: Optional[str] = args.format
        elif not os.path.isfile(path):
            # a pipe cannot be read twice: only audit data is detected from its first bytes
            fmt = "audit-auto"
        else:
            fmt = _detect(path)
        if fmt is None:
            raise InputError("cannot tell the format: no SECCOMP audit records or strace lines found "
                             "(pass --format to force one)", path)
        formats[path] = fmt

    audit_collector = audit.AuditCollector(by=args.by)
    strace_collector = strace.StraceCollector(abi=args.abi, by=args.by, subject=args.subject)
    strace_paths = [p for p in inputs if formats[p] in STRACE_FORMATS]
    for path in inputs:
        if formats[path] == "audit-auto":
            formats[path] = audit_collector.feed_file(path, "auto")
        elif formats[path] in AUDIT_FORMATS:
            audit_collector.feed_file(path, formats[path])
    if strace_paths:
        strace_collector.feed_files(strace_paths)

    profile = Profile.load(args.output) if args.merge_into else Profile()
    new_names = 0
    for obs in list(audit_collector.observations()) + list(strace_collector.observations()):
        if args.subject:
            obs.subject = args.subject
        if profile.add_observation(obs):
            new_names += 1

    stats = audit_collector.stats
    for warning in list(stats.warnings) + list(strace_collector.stats.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    if stats.possible_loss:
        profile.incomplete = True
        note = (f"possible loss while collecting: {stats.lost} lost, {stats.suppressed} suppressed, "
                f"{stats.serial_gaps} serial gaps")
        if note not in profile.notes:
            profile.notes.append(note)
    profile.save(args.output)

    print(f"inputs: {len(inputs)} ({', '.join(sorted(set(formats.values())))})")
    print("audit: " + stats.summary()
          + ("  -> POSSIBLE LOSS, profile marked incomplete" if stats.possible_loss else ""))
    if strace_paths:
        print(f"strace syscalls read: {strace_collector.stats.syscalls}")
    print(f"subjects: {len(profile.subjects())}, syscalls: {profile.count_syscalls()} "
          f"({new_names} new) -> {args.output}")
    return 0
