"""seccomp-py translate: map a profile from one ABI to another with the explicit equivalence table."""

from __future__ import annotations

import argparse
import sys

from ..profile import Profile
from ..translate import translate_profile

HELP = "translate a profile between ABIs (open->openat, stat->newfstatat, ...); reports what has no equivalent"


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", metavar="PROFILE", help="profile JSON file")
    parser.add_argument("--from", dest="from_abi", required=True, metavar="ABI", help="ABI the profile was made on")
    parser.add_argument("--to", dest="to_abi", required=True, metavar="ABI", help="target ABI")
    parser.add_argument("--subject", "-s", action="append", metavar="S", help="subject to translate (default: all)")
    parser.add_argument("--allow-unmapped", action="store_true",
                        help="write the result even when some calls have no equivalent (they are listed in "
                             "the profile's notes)")
    parser.add_argument("-o", "--output", required=True, help="where to write the translated profile")


def run(args: argparse.Namespace) -> int:
    result = translate_profile(Profile.load(args.profile), args.from_abi, args.to_abi, args.subject)
    for subject in sorted(result.kept):
        mapped = result.mapped[subject]
        print(f"{subject}: {len(result.kept[subject])} kept, {len(mapped)} mapped, "
              f"{len(result.unmapped[subject])} without equivalent")
        for old, new in sorted(mapped.items()):
            print(f"  {old} -> {new}")
        for name in result.unmapped[subject]:
            print(f"  {name}: no equivalent on {result.to_abi}", file=sys.stderr)
    if result.has_unmapped and not args.allow_unmapped:
        print(f"translate: some calls have no equivalent on {result.to_abi}; nothing written "
              f"(use --allow-unmapped to write the rest)", file=sys.stderr)
        return 1
    result.profile.save(args.output)
    print(f"translate: {result.from_abi} -> {result.to_abi}: {args.output}")
    return 0
