"""QemuTarget: boot an image from its Yocto *.qemuboot.conf and drive it over SSH.

The qemu command line is built the way runqemu builds it (slirp networking, kernel + rootfs from
the deploy dir, qb_* options), with these differences for unattended profiling:
- the SSH port (and any extra forwarded port) is a free local port, so several guests can run;
- the serial console goes to a log file, and qemu runs with -snapshot by default;
- TCG unless KVM is asked for (here /dev/kvm exists but a KVM guest hangs at boot);
- audit=1 audit_backlog_limit=8192 are appended to the kernel command line;
- qemu lives in its own session, dies with its parent (PR_SET_PDEATHSIG), and is stopped by a
  clean poweroff, then QMP quit, then SIGTERM/SIGKILL: no qemu process outlives us.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Dict, List, Optional, Sequence, Union

from seccomp_py.errors import UsageError
from seccomp_py.target.base import (
    BootError,
    Command,
    CommandResult,
    HostKeyError,
    PathLike,
    Target,
    TargetError,
    TargetUnreachable,
)
from seccomp_py.target.qemuboot import QemuBootConfig
from seccomp_py.target.ssh import SshTarget

log = logging.getLogger(__name__)

PROFILING_KERNEL_ARGS = ("audit=1", "audit_backlog_limit=8192")
SLIRP_MAC = "52:54:00:12:35:02"
_DEFAULT_CONSOLE = {"qemu-system-x86_64": "ttyS0", "qemu-system-i386": "ttyS0"}
_COMPRESSED = (".zst", ".xz", ".bz2", ".gz")
_PR_SET_PDEATHSIG = 1

_live_targets: weakref.WeakSet[QemuTarget] = weakref.WeakSet()
_live_lock = threading.Lock()


def _kill_all_at_exit() -> None:
    with _live_lock:
        targets = list(_live_targets)
    for target in targets:
        target._kill_now()


atexit.register(_kill_all_at_exit)

try:
    _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux/glibc: fall back to atexit + context manager only
    _libc_prctl = None


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL qemu if the Python process (the forking thread) dies, even by SIGKILL."""
    if _libc_prctl is not None:
        _libc_prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (qemu may still lose the race; start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def find_qemu(config: QemuBootConfig) -> str:
    """runqemu's order: the build's own qemu in staging_bindir_native, then PATH."""
    name = config.system_name
    bindir = config.staging_bindir_native
    if bindir is not None:
        candidate = bindir / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
        log.debug("%s not in staging_bindir_native %s, trying PATH", name, bindir)
    found = shutil.which(name)
    if found:
        return found
    raise TargetError(
        f"{config.path}: no {name} in staging_bindir_native ({bindir}) or on PATH; "
        f"build qemu-system-native or install the distribution's qemu-system package"
    )


def _qemu_escape(value: str) -> str:
    """Commas separate qemu sub-options; a literal comma is written twice."""
    return value.replace(",", ",,")


def host_keys_from_image(image: Path) -> List[str]:
    """Public host keys baked into an ext2/3/4 image (read with debugfs, without mounting)."""
    debugfs = shutil.which("debugfs") or ("/sbin/debugfs" if os.path.exists("/sbin/debugfs") else None)
    if debugfs is None:
        return []
    keys = []
    for kind in ("ed25519", "ecdsa", "rsa"):
        result = subprocess.run([debugfs, "-R", f"cat /etc/ssh/ssh_host_{kind}_key.pub", str(image)],
                                capture_output=True, text=True, check=False)
        line = result.stdout.strip()
        if result.returncode == 0 and line.startswith(("ssh-", "ecdsa-")):
            keys.append(line.splitlines()[0])
    return keys


class QmpClient:
    """Just enough QMP to ask qemu to quit or power down."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def execute(self, command: str) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            stream = sock.makefile("rwb")
            json.loads(stream.readline() or b"{}")  # greeting
            for name in ("qmp_capabilities", command):
                stream.write(json.dumps({"execute": name}).encode() + b"\n")
                stream.flush()
                while True:
                    line = stream.readline()
                    if not line:
                        return {}
                    reply = json.loads(line)
                    if "return" in reply or "error" in reply:
                        break
            return reply


class QemuTarget(Target):
    """A qemu guest booted from a qemuboot.conf, reached over SSH through slirp hostfwd.

    Use as a context manager. Credentials are the SshTarget ones (key_filename, password).
    workdir holds console.log, qemu.log and qemu.argv; without one a temporary folder is used and
    removed after a clean exit from the with-block (kept on errors, for the console log).
    qemu is killed if the thread that started it dies (PR_SET_PDEATHSIG): start targets from a
    thread that outlives them, normally the main thread.
    Host key: host_key pins one (a .pub file, key line or SHA256 fingerprint); without it the
    keys baked into an ext4 rootfs are pinned; insecure_accept_host_key=True accepts anything.
    forward_ports: extra guest TCP ports to reach from the host (see .forwarded).
    """

    def __init__(
        self,
        qemuboot: PathLike,
        *,
        user: str = "root",
        key_filename: Optional[Union[str, Sequence[str]]] = None,
        password: Optional[str] = None,
        host_key: Optional[Union[str, Sequence[str]]] = None,
        insecure_accept_host_key: bool = False,
        accel: Optional[str] = None,
        snapshot: bool = True,
        boot_timeout: float = 600.0,
        poweroff_timeout: float = 60.0,
        kernel_args: Sequence[str] = PROFILING_KERNEL_ARGS,
        extra_qemu_args: Sequence[str] = (),
        forward_ports: Sequence[int] = (),
        workdir: Optional[PathLike] = None,
        mem_mb: Optional[int] = None,
        smp: Optional[int] = None,
        rootfs: Optional[PathLike] = None,
        default_timeout: float = 300.0,
    ) -> None:
        self.config = QemuBootConfig.load(qemuboot)
        self.user = user
        self.key_filename = key_filename
        self.password = password
        self.host_key = host_key
        self.insecure_accept_host_key = insecure_accept_host_key
        self.accel = (accel or os.environ.get("SECCOMP_PY_QEMU_ACCEL") or "tcg").lower()
        if self.accel not in ("tcg", "kvm"):
            raise UsageError(f"accel must be tcg or kvm, not {self.accel!r}")
        self.snapshot = snapshot
        self.boot_timeout = boot_timeout
        self.poweroff_timeout = poweroff_timeout
        self.kernel_args = list(kernel_args)
        self.extra_qemu_args = list(extra_qemu_args)
        self.forward_ports = [int(p) for p in forward_ports]
        self.mem_mb = mem_mb
        self.smp = smp
        self.rootfs_override = Path(rootfs) if rootfs else None
        self.default_timeout = default_timeout
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else None
        self.ssh_port: Optional[int] = None
        self.forwarded: Dict[int, int] = {}
        self.argv: List[str] = []
        self.boot_seconds: Optional[float] = None
        self.boot_attempts = 0
        self.ssh: Optional[SshTarget] = None
        self._proc: Optional[subprocess.Popen] = None
        self._qemu_log: Optional[IO[bytes]] = None
        self._qmp_dir: Optional[str] = None
        self._qmp_path: Optional[str] = None
        self._rootfs: Optional[Path] = None

    # -- paths ----------------------------------------------------------------------------------

    @property
    def console_log(self) -> Path:
        return self._workdir() / "console.log"

    @property
    def qemu_log(self) -> Path:
        return self._workdir() / "qemu.log"

    @property
    def qmp_socket(self) -> str:
        if self._qmp_path is None:
            candidate = str(self._workdir() / "qmp.sock")
            if len(candidate) < 100:  # sun_path holds 108 bytes
                self._qmp_path = candidate
            else:
                self._qmp_dir = tempfile.mkdtemp(prefix="seccomp-py-qmp-")
                self._qmp_path = os.path.join(self._qmp_dir, "qmp.sock")
        return self._qmp_path

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _workdir(self) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="seccomp-py-qemu-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir

    # -- command line ---------------------------------------------------------------------------

    def rootfs_image(self) -> Path:
        """The disk image qemu will use; a compressed one (.ext4.zst ...) is unpacked into the workdir."""
        if self._rootfs is not None:
            return self._rootfs
        image = self.rootfs_override or self.config.rootfs()
        if not image.exists():
            raise TargetError(f"rootfs {image} does not exist")
        if image.name.endswith(_COMPRESSED):
            image = self._decompress(image)
        self._rootfs = image
        return image

    def _decompress(self, image: Path) -> Path:
        target = self._workdir() / image.name.rsplit(".", 1)[0]
        tools = {".zst": ["zstd", "-d", "-q", "-c"], ".xz": ["xz", "-d", "-c"], ".bz2": ["bzip2", "-d", "-c"],
                 ".gz": ["gzip", "-d", "-c"]}
        argv = tools[image.suffix]
        if shutil.which(argv[0]) is None:
            raise TargetError(f"{image}: need {argv[0]} to unpack the rootfs")
        log.info("unpacking %s", image)
        with open(target, "wb") as sink:
            result = subprocess.run([*argv, str(image)], stdout=sink, stderr=subprocess.PIPE, check=False)
        if result.returncode != 0:
            raise TargetError(f"{image}: {argv[0]} failed: {result.stderr.decode(errors='replace').strip()}")
        return target

    def kernel_cmdline(self) -> str:
        """root=... rw, ip=, console=, qb_kernel_cmdline_append, then our profiling args (runqemu's order)."""
        cfg = self.config
        words: List[str] = []
        if cfg.get("qb_kernel_cmdline") != "none":
            if self._is_initramfs_rootfs():
                words += ["root=/dev/ram0", "rw"]
            else:
                root = (cfg.get("qb_kernel_root") or "/dev/vda").split()
                if "ro" not in root and "rw" not in root:
                    root.append("rw")
                words.append("root=" + root[0])
                words += root[1:]
            words.append(cfg.get("qb_cmdline_ip_slirp") or "ip=dhcp")
            consoles = cfg.serial_consoles or [_DEFAULT_CONSOLE.get(cfg.system_name, "ttyAMA0")]
            # Only the first: the last console= becomes /dev/console, and we log the first serial port.
            words.append("console=" + consoles[0])
            append = cfg.get("qb_kernel_cmdline_append")
            if append:
                words += append.split()
        words += self.kernel_args
        return " ".join(words)

    def _is_initramfs_rootfs(self) -> bool:
        return ".cpio" in (self.rootfs_override.name if self.rootfs_override else "." + self.config.fstype)

    def _netdev(self, ssh_port: int) -> List[str]:
        """qb_slirp_opt with its hostfwd rules replaced by ours on free ports."""
        opts = self.config.options("qb_slirp_opt")
        spec = "user,id=net0"
        extra: List[str] = []
        if opts:
            if "-netdev" in opts:
                index = opts.index("-netdev")
                spec = opts[index + 1] if index + 1 < len(opts) else spec
                extra = opts[:index] + opts[index + 2:]
            else:
                spec = opts[0]
        parts = [p for p in spec.split(",") if not p.startswith("hostfwd=")]
        parts.append(f"hostfwd=tcp:127.0.0.1:{ssh_port}-:22")
        for guest_port, host_port in sorted(self.forwarded.items()):
            parts.append(f"hostfwd=tcp:127.0.0.1:{host_port}-:{guest_port}")
        return [*extra, "-netdev", ",".join(parts)]

    def build_argv(self, qemu: Optional[str] = None, ssh_port: Optional[int] = None) -> List[str]:
        cfg = self.config
        qemu = qemu or find_qemu(cfg)
        ssh_port = ssh_port or self.ssh_port or 2222
        argv = [qemu]
        network_device = cfg.get("qb_network_device") or "-device virtio-net-pci,netdev=net0,mac=@MAC@"
        argv += [w.replace("@MAC@", SLIRP_MAC) for w in _split(network_device, cfg)]
        argv += self._netdev(ssh_port)
        argv += cfg.options("qb_rng")
        image = self.rootfs_image()
        if self._is_initramfs_rootfs():
            argv += ["-initrd", str(image)]
        elif cfg.get("qb_rootfs_opt"):
            argv += [w.replace("@ROOTFS@", _qemu_escape(str(image))) for w in cfg.options("qb_rootfs_opt")]
        else:
            argv += ["-drive", f"file={_qemu_escape(str(image))},if=virtio,format=raw"]
        argv += [cfg.substitute(w) for w in cfg.options("qb_opt_append")]
        if self.accel == "kvm":
            if not os.access("/dev/kvm", os.R_OK | os.W_OK):
                raise TargetError("accel=kvm asked for, but /dev/kvm is not usable; use accel=tcg")
            argv += ["-accel", "kvm"]
            argv += cfg.options("qb_machine")
            argv += cfg.options("qb_cpu_kvm") or cfg.options("qb_cpu")
        else:
            argv += ["-accel", "tcg"]
            argv += cfg.options("qb_machine")
            argv += cfg.options("qb_cpu")
        argv += ["-smp", str(self.smp)] if self.smp else cfg.options("qb_smp")
        mem = self.mem_mb or cfg.memory_mb or 256
        argv += ["-m", str(mem)]
        if self.snapshot:
            argv.append("-snapshot")
        console = _qemu_escape(str(self.console_log))
        argv += [
            "-display", "none",
            "-monitor", "none",
            "-chardev", f"file,id=seccomp-console,path={console}",
            "-serial", "chardev:seccomp-console",
            "-qmp", f"unix:{_qemu_escape(self.qmp_socket)},server=on,wait=off",
            "-no-reboot",
            "-kernel", str(cfg.kernel),
        ]
        cmdline = self.kernel_cmdline()
        if cmdline:
            argv += ["-append", cmdline]
        dtb = cfg.dtb
        if dtb is not None:
            argv += ["-dtb", str(dtb)]
        argv += self.extra_qemu_args
        return argv

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        qemu = find_qemu(self.config)
        host_key = self._host_key_for_ssh()
        started = first_started = time.monotonic()
        hangs = 0
        for attempt in range(3 + BOOT_HANG_RETRIES):
            self.ssh_port = free_port()
            self.forwarded = {guest: free_port() for guest in self.forward_ports}
            self.argv = self.build_argv(qemu, self.ssh_port)
            self._spawn()
            try:
                self._wait_for_ssh(started, host_key)
                break
            except _PortTaken:
                log.info("host port taken by someone else, retrying (attempt %d)", attempt + 1)
                self._kill_now()
            except _BootHang as hang:
                self._kill_now()
                hangs += 1
                if hangs > BOOT_HANG_RETRIES:
                    raise BootError(f"the guest kernel hung while booting, {hangs} times: {hang}.\nconsole "
                                    f"({self.console_log}) ends:\n{_tail(self.console_log, 15)}") from None
                log.warning("the guest kernel hung while booting (%s); booting again", hang)
                started = time.monotonic()  # a fresh deadline for the new boot; boot_seconds counts both
            except BaseException:
                self._kill_now()
                raise
        else:
            raise BootError("qemu could not bind a free local port for SSH forwarding three times")
        self.boot_attempts = 1 + hangs
        self.boot_seconds = time.monotonic() - first_started
        log.info("guest up: ssh on 127.0.0.1:%d after %.1f s", self.ssh_port, self.boot_seconds)

    def _host_key_for_ssh(self):
        if self.insecure_accept_host_key or self.host_key:
            return self.host_key
        image = self.rootfs_image()
        keys = host_keys_from_image(image) if not self._is_initramfs_rootfs() else []
        if keys:
            return keys
        raise HostKeyError(
            f"{self.config.path}: no host key to verify the guest against (none found in {image}; "
            f"images that make their keys at first boot have none). Pass host_key=/--host-key, or "
            f"insecure_accept_host_key=True/--insecure-accept-host-key for a throwaway guest"
        )

    def _spawn(self) -> None:
        workdir = self._workdir()
        for path in (self.console_log, self.qemu_log):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.qmp_socket)
        (workdir / "qemu.argv").write_text(" ".join(_shell_word(w) for w in self.argv) + "\n")
        self._qemu_log = open(self.qemu_log, "wb")  # noqa: SIM115 - closed in _kill_now()
        log.info("starting %s (console: %s)", os.path.basename(self.argv[0]), self.console_log)
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._qemu_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # terminal Ctrl-C reaches us, not qemu; we stop it in order
            preexec_fn=_die_with_parent,
            close_fds=True,
        )
        with _live_lock:
            _live_targets.add(self)

    def _wait_for_ssh(self, started: float, host_key) -> None:
        deadline = started + self.boot_timeout
        self.ssh = SshTarget(
            "127.0.0.1", self.ssh_port, self.user,
            key_filename=self.key_filename,
            password=self.password,
            host_key=host_key,
            insecure_accept_host_key=self.insecure_accept_host_key,
            connect_timeout=10.0,
            default_timeout=self.default_timeout,
        )
        last: Optional[Exception] = None
        while True:
            status = self._proc.poll() if self._proc else -1
            if status is not None:
                qemu_out = _tail(self.qemu_log, 20)
                if "Could not set up host forwarding rule" in qemu_out:
                    raise _PortTaken()
                raise BootError(
                    f"qemu exited with status {status} before SSH came up.\n"
                    f"qemu said:\n{qemu_out}\nconsole ({self.console_log}) ends:\n{_tail(self.console_log, 15)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BootError(
                    f"no SSH answer on 127.0.0.1:{self.ssh_port} after {self.boot_timeout:g} s "
                    f"(last error: {last}).\nconsole ({self.console_log}) ends:\n{_tail(self.console_log, 15)}"
                )
            try:
                self.ssh.connect(timeout=max(1.0, min(10.0, remaining)))
                return
            except TargetUnreachable as exc:
                last = exc
            hang = boot_hang(_tail(self.console_log, 1000, size=65536))
            if hang:
                raise _BootHang(hang)
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def stop(self, graceful: bool = True) -> None:
        """Power the guest off cleanly (graceful), else quit qemu; kill it if it does not go."""
        proc = self._proc
        try:
            if proc is not None and proc.poll() is None and graceful and self.ssh is not None and \
                    self.ssh.connected:
                self._poweroff(proc)
        finally:
            self._kill_now()

    def _poweroff(self, proc: subprocess.Popen) -> None:
        try:
            # systemd images: systemctl; busybox/sysvinit: poweroff. The session may die under us.
            self.ssh.run("systemctl poweroff 2>/dev/null || poweroff", timeout=20)
        except TargetError as exc:
            log.debug("poweroff command: %s", exc)
        try:
            proc.wait(timeout=self.poweroff_timeout)
            log.info("guest powered off")
        except subprocess.TimeoutExpired:
            log.warning("guest did not power off within %g s; stopping qemu", self.poweroff_timeout)

    def _kill_now(self) -> None:
        """QMP quit, then SIGTERM, then SIGKILL to qemu's process group. Idempotent."""
        proc = self._proc
        try:
            if self.ssh is not None:
                self.ssh.close()
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    QmpClient(self.qmp_socket, timeout=2.0).execute("quit")
                if not _wait(proc, 5.0):
                    _signal_group(proc, signal.SIGTERM)
                    if not _wait(proc, 5.0):
                        _signal_group(proc, signal.SIGKILL)
                        proc.wait()
        finally:
            if proc is not None and proc.poll() is None:  # interrupted above: never leave it behind
                _signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    proc.wait(timeout=10)
            with _live_lock:
                _live_targets.discard(self)
            if self._qemu_log is not None:
                self._qemu_log.close()
                self._qemu_log = None
            if self._qmp_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._qmp_path)
                self._qmp_path = None
            if self._qmp_dir is not None:
                shutil.rmtree(self._qmp_dir, ignore_errors=True)
                self._qmp_dir = None
            if self._rootfs is not None and self.workdir is not None and \
                    self._rootfs.parent == self.workdir:
                with contextlib.suppress(FileNotFoundError):
                    self._rootfs.unlink()
                self._rootfs = None

    def cleanup(self) -> None:
        """Stop, then remove the workdir if we made it (console and qemu logs go with it)."""
        self.stop(graceful=False)
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __exit__(self, exc_type, exc, tb) -> None:
        # On an exception or Ctrl-C skip the polite poweroff: get qemu gone now, and keep the
        # console log the error may point at. After a clean run drop our own temporary workdir.
        self.stop(graceful=exc_type is None)
        if exc_type is None:
            self.cleanup()

    # -- delegation to the SSH session ------------------------------------------------------------

    def _session(self) -> SshTarget:
        if self.ssh is None or self._proc is None:
            raise TargetError("the qemu target is not started")
        if self._proc.poll() is not None:
            raise TargetError(f"qemu exited with status {self._proc.returncode}; console log: {self.console_log}")
        return self.ssh

    def run(self, cmd: Command, timeout: Optional[float] = None, check: bool = False,
            input: Optional[Union[bytes, str]] = None) -> CommandResult:
        return self._session().run(cmd, timeout=timeout, check=check, input=input)

    def run_to_file(self, cmd: Command, sink: IO[bytes], timeout: Optional[float] = None,
                    check: bool = False) -> CommandResult:
        return self._session().run_to_file(cmd, sink, timeout=timeout, check=check)

    def put(self, local: PathLike, remote: str, mode: Optional[int] = None) -> None:
        self._session().put(local, remote, mode)

    def get(self, remote: str, local: PathLike) -> None:
        self._session().get(remote, local)

    def write_file(self, remote: str, data: Union[bytes, str], mode: int = 0o644, parents: bool = True) -> None:
        self._session().write_file(remote, data, mode, parents)

    def read_file(self, remote: str) -> bytes:
        return self._session().read_file(remote)

    def __repr__(self) -> str:
        return f"QemuTarget({str(self.config.path)!r}, ssh_port={self.ssh_port})"


class _PortTaken(TargetUnreachable):
    pass


def _split(value: str, cfg: QemuBootConfig) -> List[str]:
    import shlex

    try:
        return shlex.split(value)
    except ValueError as exc:
        raise TargetError(f"{cfg.path}: cannot split {value!r}: {exc}") from exc


def _shell_word(word: str) -> str:
    import shlex

    return shlex.quote(word)


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


# A kernel that locked up while booting does not recover: seen under TCG on a loaded 2-core host, with
# kauditd spinning in netlink_broadcast during early module loading (Debian 6.1, audit=1). Retried once.
BOOT_HANG_RETRIES = 1
_BOOT_HANG = re.compile(r"watchdog: BUG: soft lockup - CPU#\d+ stuck for \d+s!.*|"
                        r"INFO: task \S+ blocked for more than \d+ seconds\.")


class _BootHang(Exception):
    pass


def boot_hang(console_tail: str) -> Optional[str]:
    """The console line that shows the guest kernel is stuck, if any."""
    match = _BOOT_HANG.search(console_tail)
    return match.group(0).strip() if match else None


def _tail(path: Path, lines: int, size: int = 8192) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            handle.seek(max(0, end - size))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no output)"
    text = text.replace("\r", "")
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"
