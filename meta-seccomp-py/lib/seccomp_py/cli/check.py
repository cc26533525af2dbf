"""seccomp-py check: build-time validation of a profile for a target ABI."""

from __future__ import annotations

import argparse
import json

from ..profile import Profile
from ..validate import ERROR, WARNING, check_profile, count

HELP = "check a profile for a target ABI: unknown or absent names, dangerous calls"


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", metavar="PROFILE", help="profile JSON file")
    parser.add_argument("--abi", "-a", required=True, help="the target's native ABI")
    parser.add_argument("--subject", "-s", action="append", metavar="S", help="subject to check (default: all)")
    parser.add_argument("--allow-dangerous", action="append", default=[], metavar="NAMES",
                        help="comma-separated dangerous calls that are allowed on purpose (repeatable)")
    parser.add_argument("--strict", action="store_true", help="warnings fail the check too")
    parser.add_argument("--json", action="store_true", help="print findings as JSON")


def run(args: argparse.Namespace) -> int:
    profile = Profile.load(args.profile)
    allowed = [n.strip() for item in args.allow_dangerous for n in item.split(",") if n.strip()]
    findings = check_profile(profile, args.abi, allow_dangerous=allowed, subjects=args.subject)
    totals = count(findings)
    if args.json:
        print(json.dumps({"findings": [f.to_json() for f in findings], "counts": totals}, indent=2))
    else:
        for finding in findings:
            print(finding)
        print(f"check: {totals['error']} errors, {totals['warning']} warnings, {totals['info']} info")
    failed = totals[ERROR] > 0 or (args.strict and totals[WARNING] > 0)
    return 1 if failed else 0
