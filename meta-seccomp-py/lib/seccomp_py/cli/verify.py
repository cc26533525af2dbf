"""seccomp-py verify: enforce a profile on a qemu image or an SSH board and prove it holds."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import SeccompPyError, UsageError
from ..progress import Progress
from ._target_options import TargetSession, add_target_arguments

HELP = "enforce a profile (systemd drop-ins), restart, re-run workloads: pass only with zero denials"

EPILOG = """\
checks: units start and stay active, workloads succeed, units stop cleanly, zero SECCOMP denials/kills
in the journal; then a negative control (one used syscall removed must be denied).
exit status: 0 pass; 1 fail (details in OUT/verify.md); 2 usage.
"""


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add_target_arguments(parser)
    parser.add_argument("--profile", required=True, metavar="FILE", help="profile.json to enforce")
    parser.add_argument("--unit", action="append", default=[], metavar="UNIT",
                        help="unit to verify (repeatable; default: every unit subject of the profile)")
    parser.add_argument("--command", action="append", default=[], metavar="CMD", dest="commands",
                        help="command profiled with 'profile --command', run again as a transient unit")
    parser.add_argument("--workload", action="append", default=[], metavar="SCRIPT",
                        help="local script copied to the target and run with sh (repeatable)")
    parser.add_argument("--target-workload", action="append", default=[], metavar="PATH",
                        help="script already on the target, run with sh (repeatable)")
    parser.add_argument("--host-workload", action="append", default=[], metavar="CMD",
                        help="shell command run on the host (same environment as in 'profile')")
    parser.add_argument("--action", choices=("kill", "errno"), default="kill",
                        help="filter action while verifying (default: kill; errno denials are not audited)")
    parser.add_argument("--errno", default="EPERM", help="errno for --action errno (default: EPERM)")
    parser.add_argument("--no-negative-control", action="store_true", help="skip the negative control")
    parser.add_argument("--workload-timeout", type=float, default=900.0, metavar="S")
    parser.add_argument("--catchup-timeout", type=float, default=300.0, metavar="S")
    parser.add_argument("--keep-enforced", action="store_true",
                        help="leave the enforcing drop-ins in /run on an SSH board")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="where verify.md and verify.json go (default: the profile's folder)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from ..profile import Profile
    from ..profiler import Workload
    from ..unitname import EXEC_UNIT_TYPES, unit_name_problem
    from ..verifier import Verifier, VerifyConfig

    profile = Profile.load(args.profile)
    units = [u if "." in u else u + ".service" for u in args.unit]
    if not units and not args.commands:
        units = [s for s in profile.subjects() if unit_name_problem(s, EXEC_UNIT_TYPES) is None]
        if not units:
            raise UsageError(f"{args.profile}: no subject is a systemd unit; pass --command for command subjects")
    if profile.incomplete:
        print(f"warning: {args.profile} is marked incomplete; verifying it anyway", file=sys.stderr)
    workloads = [Workload("script", p) for p in args.workload]
    workloads += [Workload("remote", p) for p in args.target_workload]
    workloads += [Workload("host", c) for c in args.host_workload]
    for workload in workloads:
        if workload.kind == "script" and not os.path.isfile(workload.spec):
            raise UsageError(f"--workload {workload.spec}: no such file")
    config = VerifyConfig(units=units, commands=list(args.commands), workloads=workloads, action=args.action,
                          errno=args.errno, negative_control=not args.no_negative_control,
                          workload_timeout=args.workload_timeout, catchup_timeout=args.catchup_timeout,
                          restore=not args.keep_enforced)
    output = args.output or os.path.dirname(os.path.abspath(args.profile))
    if args.qemuboot and not args.qemu_workdir:
        args.qemu_workdir = os.path.join(output, "qemu-verify")
    progress = Progress(quiet=args.quiet)
    session = TargetSession.from_args(args)
    try:
        with session.started(progress):
            verifier = Verifier(session.target, profile, config, progress, forwarded=session.forwarded,
                                host_address=session.host_address)
            result = verifier.run()
    finally:
        progress.close()
    result.write(output)
    for check in result.checks:
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    print(f"verify: {'pass' if result.passed else 'FAIL'} ({output}/verify.md)")
    if not result.passed:
        raise SeccompPyError(f"verification failed: {result.summary()}")
    return 0
