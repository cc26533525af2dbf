"""The profiler, verifier and doctor against a simulated guest (tests/fake_guest.py): rounds, convergence,
attribution, loss, catch-up, failures, outputs. Real guests: tests/qemu/test_profile_*.py."""

from __future__ import annotations

import json
import os

import pytest
from fake_guest import FakeGuest, Service

from seccomp_py.cli.doctor import FAIL, OK, WARN, diagnose, evaluate, parse_facts
from seccomp_py.errors import UsageError
from seccomp_py.profile import Profile
from seccomp_py.profiler import ProfileConfig, Profiler, Workload, write_outputs
from seccomp_py.verifier import Verifier, VerifyConfig

NGINX = dict(name="nginx.service", exe="/usr/sbin/nginx",
             start=["openat", "read", "socket", "bind", "listen", "clone", "epoll_create1"],
             workload=["epoll_wait", "accept4", "recvfrom", "sendfile", "writev", "close"],
             stop=["unlink", "wait4", "kill"],
             helper=["dup2", "pipe2"])
REDIS = dict(name="redis-server.service", exe="/usr/bin/redis-server",
             start=["openat", "read", "socket", "bind", "listen", "madvise"],
             workload=["epoll_wait", "accept4", "read", "write", "fsync"],
             stop=["rename", "fdatasync"])


def guest(**kwargs):
    services = kwargs.pop("services", None) or [Service(**NGINX), Service(**REDIS)]
    return FakeGuest(services, **kwargs)


def workload_file(tmp_path, name="w.sh", body="drive nginx.service\ndrive redis-server.service\n"):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    return str(path)


def expected(svc):
    names = set(svc["start"]) | set(svc["workload"]) | set(svc["stop"]) | set(svc.get("helper", []))
    return names | {"clone3"} if "clone" in names else names


def run(target, tmp_path, **config):
    config.setdefault("units", ["nginx", "redis-server"])
    config.setdefault("workloads", [Workload("script", workload_file(tmp_path))])
    config.setdefault("settle_seconds", 0)
    config.setdefault("catchup_timeout", 3)
    return Profiler(target, ProfileConfig(**config)).run()


def test_two_units_converge_with_exact_sets_and_attribution(tmp_path):
    target = guest()
    result = run(target, tmp_path)
    assert result.error is None and result.converged and not result.incomplete, result.report["incomplete_reasons"]
    profile = result.profile
    assert set(profile.syscalls("nginx.service", "x86_64")) == expected(NGINX)
    assert set(profile.syscalls("redis-server.service", "x86_64")) == expected(REDIS)
    # the forked helper (another executable) counts for its unit
    assert "/bin/sh" in profile.provenance("nginx.service", "x86_64", "dup2").exes
    report = result.report
    assert [it["kind"] for it in report["iterations"]] == ["warm-up", "full"]
    assert report["iterations"][-1]["added"] == {"nginx.service": [], "redis-server.service": []}
    # round 2 was armed with everything known: silent
    assert report["iterations"][-1]["records"] == 0
    assert report["units"]["nginx.service"]["attribution"] == {"trace": report["units"]["nginx.service"]["records"]}
    assert report["loss"]["serial_gaps"] == 0 and report["status"] == "complete"
    # every command went to the target as an argv list; no drop-in left behind after restore
    assert not [p for p in target.files if p.endswith("50-seccomp-log.conf")]
    assert target.state["nginx.service"] == "active"  # restored: it was running before


def test_clone_brings_clone3(tmp_path):
    result = run(guest(), tmp_path)
    prov = result.profile.provenance("nginx.service", "x86_64", "clone3")
    assert prov is not None and prov.sources == {"implied:clone"} and prov.count == 0
    assert "clone3" not in result.profile.syscalls("redis-server.service", "x86_64")  # redis made no clone
    assert any("added clone3 next to clone" in n for n in result.report["notes"])


def test_warmup_off_still_converges_and_logs_more(tmp_path):
    quiet = run(guest(), tmp_path)
    loud = run(guest(), tmp_path, warmup_seconds=0)
    assert loud.converged
    assert loud.profile.syscalls("nginx.service", "x86_64") == quiet.profile.syscalls("nginx.service", "x86_64")
    assert [it["kind"] for it in loud.report["iterations"]] == ["full", "full"]


def test_known_names_are_silenced_from_the_first_round(tmp_path):
    target = guest()
    result = run(target, tmp_path, warmup_seconds=0, known={"nginx.service": {"openat", "read"}})
    first = result.report["iterations"][0]["added"]["nginx.service"]
    assert "openat" not in first and "socket" in first
    arm = next(c for c in target.commands if c[:2] == ["sh", "-c"] and c[2].startswith("\nsettle=$1"))
    text = arm[arm.index("/run/systemd/system/nginx.service.d/50-seccomp-log.conf") + 1]
    assert "SystemCallLog=~openat read" in text


def test_never_converges_is_incomplete(tmp_path):
    flaky = Service(**{**NGINX, "extra_per_round": True})
    result = run(guest(services=[flaky]), tmp_path, units=["nginx"], max_iterations=2,
                 workloads=[Workload("script", workload_file(tmp_path, body="drive nginx.service\n"))])
    assert not result.converged and result.incomplete
    assert any("did not converge" in r for r in result.report["incomplete_reasons"])
    assert len(result.report["iterations"]) == 3  # warm-up + 2 full


def test_unit_that_fails_to_start(tmp_path):
    broken = Service(**{**REDIS, "fail_start": True})
    target = guest(services=[Service(**NGINX), broken])
    result = run(target, tmp_path)
    assert result.error and "redis-server.service" in result.error and "did not start" in result.error
    assert result.incomplete and result.profile.incomplete
    # what was seen before the failure is kept, and the output folder is written
    write_outputs(result, str(tmp_path / "out"))
    saved = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert saved["meta"]["incomplete"] is True
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "failed" and "did not start" in report["error"]
    assert (tmp_path / "out" / "report.md").read_text().startswith("# seccomp-py profile report")


def test_unit_that_dies_during_the_workload_keeps_the_round(tmp_path):
    crashing = Service(**{**NGINX, "crash_in_workload": True})
    result = run(guest(services=[crashing]), tmp_path, units=["nginx"],
                 workloads=[Workload("script", workload_file(tmp_path, body="drive nginx.service\n"))])
    assert result.error and "was no longer running when the round 1 workloads ended" in result.error
    # the round's records were collected before the error
    assert {"accept4", "sendfile"} <= set(result.profile.syscalls("nginx.service", "x86_64"))
    assert result.report["iterations"][0]["records"] > 0


def test_unit_that_exits_right_after_a_successful_restart(tmp_path):
    """systemctl restart succeeds for a Type=simple unit whose process exits at once: the round's failing
    workload is reported as the unit's failure, with its diagnostics."""
    flaky = Service(**{**NGINX, "dies_after_start": 2})
    result = run(guest(services=[flaky]), tmp_path, units=["nginx"],
                 workloads=[Workload("script", workload_file(tmp_path, body="drive nginx.service\n"))])
    assert result.error and "nginx.service stopped running during the round 2 workloads" in result.error
    assert "workload" in result.error and result.incomplete
    assert result.report["iterations"][0]["records"] > 0  # the warm-up round was kept


def test_serial_gap_marks_loss(tmp_path):
    target = guest()
    target.skip_serial_on_poll = 2
    result = run(target, tmp_path)
    assert result.lost_records >= 1 and result.incomplete
    assert result.report["loss"]["serial_gaps"] >= 1
    assert any("lost" in r for r in result.report["incomplete_reasons"])


def test_journald_lag_is_waited_for(tmp_path):
    target = guest()
    target.lag_polls = 3
    result = run(target, tmp_path)
    assert result.converged and not result.incomplete
    assert set(result.profile.syscalls("nginx.service", "x86_64")) == expected(NGINX)
    assert result.report["journal"]["polls"] > 0  # END_SCRIPT's read came too early: the profiler read on


def test_round_end_reads_the_journal_in_the_same_round_trip(tmp_path):
    target = guest()
    result = run(target, tmp_path)
    assert result.converged and not result.incomplete
    # every round's records and sentinel came with END_SCRIPT's output: no journalctl round trip of its own
    assert result.report["journal"]["polls"] == 0 and result.report["journal"]["bytes"] > 0
    assert not [c for c in target.commands if c and c[0] == "journalctl" and "--show-cursor" not in c]


def test_catchup_timeout(tmp_path):
    target = guest()
    target.hide_sentinel = True
    result = run(target, tmp_path, catchup_timeout=0.5)
    assert result.error and "sentinel" in result.error and result.incomplete
    assert result.report["loss"]["catchup_timeouts"] == 1


def test_connection_lost_mid_collection_keeps_partial_data(tmp_path):
    target = guest()
    real_journal = target._journalctl

    def flaky(args):
        if target.polls >= 2 and "--cursor" in args:
            raise __import__("seccomp_py.target.base", fromlist=["ConnectionLost"]).ConnectionLost("dropped")
        return real_journal(args)

    target._journalctl = flaky
    result = run(target, tmp_path)
    assert result.error and "dropped" in result.error and result.incomplete
    assert result.error.startswith("lost the connection to the target during collect (round ")
    # round 1 was collected before the drop
    assert result.profile.syscalls("nginx.service", "x86_64")
    # cleanup still ran (a real SshTarget reconnects for it when it can)
    assert any(c[:2] == ["sh", "-c"] and "rm -rf" in c[2] for c in target.commands)


def test_workload_failure_is_an_error_in_full_rounds_only(tmp_path):
    bad = workload_file(tmp_path, "bad.sh", "drive nginx.service\nexit 3\n")
    result = run(guest(), tmp_path, units=["nginx"], workloads=[Workload("script", bad)])
    assert result.error and "exit 3" in result.error
    runs = result.report["workloads"]
    assert runs[0]["status"].endswith("(expected in a warm-up)") and runs[-1]["status"] == "exit 3"


def test_without_tracefs_one_unit_is_still_attributed(tmp_path):
    target = guest(tracefs=False, services=[Service(**NGINX)])
    result = run(target, tmp_path, units=["nginx"],
                 workloads=[Workload("script", workload_file(tmp_path, body="drive nginx.service\n"))])
    assert result.converged
    assert set(result.profile.syscalls("nginx.service", "x86_64")) == expected(NGINX)
    assert "tracefs" in " ".join(result.report["notes"])
    how = result.report["units"]["nginx.service"]["attribution"]
    assert set(how) <= {"cgroup-sample", "only-armed-unit"}


def test_forced_sampling_and_required_trace(tmp_path):
    result = run(guest(services=[Service(**NGINX)]), tmp_path, units=["nginx"], attribution="sampling",
                 workloads=[Workload("script", workload_file(tmp_path, body="drive nginx.service\n"))])
    assert result.converged and "trace" not in result.report["units"]["nginx.service"]["attribution"]
    result = run(guest(tracefs=False), tmp_path, attribution="trace")
    assert result.error and "--attribution trace" in result.error


def test_preflight_refusals(tmp_path):
    result = run(guest(actions_logged="kill_process kill_thread"), tmp_path)
    assert result.error and "actions_logged" in result.error
    result = run(guest(systemd="systemd 245 (245.4)"), tmp_path)
    assert result.error and "247" in result.error
    result = run(guest(), tmp_path, units=["nosuch"])
    assert result.error and "nosuch.service is not known" in result.error
    with pytest.raises(UsageError):
        Profiler(guest(), ProfileConfig(units=["bad\nname.service"]))


def test_command_subject(tmp_path):
    target = guest()
    result = run(target, tmp_path, units=[], commands=["/usr/bin/tool call statfs call uname"],
                 workloads=[])
    assert result.converged
    assert set(result.profile.syscalls("/usr/bin/tool", "x86_64")) == {"statfs", "uname"}
    run_calls = [c for c in target.commands if c[0] == "systemd-run"]
    # the user's command reaches the target as one argv word for sh -c, never spliced into a line
    assert all(c[-3:] == ["/bin/sh", "-c", "/usr/bin/tool call statfs call uname"] for c in run_calls)


def test_command_dollar_reaches_sh_unexpanded(tmp_path):
    target = guest()
    run(target, tmp_path, units=[], commands=['/usr/bin/tool call statfs; echo "$HOME" $$'], workloads=[])
    words = [c[-1] for c in target.commands if c[0] == "systemd-run"]
    # systemd turns $$ back into $, so sh -c sees exactly what the user wrote
    assert words and all(w == '/usr/bin/tool call statfs; echo "$$HOME" $$$$' for w in words)


def test_outputs_and_filters(tmp_path):
    result = run(guest(), tmp_path)
    out = tmp_path / "out"
    write_outputs(result, str(out))
    names = {os.path.relpath(os.path.join(d, f), out) for d, _, files in os.walk(out) for f in files}
    assert {"profile.json", "report.json", "report.md"} <= names
    assert "filters/systemd/nginx.service.d/50-seccomp.conf" in names
    assert any(n.startswith("filters/oci/") for n in names) and any(n.startswith("filters/lxc/") for n in names)
    loaded = Profile.load(str(out / "profile.json"))
    assert loaded.syscalls("nginx.service", "x86_64") == result.profile.syscalls("nginx.service", "x86_64")


# -- verify --------------------------------------------------------------------------------------
def verify(target, profile, tmp_path, **config):
    config.setdefault("units", ["nginx.service", "redis-server.service"])
    config.setdefault("workloads", [Workload("script", workload_file(tmp_path))])
    config.setdefault("settle_seconds", 0)
    config.setdefault("catchup_timeout", 3)
    return Verifier(target, profile, VerifyConfig(**config)).run()


def test_verify_passes_with_the_profile_and_negative_control(tmp_path):
    profiled = run(guest(), tmp_path)
    target = guest()
    result = verify(target, profiled.profile, tmp_path)
    assert result.passed, result.summary()
    assert result.negative_control["denied"]
    names = [c.name for c in result.checks]
    assert "zero seccomp denials or kills in the journal" in names
    assert not [p for p in target.files if "verify" in p]


def test_verify_fails_when_a_workload_call_is_missing(tmp_path):
    profiled = run(guest(), tmp_path)
    weak = profiled.profile.subtract(["sendfile"], subject="nginx.service")
    result = verify(guest(), weak, tmp_path)
    assert not result.passed
    failed = {c.name for c in result.checks if not c.ok}
    assert "zero seccomp denials or kills in the journal" in failed
    assert any(d["syscall"] == "sendfile" for d in result.denials)


def test_verify_shutdown_path_matters(tmp_path):
    profiled = run(guest(), tmp_path)
    weak = profiled.profile.subtract(["unlink"], subject="nginx.service")
    result = verify(guest(), weak, tmp_path, negative_control=False)
    failed = {c.name for c in result.checks if not c.ok}
    assert "units stop cleanly (shutdown path allowed)" in failed


def test_verify_command_subject_with_negative_control(tmp_path):
    command = "/usr/bin/tool call statfs call uname"
    profiled = run(guest(), tmp_path, units=[], commands=[command], workloads=[])
    target = guest()
    result = verify(target, profiled.profile, tmp_path, units=[], commands=[command], workloads=[])
    assert result.passed, result.summary()
    assert result.negative_control["unit"] == "/usr/bin/tool" and result.negative_control["denied"]


def test_verify_rejects_unknown_subjects(tmp_path):
    profiled = run(guest(), tmp_path)
    with pytest.raises(UsageError, match="no subject"):
        Verifier(guest(), profiled.profile, VerifyConfig(units=["other.service"]))


# -- doctor --------------------------------------------------------------------------------------
def test_doctor_on_a_good_guest():
    checks = diagnose(guest(), canary_timeout=2)
    assert {c.name: c.status for c in checks}["logged canary"] == OK
    assert all(c.status == OK for c in checks), [(c.name, c.status, c.detail) for c in checks]


def test_doctor_reports_each_problem_with_a_fix():
    facts = parse_facts("actions_logged=kill_process errno\nactions_avail=kill_process errno log\n"
                        "systemd=systemd 245 (245)\ncmdline=root=/dev/vda audit=0\naudit_socket=inactive\n"
                        "tracefs=\nauditd=active\n")
    checks = {c.name: c for c in evaluate(facts)}
    assert checks["'log' in actions_logged"].status == FAIL
    assert "kill_process errno log" in checks["'log' in actions_logged"].fix
    assert checks["journald audit socket"].status == FAIL and "enable" in checks["journald audit socket"].fix
    assert checks["systemd version"].status == FAIL
    assert checks["audit enabled"].status == FAIL
    assert checks["audit backlog limit"].status == WARN and "8192" in checks["audit backlog limit"].fix
    assert checks["attribution"].status == WARN
    assert checks["auditd"].status == WARN


def test_doctor_canary_that_never_arrives():
    target = guest()
    target.hide_sentinel = True
    checks = {c.name: c for c in diagnose(target, canary_timeout=1.5)}
    assert checks["logged canary"].status == FAIL and "AUDITSYSCALL" in checks["logged canary"].fix


# -- BitBake glue --------------------------------------------------------------------------------
def test_profile_for_bitbake_boots_once_and_writes_outputs(tmp_path, monkeypatch):
    from seccomp_py import bitbake, profiler
    from seccomp_py import target as target_mod

    booted = []

    class FakeQemu(FakeGuest):
        def __init__(self, qemuboot, **kwargs):
            # the image has the seccomp-py-boot-log generator: it arms what the kernel command line names
            words = [w for w in kwargs["kernel_args"] if w.startswith("seccomp_py.log=")]
            super().__init__([Service(**NGINX)], boot_log=words[0].split("=", 1)[1].split(",") if words else ())
            self.kwargs = kwargs
            self.boot_seconds = 12.5
            self.forwarded = {}
            self.ssh_port = 2222
            booted.append(self)

        def stop(self, graceful=True):
            self.graceful = graceful

    monkeypatch.setattr(target_mod, "QemuTarget", FakeQemu)
    workload = "/usr/share/seccomp/workloads/nginx.sh"
    (tmp_path / "img.qemuboot.conf").write_text("[config_bsp]\nqb_system_name = qemu-system-x86_64\n")
    request = bitbake.ProfileRequest(
        qemuboot=str(tmp_path / "img.qemuboot.conf"), abi="x86_64", units=["nginx.service"],
        workloads=[workload], output_dir=str(tmp_path / "out"), max_iterations=3,
        kernel_args=["quiet"], allow_loss=False, manifests=[])

    def drive(self, argv, input_data):  # the on-target workload path drives nginx
        if argv[:2] == ["sh", "-c"] and argv[2].startswith('cd "$1"') and argv[-1] == workload:
            return (0, "", "") if self.drive("nginx.service") else (1, "", "down")
        return FakeGuest._dispatch(self, argv, input_data)

    monkeypatch.setattr(FakeQemu, "_dispatch", drive)
    outcome = profiler.profile_for_bitbake(request)
    assert len(booted) == 1 and booted[0].graceful
    assert "quiet" in booted[0].kwargs["kernel_args"] and "audit=1" in booted[0].kwargs["kernel_args"]
    assert "seccomp_py.log=nginx.service" in booted[0].kwargs["kernel_args"]
    rounds = json.loads((tmp_path / "out" / "report.json").read_text())["iterations"]
    assert rounds[0]["armed"] == "boot" and all(r["armed"] == "restart" for r in rounds[1:])
    assert outcome.converged and outcome.lost_records == 0
    assert set(outcome.profile.syscalls("nginx.service", "x86_64")) == expected(NGINX)
    out = tmp_path / "out"
    assert (out / "profile.json").is_file() and (out / "report.md").is_file() and (out / "audit-records.json").is_file()
    assert outcome.report_path == str(out / "report.md")
    assert json.loads((out / "report.json").read_text())["timings"]["boot"] == 12.5


def test_journal_is_read_while_workloads_run(tmp_path):
    target = guest()
    target.workload_seconds = 0.3
    result = run(target, tmp_path, prefetch_interval=0.05)
    assert result.converged and not result.incomplete
    assert set(result.profile.syscalls("nginx.service", "x86_64")) == expected(NGINX)
    # polls happened during the workloads (more than one catch-up poll per round)
    assert result.report["journal"]["polls"] > 2 * len(result.report["iterations"]), result.report["journal"]
    assert result.report["loss"]["serial_gaps"] == 0
