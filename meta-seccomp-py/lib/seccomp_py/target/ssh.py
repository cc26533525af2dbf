"""SshTarget: drive a board or a guest over SSH with paramiko.

Host keys are verified by default, against a pinned key/fingerprint or a known_hosts file; only
insecure_accept_host_key=True (meant for throwaway qemu guests) skips that. File transfer uses
SFTP and falls back to exec+cat for servers without an sftp-server (dropbear images).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import logging
import os
import posixpath
import re
import select
import socket
import stat
import tempfile
import time
from typing import IO, Callable, List, Optional, Sequence, Tuple, Union

from seccomp_py.errors import UsageError
from seccomp_py.target.base import (
    AuthenticationError,
    Command,
    CommandResult,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    PathLike,
    Target,
    TargetError,
    TargetUnreachable,
    command_line,
)

try:
    import paramiko
except ImportError:  # pragma: no cover - paramiko is a declared runtime dependency
    paramiko = None

_CHUNK = 65536
_PID_MARKER = b"__seccomp_py_pid="
PARAMIKO_LOG = "seccomp_py.target.ssh.paramiko"
logging.getLogger(PARAMIKO_LOG).setLevel(logging.CRITICAL)
log = logging.getLogger(__name__)
_RSA_TYPES = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]


def parse_ssh_spec(spec: str) -> Tuple[Optional[str], str, int]:
    """Split "[user@]host[:port]" (IPv6 as [addr]:port) into (user, host, port)."""
    user: Optional[str] = None
    rest = spec
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        if not user:
            raise UsageError(f"empty user name in SSH target {spec!r}")
    port = 22
    if rest.startswith("["):
        match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", rest)
        if not match:
            raise UsageError(f"cannot parse SSH target {spec!r}; use [user@]host[:port] or [v6addr]:port")
        host = match.group(1)
        if match.group(2):
            port = int(match.group(2))
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
        if not port_text.isdigit():
            raise UsageError(f"bad port {port_text!r} in SSH target {spec!r}")
        port = int(port_text)
    else:
        host = rest
    if not host:
        raise UsageError(f"no host in SSH target {spec!r}")
    if not 0 < port < 65536:
        raise UsageError(f"port out of range in SSH target {spec!r}")
    return user, host, port


def sha256_fingerprint(key) -> str:
    """OpenSSH's "SHA256:<base64, no padding>" form."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def md5_fingerprint(key) -> str:
    return "MD5:" + ":".join(f"{b:02x}" for b in hashlib.md5(key.asbytes()).digest())


class HostKeyPin:
    """A trusted host key: a full public key ("ssh-ed25519 AAAA...") or a fingerprint."""

    def __init__(self, key_type: Optional[str], blob: Optional[bytes], fingerprint: Optional[str]) -> None:
        self.key_type = key_type
        self.blob = blob
        self.fingerprint = fingerprint

    @classmethod
    def parse_many(cls, spec: Union[str, Sequence[str]]) -> List[HostKeyPin]:
        """Accepts a path to a .pub/known_hosts-like file, a public key line, a SHA256:/MD5:
        fingerprint, or a list of those."""
        items = [spec] if isinstance(spec, str) else list(spec)
        pins: List[HostKeyPin] = []
        for item in items:
            item = item.strip()
            if os.path.isfile(item):
                with open(item, encoding="utf-8") as handle:
                    lines = [ln.strip() for ln in handle if ln.strip() and not ln.startswith("#")]
                if not lines:
                    raise HostKeyError(f"{item}: no host key in file")
                for line in lines:
                    pins.append(cls._parse_one(line, item))
            else:
                pins.append(cls._parse_one(item, None))
        return pins

    @classmethod
    def _parse_one(cls, text: str, origin: Optional[str]) -> HostKeyPin:
        where = f"{origin}: " if origin else ""
        if text.startswith("SHA256:"):
            return cls(None, None, text.rstrip("="))
        if text.startswith("MD5:") or re.fullmatch(r"([0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2}", text):
            return cls(None, None, "MD5:" + text.split("MD5:")[-1].lower())
        words = text.split()
        # "ssh-ed25519 AAAA... comment" or a known_hosts line "host ssh-ed25519 AAAA..."
        for i, word in enumerate(words[:-1]):
            if word.startswith(("ssh-", "ecdsa-", "sk-")):
                try:
                    blob = base64.b64decode(words[i + 1], validate=True)
                except (ValueError, base64.binascii.Error) as exc:
                    raise HostKeyError(f"{where}bad base64 in host key: {exc}") from exc
                return cls(word, blob, None)
        raise HostKeyError(f"{where}not a host key or fingerprint: {text[:60]!r}")

    def matches(self, key) -> bool:
        if self.blob is not None:
            return key.asbytes() == self.blob
        if self.fingerprint and self.fingerprint.startswith("SHA256:"):
            return sha256_fingerprint(key) == self.fingerprint
        return md5_fingerprint(key) == self.fingerprint

    def key_types(self) -> List[str]:
        if self.key_type is None:
            return []
        return list(_RSA_TYPES) if self.key_type == "ssh-rsa" else [self.key_type]


def _load_private_key(path: str, passphrase: Optional[str]):
    if hasattr(paramiko.PKey, "from_path"):
        return paramiko.PKey.from_path(path, passphrase)
    last: Optional[Exception] = None
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(path, password=passphrase)
        except paramiko.SSHException as exc:
            last = exc
    raise last or paramiko.SSHException("unsupported key")


class SshTarget(Target):
    """A target reached over SSH.

    Credentials: key_filename (one path or several), password (""/empty for Yocto's
    empty-root-password images, tried with the "none" method first). With neither, the user's
    ~/.ssh/id_* keys are tried.
    Host keys: host_key pins one or more keys/fingerprints (or a file of them); otherwise
    known_hosts (default ~/.ssh/known_hosts) must list the host. insecure_accept_host_key=True
    accepts anything and is meant only for throwaway guests.
    """

    def __init__(
        self,
        host: str,
        port: int = 22,
        user: str = "root",
        *,
        key_filename: Optional[Union[str, Sequence[str]]] = None,
        passphrase: Optional[str] = None,
        password: Optional[str] = None,
        host_key: Optional[Union[str, Sequence[str]]] = None,
        known_hosts: Optional[str] = None,
        insecure_accept_host_key: bool = False,
        connect_timeout: float = 30.0,
        keepalive: float = 10.0,
        default_timeout: float = 300.0,
    ) -> None:
        if paramiko is None:
            raise TargetError("paramiko is not installed (pip install paramiko)")
        self.host = host
        self.port = port
        self.user = user
        self.key_filenames = [key_filename] if isinstance(key_filename, str) else list(key_filename or [])
        self.passphrase = passphrase
        self.password = password
        self.host_key_pins = HostKeyPin.parse_many(host_key) if host_key else []
        self.known_hosts = known_hosts
        self.insecure_accept_host_key = insecure_accept_host_key
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.default_timeout = default_timeout
        self.server_fingerprint: Optional[str] = None
        self._transport = None
        self._sftp = None
        self._sftp_unavailable = False

    @classmethod
    def from_spec(cls, spec: str, **kwargs) -> SshTarget:
        user, host, port = parse_ssh_spec(spec)
        if user is not None:
            kwargs["user"] = user
        return cls(host, port, **kwargs)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    # -- connection ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.connected:
            return
        self.connect()

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def connect(self, timeout: Optional[float] = None) -> None:
        """Open the connection, verify the host key and authenticate. Raises TargetUnreachable
        for errors worth retrying while a machine boots, HostKeyError/AuthenticationError otherwise."""
        self.close()
        timeout = self.connect_timeout if timeout is None else timeout
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise TargetUnreachable(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from exc
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        transport = paramiko.Transport(sock)
        # paramiko logs every failed handshake with a traceback; our exceptions say it once.
        transport.set_log_channel(PARAMIKO_LOG)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        try:
            # Ask for the key types we can verify; drop ones this paramiko no longer offers (ssh-rsa).
            options = transport.get_security_options()
            types = [t for t in self._pinned_key_types() if t in options.key_types]
            if types:
                options.key_types = types
            try:
                transport.start_client(timeout=timeout)
                # start_client() returns quietly when its timeout runs out mid-negotiation.
                server_key = transport.get_remote_server_key()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                # slirp accepts TCP before sshd runs: "Error reading SSH protocol banner" = not yet.
                raise TargetUnreachable(f"no SSH session with {self.host}:{self.port}: {exc}") from exc
            self._verify_host_key(server_key)
            self._authenticate(transport)
            if self.keepalive:
                transport.set_keepalive(int(max(1, self.keepalive)))
        except BaseException:
            transport.close()
            raise
        self._transport = transport

    def _pinned_key_types(self) -> List[str]:
        types: List[str] = []
        if self.insecure_accept_host_key:
            return types
        pins = self.host_key_pins or []
        if pins and all(pin.key_type for pin in pins):
            for pin in pins:
                types.extend(t for t in pin.key_types() if t not in types)
            return types
        if not pins:
            entry = self._known_hosts_entry()
            if entry:
                for name in entry:
                    extra = _RSA_TYPES if name == "ssh-rsa" else [name]
                    types.extend(t for t in extra if t not in types)
        return types

    def _known_hosts_path(self) -> str:
        return self.known_hosts or os.path.join(os.path.expanduser("~"), ".ssh", "known_hosts")

    def _known_hosts_entry(self):
        path = self._known_hosts_path()
        if not os.path.isfile(path):
            return None
        keys = paramiko.HostKeys()
        try:
            keys.load(path)
        except (OSError, paramiko.SSHException) as exc:
            raise HostKeyError(f"{path}: cannot read known_hosts: {exc}") from exc
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return keys.lookup(name)

    def _verify_host_key(self, key) -> None:
        fingerprint = sha256_fingerprint(key)
        self.server_fingerprint = fingerprint
        if self.insecure_accept_host_key:
            return
        if self.host_key_pins:
            if any(pin.matches(key) for pin in self.host_key_pins):
                return
            raise HostKeyError(
                f"host key of {self.host}:{self.port} ({key.get_name()} {fingerprint}) matches none of the "
                f"pinned keys; refusing to connect"
            )
        entry = self._known_hosts_entry()
        path = self._known_hosts_path()
        if entry is None:
            raise HostKeyError(
                f"{self.host}:{self.port} is not in {path} (its {key.get_name()} key is {fingerprint}). "
                f"Pin it with --host-key {fingerprint}, add it to known_hosts, or use "
                f"--insecure-accept-host-key for a throwaway guest"
            )
        known = entry.get(key.get_name())
        if known is None or known.asbytes() != key.asbytes():
            raise HostKeyError(
                f"host key of {self.host}:{self.port} ({key.get_name()} {fingerprint}) differs from {path}; "
                f"refusing to connect"
            )

    def _private_keys(self) -> List[object]:
        paths = list(self.key_filenames)
        if not paths and self.password is None:
            home = os.path.join(os.path.expanduser("~"), ".ssh")
            paths = [os.path.join(home, n) for n in ("id_ed25519", "id_ecdsa", "id_rsa")
                     if os.path.isfile(os.path.join(home, n))]
        keys = []
        for path in paths:
            try:
                keys.append(_load_private_key(path, self.passphrase))
            except (OSError, paramiko.SSHException, ValueError) as exc:
                if path in self.key_filenames:
                    raise AuthenticationError(f"{path}: cannot load SSH key: {exc}") from exc
        return keys

    def _authenticate(self, transport) -> None:
        tried: List[str] = []
        for key in self._private_keys():
            tried.append(f"key {key.get_name()}")
            try:
                transport.auth_publickey(self.user, key)
                return
            except paramiko.AuthenticationException:
                continue
            except paramiko.SSHException as exc:
                raise TargetUnreachable(f"SSH session with {self.address} broke during login: {exc}") from exc
        if self.password is not None:
            if self.password == "":
                tried.append("none")
                try:
                    transport.auth_none(self.user)
                    return
                except paramiko.AuthenticationException:
                    pass
            tried.append("password")
            try:
                transport.auth_password(self.user, self.password)
                return
            except paramiko.BadAuthenticationType as exc:
                if "keyboard-interactive" not in exc.allowed_types:
                    pass
                else:
                    tried.append("keyboard-interactive")
                    try:
                        transport.auth_interactive(self.user, self._answer_prompts)
                        return
                    except paramiko.AuthenticationException:
                        pass
            except paramiko.AuthenticationException:
                pass
        if not tried:
            raise AuthenticationError(f"no credentials for {self.address}: give a key file or a password")
        raise AuthenticationError(f"{self.address} refused login (tried {', '.join(tried)})")

    def _answer_prompts(self, _title, _instructions, prompts):
        return [self.password or "" for _prompt in prompts]

    def close(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
            self._sftp = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def stop(self) -> None:
        self.close()

    def _require_transport(self):
        if self._transport is None:
            self.connect()
        elif not self._transport.is_active():
            self.close()
            raise ConnectionLost(f"SSH connection to {self.address} was lost")
        return self._transport

    # -- commands -------------------------------------------------------------------------------

    def run(self, cmd: Command, timeout: Optional[float] = None, check: bool = False,
            input: Optional[Union[bytes, str]] = None) -> CommandResult:
        out: List[bytes] = []
        err: List[bytes] = []
        line = command_line(cmd)
        status, duration = self._exec(line, timeout, input, out.append, err.append)
        result = CommandResult(line, status, _text(out), _text(err), duration)
        return result.check() if check else result

    def run_to_file(self, cmd: Command, sink: IO[bytes], timeout: Optional[float] = None,
                    check: bool = False) -> CommandResult:
        err: List[bytes] = []
        line = command_line(cmd)
        status, duration = self._exec(line, timeout, None, sink.write, err.append)
        result = CommandResult(line, status, "", _text(err), duration)
        return result.check() if check else result

    def _exec(self, line: str, timeout: Optional[float], input_data, on_stdout: Callable[[bytes], object],
              on_stderr: Callable[[bytes], object]) -> Tuple[int, float]:
        transport = self._require_transport()
        timeout = self.default_timeout if timeout is None else timeout
        started = time.monotonic()
        deadline = started + timeout if timeout and timeout > 0 else None
        # sshd and dropbear start each command in a new session; its leader's pid lets a
        # timeout kill the whole process group instead of leaving it running.
        chan = self._start_command(transport, f"echo {_PID_MARKER.decode()}$$ >&2; {line}")
        out_seen: List[bytes] = []
        err_seen: List[bytes] = []

        def emit_out(data: bytes) -> None:
            on_stdout(data)
            if len(out_seen) < 64:
                out_seen.append(data)

        def emit_err(data: bytes) -> None:
            on_stderr(data)
            if len(err_seen) < 64:
                err_seen.append(data)

        sniffer = _PidSniffer(emit_err)

        def lost(exc: Optional[BaseException] = None) -> ConnectionLost:
            self.close()
            return ConnectionLost(f"SSH connection to {self.address} was lost while running: {line}")

        try:
            # A quick command may be done, its channel closed, before its stdin is: that is fine.
            with contextlib.suppress(paramiko.SSHException, OSError):
                if input_data is not None:
                    payload = input_data.encode() if isinstance(input_data, str) else input_data
                    for offset in range(0, len(payload), _CHUNK):
                        chan.sendall(payload[offset:offset + _CHUNK])
                        self._drain(chan, emit_out, sniffer.feed)
                chan.shutdown_write()
            wakeup = chan.fileno()
            while True:
                self._drain(chan, emit_out, sniffer.feed)
                if chan.exit_status_ready() and (chan.eof_received or chan.closed) and not (
                        chan.recv_ready() or chan.recv_stderr_ready()):
                    break
                if chan.closed:
                    break
                if not transport.is_active():
                    raise lost()
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    sniffer.flush()
                    self._kill_remote_group(sniffer.pid)
                    raise CommandTimeout(line, timeout, _text(out_seen), _text(err_seen))
                wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
                readable, _, _ = select.select([wakeup], [], [], wait)
                if readable and not (chan.recv_ready() or chan.recv_stderr_ready()):
                    time.sleep(0.005)  # buffer closed (EOF) but exit status not in yet
            sniffer.flush()
            status = chan.recv_exit_status() if chan.exit_status_ready() else -1
            if status == -1 and not transport.is_active():
                raise lost()  # the channel closed because the whole connection went away
            return status, time.monotonic() - started
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if not transport.is_active():
                raise lost(exc) from exc
            raise TargetError(f"SSH channel error while running {line}: {exc}") from exc
        finally:
            chan.close()

    def _start_command(self, transport: paramiko.Transport, command: str) -> paramiko.Channel:
        """A channel running command. dropbear sometimes closes a fresh channel before it answers the
        exec request (seen in CI right after a file transfer): the command did not start, so ask again
        on a new channel while the connection lives."""
        for attempt in range(5):
            chan = self._open_channel(transport)
            try:
                chan.exec_command(command)
                return chan
            except (paramiko.SSHException, EOFError, OSError) as exc:
                chan.close()
                if not transport.is_active():
                    self.close()
                    raise ConnectionLost(f"SSH connection to {self.address} was lost while starting: "
                                         f"{command}") from exc
                if attempt == 4:
                    raise TargetError(f"SSH channel error while starting {command}: {exc}") from exc
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _open_channel(self, transport: paramiko.Transport) -> paramiko.Channel:
        # dropbear refuses a new channel for a moment after it closed a failed one (the sftp
        # subsystem probe on images without sftp-server): retry while the connection is alive.
        for attempt in range(5):
            try:
                return transport.open_session(timeout=self.connect_timeout)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if attempt == 4 or not transport.is_active():
                    self.close()
                    raise ConnectionLost(f"cannot open a channel to {self.address}: {exc}") from exc
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _kill_remote_group(self, pid: Optional[int]) -> None:
        if pid is None or not self.connected:
            return
        script = f"kill -TERM -- -{pid} 2>/dev/null; sleep 1; kill -KILL -- -{pid} 2>/dev/null; true"
        try:
            self._exec(script, 15, None, lambda _data: None, lambda _data: None)
        except TargetError as exc:
            log.debug("could not kill remote process group %s: %s", pid, exc)

    @staticmethod
    def _drain(chan, on_stdout, on_stderr) -> None:
        while chan.recv_ready():
            data = chan.recv(_CHUNK)
            if not data:
                break
            on_stdout(data)
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(_CHUNK)
            if not data:
                break
            on_stderr(data)

    # -- files ----------------------------------------------------------------------------------

    def _sftp_client(self):
        """The SFTP session, or None when the server has no sftp-server (dropbear)."""
        if self._sftp_unavailable:
            return None
        if self._sftp is None:
            transport = self._require_transport()
            try:
                self._sftp = paramiko.SFTPClient.from_transport(transport)
            except (paramiko.SSHException, EOFError, OSError):
                if not transport.is_active():
                    self.close()
                    raise ConnectionLost(f"SSH connection to {self.address} was lost") from None
                self._sftp_unavailable = True
                return None
        return self._sftp

    @property
    def uses_sftp(self) -> bool:
        return self._sftp_client() is not None

    def put(self, local: PathLike, remote: str, mode: Optional[int] = None) -> None:
        local = os.fspath(local)
        try:
            st = os.stat(local)
        except OSError as exc:
            raise TargetError(f"{local}: cannot read: {exc.strerror}") from exc
        mode = stat.S_IMODE(st.st_mode) if mode is None else mode
        sftp = self._sftp_client()
        if sftp is not None:
            try:
                sftp.put(local, remote)
                sftp.chmod(remote, mode)
                return
            except OSError as exc:
                raise TargetError(f"cannot copy {local} to {self.address}:{remote}: {exc}") from exc
        with open(local, "rb") as handle:
            data = handle.read()
        try:
            self.write_file(remote, data, mode, parents=False)
        except TargetError as exc:
            raise TargetError(f"cannot copy {local} to {self.address}:{remote}: {exc}") from exc

    def get(self, remote: str, local: PathLike) -> None:
        local = os.fspath(local)
        folder = os.path.dirname(os.path.abspath(local))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(local) + ".", suffix=".tmp", dir=folder)
        try:
            sftp = self._sftp_client()
            if sftp is not None:
                os.close(fd)
                fd = -1
                try:
                    sftp.get(remote, tmp)
                except OSError as exc:
                    raise TargetError(f"cannot copy {self.address}:{remote}: {_os_reason(exc)}") from exc
            else:
                with os.fdopen(fd, "wb") as sink:
                    fd = -1
                    result = self.run_to_file(["cat", remote], sink)
                if not result.ok:
                    raise TargetError(f"cannot copy {self.address}:{remote}: {result.stderr.strip()}")
            os.chmod(tmp, 0o644)
            os.replace(tmp, local)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def write_file(self, remote: str, data: Union[bytes, str], mode: int = 0o644, parents: bool = True) -> None:
        payload = data.encode() if isinstance(data, str) else data
        sftp = self._sftp_client()
        if sftp is None:
            super().write_file(remote, payload, mode, parents)
            return
        folder = posixpath.dirname(remote)
        if parents and folder:
            self.run(["mkdir", "-p", folder], check=True)
        tmp = f"{remote}.seccomp-py.tmp"
        try:
            with sftp.open(tmp, "wb") as handle:
                handle.write(payload)
            sftp.chmod(tmp, mode)
            sftp.posix_rename(tmp, remote)
        except OSError as exc:
            raise TargetError(f"cannot write {self.address}:{remote}: {_os_reason(exc)}") from exc

    def read_file(self, remote: str) -> bytes:
        sftp = self._sftp_client()
        if sftp is None:
            return super().read_file(remote)
        try:
            with sftp.open(remote, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise TargetError(f"cannot read {self.address}:{remote}: {_os_reason(exc)}") from exc

    def __repr__(self) -> str:
        return f"SshTarget({self.address})"


class _PidSniffer:
    """Takes the "<marker><pid>" line our command wrapper writes first on stderr out of the stream."""

    def __init__(self, sink: Callable[[bytes], object]) -> None:
        self.sink = sink
        self.buffer = b""
        self.done = False
        self.pid: Optional[int] = None

    def feed(self, data: bytes) -> None:
        if self.done:
            self.sink(data)
            return
        self.buffer += data
        head = self.buffer[:len(_PID_MARKER)]
        if not _PID_MARKER.startswith(head):
            self.flush()
        elif b"\n" in self.buffer:
            first, rest = self.buffer.split(b"\n", 1)
            number = first[len(_PID_MARKER):]
            if first.startswith(_PID_MARKER) and number.isdigit():
                self.pid = int(number)
                self.buffer = rest
            self.flush()
        elif len(self.buffer) > 64:
            self.flush()

    def flush(self) -> None:
        self.done = True
        if self.buffer:
            data, self.buffer = self.buffer, b""
            self.sink(data)


def _text(chunks: List[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", errors="replace")


def _os_reason(exc: OSError) -> str:
    if exc.errno and exc.errno in errno.errorcode:
        return os.strerror(exc.errno)
    return str(exc)


__all__ = ["HostKeyPin", "SshTarget", "md5_fingerprint", "parse_ssh_spec", "sha256_fingerprint"]
