"""qemuboot.conf parsing and the qemu command line QemuTarget builds from it (no qemu is run here;
tests/qemu/ boots real guests)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from seccomp_py.errors import InputError
from seccomp_py.target import QemuBootConfig, QemuTarget, TargetError
from seccomp_py.target.qemu import find_qemu

# As qemuboot.bbclass writes them for oe-core's qemux86-64 and qemuarm64 (values from
# meta/conf/machine/*.conf and qemuboot-x86.inc), with the build paths made relative.
QEMUX86_64 = """\
[config_bsp]
deploy_dir_image = .
image_link_name = core-image-minimal-qemux86-64.rootfs
image_name = core-image-minimal-qemux86-64.rootfs-20250101000000
kernel_imagetype = bzImage
machine = qemux86-64
qb_audio_drv = alsa
qb_audio_opt = -device AC97
qb_cmdline_ip_slirp = ip=dhcp
qb_cmdline_ip_tap = ip=192.168.7.@CLIENT@::192.168.7.@GATEWAY@:255.255.255.0::eth0:off:8.8.8.8 net.ifnames=0
qb_cpu = -cpu Skylake-Client -machine q35,i8042=off
qb_cpu_kvm = -cpu Skylake-Client -machine q35,i8042=off
qb_default_fstype = ext4
qb_default_kernel = bzImage--6.12-r0-qemux86-64-20250101000000.bin
qb_drive_type = /dev/sd
qb_graphics =
qb_kernel_cmdline_append = oprofile.timer=1 tsc=reliable no_timer_check rcupdate.rcu_expedited=1  swiotlb=0
qb_mem = -m 256
qb_network_device = -device virtio-net-pci,netdev=net0,mac=@MAC@
qb_no_pni = net.ifnames=0
qb_opt_append = -usb -device usb-tablet -usb -device usb-kbd
qb_rng = -object rng-random,filename=/dev/urandom,id=rng0 -device virtio-rng-pci,rng=rng0
qb_rootfs_extra_opt =
qb_serial_opt = -serial mon:stdio -serial null
qb_smp = -smp 4
qb_system_name = qemu-system-x86_64
qb_tap_nameserver = 8.8.8.8
serial_consoles = 115200;ttyS0 115200;ttyS1
staging_bindir_native = ../../../work/x86_64-linux/qemu-helper-native/1.0/recipe-sysroot-native/usr/bin/
tune_arch = x86_64
""".replace(" =\n", " = \n")  # configparser writes "key = " for empty values

QEMUARM64 = """\
[config_bsp]
deploy_dir_image = .
image_link_name = core-image-minimal-qemuarm64.rootfs
image_name = core-image-minimal-qemuarm64.rootfs-20250101000000
kernel_imagetype = Image
machine = qemuarm64
qb_cmdline_ip_slirp = ip=dhcp
qb_cpu = -cpu cortex-a57
qb_cpu_kvm = -cpu host -machine gic-version=3
qb_default_fstype = ext4.zst
qb_default_kernel = Image--6.12-r0-qemuarm64-20250101000000.bin
qb_graphics = -device virtio-gpu-pci
qb_kernel_cmdline_append =  swiotlb=0
qb_machine = -machine virt
qb_mem = -m 256
qb_network_device = -device virtio-net-pci,netdev=net0,mac=@MAC@
qb_opt_append = -device qemu-xhci -device usb-tablet -device usb-kbd
qb_rng = -object rng-random,filename=/dev/urandom,id=rng0 -device virtio-rng-pci,rng=rng0
qb_rootfs_opt = -drive id=disk0,file=@ROOTFS@,if=none,format=raw -device virtio-blk-pci,drive=disk0
qb_serial_opt = -device virtio-serial-pci -chardev null,id=virtcon -device virtconsole,chardev=virtcon
qb_slirp_opt = -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:2323-:23
qb_smp = -smp 4
qb_system_name = qemu-system-aarch64
serial_consoles = 115200;ttyAMA0 115200;hvc0
staging_bindir_native = ../../../work/x86_64-linux/qemu-helper-native/1.0/recipe-sysroot-native/usr/bin/
tune_arch = aarch64
"""


def deploy(tmp_path: Path, text: str, rootfs_ext: str = "ext4", link_rootfs: bool = True) -> Path:
    folder = tmp_path / "tmp" / "deploy" / "images" / "machine"
    folder.mkdir(parents=True)
    conf = QemuBootConfig(Path("x"), {})
    for line in text.splitlines():
        if " = " in line:
            key, value = line.split(" = ", 1)
            conf.values[key] = value
    (folder / conf.values["qb_default_kernel"]).write_bytes(b"kernel")
    name = conf.values["image_link_name"] if link_rootfs else conf.values["image_name"]
    (folder / f"{name}.{rootfs_ext}").write_bytes(b"rootfs")
    path = folder / f"{conf.values['image_link_name']}.qemuboot.conf"
    path.write_text(text)
    return path


def fake_qemu(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_parse_relative_paths(tmp_path):
    conf = QemuBootConfig.load(deploy(tmp_path, QEMUX86_64))
    assert conf.machine == "qemux86-64"
    assert conf.deploy_dir == conf.path.parent
    assert conf.kernel == conf.deploy_dir / "bzImage--6.12-r0-qemux86-64-20250101000000.bin"
    assert conf.rootfs() == conf.deploy_dir / "core-image-minimal-qemux86-64.rootfs.ext4"
    assert conf.serial_consoles == ["ttyS0", "ttyS1"]
    assert conf.memory_mb == 256
    # relative to the conf's folder, like runqemu does
    assert os.path.normpath(conf.staging_bindir_native) == os.path.normpath(
        tmp_path / "tmp" / "work" / "x86_64-linux" / "qemu-helper-native" / "1.0" / "recipe-sysroot-native"
        / "usr" / "bin")
    assert conf.get("qb_graphics") is None  # empty means unset


def test_rootfs_found_by_image_name_glob(tmp_path):
    conf = QemuBootConfig.load(deploy(tmp_path, QEMUX86_64, link_rootfs=False))
    assert conf.rootfs().name == "core-image-minimal-qemux86-64.rootfs-20250101000000.ext4"


def test_folder_picks_conf_and_skips_initramfs(tmp_path):
    path = deploy(tmp_path, QEMUX86_64)
    (path.parent / "core-image-minimal-initramfs-qemux86-64.qemuboot.conf").write_text(QEMUX86_64)
    assert QemuBootConfig.load(path.parent).path == path.resolve()


@pytest.mark.parametrize("content,match,line", [
    ("qb_mem = -m 256\n", "no \\[config_bsp\\] section header", 1),
    ("[other]\nqb_mem = 1\n", "no \\[config_bsp\\] section", None),
    ("[config_bsp]\nqb_mem = 1\n  \n!!! what\n", "cannot parse", 4),
])
def test_bad_conf_names_file_and_line(tmp_path, content, match, line):
    path = tmp_path / "bad.qemuboot.conf"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as info:
        QemuBootConfig.load(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert str(path) in str(info.value)


def test_binary_and_missing_conf(tmp_path):
    path = tmp_path / "junk.qemuboot.conf"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match=r"junk\.qemuboot\.conf"):
        QemuBootConfig.load(path)
    with pytest.raises(InputError, match=r"no such qemuboot\.conf"):
        QemuBootConfig.load(tmp_path / "absent.qemuboot.conf")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(InputError, match=r"no \*\.qemuboot\.conf in this folder"):
        QemuBootConfig.load(tmp_path / "empty-dir")


def test_missing_kernel_and_rootfs_name_the_conf(tmp_path):
    path = deploy(tmp_path, QEMUX86_64)
    conf = QemuBootConfig.load(path)
    conf.kernel.unlink()
    with pytest.raises(InputError, match=r"kernel .* does not exist") as info:
        QemuBootConfig.load(path).kernel  # noqa: B018
    assert info.value.path == str(path.resolve())
    conf.rootfs().unlink()
    with pytest.raises(InputError, match=r"rootfs .*qemux86-64\.rootfs\.ext4 does not exist"):
        conf.rootfs()


def test_find_qemu_prefers_staging_bindir_native(tmp_path, monkeypatch):
    path = deploy(tmp_path, QEMUX86_64)
    conf = QemuBootConfig.load(path)
    on_path = fake_qemu(tmp_path / "bin", "qemu-system-x86_64")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_qemu(conf) == str(on_path)
    native = fake_qemu(conf.staging_bindir_native, "qemu-system-x86_64")
    assert os.path.samefile(find_qemu(conf), native)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    native.unlink()
    with pytest.raises(TargetError, match="no qemu-system-x86_64 in staging_bindir_native"):
        find_qemu(conf)


def test_argv_qemux86_64(tmp_path):
    path = deploy(tmp_path, QEMUX86_64)
    target = QemuTarget(path, insecure_accept_host_key=True, workdir=tmp_path / "run",
                        forward_ports=[80])
    target.forwarded = {80: 40080}
    argv = target.build_argv(qemu="/usr/bin/qemu-system-x86_64", ssh_port=40022)
    joined = " ".join(argv)
    deploy_dir = path.resolve().parent
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert "-device virtio-net-pci,netdev=net0,mac=52:54:00:12:35:02" in joined
    assert "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40080-:80" in joined
    assert f"-drive file={deploy_dir}/core-image-minimal-qemux86-64.rootfs.ext4,if=virtio,format=raw" in joined
    assert "-accel tcg -cpu Skylake-Client -machine q35,i8042=off -smp 4 -m 256 -snapshot" in joined
    assert f"-kernel {deploy_dir}/bzImage--6.12-r0-qemux86-64-20250101000000.bin" in joined
    assert "-usb -device usb-tablet" in joined
    assert f"path={tmp_path}/run/console.log" in joined
    append = argv[argv.index("-append") + 1]
    assert append == ("root=/dev/vda rw ip=dhcp console=ttyS0 oprofile.timer=1 tsc=reliable no_timer_check "
                      "rcupdate.rcu_expedited=1 swiotlb=0 audit=1 audit_backlog_limit=8192")
    assert "-no-reboot" in argv and "mon:stdio" not in joined


def test_argv_qemuarm64_replaces_slirp_ports_and_unpacks_zst(tmp_path):
    if not __import__("shutil").which("zstd"):
        pytest.skip("zstd not installed (apt-get install zstd)")
    path = deploy(tmp_path, QEMUARM64, rootfs_ext="ext4.zst")
    image = path.parent / "core-image-minimal-qemuarm64.rootfs.ext4.zst"
    import subprocess

    subprocess.run(["zstd", "-q", "-f", "-o", str(image), "-"], input=b"an ext4 image", check=True)
    target = QemuTarget(path, insecure_accept_host_key=True, workdir=tmp_path / "run", smp=2, mem_mb=1024,
                        kernel_args=["audit=1"])
    argv = target.build_argv(qemu="qemu-system-aarch64", ssh_port=41000)
    joined = " ".join(argv)
    assert "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:41000-:22" in joined
    assert ":2222-" not in joined and ":2323-" not in joined
    unpacked = tmp_path / "run" / "core-image-minimal-qemuarm64.rootfs.ext4"
    assert unpacked.read_bytes() == b"an ext4 image"
    assert f"-drive id=disk0,file={unpacked},if=none,format=raw -device virtio-blk-pci,drive=disk0" in joined
    assert "-accel tcg -machine virt -cpu cortex-a57 -smp 2 -m 1024" in joined
    append = argv[argv.index("-append") + 1]
    assert append == "root=/dev/vda rw ip=dhcp console=ttyAMA0 swiotlb=0 audit=1"
    target.stop()  # removes the unpacked copy
    assert not unpacked.exists()


def test_commas_in_paths_are_escaped(tmp_path):
    path = deploy(tmp_path / "a,b", QEMUARM64, rootfs_ext="ext4")
    conf_text = path.read_text().replace("qb_default_fstype = ext4.zst", "qb_default_fstype = ext4")
    path.write_text(conf_text)
    target = QemuTarget(path, insecure_accept_host_key=True, workdir=tmp_path / "run")
    joined = " ".join(target.build_argv(qemu="qemu-system-aarch64", ssh_port=41000))
    assert "a,,b" in joined


def test_kvm_is_opt_in(tmp_path, monkeypatch):
    path = deploy(tmp_path, QEMUARM64.replace("ext4.zst", "ext4"))
    monkeypatch.delenv("SECCOMP_PY_QEMU_ACCEL", raising=False)
    assert QemuTarget(path, insecure_accept_host_key=True).accel == "tcg"
    monkeypatch.setenv("SECCOMP_PY_QEMU_ACCEL", "kvm")
    target = QemuTarget(path, insecure_accept_host_key=True, workdir=tmp_path / "run")
    assert target.accel == "kvm"
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        argv = target.build_argv(qemu="q", ssh_port=1)
        assert "-accel kvm -machine virt -cpu host -machine gic-version=3" in " ".join(argv)
    else:
        with pytest.raises(TargetError, match="/dev/kvm"):
            target.build_argv(qemu="q", ssh_port=1)


def test_no_host_key_is_an_error(tmp_path):
    path = deploy(tmp_path, QEMUX86_64)
    target = QemuTarget(path, workdir=tmp_path / "run")
    from seccomp_py.target import HostKeyError

    # The fake rootfs has no /etc/ssh keys to pin, and nothing was given.
    with pytest.raises(HostKeyError, match="insecure-accept-host-key"):
        target._host_key_for_ssh()


def test_boot_hang_is_recognised():
    from seccomp_py.target.qemu import boot_hang

    tail = "[   52.510959] watchdog: BUG: soft lockup - CPU#0 stuck for 44s! [modprobe:121]\n[   52.51] Modules linked"
    assert boot_hang(tail) == "watchdog: BUG: soft lockup - CPU#0 stuck for 44s! [modprobe:121]"
    assert boot_hang("[  242.1] INFO: task systemd-udevd:181 blocked for more than 120 seconds.") is not None
    # RCU stall warnings alone are common under TCG on a busy host, and the guest often recovers
    assert boot_hang("[   25.719971] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:") is None


def test_a_guest_kernel_that_hangs_is_booted_again_once(tmp_path, monkeypatch):
    """A stand-in qemu (a real process) writes a soft lockup to the console chardev and hangs; the
    target boots it once more, then gives up with the console line, long before the boot timeout."""
    import time

    from seccomp_py.target import BootError

    path = deploy(tmp_path, QEMUX86_64)
    fake = tmp_path / "bin" / "qemu-system-x86_64"
    fake.parent.mkdir()
    spawns = tmp_path / "spawns"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo x >> {spawns}\n"
        'for a in "$@"; do case $a in file,id=seccomp-console,path=*) console=${a#*path=} ;; esac; done\n'
        'echo "[   52.5] watchdog: BUG: soft lockup - CPU#0 stuck for 44s! [modprobe:121]" > "$console"\n'
        "exec sleep 300\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    target = QemuTarget(path, workdir=tmp_path / "run", insecure_accept_host_key=True, boot_timeout=120)
    target.config.values.pop("staging_bindir_native", None)
    started = time.monotonic()
    with pytest.raises(BootError, match="hung while booting, 2 times: watchdog: BUG: soft lockup"):
        target.start()
    assert time.monotonic() - started < 60
    assert spawns.read_text().count("x") == 2
    assert not target.running
