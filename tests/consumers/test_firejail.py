"""Firejail: the rendered fragment as the sandbox profile.

The issue asks for `firejail --noprofile --profile=<rendered>`; firejail 0.9.72 refuses that pair ("--noprofile
and --profile options are mutually exclusive"), and --profile=FILE alone already replaces the default profile,
so that is what runs here. The profile comes from a real run: strace of firejail under a permissive rendered
fragment, keeping the calls made after firejail loaded the filter that governs the workload.
"""

from __future__ import annotations

import re
import signal
import subprocess

import pytest
from _helpers import NEEDED, WORKLOAD, permissive_profile, profile_from_trace, require_sandbox, strace_argv

from seccomp_py.profile import Profile
from seccomp_py.render import render


@pytest.fixture(scope="module")
def ready():
    require_sandbox("firejail")


def firejail(tmp_path, fragment: str, *extra, trace_file=None, argv=WORKLOAD):
    path = tmp_path / "sandbox.profile"
    path.write_text(fragment)
    cmd = ["firejail", "--quiet", *extra, f"--profile={path}", *argv]
    if trace_file:
        cmd = strace_argv(trace_file, cmd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def fragment(profile: Profile, **kw) -> str:
    return next(iter(render(profile, "firejail", **kw).values()))


@pytest.fixture(scope="module")
def traced(ready, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("firejail-trace")
    trace = str(tmp / "trace")
    proc = firejail(tmp, fragment(permissive_profile()), trace_file=trace)
    return profile_from_trace(proc, trace, "strace:firejail")


def test_allowed_command_runs_and_filter_has_every_name(tmp_path, traced, report):
    text = fragment(traced)
    proc = firejail(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert "Type:" in proc.stdout
    # --debug prints the compiled BPF; fseccomp silently ignores names it does not know, so look for each.
    debug = firejail(tmp_path, text, "--debug")
    assert debug.returncode == 0
    compiled = set(re.findall(r"jeq ([a-z0-9_]+) [0-9a-f]{4} \(false", debug.stdout))
    names = traced.syscalls("workload", traced.abis("workload")[0])
    assert set(names) <= compiled, sorted(set(names) - compiled)
    assert "Secondary arch blocking seccomp filter configured" in debug.stdout
    report(f"firejail ran `{' '.join(WORKLOAD)}`; its compiled keep filter has all {len(names)} names, and the "
           f"secondary-ABI block filter is loaded")


def test_missing_syscall_gets_errno(tmp_path, traced, report):
    proc = firejail(tmp_path, fragment(traced.subtract([NEEDED])))
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr, proc.stderr
    report(f"firejail without {NEEDED}: busybox got EPERM, exit {proc.returncode}")


def test_missing_syscall_with_kill_action(tmp_path, traced, report):
    proc = firejail(tmp_path, fragment(traced.subtract([NEEDED]), action="kill"))
    assert proc.returncode == 128 + signal.SIGSYS, (proc.returncode, proc.stderr)
    report(f"firejail seccomp-error-action kill without {NEEDED}: workload killed by SIGSYS")


def test_seccomp_32_keep_is_still_built_with_the_native_table(tmp_path, traced, report):
    """Why the renderer refuses compat ABIs for Firejail: a seccomp.32.keep line breaks native programs.

    If this starts failing, firejail builds the 32-bit filter correctly now: allow x86 in render/firejail.py.
    """
    text = fragment(traced).replace("seccomp.block-secondary\n", "") + "seccomp.32.keep read,socketcall,_llseek\n"
    debug = firejail(tmp_path, text, "--debug", argv=["/bin/busybox", "true"])
    assert "fseccomp keep /run/firejail/mnt/seccomp/seccomp.32 " in debug.stdout, debug.stdout[-2000:]
    proc = firejail(tmp_path, text)
    assert proc.returncode != 0, "firejail now applies seccomp.32.keep to 32-bit calls only"
    report("firejail 0.9.72 still compiles seccomp.32.keep with the native table (native calls get blocked), "
           "so compat ABIs are refused")
