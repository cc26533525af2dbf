"""seccomp-py profile: boot an image (or reach a board), profile services in seccomp log mode, write filters."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import SeccompPyError, UsageError
from ..progress import Progress
from ._target_options import TargetSession, add_target_arguments

HELP = "profile services on a qemu image or an SSH board: log mode, workloads, convergence, filters, report"

EPILOG = """\
examples:
  seccomp-py profile --qemuboot deploy/core-image-qemux86-64.qemuboot.conf --unit nginx \\
      --forward 80 --host-workload 'curl -fsS http://127.0.0.1:$SECCOMP_TARGET_PORT_80/' --output out/
  seccomp-py profile --ssh root@board --unit redis-server --workload bench.sh --output out/

outputs: OUT/profile.json, OUT/report.md, OUT/report.json, OUT/filters/<format>/...
exit status: 0 complete; 1 failed or incomplete (loss without --allow-loss, no convergence, a unit or
workload failed: the partial profile is still written and marked incomplete); 2 usage.
"""


def setup_parser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add_target_arguments(parser)
    what = parser.add_argument_group("what to profile")
    what.add_argument("--unit", action="append", default=[], metavar="UNIT",
                      help="systemd unit to profile (repeatable; 'nginx' means nginx.service)")
    what.add_argument("--command", action="append", default=[], metavar="CMD", dest="commands",
                      help="shell command to profile as a transient unit (systemd-run; repeatable)")
    how = parser.add_argument_group("workloads and rounds")
    how.add_argument("--workload", action="append", default=[], metavar="SCRIPT",
                     help="local script copied to the target and run there with sh (repeatable)")
    how.add_argument("--target-workload", action="append", default=[], metavar="PATH",
                     help="script already on the target, run with sh (repeatable)")
    how.add_argument("--host-workload", action="append", default=[], metavar="CMD",
                     help="shell command run on the host with SECCOMP_TARGET_HOST, SECCOMP_TARGET_PORT and "
                          "SECCOMP_TARGET_PORT_<guest port> set (repeatable)")
    how.add_argument("--max-iterations", type=int, default=5, metavar="N",
                     help="full rounds at most before giving up on convergence (default: 5)")
    how.add_argument("--warmup-seconds", type=float, default=5.0, metavar="S",
                     help="first round: log everything but run each workload only this long, to learn the "
                          "frequent calls cheaply; 0 disables it (default: 5)")
    how.add_argument("--no-boot-arming", action="store_true",
                     help="with --qemuboot: do not add seccomp_py.log=<units> to the kernel command line (images "
                          "with packagegroup-seccomp-profiling then start the units in log mode at boot, which "
                          "saves the first round's daemon-reload and restart)")
    how.add_argument("--settle-seconds", type=float, default=0.0, metavar="S",
                     help="pause after (re)starting the units before their state is checked and the "
                          "workloads run (default: 0; systemctl restart already waits for start-up)")
    how.add_argument("--workload-timeout", type=float, default=900.0, metavar="S",
                     help="timeout per workload in a full round (default: 900)")
    how.add_argument("--catchup-timeout", type=float, default=300.0, metavar="S",
                     help="how long to wait for journald to deliver all records of a round (default: 300)")
    how.add_argument("--attribution", choices=("auto", "trace", "sampling"), default="auto",
                     help="how records are tied to units: kernel fork/cgroup trace events (exact), or sampling "
                          "cgroup.procs (auto: trace events when the target has tracefs)")
    how.add_argument("--allow-loss", action="store_true",
                     help="exit 0 even if audit records were lost (the profile is still marked incomplete)")
    how.add_argument("--no-restore", action="store_true",
                     help="leave the log-mode drop-ins in /run on an SSH board (they vanish at reboot anyway)")
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    out.add_argument("--action", choices=("errno", "kill"), default="errno",
                     help="action of the rendered filters for calls outside the profile (default: errno EPERM)")
    out.add_argument("--verify", action="store_true",
                     help="after profiling, verify the profile on the same boot (see 'seccomp-py verify')")
    out.add_argument("--verify-action", choices=("kill", "errno"), default="kill",
                     help="action while verifying (default: kill, so any miss is visible in the journal)")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def build_config(args: argparse.Namespace):
    from ..profiler import ProfileConfig, Workload

    workloads = [Workload("script", p) for p in args.workload]
    workloads += [Workload("remote", p) for p in args.target_workload]
    workloads += [Workload("host", c) for c in args.host_workload]
    return ProfileConfig(
        units=list(args.unit), commands=list(args.commands), workloads=workloads,
        max_iterations=args.max_iterations, warmup_seconds=args.warmup_seconds,
        settle_seconds=args.settle_seconds, workload_timeout=args.workload_timeout,
        catchup_timeout=args.catchup_timeout, allow_loss=args.allow_loss, restore=not args.no_restore,
        attribution=args.attribution,
    )


def run(args: argparse.Namespace) -> int:
    from .. import bootarm
    from ..profiler import Profiler, ProfilingError, failed_result, write_outputs

    config = build_config(args)
    config.units = [u if "." in u else u + ".service" for u in config.units]
    config.validate()
    output = args.output
    if os.path.exists(output) and not os.path.isdir(output):
        raise UsageError(f"--output {output}: exists and is not a folder")
    os.makedirs(output, exist_ok=True)
    records = os.path.join(output, RECORDS_FILE)
    partial = os.path.join(output, "." + RECORDS_FILE + ".partial")
    for stale in (records, partial):
        if os.path.exists(stale):
            os.unlink(stale)
    config.records_path = partial
    if args.qemuboot and not args.qemu_workdir:
        args.qemu_workdir = os.path.join(output, "qemu")
    progress = Progress(quiet=args.quiet)
    if args.qemuboot and not args.no_boot_arming and os.path.isfile(args.qemuboot):
        args.kernel_arg = [*args.kernel_arg, *bootarm.kernel_args_for_qemuboot(args.qemuboot, config.units)]
    session = TargetSession.from_args(args)
    if session.kind == "qemu":
        config.restore = False  # a -snapshot guest is thrown away; restoring would cost a restart per unit
    result = None
    verify_result = None
    try:
        with session.started(progress):
            profiler = Profiler(session.target, config, progress, target_info=session.info(),
                                forwarded=session.forwarded, host_address=session.host_address)
            result = profiler.run()
            if result.interrupted:
                raise KeyboardInterrupt
            write_outputs(result, output, action=args.action)
            if args.verify and result.error is None:
                verify_result = run_verify(args, config, session, result, progress)
                result.report["verify"] = verify_result.to_json()
                verify_result.write(output)
    except SeccompPyError as exc:
        if result is None:  # never got to profile: no boot, no SSH
            result = failed_result(str(exc), _safe_info(session), progress.ordered_timings())
        elif result.error is None:
            result.error = str(exc)
            result.report["status"], result.report["error"] = "failed", str(exc)
    except KeyboardInterrupt:
        if result is not None:
            _finish(result, output, records, partial, session, progress, args.action)
        progress.close()
        raise
    finally:
        progress.close()
    _finish(result, output, records, partial, session, progress, args.action)
    summarize(result, output, sys.stdout)
    if result.error:
        detail = result.error.strip().splitlines()[1:]
        if detail:  # e.g. the guest console's last lines after a boot failure
            print("\n".join("  " + line for line in detail[-25:]), file=sys.stderr)
        console = (result.report.get("target") or {}).get("console_log")
        where = f"; guest console: {console}" if console and os.path.exists(console) else ""
        raise ProfilingError(f"{first(result.error)} (partial profile, marked incomplete, in {output}{where})")
    if result.lost_records and not config.allow_loss:
        raise ProfilingError(f"{result.lost_records} audit record(s) were lost; the profile in {output} is marked "
                             f"incomplete (--allow-loss accepts that)")
    if not result.converged:
        raise ProfilingError(f"no convergence within {config.max_iterations} full round(s); the profile in "
                             f"{output} is marked incomplete")
    if verify_result is not None and not verify_result.passed:
        raise ProfilingError(f"verification failed: {verify_result.summary()} (details in {output}/verify.md)")
    return 0


RECORDS_FILE = "audit-records.json"


def run_verify(args, config, session, result, progress):
    from ..verifier import Verifier, VerifyConfig

    verify_config = VerifyConfig(units=list(config.units), commands=list(config.commands),
                                 workloads=list(config.workloads), action=args.verify_action,
                                 workload_timeout=args.workload_timeout, catchup_timeout=args.catchup_timeout,
                                 restore=config.restore)
    return Verifier(session.target, result.profile, verify_config, progress, forwarded=session.forwarded,
                    host_address=session.host_address).run()


def _safe_info(session) -> dict:
    try:
        return session.info()
    except Exception:  # the target never started: no ports yet
        return {"kind": session.kind, "description": session.description}


def _finish(result, output, records, partial, session, progress, action) -> None:
    """Timings with the boot, the raw records under their final name, then every output file."""
    from ..profiler import write_outputs

    timings = progress.ordered_timings()
    if session.boot_seconds is not None:
        timings = {"boot": round(session.boot_seconds, 2), **{k: v for k, v in timings.items() if k != "boot"}}
    result.report["timings"] = timings
    result.report["target"] = {**_safe_info(session), **(result.report.get("target") or {})}
    if os.path.exists(partial):
        os.replace(partial, records)
        result.report["records_file"] = RECORDS_FILE
    write_outputs(result, output, action=action)


def first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def summarize(result, output: str, stream) -> None:
    report = result.report
    units = report.get("units") or {}
    print(f"profile: {report.get('status')}, {len(report.get('iterations') or [])} round(s), "
          f"converged: {'yes' if result.converged else 'no'}", file=stream)
    for subject, info in sorted(units.items()):
        counts = ", ".join(f"{abi} {n}" for abi, n in sorted(info["syscalls"].items())) or "no syscalls"
        danger = [d["name"] for d in info.get("dangerous") or []]
        print(f"  {subject}: {counts} ({info['records']} records)"
              + (f"; dangerous: {', '.join(danger)}" if danger else ""), file=stream)
    loss = report.get("loss") or {}
    print(f"records: {report.get('records', {}).get('total_collected', 0)} collected; lost: "
          f"{result.lost_records} (serial gaps {loss.get('serial_gaps', 0)}, backlog drops "
          f"{loss.get('backlog_drops', 0)})", file=stream)
    timings = report.get("timings") or {}
    if timings:
        print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()), file=stream)
    if report.get("verify"):
        verify = report["verify"]
        print(f"verify: {'pass' if verify.get('passed') else 'FAIL'}", file=stream)
    print(f"output: {output}/profile.json, report.md, report.json, filters/", file=stream)
