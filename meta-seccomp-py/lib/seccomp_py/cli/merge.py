"""seccomp-py merge: the union of several profiles."""

from __future__ import annotations

import argparse

from ..profile import Profile, merge_all

HELP = "merge profiles into one (a union that never drops a syscall)"


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profiles", nargs="+", metavar="PROFILE", help="profile JSON files to merge")
    parser.add_argument("-o", "--output", required=True, help="where to write the merged profile")


def run(args: argparse.Namespace) -> int:
    merged = merge_all(Profile.load(path) for path in args.profiles)
    merged.save(args.output)
    print(f"merged {len(args.profiles)} profiles: {len(merged.subjects())} subjects, "
          f"{merged.count_syscalls()} syscalls -> {args.output}")
    return 0
