"""Boot the reference guests through QemuTarget from their qemuboot.conf, drive them over SSH,
and check that no qemu process is ever left behind."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from guest_fixtures import exited, guest_or_skip, processes_mentioning

from seccomp_py.target import BootError, QemuTarget, SshTarget

pytestmark = pytest.mark.qemu
ROOT = Path(__file__).resolve().parents[2]


def wait_gone(pids, timeout=15.0) -> list:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if not exited(pid)]
        time.sleep(0.2)
    return alive


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_boot_run_transfer_poweroff(arch, tmp_path):
    built = guest_or_skip(arch)
    workdir = tmp_path / "run"
    # No host_key given: QemuTarget pins the keys it reads from the ext4 image (debugfs).
    target = QemuTarget(built.qemuboot, key_filename=str(built.ssh_key), workdir=workdir, forward_ports=[2022])
    started = time.monotonic()
    with target:
        print(f"{arch}: boot to SSH {target.boot_seconds:.1f} s")
        pid = target.pid
        assert processes_mentioning(str(workdir)) == [pid]
        blob = base64.b64decode(built.host_key.read_text().split()[1])
        assert target.ssh.server_fingerprint == \
            "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

        state = target.run("systemctl is-system-running --wait", timeout=300)
        assert state.stdout.strip() == "running", state
        cmdline = target.run("cat /proc/cmdline", check=True).stdout
        assert "audit=1 audit_backlog_limit=8192" in cmdline
        assert "log" in target.run("cat /proc/sys/kernel/seccomp/actions_logged").stdout.split()
        assert target.run("systemctl is-active systemd-journald-audit.socket nginx redis-server").stdout.split() \
            == ["active"] * 3

        payload = os.urandom(512 * 1024)
        (tmp_path / "up.bin").write_bytes(payload)
        target.put(tmp_path / "up.bin", "/tmp/up.bin")
        target.get("/tmp/up.bin", tmp_path / "down.bin")
        assert (tmp_path / "down.bin").read_bytes() == payload
        assert target.run(["sha256sum", "/tmp/up.bin"]).stdout.split()[0] == hashlib.sha256(payload).hexdigest()

        # dropbear without an sftp-server, as on Yocto's dropbear images: exec+cat fallback.
        target.run("mv /usr/lib/sftp-server /usr/lib/sftp-server.off", check=True)
        pub = target.run(
            "dropbearkey -t ed25519 -f /run/dropbear_ed25519 >/dev/null && "
            "dropbearkey -y -f /run/dropbear_ed25519 | grep ^ssh- && "
            "dropbear -r /run/dropbear_ed25519 -p 2022 -s -P /run/dropbear.pid", check=True).stdout.strip()
        with SshTarget("127.0.0.1", target.forwarded[2022], key_filename=str(built.ssh_key), host_key=pub) as db:
            assert "dropbear" in db.run("cat /proc/$PPID/comm").stdout
            assert not db.uses_sftp
            db.put(tmp_path / "up.bin", "/tmp/via-dropbear.bin", mode=0o600)
            db.get("/tmp/via-dropbear.bin", tmp_path / "via-dropbear.bin")
            assert (tmp_path / "via-dropbear.bin").read_bytes() == payload
            assert db.run(["stat", "-c", "%a", "/tmp/via-dropbear.bin"]).stdout.strip() == "600"
    print(f"{arch}: whole run {time.monotonic() - started:.1f} s")
    assert "Linux version" in (workdir / "console.log").read_text(errors="replace")
    assert wait_gone([pid]) == []
    assert processes_mentioning(str(workdir)) == []


def test_exception_inside_with_kills_qemu(x86_64_guest, tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"), x86_64_guest.target(workdir=workdir, boot_timeout=600) as t:
        pid = t.pid
        raise RuntimeError("boom")
    assert wait_gone([pid], timeout=12) == []
    assert processes_mentioning(str(workdir)) == []


def test_guest_that_never_answers_ssh(x86_64_guest, tmp_path, monkeypatch):
    """sshd masked on the kernel command line: a clear BootError, and qemu is gone. The first SSH
    port offered is already taken, so this also covers the retry on a port race."""
    import seccomp_py.target.qemu as qemu_module

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    taken_port = taken.getsockname()[1]
    ports = iter([taken_port])
    real_free_port = qemu_module.free_port
    monkeypatch.setattr(qemu_module, "free_port", lambda: next(ports, None) or real_free_port())
    workdir = tmp_path / "run"
    target = x86_64_guest.target(workdir=workdir, boot_timeout=25,
                                 kernel_args=["audit=1", "systemd.mask=ssh.service"])
    started = time.monotonic()
    with pytest.raises(BootError, match=r"no SSH answer on 127\.0\.0\.1:[0-9]+ after 25 s") as info:
        target.start()
    taken.close()
    assert time.monotonic() - started < 60
    assert target.ssh_port != taken_port  # qemu could not bind it; start() retried on another port
    assert f":{target.ssh_port} after" in str(info.value)
    assert "console" in str(info.value)
    assert processes_mentioning(str(workdir)) == []


def test_ctrl_c_during_boot_kills_qemu(x86_64_guest, tmp_path):
    workdir = tmp_path / "run"
    target = x86_64_guest.target(workdir=workdir)
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            target.start()
    finally:
        timer.cancel()
    assert processes_mentioning(str(workdir)) == []


def test_qemu_dies_with_a_killed_parent(x86_64_guest, tmp_path):
    """SIGKILL skips atexit and finally blocks; PR_SET_PDEATHSIG still takes qemu down."""
    workdir = tmp_path / "run"
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(ROOT / "meta-seccomp-py" / "lib")!r}, {str(Path(__file__).parent)!r}]
        import guest
        guest.find_guest("x86_64").target(workdir={str(workdir)!r}).start()
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    qemu = []
    while not qemu and time.monotonic() < deadline:
        qemu = [p for p in processes_mentioning(str(workdir)) if p != child.pid]
        time.sleep(0.2)
    assert qemu, "qemu never started"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert wait_gone(qemu, timeout=10) == []
