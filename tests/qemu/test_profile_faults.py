"""Faults that need their own qemu: a guest that never answers SSH, qemu killed in the middle of a run.
Each must end with a clear error, the partial data saved and marked incomplete, no qemu left behind,
and then a clean rerun into the same output folder: the full x86_64 profile -> verify through
QemuTarget (the demo's path), which is also this suite's --qemuboot end-to-end run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from guest_fixtures import exited, guest_or_skip, processes_mentioning

pytestmark = pytest.mark.qemu
ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "seccomp-py"
WORKLOADS = ROOT / "tests" / "qemu" / "workloads"


def wait_gone(text: str, timeout: float = 30.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in processes_mentioning(text) if not exited(p)]
        if not alive:
            return []
        time.sleep(0.5)
    return alive


def base_args(built, out: Path, tmp_path: Path):
    redis = tmp_path / "redis-small.sh"
    redis.write_text((WORKLOADS / "redis.sh").read_text().replace("${REDIS_REQUESTS:-2000}", "300"))
    return ["profile", "--qemuboot", str(built.qemuboot), "-i", str(built.ssh_key), "--host-key",
            str(built.host_key), "--unit", "nginx", "--unit", "redis-server", "--forward", "80",
            "--workload", str(WORKLOADS / "nginx-curl.sh"), "--workload", str(redis),
            "--host-workload", f"HTTP_REQUESTS=100 {sys.executable} {WORKLOADS / 'http-host.py'}",
            "--warmup-seconds", "20", "--output", str(out)]


def assert_partial(out: Path, error_words) -> dict:
    saved = json.loads((out / "profile.json").read_text())
    assert saved["meta"]["incomplete"] is True
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed"
    assert any(word in report["error"] for word in error_words), report["error"]
    assert (out / "report.md").read_text().count("Status: failed") == 1
    return report


def test_qemu_faults_then_clean_full_run(tmp_path):
    built = guest_or_skip("x86_64")
    out = tmp_path / "out"
    qemu_dir = str(out / "qemu")
    args = base_args(built, out, tmp_path)

    # 1. A guest that never answers SSH: init fails, the kernel panics and the VM just sits there.
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(TOOL), *args, "--kernel-arg", "init=/bin/false",
                           "--boot-timeout", "40", "-q"], capture_output=True, text=True, timeout=600)
    print(proc.stderr[-2000:])
    assert proc.returncode == 1
    assert "no SSH answer" in proc.stderr and "console" in proc.stderr
    report = assert_partial(out, ["no SSH answer"])
    assert report["timings"]
    assert wait_gone(qemu_dir) == [], "qemu left behind after a boot timeout"
    print(f"never-answers case: {time.monotonic() - started:.0f} s")

    # 2. qemu killed while the first round's workloads run.
    proc = subprocess.Popen([sys.executable, str(TOOL), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines = []
    killed = None
    for line in proc.stderr:
        lines.append(line)
        if killed is None and "workload: round 1" in line:
            pids = [p for p in processes_mentioning(qemu_dir) if p != proc.pid]
            qemu = [p for p in pids if b"qemu-system" in Path(f"/proc/{p}/cmdline").read_bytes()]
            assert qemu, f"no qemu process found for {qemu_dir}"
            os.kill(qemu[0], signal.SIGKILL)
            killed = qemu[0]
    proc.wait(timeout=300)
    stderr = "".join(lines)
    print(stderr[-3000:])
    assert killed is not None, "the run never reached its workloads"
    assert proc.returncode == 1
    assert "qemu stopped during" in stderr or "lost the connection to the target during" in stderr
    assert_partial(out, ["qemu stopped during", "lost the connection"])
    assert wait_gone(qemu_dir) == [], "qemu left behind after it was killed"

    # 3. Clean rerun, same folder: the full profile -> verify on one boot.
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(TOOL), *args, "--verify"], capture_output=True, text=True,
                          timeout=3600)
    print(proc.stdout[-3000:])
    print(proc.stderr[-4000:])
    assert proc.returncode == 0
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "complete" and report["converged"] and report["verify"]["passed"]
    assert report["verify"]["negative_control"]["denied"]
    assert report["timings"]["boot"] > 0
    print(f"full --qemuboot run: {time.monotonic() - started:.0f} s, timings {report['timings']}, "
          f"records per round {[it['records'] for it in report['iterations']]}")
    assert wait_gone(qemu_dir) == []
