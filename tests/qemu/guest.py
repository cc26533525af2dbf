#!/usr/bin/env python3
"""Reference guests: bootable Debian bookworm images for x86_64 and aarch64, built with mmdebstrap.

Each guest is written like a Yocto deploy dir (kernel, initrd, ext4 rootfs and a *.qemuboot.conf
in the format of openembedded-core's qemuboot.bbclass), so it boots through the same QemuTarget
path as a real Yocto image. Guests are cached by a hash of the builder's inputs under
~/.cache/meta-seccomp-py/guests/<arch>-<hash>/ (or $SECCOMP_PY_CACHE/guests/).

    python3 tests/qemu/guest.py build --arch x86_64      # build (or reuse) and print the folder
    python3 tests/qemu/guest.py path --arch aarch64      # print the cached folder, exit 1 if absent

The aarch64 guest is built through qemu-user binfmt. To keep that fast, the initramfs is made by
tiny-initramfs (a few KiB of static C plus the virtio modules), not by initramfs-tools, whose
emulated busybox/gzip run took most of a 26-minute build here; docs, man pages, locales and
driver trees a virtio guest never loads are not unpacked at all.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

# Bump when the build procedure changes in a way the recipe below does not capture.
BUILDER_VERSION = 1

SUITE = "bookworm"
MIRRORS = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
]

COMMON_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "iproute2",
    "procps",
    "openssh-server",
    "nginx-light",
    "curl",
    "strace",
    # The second demo daemon: forks for BGSAVE, runs I/O threads, talks over TCP.
    "redis-server",
    "redis-tools",
    # Installed but disabled; started only to capture audit.log and syslog samples.
    "auditd",
    "rsyslog",
    "tiny-initramfs",
    # Not started by default: an SSH server without sftp-server, as on Yocto's dropbear images,
    # to test the exec+cat file transfer fallback.
    "dropbear-bin",
]

# Debian's "dpkg --path-exclude" keeps files out of the rootfs before they are ever unpacked.
# That matters most for aarch64, where every unpacked byte goes through qemu-user.
PATH_EXCLUDES = [
    "/usr/share/man/*",
    "/usr/share/doc/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
]
# Driver trees a virtio-only guest never loads.
MODULE_EXCLUDES = [
    "drivers/gpu",
    "drivers/media",
    "drivers/net/wireless",
    "drivers/net/ethernet",
    "drivers/infiniband",
    "drivers/staging",
    "drivers/scsi",
    "drivers/iio",
    "drivers/hid",
    "drivers/usb",
    "drivers/bluetooth",
    "drivers/isdn",
    "drivers/mtd",
    "drivers/video",
    "drivers/md",
    "sound",
    "net/wireless",
    "net/mac80211",
    "net/bluetooth",
    "fs/btrfs",
    "fs/xfs",
    "fs/ocfs2",
    "fs/gfs2",
    "fs/nfs",
    "fs/nfsd",
    "fs/ceph",
    "fs/smb",
]


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    arch: str
    debian_arch: str
    machine: str
    kernel_package: str
    kernel_imagetype: str
    qemu_system: str
    qb_machine: str
    qb_cpu: str
    qb_cpu_kvm: str
    serial_consoles: str
    root_device: str
    qb_rootfs_opt: str
    qb_network_device: str
    initrd_modules: List[str]


ARCHES: Dict[str, ArchSpec] = {
    "x86_64": ArchSpec(
        arch="x86_64",
        debian_arch="amd64",
        machine="qemux86-64",
        kernel_package="linux-image-cloud-amd64",
        kernel_imagetype="bzImage",
        qemu_system="qemu-system-x86_64",
        qb_machine="",
        qb_cpu="-cpu Skylake-Client -machine q35,i8042=off",
        qb_cpu_kvm="-cpu host -machine q35,i8042=off",
        serial_consoles="115200;ttyS0",
        root_device="/dev/vda",
        qb_rootfs_opt="-drive id=disk0,file=@ROOTFS@,if=none,format=raw -device virtio-blk-pci,drive=disk0",
        qb_network_device="-device virtio-net-pci,netdev=net0,mac=@MAC@",
        initrd_modules=["virtio_pci", "virtio_blk"],
    ),
    "aarch64": ArchSpec(
        arch="aarch64",
        debian_arch="arm64",
        machine="qemuarm64",
        kernel_package="linux-image-arm64",
        kernel_imagetype="Image",
        qemu_system="qemu-system-aarch64",
        qb_machine="-machine virt",
        qb_cpu="-cpu cortex-a57",
        qb_cpu_kvm="-cpu host -machine gic-version=3",
        serial_consoles="115200;ttyAMA0",
        root_device="/dev/vda",
        qb_rootfs_opt="-drive id=disk0,file=@ROOTFS@,if=none,format=raw -device virtio-blk-pci,drive=disk0",
        qb_network_device="-device virtio-net-pci,netdev=net0,mac=@MAC@",
        initrd_modules=["virtio_pci", "virtio_blk", "ext4"],
    ),
}

IMAGE_BASENAME = "seccomp-guest"

# Runs on the host with the rootfs folder as $1 (mmdebstrap --customize-hook). @AUTHORIZED_KEY@
# is filled in per cache entry; the template itself is part of the content hash.
CUSTOMIZE_SCRIPT = r"""#!/bin/sh
set -eu
root="$1"
echo seccomp-guest > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 seccomp-guest\n' > "$root/etc/hosts"
printf '@ROOT_DEVICE@ / ext4 rw,errors=remount-ro 0 1\n' > "$root/etc/fstab"
: > "$root/etc/machine-id"

mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=eth* en*\n\n[Network]\nDHCP=ipv4\n' > "$root/etc/systemd/network/10-dhcp.network"

# Runtime journal only: the guest runs from a qemu snapshot anyway.
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=256M\n' > "$root/etc/systemd/journald.conf.d/10-guest.conf"

chroot "$root" systemctl enable systemd-networkd.service ssh.service systemd-journald-audit.socket
# auditd would take the audit stream away from journald; rsyslog is only for sample capture.
chroot "$root" systemctl disable auditd.service rsyslog.service
# Timers that would add noise and CPU load to a TCG guest.
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    fstrim.timer logrotate.timer dpkg-db-backup.timer systemd-timesyncd.service
# Generators a Yocto (wrynose, systemd 261) image does not have: no SysV or rc.local support, and
# cryptsetup and gpt-auto are outside the default PACKAGECONFIG and packages. Every daemon-reload runs
# each generator, at 0.3-0.6 s apiece on a TCG guest.
mkdir -p "$root/etc/systemd/system-generators"
for gen in systemd-sysv-generator systemd-rc-local-generator systemd-cryptsetup-generator \
    systemd-veritysetup-generator systemd-integritysetup-generator systemd-gpt-auto-generator; do
    ln -sf /dev/null "$root/etc/systemd/system-generators/$gen"
done

# What packagegroup-seccomp-profiling adds to a Yocto profiling image: the boot-arming generator.
install -D -m 0755 '@BOOT_LOG_GENERATOR@' "$root/usr/lib/systemd/system-generators/seccomp-py-boot-log"

mkdir -p "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
printf '%s\n' '@AUTHORIZED_KEY@' > "$root/root/.ssh/authorized_keys"
chmod 600 "$root/root/.ssh/authorized_keys"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
    > "$root/etc/ssh/sshd_config.d/10-guest.conf"

# tiny-initramfs ran once while the kernel was configured; rebuild with exactly our modules.
kver=$(ls "$root/lib/modules" | head -n1)
chroot "$root" mktirfs -m no -M no --include-modules=@INITRD_MODULES@ \
    -o "/boot/initrd.img-$kver" "$kver"

rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin
"""

BOOT_LOG_GENERATOR = (Path(__file__).resolve().parents[2] / "meta-seccomp-py" / "recipes-security"
                      / "seccomp-profiling-setup" / "files" / "seccomp-py-boot-log")

TINY_INITRAMFS_CONF = "AUTO_MODULES=no\nMICROCODE=no\nINCLUDE_MODULES={modules}\n"


def cache_root() -> Path:
    base = os.environ.get("SECCOMP_PY_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "meta-seccomp-py"


def packages_for(spec: ArchSpec) -> List[str]:
    return [*COMMON_PACKAGES, spec.kernel_package]


def recipe(spec: ArchSpec) -> dict:
    """Everything that determines the guest's content: the cache key is its hash."""
    return {
        "builder_version": BUILDER_VERSION,
        "suite": SUITE,
        "mirrors": MIRRORS,
        "arch": dataclasses.asdict(spec),
        "packages": packages_for(spec),
        "path_excludes": PATH_EXCLUDES,
        "module_excludes": MODULE_EXCLUDES,
        "customize": CUSTOMIZE_SCRIPT,
        "tiny_initramfs_conf": TINY_INITRAMFS_CONF,
        "boot_log_generator": BOOT_LOG_GENERATOR.read_text(),
    }


def content_hash(spec: ArchSpec) -> str:
    blob = json.dumps(recipe(spec), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclasses.dataclass
class Guest:
    """A built guest in the cache, ready to boot."""

    arch: str
    directory: Path

    @property
    def spec(self) -> ArchSpec:
        return ARCHES[self.arch]

    @property
    def image_link_name(self) -> str:
        return f"{IMAGE_BASENAME}-{self.spec.machine}.rootfs"

    @property
    def qemuboot(self) -> Path:
        return self.directory / f"{self.image_link_name}.qemuboot.conf"

    @property
    def rootfs(self) -> Path:
        return self.directory / f"{self.image_link_name}.ext4"

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key.pub"

    @property
    def info(self) -> dict:
        return json.loads((self.directory / "guest.json").read_text())

    def is_complete(self) -> bool:
        return (self.directory / "guest.json").is_file() and self.qemuboot.is_file()

    def target(self, **kwargs):
        """A QemuTarget for this guest, with the host key pinned and root's key for login."""
        from seccomp_py.target.qemu import QemuTarget

        kwargs.setdefault("user", "root")
        kwargs.setdefault("key_filename", str(self.ssh_key))
        kwargs.setdefault("host_key", str(self.host_key))
        return QemuTarget(str(self.qemuboot), **kwargs)


def guest_dir(arch: str) -> Path:
    spec = ARCHES[arch]
    return cache_root() / "guests" / f"{arch}-{content_hash(spec)}"


def find_guest(arch: str) -> Optional[Guest]:
    guest = Guest(arch, guest_dir(arch))
    return guest if guest.is_complete() else None


class BuildError(RuntimeError):
    pass


def _run(argv: List[str], log: Callable[[str], None], **kwargs) -> None:
    line = " ".join(argv)
    log("+ " + (line if len(line) < 240 else line[:240] + " ..."))
    result = subprocess.run(argv, **kwargs)
    if result.returncode != 0:
        raise BuildError(f"command failed with exit status {result.returncode}: {' '.join(argv)}")


def host_arch() -> str:
    return os.uname().machine


def ensure_binfmt(spec: ArchSpec, log: Callable[[str], None]) -> None:
    """Foreign-arch builds run the guest's dpkg through qemu-user; make sure binfmt is live."""
    if spec.arch == host_arch():
        return
    entry = Path("/proc/sys/fs/binfmt_misc") / f"qemu-{spec.arch}"
    if not Path("/proc/sys/fs/binfmt_misc/status").exists():
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"], log)
    if (not entry.exists() or "enabled" not in entry.read_text()) and shutil.which("update-binfmts"):
        _run(["update-binfmts", "--enable", f"qemu-{spec.arch}"], log)
    if not entry.exists() or "enabled" not in entry.read_text():
        raise BuildError(
            f"binfmt_misc has no enabled qemu-{spec.arch} entry; install qemu-user-static and binfmt-support"
        )


def check_tools(spec: ArchSpec) -> None:
    missing = [tool for tool in ("mmdebstrap", "mkfs.ext4", "ssh-keygen") if not shutil.which(tool)]
    if missing:
        raise BuildError("missing host tools: " + ", ".join(missing) + " (apt-get install mmdebstrap e2fsprogs "
                         "openssh-client)")
    if os.geteuid() != 0:
        raise BuildError("building a guest needs root (mmdebstrap --mode=root and mkfs.ext4 -d keep file owners)")


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def write_qemuboot_conf(spec: ArchSpec, out: Path, kernel_name: str, initrd_name: str) -> Path:
    """Write <image>.qemuboot.conf the way qemuboot.bbclass does: one [config_bsp] section,
    lower-case keys in sorted order, paths relative to the deploy dir."""
    link_name = f"{IMAGE_BASENAME}-{spec.machine}.rootfs"
    qemu_path = shutil.which(spec.qemu_system)
    values = {
        "deploy_dir_image": ".",
        "image_link_name": link_name,
        "image_name": link_name,
        "kernel_imagetype": spec.kernel_imagetype,
        "machine": spec.machine,
        "qb_cmdline_ip_slirp": "ip=dhcp",
        "qb_cpu": spec.qb_cpu,
        "qb_cpu_kvm": spec.qb_cpu_kvm,
        "qb_default_fstype": "ext4",
        "qb_default_kernel": kernel_name,
        "qb_drive_type": "/dev/vd",
        "qb_graphics": "",
        "qb_kernel_cmdline_append": "net.ifnames=0 rootwait swiotlb=0",
        "qb_kernel_root": spec.root_device,
        # x86 machines put "-machine q35" into qb_cpu and leave QB_MACHINE unset, as Yocto does.
        "qb_machine": spec.qb_machine or None,
        "qb_mem": "-m 1024",
        "qb_network_device": spec.qb_network_device,
        "qb_no_pni": "net.ifnames=0",
        "qb_opt_append": f"-initrd @DEPLOY_DIR_IMAGE@/{initrd_name}",
        "qb_rng": "-object rng-random,filename=/dev/urandom,id=rng0 -device virtio-rng-pci,rng=rng0",
        "qb_rootfs_opt": spec.qb_rootfs_opt,
        "qb_serial_opt": "-serial mon:stdio -serial null",
        "qb_slirp_opt": "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22",
        "qb_smp": "-smp 2",
        "qb_system_name": spec.qemu_system,
        "serial_consoles": spec.serial_consoles,
        # Debian's qemu stands in for the build's qemu-system-native.
        "staging_bindir_native": os.path.dirname(qemu_path) if qemu_path else "/usr/bin",
        "tune_arch": spec.arch,
    }
    config = configparser.ConfigParser()
    config.add_section("config_bsp")
    for key in sorted(values):
        if values[key] is not None:
            config.set("config_bsp", key, values[key])
    path = out / f"{link_name}.qemuboot.conf"
    with open(path, "w") as handle:
        config.write(handle)
    return path


def build(arch: str, log: Callable[[str], None] = print, force: bool = False) -> Guest:
    spec = ARCHES[arch]
    final = guest_dir(arch)
    guests = final.parent
    guests.mkdir(parents=True, exist_ok=True)
    with open(guests / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        guest = Guest(arch, final)
        if guest.is_complete() and not force:
            log(f"cached: {final}")
            return guest
        check_tools(spec)
        ensure_binfmt(spec, log)
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=guests))
        try:
            _build_into(spec, work, log)
            info = json.loads((work / "guest.json").read_text())
            info["build_seconds"] = round(time.monotonic() - started, 1)
            (work / "guest.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
            if final.exists():
                shutil.rmtree(final)
            os.rename(work, final)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        log(f"built {arch} guest in {time.monotonic() - started:.0f} s: {final}")
        return Guest(arch, final)


def _build_into(spec: ArchSpec, out: Path, log: Callable[[str], None]) -> None:
    rootfs = out / "rootfs"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"seccomp-py-guest-{spec.arch}",
          "-f", str(out / "id_ed25519")], log)
    authorized = (out / "id_ed25519.pub").read_text().strip()

    script = (CUSTOMIZE_SCRIPT.replace("@AUTHORIZED_KEY@", authorized)
              .replace("@BOOT_LOG_GENERATOR@", str(BOOT_LOG_GENERATOR))
              .replace("@ROOT_DEVICE@", spec.root_device)
              .replace("@INITRD_MODULES@", ",".join(spec.initrd_modules)))
    hook = out / "customize.sh"
    hook.write_text(script)
    hook.chmod(0o755)
    setup = out / "setup.sh"
    setup.write_text(
        "#!/bin/sh\nset -eu\nmkdir -p \"$1/etc/tiny-initramfs\"\n"
        "cat > \"$1/etc/tiny-initramfs/tiny-initramfs.conf\" <<'EOF'\n"
        + TINY_INITRAMFS_CONF.format(modules=",".join(spec.initrd_modules))
        + "EOF\n"
    )
    setup.chmod(0o755)

    argv = [
        "mmdebstrap", "--mode=root", "--variant=minbase", f"--architectures={spec.debian_arch}",
        "--include=" + ",".join(packages_for(spec)),
        "--aptopt=APT::Install-Recommends \"false\"",
        "--aptopt=Acquire::Languages \"none\"",
        f"--setup-hook={setup}",
        f"--customize-hook={hook}",
    ]
    for pattern in PATH_EXCLUDES:
        argv.append(f"--dpkgopt=path-exclude={pattern}")
    argv.append("--dpkgopt=path-include=/usr/share/doc/*/copyright")
    for tree in MODULE_EXCLUDES:
        for prefix in ("/lib/modules", "/usr/lib/modules"):
            argv.append(f"--dpkgopt=path-exclude={prefix}/*/kernel/{tree}/*")
    argv += [SUITE, str(rootfs), *MIRRORS]
    _run(argv, log)

    kvers = sorted(os.listdir(rootfs / "lib" / "modules"))
    if len(kvers) != 1:
        raise BuildError(f"expected one kernel in the guest, found {kvers}")
    kver = kvers[0]
    kernel_name = f"vmlinuz-{kver}"
    initrd_name = f"initrd.img-{kver}"
    shutil.copy2(rootfs / "boot" / kernel_name, out / kernel_name)
    shutil.copy2(rootfs / "boot" / initrd_name, out / initrd_name)
    for pub in sorted((rootfs / "etc" / "ssh").glob("ssh_host_*_key.pub")):
        shutil.copy2(pub, out / pub.name)

    size = _tree_size(rootfs)
    image_bytes = (int(size * 1.25) + 1024 * 1024 * 1024) // (4 * 1024 * 1024) * (4 * 1024 * 1024)
    link_name = f"{IMAGE_BASENAME}-{spec.machine}.rootfs"
    image = out / f"{link_name}.ext4"
    _run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(rootfs), str(image),
          f"{image_bytes // 1024}k"], log)
    dpkg_list = subprocess.run(["chroot", str(rootfs), "dpkg-query", "-W", "-f", "${Package} ${Version}\n"],
                               capture_output=True, text=True, check=False).stdout
    (out / "packages.txt").write_text(dpkg_list)
    shutil.rmtree(rootfs)

    write_qemuboot_conf(spec, out, kernel_name, initrd_name)
    info = {
        "arch": spec.arch,
        "machine": spec.machine,
        "kernel_version": kver,
        "content_hash": content_hash(spec),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rootfs_bytes": size,
        "image_bytes": image_bytes,
    }
    (out / "guest.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    for name in ("customize.sh", "setup.sh"):
        (out / name).unlink()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("build", "build the guest unless cached; print its folder"),
                       ("path", "print the cached guest's folder; exit 1 if it is not built"),
                       ("hash", "print the content hash of the guest recipe"),
                       ("prune", "delete cached guests of this arch built from an older recipe")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--arch", choices=sorted(ARCHES), default="x86_64")
        if name == "build":
            p.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    if args.command == "hash":
        print(content_hash(ARCHES[args.arch]))
        return 0
    if args.command == "prune":
        current = guest_dir(args.arch)
        for old in sorted(current.parent.glob(f"{args.arch}-*")):
            if old != current and old.is_dir():
                print(f"removing {old}", file=sys.stderr)
                shutil.rmtree(old)
        return 0
    if args.command == "path":
        guest = find_guest(args.arch)
        if guest is None:
            print(f"not built: {guest_dir(args.arch)}", file=sys.stderr)
            return 1
        print(guest.directory)
        return 0
    try:
        guest = build(args.arch, log=lambda line: print(line, file=sys.stderr, flush=True), force=args.force)
    except BuildError as exc:
        print(f"guest.py: error: {exc}", file=sys.stderr)
        return 1
    print(guest.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
