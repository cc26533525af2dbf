"""Arming units at boot (seccomp_py.bootarm): the kernel arguments, the image's generator script (run
for real with sh), and the profiler's boot round against the simulated guest. The real guest boot is
in tests/qemu/test_profile_x86_64.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fake_guest import FakeGuest, Service
from test_profiler_sim import NGINX, REDIS, expected, run, verify

from seccomp_py import bootarm
from seccomp_py.errors import UsageError
from seccomp_py.profiler import LOG_DROPIN
from seccomp_py.render import render_log_dropin

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "meta-seccomp-py" / "recipes-security" / "seccomp-profiling-setup" / "files" / "seccomp-py-boot-log"


def generate(tmp_path: Path, cmdline: str) -> dict:
    """Run the generator like systemd does (three output folders), on a given kernel command line."""
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    out = tmp_path / "normal"
    env = {**os.environ, "SYSTEMD_PROC_CMDLINE_FILE": str(tmp_path / "cmdline")}
    proc = subprocess.run(["sh", str(GENERATOR), str(out), str(tmp_path / "early"), str(tmp_path / "late")],
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()} if out.exists() else {}


def systemcalllog_lines(text: str) -> list:
    return [line for line in text.splitlines() if line.startswith("SystemCallLog=")]


def test_kernel_args_name_units_and_the_abis_placeholder():
    assert bootarm.kernel_args(["nginx.service", "redis-server.service"], "x86_64") == [
        "seccomp_py.log=nginx.service,redis-server.service", "seccomp_py.log_placeholder=arm_fadvise64_64"]
    # aarch64's compat ABI (arm) has arm_fadvise64_64, so another name stands in
    assert bootarm.kernel_args(["a.service"], "aarch64")[1] == "seccomp_py.log_placeholder=arch_prctl"
    assert bootarm.kernel_args([], "x86_64") == []


@pytest.mark.parametrize("unit", ["evil.service foo=bar", "x.socket", "a,b.service", "../x.service", ""])
def test_kernel_args_refuse_what_the_command_line_cannot_carry(unit):
    with pytest.raises(UsageError):
        bootarm.kernel_args([unit], "x86_64")
    assert not bootarm.can_arm_at_boot(unit)


def test_abi_of_qemu_system():
    assert bootarm.abi_of_qemu_system("qemu-system-aarch64") == "aarch64"
    assert bootarm.abi_of_qemu_system("/usr/bin/qemu-system-x86_64") == "x86_64"
    with pytest.raises(UsageError):
        bootarm.abi_of_qemu_system("qemu-system-sparc64")


def test_kernel_args_for_qemuboot(tmp_path):
    conf = tmp_path / "img.qemuboot.conf"
    conf.write_text("[config_bsp]\nqb_system_name = qemu-system-aarch64\n")
    assert bootarm.kernel_args_for_qemuboot(str(conf), ["nginx.service"])[0] == "seccomp_py.log=nginx.service"
    # a unit the generator cannot arm: every unit is armed by restart instead
    assert bootarm.kernel_args_for_qemuboot(str(conf), ["nginx.service", "x.socket"]) == []


def test_generator_writes_the_log_everything_dropin(tmp_path):
    args = bootarm.kernel_args(["nginx.service", "redis-server.service"], "x86_64")
    files = generate(tmp_path, "root=/dev/vda rw console=ttyS0 " + " ".join(args) + " audit=1")
    assert sorted(files) == [f"nginx.service.d/{bootarm.DROPIN_NAME}", f"redis-server.service.d/{bootarm.DROPIN_NAME}"]
    # the same filter as the profiler's own drop-in with nothing known
    assert systemcalllog_lines(files[f"nginx.service.d/{bootarm.DROPIN_NAME}"]) == \
        systemcalllog_lines(render_log_dropin([], "x86_64", unit="nginx.service"))
    assert "[Service]" in files[f"nginx.service.d/{bootarm.DROPIN_NAME}"]


def test_generator_does_nothing_without_the_argument(tmp_path):
    assert generate(tmp_path, "root=/dev/vda rw audit=1") == {}


def test_generator_ignores_injection_attempts(tmp_path):
    files = generate(tmp_path, "seccomp_py.log=../../etc/x.service,a.service\\nExecStart=/bin/sh,ok.service,"
                               "b.socket,*.service seccomp_py.log_placeholder=read\\nSystemCallFilter=x")
    assert sorted(files) == [f"ok.service.d/{bootarm.DROPIN_NAME}"]
    assert systemcalllog_lines(files[f"ok.service.d/{bootarm.DROPIN_NAME}"]) == [
        "SystemCallLog=", "SystemCallLog=~kexec_load"]  # a bad placeholder falls back


def test_generator_and_library_agree_on_names():
    text = GENERATOR.read_text()
    assert bootarm.DONE_FLAG in text and bootarm.UNITS_ARG + "=" in text and bootarm.PLACEHOLDER_ARG + "=" in text
    assert bootarm.DROPIN_NAME in text and bootarm.DROPIN_NAME == LOG_DROPIN  # ours masks the generator's
    recipe = GENERATOR.parent.parent / "seccomp-profiling-setup_1.0.bb"
    assert "file://seccomp-py-boot-log" in recipe.read_text() and "system-generators" in recipe.read_text()


# -- the profiler's boot round on the simulated guest ------------------------------------------------
def boot_armed_guest(units=("nginx.service", "redis-server.service")):
    return FakeGuest([Service(**NGINX), Service(**REDIS)], boot_log=units)


def arm_calls(target):
    return [c for c in target.commands if c[:2] == ["sh", "-c"] and c[2].startswith("\nsettle=$1")]


def test_boot_round_needs_no_reload_and_keeps_the_first_start(tmp_path):
    target = boot_armed_guest()
    result = run(target, tmp_path)
    assert result.error is None and result.converged and not result.incomplete, result.report["incomplete_reasons"]
    assert set(result.profile.syscalls("nginx.service", "x86_64")) == expected(NGINX)
    assert set(result.profile.syscalls("redis-server.service", "x86_64")) == expected(REDIS)
    rounds = result.report["iterations"]
    assert [(r["kind"], r["armed"]) for r in rounds] == [("warm-up", "boot"), ("full", "restart")]
    # round 1: no drop-in, no daemon-reload, nothing restarted, not even a round trip (the probe saw the
    # units up and sampled their cgroups); round 2 re-armed with everything known
    modes = [c[5] for c in arm_calls(target)]
    assert modes == ["restart"]
    assert rounds[1]["records"] == 0
    from seccomp_py.report import render_markdown

    assert "| 1 | warm-up (armed at boot) |" in render_markdown(result.report)
    # the start-up at boot was read from the boot's journal, and tied to the units without trace events
    assert "bind" in rounds[0]["added"]["nginx.service"]
    assert "cgroup-sample" in result.report["units"]["nginx.service"]["attribution"]
    # the generator is disarmed for good: a later reload does not bring log-everything back
    assert bootarm.DONE_FLAG in target.files
    assert not [p for p in target.files if p.endswith(LOG_DROPIN)]
    assert target.filters["nginx.service"] is None


def test_boot_round_starts_an_armed_unit_that_is_down(tmp_path):
    target = boot_armed_guest()
    target.run(["systemctl", "stop", "redis-server.service"])
    result = run(target, tmp_path)
    assert result.error is None and result.converged and not result.incomplete, result.report["incomplete_reasons"]
    assert [r["armed"] for r in result.report["iterations"]] == ["boot", "restart"]
    assert [c[5] for c in arm_calls(target)] == ["start", "restart"]
    assert set(result.profile.syscalls("redis-server.service", "x86_64")) == expected(REDIS)
    assert "cgroup-sample" in result.report["units"]["nginx.service"]["attribution"]


def test_boot_round_gathers_by_systemds_cgroups_when_the_sample_by_name_finds_nobody(tmp_path):
    target = boot_armed_guest()
    target.cgroups_by_name = False  # e.g. a cgroup layout the name search does not cover
    result = run(target, tmp_path)
    assert result.error is None and result.converged and not result.incomplete, result.report["incomplete_reasons"]
    assert [c[5] for c in arm_calls(target)] == ["start", "restart"]
    assert "cgroup-sample" in result.report["units"]["nginx.service"]["attribution"]
    assert "bind" in result.report["iterations"][0]["added"]["nginx.service"]


def test_boot_round_only_when_every_unit_was_armed(tmp_path):
    target = boot_armed_guest(units=("nginx.service",))
    result = run(target, tmp_path)
    assert result.converged and [r["armed"] for r in result.report["iterations"]] == ["restart", "restart"]
    assert set(result.profile.syscalls("redis-server.service", "x86_64")) == expected(REDIS)


def test_second_run_in_the_same_boot_re_arms(tmp_path):
    target = boot_armed_guest()
    first = run(target, tmp_path)
    second = run(target, tmp_path)
    assert first.report["iterations"][0]["armed"] == "boot"
    assert [r["armed"] for r in second.report["iterations"]] == ["restart", "restart"]
    assert second.profile.syscalls("nginx.service", "x86_64") == first.profile.syscalls("nginx.service", "x86_64")


def test_verify_after_a_boot_round_enforces_without_log_noise(tmp_path):
    target = boot_armed_guest()
    profiled = run(target, tmp_path, restore=False)
    result = verify(target, profiled.profile, tmp_path)
    assert result.passed, result.summary()
    assert target.filters["nginx.service"] is None or target.filters["nginx.service"]["kind"] == "enforce"


def test_verify_alone_on_a_boot_armed_guest_disarms_the_generator(tmp_path):
    profiled = run(FakeGuest([Service(**NGINX), Service(**REDIS)]), tmp_path)
    target = boot_armed_guest()
    result = verify(target, profiled.profile, tmp_path)
    assert result.passed, result.summary()
    assert bootarm.DONE_FLAG in target.files and bootarm.generator_dropin("nginx.service") not in target.files


def test_verify_masks_a_log_dropin_baked_into_the_image(tmp_path):
    """A profiling image (seccomp.bbclass, SECCOMP_MODE = "log") ships log-everything drop-ins in
    /usr/lib; systemd would apply them beside the enforcing filter under test."""
    profiled = run(FakeGuest([Service(**NGINX), Service(**REDIS)]), tmp_path)
    target = FakeGuest([Service(**NGINX), Service(**REDIS)])
    baked = f"/usr/lib/systemd/system/nginx.service.d/{LOG_DROPIN}"
    target.files[baked] = render_log_dropin([], "x86_64", unit="nginx.service").encode()
    target.run(["systemctl", "daemon-reload"])
    target.run(["systemctl", "restart", "nginx.service"])
    before, last_pid = len(target.journal), target.pid  # (the old nginx logs its shutdown at verify's restart)
    result = verify(target, profiled.profile, tmp_path, restore=False)  # (restore restarts with the image's)
    assert result.passed, result.summary()
    logged = [e for e in target.journal[before:] if e.get("_AUDIT_TYPE") == "1326" and int(e["_PID"]) > last_pid
              and e.get("_AUDIT_FIELD_CODE") == f"0x{0x7FFC0000:08x}" and e.get("_EXE") != "/usr/bin/uname"]
    assert logged == [], f"log mode stayed on while verifying: {len(logged)} records"
    # restored afterwards: the mask is gone, the image's own drop-in applies again
    assert verify(target, profiled.profile, tmp_path).passed
    assert f"/run/systemd/system/nginx.service.d/{LOG_DROPIN}" not in target.files and baked in target.files
    assert target.filters["nginx.service"]["kind"] == "log"


def test_boot_round_leaves_out_records_of_processes_outside_the_units(tmp_path):
    target = boot_armed_guest()
    # a canary run before the profiler connected (doctor, an earlier sentinel): logged, but not ours
    target.run(["sh", "-c", "--property=SystemCallLog=uname"])
    result = run(target, tmp_path)
    assert result.converged and not result.incomplete
    for unit in ("nginx.service", "redis-server.service"):
        assert "uname" not in result.profile.syscalls(unit, "x86_64")
    assert result.report["records"]["unattributed"] >= 1
    assert any("outside the armed units" in n for n in result.report["notes"])


def test_exec_pids_from_systemctl_show():
    from seccomp_py.profiler import exec_pids, parse_show_blocks

    # systemd 252's output for nginx after boot (ExecStartPre's config test has exited)
    text = ("Id=nginx.service\nActiveState=active\nType=forking\nResult=success\nExecMainPID=260\n"
            "ExecStartPre={ path=/usr/sbin/nginx ; argv[]=/usr/sbin/nginx -t -q -g daemon on; master_process on; ; "
            "ignore_errors=no ; start_time=[Sun 2026-11-22 20:40:01 UTC] ; stop_time=[Sun 2026-11-22 20:40:01 UTC] ; "
            "pid=253 ; code=exited ; status=0 }\n"
            "ExecStart={ path=/usr/sbin/nginx ; argv[]=/usr/sbin/nginx -g daemon on; master_process on; ; "
            "ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=258 ; code=exited ; status=0 }\n"
            "ExecStartPost=\n\n"
            "Id=redis-server.service\nActiveState=active\nExecMainPID=181\nExecStartPre=\n"
            "ExecStart={ path=/usr/bin/redis-server ; argv[]=/usr/bin/redis-server /etc/redis/redis.conf ; "
            "pid=181 ; code=(null) ; status=0/0 }\n")
    blocks = parse_show_blocks(text, ["nginx.service", "redis-server.service"])
    assert exec_pids(blocks["nginx.service"]) == [253, 258, 260]
    assert exec_pids(blocks["redis-server.service"]) == [181]
    assert exec_pids({"ExecMainPID": "0"}) == []


@pytest.mark.parametrize("path, armed", [
    ("/run/systemd/generator/nginx.service.d/50-seccomp-log.conf", True),
    ("/usr/lib/systemd/system/nginx.service.d/50-seccomp-log.conf", True),  # baked: SECCOMP_MODE = "log"
    ("/lib/systemd/system/nginx.service.d/50-seccomp-log.conf", True),
    ("/run/systemd/system/nginx.service.d/50-seccomp-log.conf", False),  # the profiler's own, maybe stale
    ("/usr/lib/systemd/system/nginx.service.d/50-seccomp.conf", False),  # an enforcing filter
    ("/usr/lib/systemd/system/redis.service.d/50-seccomp-log.conf", False),
])
def test_boot_armed_by_generator_or_baked_dropin(path, armed):
    props = {"DropInPaths": f"/usr/lib/systemd/system/nginx.service.d/10-hardening.conf {path}"}
    assert bootarm.boot_armed("nginx.service", props, disarmed=False) is armed
    assert bootarm.boot_armed("nginx.service", props, disarmed=True) is False
