"""The guest builder's cache key and qemuboot.conf, without building anything."""

from __future__ import annotations

import configparser
import dataclasses

import guest
import pytest

from seccomp_py.target import QemuBootConfig, QemuTarget


@pytest.mark.parametrize("arch", sorted(guest.ARCHES))
def test_qemuboot_conf_is_written_like_qemuboot_bbclass(arch, tmp_path):
    spec = guest.ARCHES[arch]
    (tmp_path / "vmlinuz-6.1").write_bytes(b"k")
    (tmp_path / "initrd.img-6.1").write_bytes(b"i")
    path = guest.write_qemuboot_conf(spec, tmp_path, "vmlinuz-6.1", "initrd.img-6.1")
    (tmp_path / f"seccomp-guest-{spec.machine}.rootfs.ext4").write_bytes(b"r")
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "[config_bsp]"
    keys = [line.split(" = ")[0] for line in lines[1:] if " = " in line]
    assert keys == sorted(keys) and all(k == k.lower() for k in keys)
    # runqemu reads it with ConfigParser and upper-cases the keys
    parser = configparser.ConfigParser()
    parser.read(path)
    values = {k.upper(): v for k, v in parser.items("config_bsp")}
    assert values["DEPLOY_DIR_IMAGE"] == "."
    assert values["QB_SYSTEM_NAME"] == spec.qemu_system
    assert "@ROOTFS@" in values["QB_ROOTFS_OPT"]
    assert values["QB_OPT_APPEND"] == "-initrd @DEPLOY_DIR_IMAGE@/initrd.img-6.1"
    for required in ("IMAGE_LINK_NAME", "QB_DEFAULT_KERNEL", "QB_DEFAULT_FSTYPE", "QB_KERNEL_CMDLINE_APPEND",
                     "QB_CPU", "QB_MEM", "QB_SMP", "QB_SERIAL_OPT", "QB_NETWORK_DEVICE", "QB_SLIRP_OPT",
                     "STAGING_BINDIR_NATIVE", "SERIAL_CONSOLES"):
        assert required in values
    assert ("QB_MACHINE" in values) == (arch == "aarch64")  # x86 puts -machine into QB_CPU, as Yocto does

    conf = QemuBootConfig.load(path)
    argv = QemuTarget(path, insecure_accept_host_key=True, workdir=tmp_path / "run").build_argv(
        qemu=spec.qemu_system, ssh_port=2345)
    assert argv[argv.index("-initrd") + 1] == str(conf.deploy_dir / "initrd.img-6.1")
    assert argv[argv.index("-kernel") + 1] == str(conf.deploy_dir / "vmlinuz-6.1")
    console = spec.serial_consoles.split(";")[1]
    assert f"console={console}" in argv[argv.index("-append") + 1]


def test_content_hash_follows_the_recipe(monkeypatch):
    spec = guest.ARCHES["x86_64"]
    before = guest.content_hash(spec)
    assert before == guest.content_hash(spec)
    monkeypatch.setattr(guest, "COMMON_PACKAGES", [*guest.COMMON_PACKAGES, "htop"])
    assert guest.content_hash(spec) != before
    monkeypatch.undo()
    changed = dataclasses.replace(spec, qb_cpu="-cpu max")
    assert guest.content_hash(changed) != before
    assert guest.content_hash(guest.ARCHES["aarch64"]) != before
    assert guest.guest_dir("x86_64").name == f"x86_64-{before}"
