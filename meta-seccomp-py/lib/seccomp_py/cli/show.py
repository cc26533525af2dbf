"""seccomp-py show: a profile as a human-readable table."""

from __future__ import annotations

import argparse

from ..profile import Profile

HELP = "print a profile as a table: subject, ABI, syscall, count, first seen, sources"


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", help="profile JSON file")
    parser.add_argument("--subject", action="append", help="only this subject (repeatable)")
    parser.add_argument("--names-only", action="store_true", help="print only 'subject abi: names' lines")


def run(args: argparse.Namespace) -> int:
    profile = Profile.load(args.profile)
    subjects = [s for s in profile.subjects() if not args.subject or s in args.subject]
    if profile.incomplete:
        print("NOTE: this profile is marked INCOMPLETE (records were lost while it was collected)")
    for note in profile.notes:
        print(f"note: {note}")
    if args.names_only:
        for subject in subjects:
            for abi in profile.abis(subject):
                print(f"{subject} {abi}: {' '.join(profile.syscalls(subject, abi))}")
        return 0
    rows = [("SUBJECT", "ABI", "SYSCALL", "COUNT", "FIRST SEEN", "SOURCES")]
    for subject in subjects:
        for abi in profile.abis(subject):
            for name in profile.syscalls(subject, abi):
                prov = profile.provenance(subject, abi, name)
                assert prov is not None
                rows.append((subject, abi, name, str(prov.count), prov.first_seen or "-",
                             ",".join(sorted(prov.sources)) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    total = sum(len(profile.abis(s)) for s in subjects)
    print(f"\n{len(subjects)} subjects, {total} subject/ABI pairs, {len(rows) - 1} syscalls")
    return 0
