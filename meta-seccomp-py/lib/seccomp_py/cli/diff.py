"""seccomp-py diff: what changed between two profiles."""

from __future__ import annotations

import argparse
import json

from ..profile import Profile

HELP = "show syscalls added and removed per subject and ABI between two profiles"


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", help="the older profile")
    parser.add_argument("new", help="the newer profile")
    parser.add_argument("--json", action="store_true", help="print the diff as JSON")
    parser.add_argument("--exit-code", action="store_true", help="exit 3 when the profiles differ (like git diff)")


def run(args: argparse.Namespace) -> int:
    result = Profile.load(args.old).diff(Profile.load(args.new))
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    elif result.empty:
        print("no differences")
    else:
        for sign, side in (("+", result.added), ("-", result.removed)):
            for subject in sorted(side):
                for abi in sorted(side[subject]):
                    for name in side[subject][abi]:
                        print(f"{sign} {subject} {abi} {name}")
    return 3 if args.exit_code and not result.empty else 0
