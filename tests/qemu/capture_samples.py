#!/usr/bin/env python3
"""Capture real SECCOMP audit samples from a booted reference guest into tests/data/guest/<arch>/.

    python3 tests/qemu/capture_samples.py --arch x86_64 [--out tests/data/guest]

What runs in the guest (all in log mode, SystemCallLog=~kexec_load, which logs every call and
blocks nothing):
  1. systemd-run --wait -p SystemCallLog=~kexec_load -- /bin/true
  2. the same for a static 32-bit program (compat ABI: i386 on x86_64, arm on aarch64)
  3. nginx with a /run/systemd/system/nginx.service.d/ drop-in, restarted, then curl requests
     (20 GETs, one 404, one HEAD), then stopped
then journalctl exports (audit transport, kernel transport, everything, compact fields) and
dmesg; then the same workload once more with rsyslog running (syslog), once with auditd running
(audit.log), and once with nginx under strace -f (ground truth).

Samples are trimmed to stay small: a SECCOMP record is kept only while fewer than KEEP records
with the same (executable, arch, syscall) were kept before it; every other line is kept. So each
distinct call a program made survives, and audit serials in trimmed files have gaps. Files whose
name ends in -full are not trimmed. manifest.json records counts before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "meta-seccomp-py" / "lib"))
sys.path.insert(0, str(HERE))

import compat_elf  # noqa: E402
import guest  # noqa: E402

KEEP = 2
MAX_BYTES = 300 * 1024
LOG_ALL = "SystemCallLog=~kexec_load"
COMPACT_FIELDS = ",".join([
    "_PID", "_COMM", "_EXE", "_AUDIT_ID", "_AUDIT_TYPE", "_AUDIT_FIELD_ARCH", "_AUDIT_FIELD_SYSCALL",
    "_AUDIT_FIELD_COMPAT", "_AUDIT_FIELD_CODE", "_AUDIT_FIELD_SIG", "_SOURCE_REALTIME_TIMESTAMP",
])
NGINX_LOG_DROPIN = "/run/systemd/system/nginx.service.d/50-seccomp-log.conf"
NGINX_STRACE_DROPIN = "/run/systemd/system/nginx.service.d/60-strace.conf"
STRACE_OUT = "/run/strace-nginx.txt"
WORKLOAD = (
    "set -e; for i in $(seq 20); do curl -fsS -o /dev/null http://127.0.0.1/; done; "
    "curl -s -o /dev/null http://127.0.0.1/missing; curl -fsSI -o /dev/null http://127.0.0.1/"
)

_TEXT_KEY = re.compile(r'(?:comm=(?P<comm>"[^"]*"|\S+)).*?(?:exe=(?P<exe>"[^"]*"|\S+)).*?arch=(?P<arch>[0-9a-fA-F]+)'
                       r'\s+syscall=(?P<nr>\d+)')


def seccomp_key_text(line: str) -> Optional[Tuple[str, str, str]]:
    if "type=1326" not in line and "type=SECCOMP" not in line:
        return None
    match = _TEXT_KEY.search(line)
    if not match:
        return None
    return (match.group("exe") or match.group("comm"), match.group("arch").lower(), match.group("nr"))


def seccomp_key_json(record: dict) -> Optional[Tuple[str, str, str]]:
    if record.get("_AUDIT_TYPE") == "1326":
        return (str(record.get("_EXE") or record.get("_COMM")), str(record.get("_AUDIT_FIELD_ARCH")),
                str(record.get("_AUDIT_FIELD_SYSCALL")))
    message = record.get("MESSAGE")
    if isinstance(message, list):  # journalctl writes non-UTF-8 messages as byte arrays
        message = bytes(message).decode("utf-8", "replace")
    if isinstance(message, str):
        return seccomp_key_text(message)
    return None


def trim(lines: List[str], key_of: Callable[[str], Optional[Tuple[str, str, str]]], keep: int) -> List[str]:
    seen: Counter = Counter()
    out = []
    for line in lines:
        key = key_of(line)
        if key is not None:
            if seen[key] >= keep:
                continue
            seen[key] += 1
        out.append(line)
    return out


def json_key(line: str) -> Optional[Tuple[str, str, str]]:
    try:
        return seccomp_key_json(json.loads(line))
    except ValueError:
        return None


class Capture:
    def __init__(self, target, arch: str, out: Path, log: Callable[[str], None]) -> None:
        self.t = target
        self.arch = arch
        self.out = out
        self.log = log
        self.manifest: Dict[str, object] = {"files": {}}

    def sh(self, script: str, timeout: float = 300, check: bool = True) -> str:
        return self.t.run(script, timeout=timeout, check=check).stdout

    def count_seccomp(self, since: str) -> int:
        out = self.sh(f"journalctl -q --since @{since} _TRANSPORT=audit _AUDIT_TYPE=1326 -o cat | wc -l")
        return int(out.strip() or 0)

    def wait_journal(self, since: str, settle: float = 3.0, timeout: float = 180.0) -> int:
        """journald lags the kernel under load: wait until the SECCOMP count stops growing."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            now = self.count_seccomp(since)
            if now == last:
                return now
            last = now
            time.sleep(settle)
        return last

    def save(self, name: str, lines: List[str], raw_count: Optional[int] = None, how: str = "") -> None:
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        size = len(text.encode())
        if size > MAX_BYTES:
            Path("/tmp", name + ".oversize").write_text(text)
            raise SystemExit(f"{name}: {size} bytes after trimming, over {MAX_BYTES}; lower KEEP")
        (self.out / name).write_text(text)
        self.manifest["files"][name] = {"lines": len(lines), "lines_before_trim": raw_count, "bytes": size,
                                        "how": how}
        self.log(f"  {name}: {len(lines)} lines ({raw_count} before trim), {size} bytes")

    def save_trimmed(self, name: str, raw: str, key_of, how: str) -> None:
        # split("\n"), not splitlines(): auditd's enriched lines hold \x1d, which splitlines() breaks on.
        lines = [ln for ln in raw.split("\n") if ln.strip()]
        self.save(name, trim(lines, key_of, KEEP), len(lines), how)

    # -- workloads --------------------------------------------------------------------------------

    def run_true(self, unit: str) -> None:
        self.sh(f"systemd-run --quiet --wait --collect --unit={unit} -p {LOG_ALL} -- /bin/true")

    def run_compat(self, unit: str) -> str:
        result = self.t.run(f"systemd-run --quiet --wait --pipe --collect --unit={unit} -p {LOG_ALL} -- "
                            "/usr/local/bin/compat32", timeout=60)
        return f"status {result.status}: {result.stdout.strip()} {result.stderr.strip()}".strip()

    def nginx_log_mode(self) -> None:
        self.t.write_file(NGINX_LOG_DROPIN, f"[Service]\n{LOG_ALL}\n")
        self.sh("systemctl daemon-reload && systemctl restart nginx")
        self.sh(WORKLOAD)
        self.sh("systemctl stop nginx")

    def nginx_plain(self) -> None:
        self.sh(f"rm -f {NGINX_LOG_DROPIN} {NGINX_STRACE_DROPIN}; systemctl daemon-reload; systemctl restart nginx")

    # -- the capture ------------------------------------------------------------------------------

    def run(self) -> None:
        t = self.t
        self.log("waiting for the guest to finish booting")
        state = self.sh("systemctl is-system-running --wait", check=False).strip()
        self.manifest.update({
            "arch": self.arch,
            "guest": guest.find_guest(self.arch).info,
            "system_state": state,
            "kernel": self.sh("uname -r").strip(),
            "systemd": self.sh("systemctl --version | head -n1").strip(),
            "nginx": t.run("nginx -v").stderr.strip(),
            "actions_logged": self.sh("cat /proc/sys/kernel/seccomp/actions_logged").strip(),
            "cmdline": self.sh("cat /proc/cmdline").strip(),
            "captured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        program = compat_elf.i386_program() if self.arch == "x86_64" else compat_elf.arm_program()
        t.write_file("/usr/local/bin/compat32", program, mode=0o755)
        time.sleep(1)
        since = self.sh("date +%s").strip()
        time.sleep(1)

        self.log("1. /bin/true under log mode")
        self.run_true("sample-true")
        self.wait_journal(since)
        true_json = self.sh(f"journalctl -o json --since @{since} _TRANSPORT=audit _AUDIT_TYPE=1326")
        self.save("journal-audit-true-full.json", [ln for ln in true_json.split("\n") if ln], None,
                  f"journalctl -o json _TRANSPORT=audit _AUDIT_TYPE=1326 after: systemd-run --wait "
                  f"-p {LOG_ALL} -- /bin/true (untrimmed, contiguous serials)")

        self.log("2. compat 32-bit program under log mode")
        self.manifest["compat_run"] = self.run_compat("sample-compat32")

        self.log("3. nginx under log mode + curl workload")
        self.nginx_log_mode()
        total = self.wait_journal(since)
        self.manifest["seccomp_records_in_journal"] = total

        self.log("exporting the journal")
        self.save_trimmed("journal-audit.json", self.sh(f"journalctl -o json --since @{since} _TRANSPORT=audit"),
                          json_key, "journalctl -o json _TRANSPORT=audit (window of steps 1-3)")
        self.save_trimmed("journal-kernel.json",
                          self.sh(f"journalctl -o json --since @{since} _TRANSPORT=kernel"), json_key,
                          "journalctl -o json _TRANSPORT=kernel (printk copies, rate limited)")
        self.save_trimmed("journal-mixed.json", self.sh(f"journalctl -o json --since @{since}"), json_key,
                          "journalctl -o json, every transport (window of steps 1-3)")
        self.save_trimmed("journal-compact.json",
                          self.sh(f"journalctl -o json --since @{since} --output-fields={COMPACT_FIELDS} "
                                  "_TRANSPORT=audit _AUDIT_TYPE=1326"), json_key,
                          f"journalctl -o json --output-fields={COMPACT_FIELDS} _TRANSPORT=audit _AUDIT_TYPE=1326")
        self.save_trimmed("dmesg.txt", self.sh("dmesg"), seccomp_key_text, "dmesg (whole kernel ring buffer)")

        self.log("4. rsyslog: same workload, /var/log/syslog")
        # Disabling rsyslog dropped its syslog.service alias, which syslog.socket needs back.
        self.sh("systemctl enable rsyslog && systemctl start rsyslog && sleep 2")
        self.run_true("sample-true-syslog")
        self.run_compat("sample-compat32-syslog")
        self.nginx_log_mode()
        self.wait_journal(since)
        time.sleep(3)
        self.sh("systemctl stop rsyslog")
        self.save_trimmed("syslog.txt", self.sh("cat /var/log/syslog"), seccomp_key_text,
                          "/var/log/syslog written by rsyslog (imklog + imuxsock) during the workload")

        self.log("5. auditd: same workload, /var/log/audit/audit.log")
        self.sh("systemctl start auditd && sleep 2")
        self.run_true("sample-true-auditd")
        self.run_compat("sample-compat32-auditd")
        self.nginx_log_mode()
        time.sleep(3)
        self.sh("systemctl stop auditd")
        self.save_trimmed("audit.log", self.sh("cat /var/log/audit/audit.log"), seccomp_key_text,
                          "/var/log/audit/audit.log written by auditd during the workload")

        self.log("6. nginx under strace -f (same workload)")
        self.sh(f"rm -f {NGINX_LOG_DROPIN} {STRACE_OUT}")
        strace = f"/usr/bin/strace -f -A -o {STRACE_OUT}"
        self.t.write_file(NGINX_STRACE_DROPIN, (
            "[Service]\n"
            "Type=simple\n"
            "PIDFile=\n"
            "ExecStartPre=\n"
            f"ExecStartPre={strace} /usr/sbin/nginx -t -q -g 'daemon on; master_process on;'\n"
            "ExecStart=\n"
            f"ExecStart={strace} /usr/sbin/nginx -g 'daemon off; master_process on;'\n"
        ))
        self.sh("systemctl daemon-reload && systemctl restart nginx && sleep 2")
        self.sh(WORKLOAD)
        self.sh("systemctl stop nginx")
        lines = [ln for ln in self.sh(f"cat {STRACE_OUT}").split("\n") if ln]
        self.save("strace-nginx.txt", lines, len(lines),
                  "strace -f -A of nginx's ExecStartPre and ExecStart (daemon off) via a drop-in, "
                  "same curl workload, untrimmed")
        self.nginx_plain()

        (self.out / "manifest.json").write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(guest.ARCHES), default="x86_64")
    parser.add_argument("--out", default=str(ROOT / "tests" / "data" / "guest"))
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    built = guest.build(args.arch, log=log)
    out = Path(args.out) / args.arch
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with built.target() as target:
        log(f"guest up after {target.boot_seconds:.1f} s (ssh port {target.ssh_port})")
        capture = Capture(target, args.arch, out, log)
        capture.manifest["boot_to_ssh_seconds"] = round(target.boot_seconds, 1)
        capture.run()
    log(f"done in {time.monotonic() - started:.0f} s: {out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
