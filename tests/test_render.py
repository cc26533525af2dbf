"""Renderers: structure of each format, name/unit/errno validation, injection guards, ABI selection."""

from __future__ import annotations

import json
import re

import pytest

from seccomp_py.errors import InputError, SeccompPyError, UsageError
from seccomp_py.profile import Profile
from seccomp_py.render import render, render_log_dropin
from seccomp_py.render._core import RenderError, environment, render_template
from seccomp_py.render.systemd import FALLBACK_PLACEHOLDER, placeholder_for
from seccomp_py.syscalls import get_abi

BASIC = ["read", "write", "openat", "close", "mmap", "exit_group", "newfstatat", "rt_sigaction"]


def make(entries, subject="demo.service"):
    profile = Profile()
    for abi, names in entries.items():
        for name in names:
            profile.add(subject, abi, name, source="test")
    return profile


def only(files):
    assert len(files) == 1, files
    return next(iter(files.items()))


def key_lines(text, key):
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


# -- systemd -----------------------------------------------------------------------------------------
def test_systemd_dropin_structure():
    path, text = only(render(make({"x86_64": BASIC}), "systemd", profile_name="demo.json"))
    assert path == "demo.service.d/50-seccomp.conf"
    assert "[Service]" in text.splitlines()
    filters = key_lines(text, "SystemCallFilter")
    assert filters[0] == "", "the reset must come first"
    assert sorted(" ".join(filters[1:]).split()) == sorted(BASIC)
    assert key_lines(text, "SystemCallErrorNumber") == ["EPERM"]
    assert key_lines(text, "SystemCallArchitectures") == ["", "native"]
    assert "# profile: demo.json" in text and "# abi: x86_64" in text
    assert re.search(r"^# allow-list: 8 syscalls, sha256 [0-9a-f]{64}$", text, re.M)
    for line in text.splitlines():
        assert line == "" or line.startswith(("#", "[Service]", "SystemCall")), line


def test_systemd_compat_abi_is_listed_and_named():
    _, text = only(render(make({"x86_64": BASIC, "x86": ["socketcall", "read"]}), "systemd"))
    assert key_lines(text, "SystemCallArchitectures") == ["", "native x86"]
    assert "socketcall" in " ".join(key_lines(text, "SystemCallFilter"))
    assert "# abi: x86_64 (compat: x86)" in text


@pytest.mark.parametrize("action,errno,expected", [
    ("kill", None, "kill"), ("errno", "EACCES", "EACCES"), ("errno", 13, "EACCES"), ("errno", "enosys", "ENOSYS"),
])
def test_systemd_error_number(action, errno, expected):
    _, text = only(render(make({"x86_64": BASIC}), "systemd", action=action, errno=errno))
    assert key_lines(text, "SystemCallErrorNumber") == [expected]


@pytest.mark.parametrize("errno", ["NOPE", "EPERM\nX", 0, 5000, "log"])
def test_bad_errno_is_rejected(errno):
    with pytest.raises(SeccompPyError):
        render(make({"x86_64": BASIC}), "systemd", errno=errno)


def test_mips_errno_above_base_needs_a_number():
    profile = make({"mips64": ["read", "write"]})
    with pytest.raises(InputError, match="different number"):
        render(profile, "lxc", errno="ENOSYS")
    _, text = only(render(profile, "lxc", errno=89))
    assert text.splitlines()[1] == "allowlist errno 89"
    _, text = only(render(profile, "lxc", errno="EACCES"))  # errno-base: same everywhere
    assert text.splitlines()[1] == "allowlist errno 13"


def test_group_compression_only_uses_contained_groups():
    from seccomp_py.systemd_groups import load

    table = load(252)
    x86_64 = get_abi("x86_64")
    signal = table.effective("@signal", x86_64)
    names = sorted(signal | {"read", "openat"})
    _, text = only(render(make({"x86_64": names}), "systemd", systemd_version=252))
    listed = " ".join(key_lines(text, "SystemCallFilter")).split()
    assert "@signal" in listed
    assert "@basic-io" not in listed  # read alone does not make the group
    assert not signal & set(listed)
    expanded = set()
    for item in listed:
        expanded |= table.effective(item, x86_64) if item.startswith("@") else {item}
    assert expanded == set(names)


def test_group_compression_with_unknown_version_is_an_error():
    with pytest.raises(SeccompPyError, match="no syscall group data for systemd 1"):
        render(make({"x86_64": BASIC}), "systemd", systemd_version=1)


def test_subject_must_be_a_unit_for_systemd():
    profile = make({"x86_64": BASIC}, subject="/usr/bin/demo")
    with pytest.raises(InputError, match="invalid systemd unit name"):
        render(profile, "systemd")
    path, _ = only(render(profile, "systemd", unit="demo.service"))
    assert path == "demo.service.d/50-seccomp.conf"


@pytest.mark.parametrize("unit", ["demo.service\nExecStartPre=/bin/evil", "x.service ", "../etc.service",
                                  "demo.target", "@x.service", "a/b.service"])
def test_injected_unit_names_are_rejected(unit):
    with pytest.raises(InputError):
        render(make({"x86_64": BASIC}, subject=unit), "systemd")


def test_profile_name_cannot_inject_lines():
    for fmt in ("systemd", "lxc", "firejail"):
        _, text = only(render(make({"x86_64": BASIC}), fmt, profile_name="p.json\n[Service]\nExecStart=/evil\\"))
        assert "ExecStart" not in "".join(line for line in text.splitlines() if not line.startswith("#"))
        assert text.splitlines().count("[Service]") == (1 if fmt == "systemd" else 0)


def test_finalize_refuses_line_breaks_in_templates():
    with pytest.raises(RenderError, match="line break"):
        render_template("line", "systemd-log-dropin.conf.j2", unit="a.service", profile_name="x",
                        abi_line="x86_64", known_count=1, placeholder=None, placeholder_blind=False,
                        entries=["read\nExecStart=/evil"])


def test_strict_undefined():
    with pytest.raises(RenderError, match="undefined"):
        render_template("line", "systemd-log-dropin.conf.j2", unit="a.service")


# -- names are validated, never dropped -------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["systemd", "lxc", "oci", "docker", "firejail"])
def test_unknown_and_foreign_names_are_errors(fmt):
    with pytest.raises(InputError, match="bogus_call"):
        render(make({"x86_64": [*BASIC, "bogus_call"]}), fmt)
    with pytest.raises(InputError, match="'open'"):
        render(make({"aarch64": ["read", "open"]}), fmt)


def test_abi_selection():
    profile = make({"x86_64": BASIC, "aarch64": ["read", "openat"]})
    with pytest.raises(UsageError, match="several ABIs"):
        render(profile, "systemd")
    _, text = only(render(profile, "systemd", abi="arm64"))
    assert sorted(" ".join(key_lines(text, "SystemCallFilter")).split()) == ["openat", "read"]
    with pytest.raises(InputError, match="no syscalls for ABI riscv64"):
        render(profile, "oci", abi="riscv64")
    with pytest.raises(InputError, match="not in the profile"):
        render(profile, "oci", subjects=["other.service"])


# -- log mode ----------------------------------------------------------------------------------------
def test_log_dropin_with_known_set():
    text = render_log_dropin(["write", "read"], "x86_64", unit="demo.service")
    assert key_lines(text, "SystemCallLog") == ["", "~read write"]
    assert "SystemCallFilter" not in text


def test_log_dropin_empty_set_uses_placeholder_absent_on_the_abi_family():
    for token in ("x86_64", "aarch64", "riscv64", "arm", "x86", "ppc64le", "s390x"):
        abi = get_abi(token)
        text = render_log_dropin([], token, unit="demo.service")
        lines = key_lines(text, "SystemCallLog")
        assert lines[0] == "" and len(lines) == 2
        placeholder = lines[1].lstrip("~")
        family = [abi] + [get_abi(c) for c in abi.info.compat]
        assert placeholder != FALLBACK_PLACEHOLDER
        assert not any(a.has(placeholder) for a in family), (token, placeholder)


def test_log_dropin_kexec_load_known_needs_no_placeholder():
    text = render_log_dropin(["kexec_load"], "x86_64", unit="demo.service")
    assert key_lines(text, "SystemCallLog") == ["", "~kexec_load"]
    assert "placeholder" not in text.lower() and "stands in" not in text


def test_log_placeholder_fallback_is_flagged():
    every = [get_abi(a) for a in ("x86_64", "arm", "s390x")]
    assert placeholder_for(every) == FALLBACK_PLACEHOLDER


def test_log_dropin_rejects_foreign_names_but_takes_compat_names():
    with pytest.raises(InputError):
        render_log_dropin(["no_such_call"], "x86_64", unit="demo.service")
    text = render_log_dropin(["socketcall", "read"], "x86_64", unit="demo.service")  # x86 compat name
    assert key_lines(text, "SystemCallLog")[1] == "~read socketcall"


def test_render_log_action_uses_names_common_to_all_profiled_abis():
    profile = make({"x86_64": ["read", "write", "openat"], "x86": ["read", "socketcall"]})
    path, text = only(render(profile, "systemd", action="log"))
    assert path == "demo.service.d/50-seccomp-log.conf"
    assert key_lines(text, "SystemCallLog") == ["", "~read"]


def test_long_lists_wrap_into_several_assignments():
    names = sorted(get_abi("x86_64").names())
    _, text = only(render(make({"x86_64": names}), "systemd"))
    lines = key_lines(text, "SystemCallFilter")[1:]
    assert len(lines) > 5 and all(len(line) <= 100 for line in lines)
    assert sorted(" ".join(lines).split()) == names
    log = render_log_dropin(names, "x86_64", unit="demo.service")
    assert all(line.startswith("~") for line in key_lines(log, "SystemCallLog")[1:])


# -- LXC ---------------------------------------------------------------------------------------------
def test_lxc_layout_and_sections():
    profile = make({"aarch64": ["read", "openat"], "arm": ["read", "_llseek"], "x86_64": BASIC})
    path, text = only(render(profile, "lxc"))
    lines = text.splitlines()
    assert path == "demo.service.seccomp"
    assert lines[0] == "2" and lines[1] == "allowlist errno 1"
    assert "" not in lines, "liblxc parses a blank line as an empty rule"
    assert "[arm64]" in lines and "[aarch64]" not in lines and "[arm]" in lines and "[x86_64]" in lines
    section = lines[lines.index("[arm]") + 1:]
    assert section[:2] == ["_llseek", "read"]


def test_lxc_actions():
    profile = make({"x86_64": BASIC})
    assert only(render(profile, "lxc", action="kill"))[1].splitlines()[1] == "allowlist kill"
    assert only(render(profile, "lxc", errno="ENOSYS"))[1].splitlines()[1] == "allowlist errno 38"
    with pytest.raises(RenderError, match="no log action"):
        render(profile, "lxc", action="log")


# -- OCI / Docker ------------------------------------------------------------------------------------
def test_oci_document():
    profile = make({"x86_64": BASIC, "x86": ["socketcall"]})
    path, text = only(render(profile, "oci"))
    doc = json.loads(text)
    assert path == "demo.service.json"
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO" and doc["defaultErrnoRet"] == 1
    assert doc["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert doc["syscalls"] == [{"names": sorted([*BASIC, "socketcall"]), "action": "SCMP_ACT_ALLOW"}]
    assert render(profile, "docker") == render(profile, "oci")
    kill = json.loads(only(render(profile, "oci", action="kill"))[1])
    assert kill["defaultAction"] == "SCMP_ACT_KILL_PROCESS" and "defaultErrnoRet" not in kill
    assert json.loads(only(render(profile, "oci", action="log"))[1])["defaultAction"] == "SCMP_ACT_LOG"


def test_oci_only_profiled_compat_abis_are_listed():
    doc = json.loads(only(render(make({"aarch64": ["read"]}), "oci"))[1])
    assert doc["architectures"] == ["SCMP_ARCH_AARCH64"]


def test_json_template_refuses_raw_values():
    env = environment("json")
    assert env.from_string("{{ x | json }}").render(x='a"b') == '"a\\"b"'
    with pytest.raises(RenderError, match="json filter"):
        env.from_string("{{ x }}").render(x='a"b')


# -- Firejail ----------------------------------------------------------------------------------------
def test_firejail_fragment():
    path, text = only(render(make({"x86_64": BASIC}), "firejail"))
    assert path == "demo.service.profile"
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == ["seccomp.block-secondary", "seccomp.keep " + ",".join(sorted(BASIC)),
                    "seccomp-error-action EPERM"]
    _, text = only(render(make({"x86_64": BASIC}), "firejail", action="kill"))
    assert text.splitlines()[-1] == "seccomp-error-action kill"


def test_firejail_cannot_express_compat_abis():
    for entries in ({"x86_64": BASIC, "x86": ["socketcall"]}, {"aarch64": ["read"], "arm": ["read"]}):
        with pytest.raises(RenderError, match=r"seccomp\.32\.keep"):
            render(make(entries), "firejail")


def test_paths_for_executable_subjects():
    profile = make({"x86_64": BASIC}, subject="/usr/sbin/nginx")
    assert list(render(profile, "lxc")) == ["usr_sbin_nginx.seccomp"]
    assert list(render(profile, "oci")) == ["usr_sbin_nginx.json"]


def test_unknown_format():
    with pytest.raises(UsageError):
        render(make({"x86_64": BASIC}), "apparmor")


# -- CLI ---------------------------------------------------------------------------------------------
def run_cli(*args):
    import os
    import subprocess
    import sys

    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "seccomp-py")
    return subprocess.run([sys.executable, tool, *args], capture_output=True, text=True, timeout=60)


def test_cli_render_file_folder_and_stdout(tmp_path):
    src = tmp_path / "demo.json"
    profile = make({"x86_64": BASIC})
    profile.add("/usr/bin/other", "x86_64", "read")
    profile.save(str(src))
    proc = run_cli("render", str(src), "-f", "systemd", "-s", "demo.service", "-o", str(tmp_path / "one.conf"))
    assert proc.returncode == 0, proc.stderr
    assert "# profile: demo.json" in (tmp_path / "one.conf").read_text()
    proc = run_cli("render", str(src), "-f", "lxc", "-o", str(tmp_path / "out") + "/")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["demo.service.seccomp", "usr_bin_other.seccomp"]
    proc = run_cli("render", str(src), "-f", "oci", "-s", "demo.service", "--action", "kill", "-o", "-")
    assert json.loads(proc.stdout)["defaultAction"] == "SCMP_ACT_KILL_PROCESS"
    proc = run_cli("render", str(src), "-f", "oci", "-o", "-")
    assert proc.returncode == 2 and "stdout" in proc.stderr
    proc = run_cli("render", str(src), "-f", "systemd", "-o", str(tmp_path / "x"))
    assert proc.returncode == 1 and "invalid systemd unit name '/usr/bin/other'" in proc.stderr
    proc = run_cli("render", str(src), "-f", "systemd", "-s", "demo.service", "--abi", "aarch64", "-o", "-")
    assert proc.returncode == 1 and "no syscalls for ABI aarch64" in proc.stderr


# -- unit names --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["nginx.service", "getty@tty1.service", "foo@.service", "dev-sda1.swap",
                                  "a:b_c\\x2d.socket", "x@y@z.service"])
def test_valid_unit_names(name):
    from seccomp_py.unitname import validate_unit_name

    assert validate_unit_name(name) == name


@pytest.mark.parametrize("name", ["", ".service", "nginx", "nginx.exe", "@x.service", "a b.service",
                                  "a\nb.service", "a/b.service", "é.service", "x" * 250 + ".service"])
def test_invalid_unit_names(name):
    from seccomp_py.unitname import unit_name_problem

    assert unit_name_problem(name) is not None


def test_template_detection_and_exec_types():
    from seccomp_py.unitname import EXEC_UNIT_TYPES, is_template, unit_name_problem

    assert is_template("foo@.service") and not is_template("foo@bar.service") and not is_template("foo.service")
    assert unit_name_problem("multi-user.target", EXEC_UNIT_TYPES) is not None
