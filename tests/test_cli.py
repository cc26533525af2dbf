"""The CLI front end: every subcommand has --help, exit codes 0/1/2, merge/diff/show on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from seccomp_py.cli import SUBCOMMANDS, build_parser
from seccomp_py.profile import Profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "seccomp-py")


def cli(*args, check_code=None):
    proc = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=120)
    if check_code is not None:
        assert proc.returncode == check_code, (proc.stdout, proc.stderr)
    return proc


def built_commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


def test_core_commands_are_registered():
    assert {"collect", "merge", "diff", "show", "resolve"} <= set(built_commands())
    assert set(built_commands()) <= set(SUBCOMMANDS)


@pytest.mark.parametrize("command", [None, *built_commands()])
def test_help_everywhere(command):
    args = ["--help"] if command is None else [command, "--help"]
    proc = cli(*args, check_code=0)
    assert "usage: seccomp-py" in proc.stdout


def test_usage_error_exits_2():
    proc = cli("merge", check_code=2)
    assert "error:" in proc.stderr
    cli("no-such-command", check_code=2)


def _write(tmp_path, name, entries):
    profile = Profile()
    for subject, abi, syscall in entries:
        profile.add(subject, abi, syscall, source="test")
    path = tmp_path / name
    profile.save(str(path))
    return str(path)


def test_merge_diff_show(tmp_path):
    one = _write(tmp_path, "one.json", [("nginx.service", "x86_64", "read"), ("nginx.service", "x86_64", "open")])
    two = _write(tmp_path, "two.json", [("nginx.service", "x86_64", "openat"), ("redis.service", "aarch64", "close")])
    out = str(tmp_path / "merged.json")
    proc = cli("merge", one, two, "-o", out, check_code=0)
    assert "2 subjects, 4 syscalls" in proc.stdout
    merged = Profile.load(out)
    assert merged.syscalls("nginx.service", "x86_64") == ["open", "openat", "read"]

    proc = cli("diff", one, two, check_code=0)
    lines = proc.stdout.splitlines()
    assert "+ nginx.service x86_64 openat" in lines
    assert "- nginx.service x86_64 open" in lines
    assert "+ redis.service aarch64 close" in lines
    cli("diff", one, one, "--exit-code", check_code=0)
    cli("diff", one, two, "--exit-code", check_code=3)
    data = json.loads(cli("diff", one, two, "--json", check_code=0).stdout)
    assert data["removed"] == {"nginx.service": {"x86_64": ["open", "read"]}}

    proc = cli("show", out, check_code=0)
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert ["nginx.service", "x86_64", "openat", "1", "-", "test"] in rows
    assert "2 subjects, 2 subject/ABI pairs, 4 syscalls" in proc.stdout
    proc = cli("show", out, "--names-only", "--subject", "redis.service", check_code=0)
    assert proc.stdout.strip() == "redis.service aarch64: close"


def test_bad_profile_exits_1_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "seccomp-py/profile/v1", "subjects": {"a": {"syscalls": {"x86_64": [1]}}}}')
    good = _write(tmp_path, "good.json", [("a", "x86_64", "read")])
    out = tmp_path / "out.json"
    proc = cli("merge", good, str(bad), "-o", str(out), check_code=1)
    assert str(bad) in proc.stderr and "list of syscall names" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    proc = cli("show", str(tmp_path / "missing.json"), check_code=1)
    assert "cannot read profile" in proc.stderr


def test_collect_reads_a_pipe_and_real_samples(tmp_path):
    sample = os.path.join(ROOT, "tests", "data", "guest", "x86_64", "journal-audit.json")
    out = tmp_path / "p.json"
    with open(sample, "rb") as handle:
        proc = subprocess.run([sys.executable, TOOL, "collect", "-i", "-", "-o", str(out)], stdin=handle,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    from_pipe = Profile.load(str(out))
    assert from_pipe.count_syscalls() > 20
    proc = cli("collect", "-i", sample, "-o", str(tmp_path / "q.json"), check_code=0)
    assert "SECCOMP records" in proc.stdout
    assert Profile.load(str(tmp_path / "q.json")).to_json()["subjects"] == from_pipe.to_json()["subjects"]


def test_collect_refuses_unknown_input_and_writes_nothing(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\x00\x01binary garbage\n")
    out = tmp_path / "p.json"
    proc = cli("collect", "-i", str(junk), "-o", str(out), check_code=1)
    assert str(junk) in proc.stderr and "cannot tell the format" in proc.stderr
    assert not out.exists()
