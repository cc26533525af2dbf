"""SshTarget against real servers: OpenSSH's sshd started on a free local port (with and without
an sftp subsystem), and a paramiko server for the empty-password/"none" and password methods."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

paramiko = pytest.importorskip("paramiko", reason="paramiko is a runtime dependency; not installed here")

from seccomp_py.errors import UsageError  # noqa: E402
from seccomp_py.target import (  # noqa: E402
    AuthenticationError,
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    SshTarget,
    TargetError,
    TargetUnreachable,
    parse_ssh_spec,
)
from seccomp_py.target.ssh import HostKeyPin, sha256_fingerprint  # noqa: E402

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return path


class Sshd:
    def __init__(self, folder: Path, sftp: bool) -> None:
        self.folder = folder
        self.port = free_port()
        self.host_key = keygen(folder / "host_ed25519")
        self.client_key = keygen(folder / "client_ed25519")
        self.other_key = keygen(folder / "other_ed25519")
        (folder / "authorized_keys").write_text((folder / "client_ed25519.pub").read_text())
        lines = [
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}", "StrictModes no", "PermitRootLogin yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "PidFile none",
            "LogLevel ERROR",
        ]
        if sftp:
            lines.append(f"Subsystem sftp {SFTP_SERVER}")
        (folder / "sshd_config").write_text("\n".join(lines) + "\n")
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError as exc:
                if self.proc.poll() is not None:
                    raise RuntimeError("sshd died: " + self.proc.stdout.read().decode()) from exc
                time.sleep(0.05)
        raise RuntimeError("sshd did not listen")

    def host_pub(self) -> str:
        return str(self.host_key) + ".pub"

    def target(self, **kwargs) -> SshTarget:
        kwargs.setdefault("key_filename", str(self.client_key))
        kwargs.setdefault("host_key", self.host_pub())
        return SshTarget("127.0.0.1", self.port, "root", **kwargs)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _need_sshd() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a private sshd as root")
    if not os.access(SSHD, os.X_OK):
        pytest.skip(f"no sshd at {SSHD} (apt-get install openssh-server)")


@pytest.fixture
def sshd(tmp_path):
    _need_sshd()
    if not os.access(SFTP_SERVER, os.X_OK):
        pytest.skip(f"no {SFTP_SERVER} (apt-get install openssh-sftp-server)")
    server = Sshd(tmp_path, sftp=True)
    yield server
    server.stop()


@pytest.fixture
def sshd_no_sftp(tmp_path):
    _need_sshd()
    server = Sshd(tmp_path, sftp=False)
    yield server
    server.stop()


# -- pure parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ("board", (None, "board", 22)),
    ("root@board", ("root", "board", 22)),
    ("root@10.0.0.2:2222", ("root", "10.0.0.2", 2222)),
    ("[::1]:2200", (None, "::1", 2200)),
    ("admin@[fe80::1]", ("admin", "fe80::1", 22)),
    ("::1", (None, "::1", 22)),
])
def test_parse_ssh_spec(spec, expected):
    assert parse_ssh_spec(spec) == expected


@pytest.mark.parametrize("spec", ["@host", "host:port", "host:0", "host:70000", "[::1", ""])
def test_parse_ssh_spec_rejects(spec):
    with pytest.raises(UsageError):
        parse_ssh_spec(spec)


def test_host_key_pin_forms(tmp_path):
    pub = keygen(tmp_path / "k").with_suffix(".pub")
    key = paramiko.PKey.from_path(str(tmp_path / "k"))
    line = pub.read_text().strip()
    assert HostKeyPin.parse_many(str(pub))[0].matches(key)
    assert HostKeyPin.parse_many(line)[0].matches(key)
    assert HostKeyPin.parse_many("[127.0.0.1]:2222 " + line)[0].matches(key)  # a known_hosts line
    assert HostKeyPin.parse_many(sha256_fingerprint(key))[0].matches(key)
    other = paramiko.PKey.from_path(str(keygen(tmp_path / "o")))
    assert not HostKeyPin.parse_many(line)[0].matches(other)
    with pytest.raises(HostKeyError, match="not a host key"):
        HostKeyPin.parse_many("hello")


# -- against OpenSSH --------------------------------------------------------------------------------

def test_run_status_stdout_stderr(sshd):
    with sshd.target() as target:
        result = target.run("echo out; echo err >&2; exit 7")
        assert (result.status, result.stdout, result.stderr) == (7, "out\n", "err\n")
        with pytest.raises(CommandFailed, match="exit status 7"):
            target.run("exit 7", check=True)
        assert target.run("cat", input=b"piped\n").stdout == "piped\n"
        big = target.run("head -c 3000000 /dev/zero | tr '\\0' x")
        assert len(big.stdout) == 3000000


def test_sequence_commands_are_quoted(sshd):
    hostile = "a b'c\"; touch /tmp/seccomp-py-pwned; $(id) `id` *"
    with sshd.target() as target:
        assert target.run(["printf", "%s", hostile], check=True).stdout == hostile
    assert not os.path.exists("/tmp/seccomp-py-pwned")


def test_timeout(sshd):
    with sshd.target() as target:
        started = time.monotonic()
        with pytest.raises(CommandTimeout) as info:
            target.run("echo partial; sleep 20.4242", timeout=1.5)
        assert time.monotonic() - started < 8
        assert info.value.stdout == "partial\n"
        assert target.run("echo still usable").stdout == "still usable\n"
        # The timed-out command's process group was killed, not left running.
        assert target.run("pgrep -f 'sleep 20.4242'").stdout == ""


def test_put_get_sftp(sshd, tmp_path):
    payload = os.urandom(1 << 20)
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)
    local.chmod(0o751)
    remote = str(tmp_path / "remote dir" / "copy.bin")
    with sshd.target() as target:
        assert target.uses_sftp
        target.run(["mkdir", "-p", os.path.dirname(remote)], check=True)
        target.put(local, remote)
        assert target.run(["stat", "-c", "%a", remote]).stdout.strip() == "751"
        back = tmp_path / "back" / "copy.bin"
        target.get(remote, back)
        assert back.read_bytes() == payload
        target.write_file(str(tmp_path / "new" / "dropin.conf"), "[Service]\n")
        assert target.read_file(str(tmp_path / "new" / "dropin.conf")) == b"[Service]\n"
        missing = tmp_path / "never.bin"
        with pytest.raises(TargetError, match="No such file"):
            target.get("/nonexistent/file", missing)
        assert not missing.exists()
        assert not list((tmp_path).glob(".never.bin.*"))


def test_put_get_without_sftp_server(sshd_no_sftp, tmp_path):
    """dropbear images have no sftp-server: the transfer falls back to exec + cat."""
    payload = os.urandom(300000)
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)
    remote = str(tmp_path / "it's a copy.bin")
    with sshd_no_sftp.target() as target:
        assert not target.uses_sftp
        target.put(local, remote, mode=0o600)
        assert Path(remote).read_bytes() == payload
        assert oct(os.stat(remote).st_mode & 0o777) == "0o600"
        target.get(remote, tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == payload
        target.write_file(str(tmp_path / "d" / "x.conf"), b"abc")
        assert target.read_file(str(tmp_path / "d" / "x.conf")) == b"abc"
        with pytest.raises(TargetError, match="No such file"):
            target.get("/nonexistent/file", tmp_path / "never.bin")
        assert not (tmp_path / "never.bin").exists()


def test_host_key_verification(sshd, tmp_path):
    key = paramiko.PKey.from_path(str(sshd.host_key))
    with sshd.target(host_key=sha256_fingerprint(key)) as target:
        assert target.server_fingerprint == sha256_fingerprint(key)
    with pytest.raises(HostKeyError, match="matches none of the pinned keys"):
        sshd.target(host_key=str(sshd.other_key) + ".pub").start()

    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(HostKeyError, match=sha256_fingerprint(key).replace("+", r"\+")):
        sshd.target(host_key=None, known_hosts=str(known)).start()
    known.write_text(f"[127.0.0.1]:{sshd.port} " + Path(sshd.host_pub()).read_text())
    with sshd.target(host_key=None, known_hosts=str(known)) as target:
        assert target.run("true").ok
    known.write_text(f"[127.0.0.1]:{sshd.port} " + Path(str(sshd.other_key) + ".pub").read_text())
    with pytest.raises(HostKeyError, match="differs from"):
        sshd.target(host_key=None, known_hosts=str(known)).start()
    with sshd.target(host_key=None, insecure_accept_host_key=True) as target:
        assert target.run("true").ok


def test_auth_and_reachability_errors(sshd):
    with pytest.raises(AuthenticationError, match="refused login"):
        sshd.target(key_filename=str(sshd.other_key)).start()
    with pytest.raises(AuthenticationError, match="cannot load SSH key"):
        sshd.target(key_filename=str(sshd.host_pub())).start()
    with pytest.raises(TargetUnreachable):
        SshTarget("127.0.0.1", free_port(), key_filename=str(sshd.client_key), host_key=sshd.host_pub(),
                  connect_timeout=3).start()


def test_connection_lost_mid_command(sshd):
    with sshd.target(keepalive=1) as target:
        # The shell's parent is sshd's per-connection process: killing it drops the connection.
        with pytest.raises(ConnectionLost):
            target.run("sleep 0.5; kill -9 $PPID; sleep 30", timeout=20)
        assert not target.connected


# -- against a paramiko server: the "none" and password methods ---------------------------------------

class _Server(paramiko.ServerInterface):
    def __init__(self, password):
        self.password = password

    def get_allowed_auths(self, username):
        return "none,password" if self.password == "" else "password"

    def check_auth_none(self, username):
        return paramiko.AUTH_SUCCESSFUL if self.password == "" and username == "root" else paramiko.AUTH_FAILED

    def check_auth_password(self, username, password):
        return paramiko.AUTH_SUCCESSFUL if password == self.password else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel, command):
        def answer():
            time.sleep(0.2)  # after paramiko has sent the exec reply, as a real server would
            channel.sendall(b"ran: " + command + b"\n")
            channel.send_exit_status(0)
            channel.close()
        threading.Thread(target=answer, daemon=True).start()
        return True


def _paramiko_server(tmp_path, password):
    host_key = paramiko.Ed25519Key.from_private_key_file(str(keygen(tmp_path / "srv")))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        transport = paramiko.Transport(conn)
        transport.add_server_key(host_key)
        transport.start_server(server=_Server(password))
        channel = transport.accept(10)  # keep a reference: a collected Channel closes itself
        time.sleep(3)
        del channel
        transport.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], str(tmp_path / "srv.pub")


def test_empty_password_uses_none_method(tmp_path):
    port, pub = _paramiko_server(tmp_path, "")
    with SshTarget("127.0.0.1", port, password="", host_key=pub) as target:
        # This server echoes the command line it got; SshTarget prefixes its pid marker.
        assert target.run(["echo", "hi"]).stdout.endswith("; echo hi\n")


def test_password_auth(tmp_path):
    port, pub = _paramiko_server(tmp_path, "s3cret")
    with SshTarget("127.0.0.1", port, password="s3cret", host_key=pub) as target:
        assert target.run("uptime").stdout.endswith("; uptime\n")


def test_wrong_password(tmp_path):
    port, pub = _paramiko_server(tmp_path, "s3cret")
    with pytest.raises(AuthenticationError, match="tried password"):
        SshTarget("127.0.0.1", port, password="nope", host_key=pub).start()


def test_exec_asks_again_when_a_fresh_channel_is_closed_before_the_command_starts():
    """dropbear sometimes closes a new channel before answering the exec request (CI, x86_64 guest):
    the command never started, so a new channel is asked for. Pure logic: stand-in channels."""
    import paramiko

    from seccomp_py.target.ssh import SshTarget

    class Chan:
        def __init__(self, fail):
            self.fail, self.closed, self.command = fail, False, None

        def exec_command(self, command):
            if self.fail:
                raise paramiko.SSHException("Channel closed.")
            self.command = command

        def close(self):
            self.closed = True

    class Transport:
        def __init__(self):
            self.opened = []

        def open_session(self, timeout=None):
            self.opened.append(Chan(fail=len(self.opened) < 2))
            return self.opened[-1]

        def is_active(self):
            return True

    target = SshTarget("127.0.0.1", 22, "root", insecure_accept_host_key=True)
    transport = Transport()
    chan = target._start_command(transport, "true")
    assert chan is transport.opened[2] and chan.command == "true"
    assert [c.closed for c in transport.opened] == [True, True, False]
