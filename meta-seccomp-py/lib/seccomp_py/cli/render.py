"""seccomp-py render: turn a profile into systemd, LXC, OCI/Docker or Firejail filters."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UsageError
from ..fileio import atomic_write
from ..profile import Profile
from ..render import ACTIONS, FORMATS, render

HELP = "render a profile as a systemd drop-in, LXC policy, OCI/Docker JSON or Firejail profile"


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", metavar="PROFILE", help="profile JSON file")
    parser.add_argument("--format", "-f", required=True, choices=FORMATS, help="output format")
    parser.add_argument("--subject", "-s", action="append", metavar="S",
                        help="subject to render (repeatable; default: all)")
    parser.add_argument("--abi", "-a", help="the target's native ABI (default: inferred from the profile)")
    parser.add_argument("--action", choices=ACTIONS, default="errno",
                        help="what a call outside the allow-list gets (default: errno)")
    parser.add_argument("--errno", default="EPERM", help="errno name or number for --action errno (default: EPERM)")
    parser.add_argument("--systemd-version", type=int, metavar="N",
                        help="compress the systemd list with syscall groups of systemd N")
    parser.add_argument("--unit", help="systemd unit name, when the subject is not one")
    parser.add_argument("--dropin-name", default="50-seccomp.conf", help="systemd drop-in file name")
    parser.add_argument("-o", "--output", required=True,
                        help="output file (one output), folder (several, or a trailing /), or - for stdout")


def run(args: argparse.Namespace) -> int:
    profile = Profile.load(args.profile)
    files = render(
        profile, args.format,
        subjects=args.subject, abi=args.abi, action=args.action, errno=args.errno,
        systemd_version=args.systemd_version, profile_name=os.path.basename(args.profile),
        unit=args.unit, dropin_name=args.dropin_name,
    )
    if args.output == "-":
        if len(files) != 1:
            raise UsageError(f"{len(files)} outputs cannot go to stdout; give a folder with -o")
        sys.stdout.write(next(iter(files.values())))
        return 0
    as_folder = len(files) > 1 or args.output.endswith("/") or os.path.isdir(args.output)
    for rel, text in sorted(files.items()):
        if os.path.isabs(rel) or ".." in rel.split("/"):
            raise UsageError(f"refusing output path {rel!r}")
        target = os.path.join(args.output, rel) if as_folder else args.output
        atomic_write(target, text)
        print(f"{args.format}: {target}")
    return 0
