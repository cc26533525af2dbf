"""Target options shared by profile, verify and doctor: --qemuboot FILE | --ssh [user@]host[:port].

    add_target_arguments(parser)
    session = TargetSession.from_args(args)
    with session.started(progress):           # boots/connects; qemu never outlives the block
        session.target.run([...])
        session.host_address, session.forwarded
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import UsageError
from ..progress import Progress


def add_target_arguments(parser: argparse.ArgumentParser, forward: bool = True) -> None:
    where = parser.add_argument_group("target (one of)")
    choice = where.add_mutually_exclusive_group(required=True)
    choice.add_argument("--qemuboot", metavar="FILE",
                        help="boot this Yocto *.qemuboot.conf image in qemu (slirp, TCG unless --kvm)")
    choice.add_argument("--ssh", metavar="[USER@]HOST[:PORT]", help="a running board reachable over SSH")
    auth = parser.add_argument_group("SSH login and host-key checking")
    auth.add_argument("--user", default=None, help="login user (default: root, or USER@ from --ssh)")
    auth.add_argument("-i", "--identity", action="append", default=[], metavar="KEY",
                      help="private key file (repeatable; default: ~/.ssh/id_*)")
    auth.add_argument("--password-env", metavar="VAR",
                      help="read the login password from this environment variable")
    auth.add_argument("--empty-password", action="store_true",
                      help="log in with an empty password (Yocto's empty-root-password images)")
    auth.add_argument("--host-key", action="append", default=[], metavar="KEY",
                      help="trust this host key: a .pub file, a key line or a SHA256: fingerprint (repeatable)")
    auth.add_argument("--known-hosts", metavar="FILE", help="known_hosts file to check the host key against")
    auth.add_argument("--insecure-accept-host-key", action="store_true",
                      help="accept any host key (throwaway qemu guests only)")
    qemu = parser.add_argument_group("qemu")
    qemu.add_argument("--boot-timeout", type=float, default=600.0, metavar="S",
                      help="seconds to wait for SSH after starting qemu (default: 600)")
    qemu.add_argument("--kvm", action="store_true", help="use KVM instead of TCG")
    qemu.add_argument("--mem", type=int, metavar="MB", help="guest memory (default: qemuboot.conf's)")
    qemu.add_argument("--smp", type=int, metavar="N", help="guest CPUs (default: qemuboot.conf's)")
    qemu.add_argument("--kernel-arg", action="append", default=[], metavar="ARG",
                      help="extra kernel command-line argument (repeatable; audit=1 "
                           "audit_backlog_limit=8192 are always added)")
    qemu.add_argument("--qemu-workdir", metavar="DIR", help="keep qemu's console and logs in DIR")
    if forward:
        qemu.add_argument("--forward", action="append", type=int, default=[], metavar="PORT",
                          help="guest TCP port to reach from the host (repeatable); host workloads get "
                               "SECCOMP_TARGET_PORT_<PORT>")


class TargetSession:
    """Builds the Target from the options and exposes what host workloads need."""

    def __init__(self, target: Any, kind: str, description: str) -> None:
        self.target = target
        self.kind = kind
        self.description = description
        self.ssh_forward: List[int] = []

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TargetSession:
        from ..target import QemuTarget, SshTarget
        from ..target.qemu import PROFILING_KERNEL_ARGS
        from ..target.ssh import parse_ssh_spec

        password: Optional[str] = None
        if args.password_env:
            if args.password_env not in os.environ:
                raise UsageError(f"--password-env {args.password_env}: the variable is not set")
            password = os.environ[args.password_env]
        elif args.empty_password:
            password = ""
        host_key: Optional[List[str]] = list(args.host_key) or None
        keys = list(args.identity) or None
        for key in keys or []:
            if not os.path.isfile(key):
                raise UsageError(f"--identity {key}: no such file")
        forward = list(getattr(args, "forward", []) or [])
        if args.qemuboot:
            if not os.path.isfile(args.qemuboot):
                raise UsageError(f"--qemuboot {args.qemuboot}: no such file")
            target = QemuTarget(
                args.qemuboot, user=args.user or "root", key_filename=keys, password=password, host_key=host_key,
                insecure_accept_host_key=args.insecure_accept_host_key,
                accel="kvm" if args.kvm else None, boot_timeout=args.boot_timeout,
                kernel_args=[*PROFILING_KERNEL_ARGS, *args.kernel_arg], forward_ports=forward,
                workdir=args.qemu_workdir, mem_mb=args.mem, smp=args.smp)
            return cls(target, "qemu", f"qemu {os.path.basename(args.qemuboot)}")
        user, host, port = parse_ssh_spec(args.ssh)
        target = SshTarget(host, port, user or args.user or "root", key_filename=keys, password=password,
                           host_key=host_key, known_hosts=args.known_hosts,
                           insecure_accept_host_key=args.insecure_accept_host_key)
        session = cls(target, "ssh", f"ssh {target.address}")
        session.ssh_forward = forward
        return session

    @contextlib.contextmanager
    def started(self, progress: Progress) -> Iterator[TargetSession]:
        _quiet_target_logs(progress)
        with progress.phase("boot" if self.kind == "qemu" else "connect", self.description):
            self.target.start()
        try:
            yield self
        except BaseException:
            self._stop(graceful=False)
            raise
        with progress.phase("shutdown"):
            self._stop(graceful=True)

    def _stop(self, graceful: bool) -> None:
        if self.kind == "qemu":
            self.target.stop(graceful=graceful)
        else:
            self.target.stop()

    @property
    def host_address(self) -> Tuple[str, int]:
        if self.kind == "qemu":
            return "127.0.0.1", int(self.target.ssh_port)
        return self.target.host, int(self.target.port)

    @property
    def forwarded(self) -> Dict[int, int]:
        if self.kind == "qemu":
            return dict(self.target.forwarded)
        return {p: p for p in self.ssh_forward}

    @property
    def boot_seconds(self) -> Optional[float]:
        return getattr(self.target, "boot_seconds", None)

    def info(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"kind": self.kind, "address": "%s:%d" % self.host_address}
        if self.kind == "qemu":
            out["qemuboot"] = os.path.abspath(self.target.config.path)
            out["console_log"] = str(self.target.console_log)
            if self.boot_seconds is not None:
                out["boot_seconds"] = round(self.boot_seconds, 1)
        if self.forwarded:
            out["forwarded"] = {str(k): v for k, v in self.forwarded.items()}
        return out


def _quiet_target_logs(progress: Progress) -> None:
    """Target modules log through `logging`; show their info lines only when not live-redrawing."""
    logger = logging.getLogger("seccomp_py.target")
    if logger.handlers:
        return
    handler = logging.StreamHandler(progress.stream)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if progress.live or progress.quiet else logging.INFO)
    logger.propagate = False
