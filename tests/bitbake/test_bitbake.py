"""The layer under real BitBake: parse, layer listing, variables, and do_seccomp_render for real.

All tests share one build directory and one full parse (see conftest.py); the rest use the parse cache
or run a single task with `bitbake -b`.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Dict

import pytest
from bbenv import OUR_FILES, BitBakeEnv, Result

from seccomp_py.profile import Profile
from seccomp_py.render import render

pytestmark = pytest.mark.bitbake

def variables(result: Result) -> Dict[str, str]:
    """VAR="value" lines of `bitbake -e` (values are single-line there)."""
    out = {}
    for line in result.output.splitlines():
        match = re.match(r'^(?:export )?([A-Za-z0-9_:${}.+/-]+)="(.*)"$', line)
        if match:
            out[match.group(1)] = match.group(2)
    return out


def task_deps(env_vars: Dict[str, str]) -> dict:
    return ast.literal_eval(env_vars["_task_deps"])


def started_tasks(result: Result) -> list:
    return re.findall(r"task (do_\w+): Started", result.output)


# -- parse and layer listing ----------------------------------------------------------------------------
def test_parse_with_our_layers_has_no_errors_or_warnings_from_our_files(bb_env: BitBakeEnv) -> None:
    result = bb_env.parse
    assert result is not None
    print(result.output[-2000:])
    assert result.returncode == 0, result.explain()
    summary = [line for line in result.output.splitlines() if line.startswith("Parsing of ")]
    assert summary, result.explain()
    assert re.search(r"\b0 errors\b", summary[-1]), summary[-1]
    ours = [line for line in result.lines("WARNING:") + result.lines("ERROR:") if OUR_FILES.search(line)]
    assert not ours, "\n".join(ours)


def test_show_layers_lists_the_layer(bb_parsed: BitBakeEnv) -> None:
    result = bb_parsed.run(["bitbake-layers", "show-layers"])
    assert result.returncode == 0, result.explain()
    rows = {line.split()[0]: line.split() for line in result.output.splitlines() if line.strip()}
    assert "seccomp-py" in rows, result.output  # the collection name from layer.conf
    path, priority = rows["seccomp-py"][1:3]
    assert path == str(bb_parsed.layers / "meta-seccomp-py")
    assert priority == "6"
    print(result.output)


# -- variables and tasks -------------------------------------------------------------------------------
def test_env_of_demo_shows_variables_and_task_dependencies(bb_parsed: BitBakeEnv) -> None:
    result = bb_parsed.bitbake("-e", "seccomp-demo")
    assert result.returncode == 0, result.explain()
    env = variables(result)
    assert env["SECCOMP_MODE"] == "enforce"
    assert env["SECCOMP_FORMATS"] == "systemd"
    assert env["SECCOMP_DEFAULT_ACTION"] == "errno"
    assert env["SECCOMP_PROFILES"] == "seccomp-demo.json"
    assert env["SECCOMP_WORKLOADS"] == "/usr/share/seccomp-demo/workload.sh"
    assert env["SECCOMP_RENDER_DIR"] == env["WORKDIR"] + "/seccomp"
    assert env["SYSTEMD_SERVICE:seccomp-demo"] == "seccomp-demo.service"
    assert env["TARGET_ARCH"] == "aarch64"
    files = env["FILES:seccomp-demo"].split()
    assert "/usr/lib/systemd/system/*.d/50-seccomp.conf" in files
    assert "/usr/share/seccomp-py/recipes/seccomp-demo.json" in files
    # the profile's checksum is part of the task signature
    checksums = bb_parsed.run(["bitbake-getvar", "-r", "seccomp-demo", "--flag", "file-checksums", "--value",
                               "do_seccomp_render"])
    assert checksums.returncode == 0, checksums.explain()
    profile = bb_parsed.demo_recipe.parent / "files/seccomp-demo.json"
    assert f"{profile}:True" in checksums.output.split(), checksums.explain()

    deps = task_deps(env)
    parents = deps["parents"]
    assert "do_seccomp_render" in deps["tasks"]
    assert parents["do_seccomp_render"] == ["do_unpack"]
    assert "do_seccomp_render" in parents["do_install"]
    # compile does not wait for (or re-run after) the render task
    assert "do_seccomp_render" not in parents["do_compile"]
    print({k: parents[k] for k in ("do_seccomp_render", "do_install", "do_compile")})


@pytest.mark.parametrize("mode", ["enforce", "log"])
def test_image_class_variables_and_profile_task(bb_parsed: BitBakeEnv, mode: str) -> None:
    image = bb_parsed.checkout / "openembedded-core/meta/recipes-core/images/core-image-minimal.bb"
    result = bb_parsed.bitbake("-e", "-b", str(image), env={"SECCOMP_MODE": mode})
    assert result.returncode == 0, result.explain()
    env = variables(result)
    assert "seccomp_rootfs_check" in env["ROOTFS_POSTPROCESS_COMMAND"].split()
    deps = task_deps(env)
    assert "do_seccomp_profile" in deps["tasks"]
    assert deps["parents"]["do_seccomp_profile"] == ["do_image_complete"]
    assert "qemu-system-native:do_populate_sysroot" in deps["depends"]["do_seccomp_profile"].split()
    assert deps["nostamp"].get("do_seccomp_profile") == "1"
    install = env["IMAGE_INSTALL"].split()
    cmdline = env.get("QB_KERNEL_CMDLINE_APPEND", "")
    if mode == "log":
        assert "packagegroup-seccomp-profiling" in install
        assert "audit_backlog_limit=8192" in cmdline
        assert "allow-root-login" in env["IMAGE_FEATURES"].split()
    else:
        assert "packagegroup-seccomp-profiling" not in install
        assert "audit_backlog_limit" not in cmdline
        assert "allow-root-login" not in env["IMAGE_FEATURES"].split()


# -- do_seccomp_render for real ------------------------------------------------------------------------
def render_dir(env: BitBakeEnv, recipe: Path, machine: str) -> Dict[str, str]:
    result = env.bitbake("-e", "-b", str(recipe), machine=machine)
    assert result.returncode == 0, result.explain()
    return variables(result)


@pytest.mark.parametrize("machine, abi", [("qemuarm64", "aarch64"), ("qemux86-64", "x86_64")])
def test_demo_render_task_produces_the_filters(bb_parsed: BitBakeEnv, machine: str, abi: str) -> None:
    result = bb_parsed.bitbake("-b", str(bb_parsed.demo_recipe), "-c", "seccomp_render", machine=machine)
    assert result.returncode == 0, result.explain()
    assert "do_seccomp_render" in started_tasks(result) or "didn't need to be rerun" in result.output
    env = render_dir(bb_parsed, bb_parsed.demo_recipe, machine)
    rootfs = Path(env["SECCOMP_RENDER_DIR"]) / "rootfs"
    dropin = rootfs / "usr/lib/systemd/system/seccomp-demo.service.d/50-seccomp.conf"
    assert dropin.is_file(), sorted(str(p) for p in rootfs.rglob("*"))
    text = dropin.read_text()
    assert f"# abi: {abi}" in text
    assert "SystemCallArchitectures=native" in text

    # byte-identical to what the library renders from the committed profile for this ABI
    profile_path = bb_parsed.demo_recipe.parent / "files/seccomp-demo.json"
    expected = render(Profile.load(str(profile_path)), "systemd", subjects=["seccomp-demo.service"], abi=abi,
                      profile_name="seccomp-demo.json")
    assert text == expected["seccomp-demo.service.d/50-seccomp.conf"]

    manifest = json.loads((rootfs / "usr/share/seccomp-py/recipes/seccomp-demo.json").read_text())
    assert manifest["abi"] == abi
    assert manifest["mode"] == "enforce"
    assert manifest["workloads"] == ["/usr/share/seccomp-demo/workload.sh"]
    assert manifest["units"]["seccomp-demo.service"]["files"] == [
        "/usr/lib/systemd/system/seccomp-demo.service.d/50-seccomp.conf"]
    print(f"{machine}: {dropin.relative_to(rootfs)} ({len(text.splitlines())} lines)")


def test_formats_and_per_unit_override(bb_parsed: BitBakeEnv) -> None:
    recipe = bb_parsed.test_recipe("seccomp-test-good")
    result = bb_parsed.bitbake("-b", str(recipe), "-c", "seccomp_render")
    assert result.returncode == 0, result.explain()
    rootfs = Path(render_dir(bb_parsed, recipe, "qemuarm64")["SECCOMP_RENDER_DIR"]) / "rootfs"
    dropin = (rootfs / "usr/lib/systemd/system/seccomp-test.service.d/50-seccomp.conf").read_text()
    assert "SystemCallErrorNumber=kill" in dropin  # SECCOMP_DEFAULT_ACTION[seccomp-test.service] = "kill"
    lxc = (rootfs / "usr/share/lxc/seccomp/seccomp-test.service.seccomp").read_text().splitlines()
    assert lxc[0] == "2" and "[arm64]" in lxc
    oci = json.loads((rootfs / "usr/share/seccomp-py/oci/seccomp-test.service.json").read_text())
    assert "SCMP_ARCH_AARCH64" in oci["architectures"]
    allowed = {n for rule in oci["syscalls"] for n in rule["names"]}
    assert {"openat", "read", "write"} <= allowed and "open" not in allowed


@pytest.mark.parametrize("recipe, expected", [
    ("seccomp-test-unknown", [r"files/unknown-syscall\.json: seccomp-test\.service \[aarch64\] frobnicate: "
                              r"not a syscall on any known ABI"]),
    ("seccomp-test-wrongabi", [r"files/wrong-abi\.json: seccomp-test\.service \[aarch64\] open: does not exist on "
                               r"aarch64", r"wrong-abi\.json: seccomp-test\.service \[aarch64\] poll: "]),
    ("seccomp-test-notshipped", [r"files/not-shipped\.json: profile for unit 'other\.service', which recipe "
                                 r"seccomp-test-notshipped does not ship"]),
])
def test_bad_profiles_fail_the_render_task_with_our_message(bb_parsed: BitBakeEnv, recipe: str,
                                                            expected: list) -> None:
    result = bb_parsed.bitbake("-b", str(bb_parsed.test_recipe(recipe)), "-c", "seccomp_render",
                               machine="qemuarm64")
    assert result.returncode != 0, result.explain()
    errors = "\n".join(result.lines("ERROR:"))
    assert "do_seccomp_render" in errors
    for pattern in expected:
        assert re.search(pattern, errors), f"{pattern!r} not in:\n{errors}"
    print(errors)


def test_editing_a_profile_reruns_only_the_render_task(bb_parsed: BitBakeEnv) -> None:
    recipe = bb_parsed.test_recipe("seccomp-test-sig")
    profile_path = recipe.parent / "files/sig.json"
    original = profile_path.read_text()
    first = bb_parsed.bitbake("-b", str(recipe), "-c", "seccomp_render")
    assert first.returncode == 0, first.explain()
    again = bb_parsed.bitbake("-b", str(recipe), "-c", "seccomp_render")
    assert again.returncode == 0, again.explain()
    assert started_tasks(again) == [], again.explain()
    try:
        profile = Profile.loads(original)
        profile.add("seccomp-test.service", "aarch64", "getpid")
        profile_path.write_text(profile.dumps())
        edited = bb_parsed.bitbake("-b", str(recipe), "-c", "seccomp_render")
    finally:
        profile_path.write_text(original)
    assert edited.returncode == 0, edited.explain()
    assert started_tasks(edited) == ["do_seccomp_render"], edited.explain()
    dropin = Path(render_dir(bb_parsed, recipe, "qemuarm64")["SECCOMP_RENDER_DIR"]) / \
        "rootfs/usr/lib/systemd/system/seccomp-test.service.d/50-seccomp.conf"
    assert "getpid" in dropin.read_text()
