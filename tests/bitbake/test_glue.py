"""seccomp_py.bitbake without BitBake: the datastore logic, with a small stand-in for BitBake's d."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import pytest

from seccomp_py import bitbake as glue
from seccomp_py.errors import InputError
from seccomp_py.profile import Profile
from seccomp_py.syscalls import get_abi

UNIT = "seccomp-demo.service"
AARCH64 = ["accept4", "bind", "close", "exit_group", "listen", "openat", "ppoll", "read", "socket", "write"]
X86_64 = ["accept4", "bind", "close", "exit_group", "listen", "open", "poll", "read", "socket", "write"]


class Data:
    """The part of BitBake's datastore the glue uses: getVar, getVarFlags, expand."""

    def __init__(self, values: Dict[str, str], flags: Optional[Dict[str, Dict[str, str]]] = None) -> None:
        self.values = values
        self.flags = flags or {}

    def getVar(self, name: str) -> Optional[str]:
        return self.values.get(name)

    def getVarFlags(self, name: str) -> Dict[str, str]:
        return self.flags.get(name, {})

    def expand(self, value: str) -> str:
        return value


def write_profile(path: Path, table: Dict[str, Dict[str, list]]) -> Path:
    profile = Profile()
    for subject, abis in table.items():
        for abi, names in abis.items():
            for name in names:
                profile.add(subject, abi, name)
    profile.save(str(path))
    return path


def recipe(tmp_path: Path, arch: str = "aarch64", **extra: str) -> Data:
    values = {
        "PN": "seccomp-demo",
        "TARGET_ARCH": arch,
        "SECCOMP_PROFILES": "seccomp-demo.json",
        "FILESPATH": str(tmp_path / "files"),
        "SYSTEMD_SERVICE:seccomp-demo": UNIT,
        "DISTRO_FEATURES": "systemd seccomp",
        "SECCOMP_RENDER_DIR": str(tmp_path / "out"),
        "systemd_system_unitdir": "/usr/lib/systemd/system",
        "SECCOMP_WORKLOADS": "/usr/share/seccomp-demo/workload.sh",
    }
    values.update(extra)
    return Data(values)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    write_profile(folder / "seccomp-demo.json", {UNIT: {"aarch64": AARCH64, "x86_64": X86_64}})
    return folder


@pytest.mark.parametrize("arch, tunes, abi", [
    ("aarch64", "", "aarch64"), ("x86_64", "m64", "x86_64"), ("x86_64", "mx32", "x32"), ("arm", "armv7a", "arm"),
    ("riscv64", "", "riscv64"), ("i686", "", "x86"), ("powerpc64le", "", "ppc64le"), ("mips64el", "n64", "mips64"),
])
def test_target_arch_maps_to_abi(arch: str, tunes: str, abi: str) -> None:
    assert glue.abi_for_target(arch, tunes.split()) == abi


@pytest.mark.parametrize("arch, tunes", [("mips64", "n32"), ("powerpc64", ""), ("sparc", "")])
def test_unsupported_target_arch_is_an_error(arch: str, tunes: str) -> None:
    with pytest.raises(InputError, match=arch):
        glue.abi_for_target(arch, tunes.split())


@pytest.mark.parametrize("arch, abi, absent", [("aarch64", "aarch64", "open"), ("x86_64", "x86_64", "openat")])
def test_render_writes_dropin_and_manifest_per_abi(tmp_path: Path, files: Path, arch: str, abi: str,
                                                   absent: str) -> None:
    report = glue.Reporter()
    written = glue.render_recipe(recipe(tmp_path, arch), report)
    dropin = "/usr/lib/systemd/system/seccomp-demo.service.d/50-seccomp.conf"
    assert written == [dropin]
    text = (tmp_path / "out/rootfs" / dropin.lstrip("/")).read_text()
    assert f"# abi: {abi}" in text and "SystemCallArchitectures=native" in text
    filter_words = {w for line in text.splitlines() if line.startswith("SystemCallFilter=")
                    for w in line.split("=", 1)[1].split()}
    assert absent not in filter_words
    manifest = json.loads((tmp_path / "out/rootfs/usr/share/seccomp-py/recipes/seccomp-demo.json").read_text())
    assert manifest["abi"] == abi and manifest["units"][UNIT]["files"] == [dropin]
    assert manifest["workloads"] == ["/usr/share/seccomp-demo/workload.sh"]
    assert not report.errors()


def test_errors_name_profile_and_syscall_and_nothing_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    path = write_profile(folder / "seccomp-demo.json", {UNIT: {"aarch64": [*AARCH64, "open", "frobnicate", "bpf"]},
                                                        "other.service": {"aarch64": ["read"]}})
    report = glue.Reporter()
    with pytest.raises(glue.SeccompBuildError):
        glue.render_recipe(recipe(tmp_path), report)
    errors = report.errors()
    assert any(f"{path}: " in e and "open: does not exist on aarch64" in e for e in errors)
    assert any("frobnicate: not a syscall on any known ABI" in e for e in errors)
    assert any("'other.service', which recipe seccomp-demo does not ship" in e for e in errors)
    warnings = [f.message for f in report.findings if f.severity == "warning"]
    assert any("bpf: dangerous" in w for w in warnings)
    assert not (tmp_path / "out").exists()


def test_allow_dangerous_turns_the_warning_into_info(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    write_profile(folder / "seccomp-demo.json", {UNIT: {"aarch64": [*AARCH64, "bpf"]}})
    report = glue.Reporter()
    glue.render_recipe(recipe(tmp_path, SECCOMP_ALLOW_DANGEROUS="bpf"), report)
    assert not [f for f in report.findings if f.severity == "warning"]
    assert any("bpf" in f.message for f in report.findings if f.severity == "info")


def test_per_unit_varflags_override_action_and_mode(tmp_path: Path, files: Path) -> None:
    d = recipe(tmp_path)
    d.flags = {"SECCOMP_DEFAULT_ACTION": {UNIT: "kill"}}
    glue.render_recipe(d, glue.Reporter())
    text = (tmp_path / "out/rootfs/usr/lib/systemd/system/seccomp-demo.service.d/50-seccomp.conf").read_text()
    assert "SystemCallErrorNumber=kill" in text

    d = recipe(tmp_path, SECCOMP_RENDER_DIR=str(tmp_path / "log"))
    d.flags = {"SECCOMP_MODE": {UNIT: "log"}}
    written = glue.render_recipe(d, glue.Reporter())
    assert written == ["/usr/lib/systemd/system/seccomp-demo.service.d/50-seccomp-log.conf"]
    text = (tmp_path / "log/rootfs" / written[0].lstrip("/")).read_text()
    assert "SystemCallLog=~" in text and "SystemCallFilter=" not in text


def test_log_mode_needs_no_profile_but_enforce_does(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    written = glue.render_recipe(recipe(tmp_path, SECCOMP_MODE="log", SECCOMP_PROFILES=""), glue.Reporter())
    assert written == ["/usr/lib/systemd/system/seccomp-demo.service.d/50-seccomp-log.conf"]
    report = glue.Reporter()
    with pytest.raises(glue.SeccompBuildError):
        glue.render_recipe(recipe(tmp_path, SECCOMP_PROFILES=""), report)
    assert any("has no seccomp profile" in e for e in report.errors())


def test_missing_profile_lists_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    report = glue.Reporter()
    with pytest.raises(glue.SeccompBuildError):
        glue.render_recipe(recipe(tmp_path, SECCOMP_PROFILE_DIR=str(tmp_path / "layer-profiles")), report)
    assert any("not found" in e and "layer-profiles/seccomp-demo.json" in e for e in report.errors())


def test_profile_dir_is_searched_and_checksummed(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    shared = tmp_path / "layer-profiles"
    shared.mkdir()
    path = write_profile(shared / "seccomp-demo.json", {UNIT: {"aarch64": AARCH64}})
    d = recipe(tmp_path, SECCOMP_PROFILE_DIR=str(shared))
    assert glue.checksum_files(d) == f"{path}:True"
    assert glue.render_recipe(d, glue.Reporter())
    path.unlink()
    assert f"{path}:False" in glue.checksum_files(d).split()


def test_missing_seccomp_distro_feature_fails(tmp_path: Path, files: Path) -> None:
    report = glue.Reporter()
    with pytest.raises(glue.SeccompBuildError):
        glue.render_recipe(recipe(tmp_path, DISTRO_FEATURES="systemd"), report)
    assert any("DISTRO_FEATURES lacks 'seccomp'" in e for e in report.errors())


def test_native_builds_get_no_filters(tmp_path: Path, files: Path) -> None:
    assert glue.render_recipe(recipe(tmp_path, CLASSOVERRIDE="class-native"), glue.Reporter()) == []
    assert not (tmp_path / "out").exists()


def test_formats_install_where_their_consumers_look(tmp_path: Path, files: Path) -> None:
    written = glue.render_recipe(recipe(tmp_path, SECCOMP_FORMATS="systemd lxc oci firejail",
                                        SECCOMP_LXC_DIR="/usr/share/lxc/seccomp"), glue.Reporter())
    assert sorted(written) == sorted([
        "/usr/lib/systemd/system/seccomp-demo.service.d/50-seccomp.conf",
        "/usr/share/lxc/seccomp/seccomp-demo.service.seccomp",
        "/usr/share/seccomp-py/oci/seccomp-demo.service.json",
        "/usr/share/seccomp-py/firejail/seccomp-demo.service.profile",
    ])


# -- rootfs check ----------------------------------------------------------------------------------------
def test_rootfs_check_accepts_matching_abi_and_rejects_foreign_names(tmp_path: Path, files: Path) -> None:
    glue.render_recipe(recipe(tmp_path, "x86_64", SECCOMP_FORMATS="systemd lxc"), glue.Reporter())
    rootfs = tmp_path / "out/rootfs"
    (rootfs / "usr/lib/systemd/system/seccomp-demo.service").write_text("[Service]\nExecStart=/bin/true\n")
    x86 = glue.check_tree(str(rootfs), get_abi("x86_64"), "/usr/lib/systemd/system", "/usr/share/lxc/seccomp")
    assert x86 == []
    arm = glue.check_tree(str(rootfs), get_abi("aarch64"), "/usr/lib/systemd/system", "/usr/share/lxc/seccomp")
    errors = [f.message for f in arm if f.severity == "error"]
    assert any("'open', which does not exist on ABI aarch64" in e for e in errors)
    assert any("no rules for ABI aarch64" in e for e in errors)


def test_check_dropin_needs_native_architecture() -> None:
    text = "[Service]\nSystemCallFilter=read write\n"
    findings = glue.check_dropin("/x.conf", text, get_abi("x86_64"))
    assert [f.severity for f in findings] == ["error"] and "native" in findings[0].message
    ok = glue.check_dropin("/x.conf", text + "SystemCallArchitectures=native x86\n", get_abi("x86_64"))
    assert ok == []


def test_check_rootfs_deploys_the_image_manifest(tmp_path: Path, files: Path) -> None:
    glue.render_recipe(recipe(tmp_path), glue.Reporter())
    deploy = tmp_path / "deploy"
    d = Data({"TARGET_ARCH": "aarch64", "IMAGE_ROOTFS": str(tmp_path / "out/rootfs"), "IMGDEPLOYDIR": str(deploy),
              "SECCOMP_IMAGE_MANIFEST": "img.seccomp.json", "systemd_system_unitdir": "/usr/lib/systemd/system"})
    glue.check_rootfs(d, glue.Reporter())
    recipes = glue.read_image_manifest(str(deploy / "img.seccomp.json"))
    assert [r["recipe"] for r in recipes] == ["seccomp-demo"]


# -- do_seccomp_profile around a stand-in profiler -----------------------------------------------------
def test_profile_image_writes_one_profile_per_recipe_and_keeps_other_abis(tmp_path: Path, files: Path) -> None:
    glue.render_recipe(recipe(tmp_path), glue.Reporter())
    deploy = tmp_path / "deploy"
    image = {"TARGET_ARCH": "aarch64", "IMAGE_ROOTFS": str(tmp_path / "out/rootfs"), "IMGDEPLOYDIR": str(deploy),
             "DEPLOY_DIR_IMAGE": str(deploy), "IMAGE_LINK_NAME": "img", "SECCOMP_IMAGE_MANIFEST": "img.seccomp.json",
             "SECCOMP_PROFILE_OUTDIR": str(tmp_path / "profiles"), "WORKDIR": str(tmp_path / "work")}
    glue.check_rootfs(Data(image), glue.Reporter())
    (deploy / "img.qemuboot.conf").write_text("[config_bsp]\n")
    outdir = tmp_path / "profiles"
    outdir.mkdir()
    write_profile(outdir / "seccomp-demo.json", {UNIT: {"aarch64": ["read"], "x86_64": X86_64}})
    seen = {}

    def fake_profiler(request: glue.ProfileRequest) -> glue.ProfileOutcome:
        seen["request"] = request
        fresh = Profile()
        for name in [*AARCH64, "getrandom"]:
            fresh.add(UNIT, "aarch64", name)
        fresh.add("unrelated.service", "aarch64", "read")
        return glue.ProfileOutcome(fresh, converged=True, lost_records=0)

    written = glue.profile_image(Data(image), glue.Reporter(), runner=fake_profiler)
    request = seen["request"]
    assert request.units == [UNIT] and request.abi == "aarch64"
    assert request.workloads == ["/usr/share/seccomp-demo/workload.sh"]
    assert request.qemuboot == str(deploy / "img.qemuboot.conf")
    merged = Profile.load(written["seccomp-demo"])
    assert merged.subjects() == [UNIT]
    assert merged.syscalls(UNIT, "aarch64") == sorted([*AARCH64, "getrandom"])  # replaced, not merged with "read"
    assert merged.syscalls(UNIT, "x86_64") == sorted(X86_64)  # other ABI kept


@pytest.mark.parametrize("converged, lost, allow, message", [
    (False, 0, "0", "did not converge"), (True, 7, "0", "7 audit records were lost"), (True, 7, "1", None)])
def test_profile_image_fails_on_loss_or_no_convergence(tmp_path: Path, files: Path, converged: bool, lost: int,
                                                       allow: str, message: Optional[str]) -> None:
    glue.render_recipe(recipe(tmp_path), glue.Reporter())
    deploy = tmp_path / "deploy"
    image = {"TARGET_ARCH": "aarch64", "IMAGE_ROOTFS": str(tmp_path / "out/rootfs"), "IMGDEPLOYDIR": str(deploy),
             "DEPLOY_DIR_IMAGE": str(deploy), "IMAGE_LINK_NAME": "img", "SECCOMP_IMAGE_MANIFEST": "img.seccomp.json",
             "SECCOMP_PROFILE_OUTDIR": str(tmp_path / "profiles"), "SECCOMP_PROFILE_ALLOW_LOSS": allow}
    glue.check_rootfs(Data(image), glue.Reporter())
    (deploy / "img.qemuboot.conf").write_text("[config_bsp]\n")

    def fake_profiler(request: glue.ProfileRequest) -> glue.ProfileOutcome:
        fresh = Profile()
        fresh.add(UNIT, "aarch64", "read")
        return glue.ProfileOutcome(fresh, converged=converged, lost_records=lost)

    if message is None:
        assert glue.profile_image(Data(image), glue.Reporter(), runner=fake_profiler)
    else:
        with pytest.raises(glue.SeccompBuildError, match=message):
            glue.profile_image(Data(image), glue.Reporter(), runner=fake_profiler)
