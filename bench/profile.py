#!/usr/bin/env python3
"""Benchmark the profiler on the demo (nginx + redis-server, x86_64 TCG unless --arch).

  0. the baseline the goal names: boot the image (nothing armed) and run the workloads once; then a
     second, warm pass for comparison
  1. one boot, as `seccomp-py profile --qemuboot` does it (seccomp_py.log=<units> on the kernel command
     line, so the guest's generator starts the units in log mode: round 1 needs no re-arm), and the
     profiler as the demo runs it (warm-up + full rounds to convergence)
  2. on that boot, a log-everything run: one full round, nothing silenced -> the record volume to beat
  3. on that boot, the units restarted plain (no drop-in): one more plain pass, in the same minutes as
     the profile; "a single pass" is the mean of the two plain first passes (0. and 3.), because the
     host's speed drifts by 10-30 % between minutes even without steal time
Prints the wall time of each phase, the number of boots and iterations, the total against
1.5 x (boot + one pass), and the records collected against the log-everything run, with recall
(the names of the log-everything run that the profile also has).

    python3 bench/profile.py [--arch x86_64] [--warmup-seconds 20] [--runs N] [--json out.json]

This host is a VM: time stolen by its neighbours slows the TCG guest by up to 50 % for minutes at a
time, so every run prints the host's steal time next to each phase, and --runs N boots N times and
prints the median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "meta-seccomp-py" / "lib"))
sys.path.insert(0, str(ROOT / "tests" / "qemu"))

import guest as guests  # noqa: E402

from seccomp_py import bootarm  # noqa: E402
from seccomp_py.profiler import (  # noqa: E402
    ProfileConfig,
    Profiler,
    Remote,
    Workload,
    WorkloadRunner,
    host_workload_env,
)
from seccomp_py.progress import Progress  # noqa: E402
from seccomp_py.target.qemu import PROFILING_KERNEL_ARGS  # noqa: E402

WORKLOADS = ROOT / "tests" / "qemu" / "workloads"
UNITS = ["nginx.service", "redis-server.service"]


def workloads():
    return [Workload("script", str(WORKLOADS / "nginx-curl.sh")),
            Workload("script", str(WORKLOADS / "redis.sh")),
            Workload("host", f"{sys.executable} {WORKLOADS / 'http-host.py'}")]


STEAL_LIMIT = 2.0


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests (all host CPUs), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def names(profile, unit):
    return {n for abi in profile.abis(unit) for n in profile.syscalls(unit, abi)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="x86_64", choices=sorted(guests.ARCHES))
    parser.add_argument("--warmup-seconds", type=float, default=20.0)
    parser.add_argument("--prefetch-interval", type=float, default=None,
                        help="read the journal every N seconds while workloads run (default: the profiler's)")
    parser.add_argument("--runs", type=int, default=1, help="boot and measure this many times (default 1)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()

    built = guests.find_guest(args.arch) or guests.build(args.arch, log=lambda s: print(s, file=sys.stderr))
    runs = []
    for number in range(args.runs):
        numbers = measure(args, built)
        if numbers is None:
            return 1
        runs.append(numbers)
        if args.runs > 1:
            print(f"  (run {number + 1} of {args.runs})")
    if args.runs > 1:
        # A run in which other VMs took more than STEAL_LIMIT CPU-seconds from one side only is skewed
        # (by 10-30 % here); the median leaves such runs out when it can.
        quiet = [r for r in runs if max(r["host_steal_seconds"].values()) <= STEAL_LIMIT]
        which = (f"the {len(quiet)} with at most {STEAL_LIMIT:g} s of steal time" if quiet else
                 f"all {len(runs)} (none had at most {STEAL_LIMIT:g} s of steal time: unreliable)")
        ratios = sorted(r["total_over_boot_plus_pass"] for r in quiet or runs)
        median = ratios[len(ratios) // 2] if len(ratios) % 2 else (ratios[len(ratios) // 2 - 1] +
                                                                    ratios[len(ratios) // 2]) / 2
        listed = ", ".join(f"{r['total_over_boot_plus_pass']:.2f}" for r in runs)
        print(f"\n{args.runs} runs: total / (boot + pass) = {listed}; median of {which}: {median:.2f} x  "
              f"{'OK' if median <= 1.5 else 'OVER'} (goal <= 1.5)")
    if args.json:
        Path(args.json).write_text(json.dumps(runs[0] if args.runs == 1 else runs, indent=2) + "\n")
    return 0


def measure(args, built):
    load_before = os.getloadavg()[0]
    progress = Progress()
    steal = {"start": steal_seconds()}

    # 0. The baseline the goal names: boot the image and run the workloads once (the same kernel
    # arguments, nothing armed). A second pass shows what a warm guest does.
    with built.target(forward_ports=[80], boot_timeout=900, kernel_args=list(PROFILING_KERNEL_ARGS)) as plain:
        plain_boot = plain.boot_seconds
        address = ("127.0.0.1", plain.ssh_port)
        remote = Remote(plain, "bench-" + uuid.uuid4().hex[:6])
        plain.run(["mkdir", "-p", remote.workdir], check=True)
        runner = WorkloadRunner(remote, workloads(), progress, host_workload_env({}, address, plain.forwarded))
        runner.upload()

        def plain_pass() -> float:
            started = time.monotonic()
            runner.run_all("plain pass", budget=None, timeout=1800)
            return time.monotonic() - started

        passes = [plain_pass(), plain_pass()]
    steal["baseline"] = steal_seconds()

    kernel_args = [*PROFILING_KERNEL_ARGS, *bootarm.kernel_args_for_qemuboot(str(built.qemuboot), UNITS)]
    target = built.target(forward_ports=[80], boot_timeout=900, kernel_args=kernel_args)
    boots = 0
    with target:
        boots += 1
        boot = target.boot_seconds
        address = ("127.0.0.1", target.ssh_port)

        # 1. the profiler, as the demo runs it (straight after boot, like `seccomp-py profile --qemuboot`)
        progress_run = Progress()
        started = time.monotonic()
        # restore=False: the demo leaves a throwaway qemu guest as it is (the log-everything run re-arms)
        result = Profiler(target, ProfileConfig(units=list(UNITS), workloads=workloads(), restore=False,
                                                warmup_seconds=args.warmup_seconds,
                                                **({} if args.prefetch_interval is None else
                                                   {"prefetch_interval": args.prefetch_interval})),
                          progress_run, forwarded=target.forwarded, host_address=address).run()
        profile_seconds = time.monotonic() - started
        steal["profiled"] = steal_seconds()
        if result.error:
            print(f"profile run failed: {result.error}", file=sys.stderr)
            return None

        # 2. log everything, once (restarts the units with nothing silenced)
        started = time.monotonic()
        everything = Profiler(target, ProfileConfig(units=list(UNITS), workloads=workloads(), restore=True,
                                                    warmup_seconds=0, max_iterations=1),
                              Progress(quiet=True), forwarded=target.forwarded, host_address=address).run()
        log_all_seconds = time.monotonic() - started
        if everything.error:
            print(f"log-everything run failed: {everything.error}", file=sys.stderr)
            return None

        # 3. plain again (the log-everything run removed its drop-ins; the generator is disarmed), restarted
        # like the profile's full round: a first pass in the profile's minutes
        target.run(["systemctl", "restart", "--", *UNITS], timeout=300, check=True)
        remote_after = Remote(target, "bench-" + uuid.uuid4().hex[:6])
        target.run(["mkdir", "-p", remote_after.workdir], check=True)
        runner_after = WorkloadRunner(remote_after, workloads(), progress,
                                      host_workload_env({}, address, target.forwarded))
        runner_after.upload()
        started = time.monotonic()
        steal["before_pass_after"] = steal_seconds()
        runner_after.run_all("plain pass after", budget=None, timeout=1800)
        pass_after = time.monotonic() - started
        steal["pass_after"] = steal_seconds()

    load_after = os.getloadavg()[0]
    report = result.report
    rounds = report["iterations"]
    records = report["records"]["total_collected"]
    records_all = everything.report["records"]["total_collected"]
    total = boot + profile_seconds
    single_pass = (passes[0] + pass_after) / 2
    # Boot times of one image vary by several seconds from boot to boot on this host, and both sides of
    # the goal contain one: compare with the mean of the two boots on both sides.
    mean_boot = (boot + plain_boot) / 2
    budget = 1.5 * (mean_boot + single_pass)
    warm = min(passes)
    # The profile's last round is a pass of the workloads too, minutes after the baseline's: the host's
    # speed drifts by 10-30 % between them even without steal time, so this one shows the overhead in the
    # same minutes (informational; the goal line above uses the baseline's pass).
    own_pass = rounds[-1].get("seconds", {}).get("workload", 0.0)
    recall = {}
    for unit in UNITS:
        want = names(everything.profile, unit)
        got = names(result.profile, unit)
        recall[unit] = {"log_everything": len(want), "profile": len(got), "missing": sorted(want - got),
                        "recall": round(len(want & got) / len(want), 4) if want else 1.0}
    numbers = {
        "arch": args.arch,
        "boots": boots,
        "iterations": len(rounds),
        "round_kinds": [r["kind"] for r in rounds],
        "phases_seconds": {"boot": round(boot, 1), **report["timings"]},
        "baseline_boot_seconds": round(plain_boot, 1),
        "single_pass_seconds": round(single_pass, 1),
        "plain_passes_seconds": [round(p, 1) for p in passes],
        "plain_pass_after_profile_seconds": round(pass_after, 1),
        "profile_seconds": round(profile_seconds, 1),
        "total_seconds": round(total, 1),
        "budget_seconds": round(budget, 1),
        "total_over_boot_plus_pass": round((mean_boot + profile_seconds) / (mean_boot + single_pass), 2),
        "total_over_baseline_as_measured": round(total / (plain_boot + single_pass), 2),
        "total_over_boot_plus_warm_pass": round(total / (boot + warm), 2),
        "own_full_pass_seconds": round(own_pass, 1),
        "overhead_seconds": round(profile_seconds - own_pass, 1),
        "total_over_boot_plus_own_pass": round((mean_boot + profile_seconds) / (mean_boot + own_pass), 2)
        if own_pass else None,
        "records": records,
        "records_per_round": [r["records"] for r in rounds],
        "round_seconds": [{k: round(v, 1) for k, v in r.get("seconds", {}).items()} for r in rounds],
        "records_log_everything": records_all,
        "records_ratio": round(records / records_all, 3) if records_all else None,
        "log_everything_seconds": round(log_all_seconds, 1),
        "recall": recall,
        "converged": result.converged,
        "host_load_average": [round(load_before, 2), round(load_after, 2)],
        "host_steal_seconds": {"baseline": round(steal["baseline"] - steal["start"], 1),
                               "boot_and_profile": round(steal["profiled"] - steal["baseline"], 1),
                               "plain_pass_after": round(steal["pass_after"] - steal["before_pass_after"], 1)},
        "loss": {k: report["loss"][k] for k in ("serial_gaps", "lost", "possible_loss")},
        "loss_log_everything": {k: everything.report["loss"][k] for k in
                                ("serial_gaps", "lost", "loss_events", "hold_queue_overflows",
                                 "kernel_audit_lost_counter", "possible_loss")},
    }
    print()
    print(f"seccomp-py profile benchmark ({args.arch}, TCG, {os.cpu_count()} host CPUs, host load average "
          f"{load_before:.1f} at start, {load_after:.1f} at end: other work on the host slows every phase)")
    print(f"  boots: {boots}   iterations: {len(rounds)} ({', '.join(numbers['round_kinds'])})   "
          f"converged: {result.converged}")
    print(f"  host steal time (CPU seconds taken by other VMs): baseline boot + passes "
          f"{numbers['host_steal_seconds']['baseline']:.1f}, boot + profile "
          f"{numbers['host_steal_seconds']['boot_and_profile']:.1f}, plain pass after the profile "
          f"{numbers['host_steal_seconds']['plain_pass_after']:.1f}")
    print("  phase seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in numbers["phases_seconds"].items()))
    print("  per round: " + "; ".join(
        f"{kind} " + ", ".join(f"{k} {v:.1f}" for k, v in secs.items())
        for kind, secs in zip(numbers["round_kinds"], numbers["round_seconds"])))
    print(f"  baseline (a boot with nothing armed): boot {plain_boot:.1f} s, first pass of the workloads "
          f"{passes[0]:.1f} s, a second pass {passes[1]:.1f} s; a first pass after the profile (units restarted "
          f"plain) {pass_after:.1f} s -> a single pass: {single_pass:.1f} s (the mean of the two first passes)")
    ratio = numbers["total_over_boot_plus_pass"]
    print(f"  total (boot + profile): {total:.1f} s; goal: (boot + profile) <= 1.5 x (boot + a single pass), "
          f"with the mean boot {mean_boot:.1f} s on both sides -> {ratio:.2f} x  {'OK' if ratio <= 1.5 else 'OVER'}")
    print(f"    as measured, each with its own boot: {numbers['total_over_baseline_as_measured']:.2f} x; against "
          f"this boot + the warm second pass (stricter): {numbers['total_over_boot_plus_warm_pass']:.2f} x")
    if own_pass:
        print(f"    overhead (profile - its own full pass of {own_pass:.1f} s): {numbers['overhead_seconds']:.1f} s; "
              f"against that pass (same minutes, same host speed): {numbers['total_over_boot_plus_own_pass']:.2f} x")
    print(f"  audit records: {records} (per round {numbers['records_per_round']}) vs log-everything "
          f"{records_all} -> {numbers['records_ratio']}  {'OK' if records * 10 <= records_all else 'OVER'} "
          f"(goal <= 0.1)")
    print(f"  loss: profile {numbers['loss']}; log-everything {numbers['loss_log_everything']}")
    for unit, r in recall.items():
        print(f"  recall {unit}: {r['recall']:.1%} ({r['profile']} names; log-everything {r['log_everything']}; "
              f"missing {r['missing'] or 'none'})")
    return numbers


if __name__ == "__main__":
    sys.exit(main())
