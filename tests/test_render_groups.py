"""systemd syscall groups: parsing `systemd-analyze syscall-filter`, the committed data, compression."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from seccomp_py import systemd_groups
from seccomp_py.errors import InputError, SeccompPyError
from seccomp_py.syscalls import get_abi

SAMPLE = """@default
    # System calls that are always permitted
    execve
    exit_group

@basic-io
    # Basic IO
    read
    write

@system-service
    # General system service operations
    @basic-io
    @default
    ioctl

@known
    # All known syscalls declared in the kernel
    execve
    exit_group
    ioctl
    read
    write

# Ungrouped System Calls (known but not included in any of the groups except @known):
#   landlock_add_rule
"""


def test_parse_sample():
    groups = systemd_groups.parse_syscall_filter(SAMPLE)
    assert sorted(groups) == ["@basic-io", "@default", "@known", "@system-service"]
    assert groups["@basic-io"] == ("Basic IO", ("read", "write"))
    table = systemd_groups.SystemdGroups(999, groups)
    assert table.expand("@system-service") == {"read", "write", "execve", "exit_group", "ioctl"}
    assert table.implicit() == {"execve", "exit_group"}


@pytest.mark.parametrize("text,line", [
    ("@a\n    read\nbogus line\n", 3),
    ("@a\n    read;rm\n", 2),
    ("    read\n", 1),
])
def test_parse_errors_name_the_line(text, line):
    with pytest.raises(InputError) as info:
        systemd_groups.parse_syscall_filter(text, "out.txt")
    assert info.value.line == line and info.value.path == "out.txt"


def test_unknown_nested_group_and_cycles():
    with pytest.raises(InputError, match="unknown group @nope"):
        systemd_groups.parse_syscall_filter("@a\n    @nope\n")
    table = systemd_groups.SystemdGroups(1, {"@a": ("", ("@b",)), "@b": ("", ("@a",))})
    with pytest.raises(InputError, match="cycle"):
        table.expand("@a")


def test_committed_data_loads_and_is_sane():
    assert 252 in systemd_groups.available_versions()
    table = systemd_groups.load(252)
    assert {"execve", "exit_group", "rt_sigreturn"} <= table.implicit()
    assert "@system-service" in table.names() and "@basic-io" in table.names()
    assert table.expand("@system-service") >= table.expand("@basic-io")
    with pytest.raises(SeccompPyError, match="gen-systemd-groups"):
        systemd_groups.load(1)


def test_host_systemd_regenerates_the_committed_file(capsys):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this host")
    version = systemd_groups.parse_version(
        subprocess.run(["systemd-analyze", "--version"], capture_output=True, text=True, check=True).stdout)
    if version not in systemd_groups.available_versions():
        pytest.skip(f"host has systemd {version}, no committed data for it to compare with")
    text = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True, text=True,
                          check=True).stdout
    parsed = systemd_groups.parse_syscall_filter(text)
    assert parsed == systemd_groups.load(version).groups
    with capsys.disabled():
        print(f"\n  systemd {version}: `systemd-analyze syscall-filter` gives the committed {len(parsed)} groups")


def test_compression_never_changes_the_allowed_set():
    table = systemd_groups.load(252)
    rng = random.Random(1326)
    for token in ("x86_64", "aarch64", "arm"):
        abi = get_abi(token)
        universe = sorted(abi.names())
        groups = [g for g in table.names() if g != "@known"]
        for _ in range(200):
            names = set(rng.sample(universe, rng.randint(0, 120)))
            for group in rng.sample(groups, rng.randint(0, 4)):
                names |= table.effective(group, abi)
            result = table.compress(names, abi)
            expanded = set(result.names)
            for group in result.groups:
                members = table.effective(group, abi)
                assert members <= names, (token, group)
                expanded |= members
            assert expanded == names
            for group in result.groups:  # no redundant group
                others = set(result.names).union(*(table.effective(g, abi) for g in result.groups if g != group))
                assert not table.effective(group, abi) <= others or not table.effective(group, abi)
