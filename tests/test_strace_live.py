"""The strace parser against strace itself, run here on fresh workloads (needs strace and ptrace)."""

from __future__ import annotations

import collections
import glob
import os
import shutil
import subprocess

import pytest

from seccomp_py.strace import FORMAT_SUMMARY, FORMAT_TRACE, StraceCollector, detect_format

NON_RETURNING = {"exit", "exit_group"}
WORKLOAD = ["/bin/sh", "-c", "/bin/echo hi | /bin/cat > /dev/null; /bin/true"]
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "strace")


@pytest.fixture(scope="module")
def strace():
    path = shutil.which("strace")
    if path is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    probe = subprocess.run([path, "-o", "/dev/null", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here (ptrace not permitted?): {probe.stderr.strip()}")
    return path


def run(cmd, **kwargs):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kwargs)


def collect(paths, fmt="auto", **kwargs):
    collector = StraceCollector(abi=os.uname().machine, **kwargs)
    if isinstance(paths, str):
        collector.feed_file(paths, fmt)
    else:
        collector.feed_files(paths)
    return collector, list(collector.observations())


def subjects(observations):
    out = collections.defaultdict(set)
    for obs in observations:
        out[(obs.subject, obs.abi)].add(obs.syscall)
    return dict(out)


def counts(observations):
    out: collections.Counter = collections.Counter()
    for obs in observations:
        out[(obs.abi, obs.syscall)] += obs.count
    return out


def split_summary(path, tmp_path):
    """-C writes the trace and then the summary of the very same run: cut the table out."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("% time") or line.startswith("System call"))
    table = tmp_path / "table.txt"
    table.write_text("".join(lines[start:]), encoding="utf-8")
    return str(table)


def test_trace_counts_equal_the_summary_of_the_same_run(strace, tmp_path):
    out = tmp_path / "trace.txt"
    run([strace, "-f", "-C", "-o", str(out), *WORKLOAD])
    assert detect_format(str(out)) == FORMAT_TRACE
    collector, trace = collect(str(out))
    assert collector.stats.warnings == []
    native = StraceCollector(abi=os.uname().machine).native.name
    assert set(subjects(trace)) == {(exe, native) for exe in ("/bin/sh", "/bin/echo", "/bin/cat", "/bin/true")}
    table = split_summary(str(out), tmp_path)
    assert detect_format(table) == FORMAT_SUMMARY
    _, summary = collect(table)
    expected = counts(summary)
    got = counts(trace)
    for key in [k for k in got if k[1] in NON_RETURNING]:
        del got[key]
    assert got == expected


def test_ff_set_equals_f(strace, tmp_path):
    run([strace, "-ff", "-o", str(tmp_path / "ff"), *WORKLOAD])
    run([strace, "-f", "-o", str(tmp_path / "f.txt"), *WORKLOAD])
    ff_paths = sorted(glob.glob(str(tmp_path / "ff.*")))
    assert len(ff_paths) >= 4  # sh, the two pipe children, true
    ff_collector, ff = collect(ff_paths)
    _, f = collect(str(tmp_path / "f.txt"))
    assert ff_collector.stats.warnings == []
    assert subjects(ff) == subjects(f)


def test_stderr_output_with_prefixes(strace, tmp_path):
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as handle:
        subprocess.run([strace, "-f", "-tt", "-T", "-y", *WORKLOAD], check=True, stdout=subprocess.DEVNULL,
                       stderr=handle)
    _, from_stderr = collect(str(err))
    run([strace, "-f", "-o", str(tmp_path / "f.txt"), *WORKLOAD])
    _, from_file = collect(str(tmp_path / "f.txt"))
    assert subjects(from_stderr) == subjects(from_file)


@pytest.fixture(scope="module")
def hello32(tmp_path_factory):
    if os.uname().machine != "x86_64":
        pytest.skip("the 32-bit personality test builds an i386 binary; host is not x86_64")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    directory = tmp_path_factory.mktemp("m32")
    source = directory / "hello.c"
    source.write_text('#include <unistd.h>\nint main(void){write(1,"hello32\\n",8);return 0;}\n')
    binary = directory / "hello32"
    build = subprocess.run([gcc, "-m32", "-static", "-O2", "-o", str(binary), str(source)], capture_output=True,
                           text=True)
    if build.returncode != 0:
        pytest.skip(f"gcc -m32 -static failed (gcc-multilib missing?): {build.stderr.strip()[:200]}")
    if subprocess.run([str(binary)], capture_output=True).returncode != 0:
        pytest.skip("this kernel cannot run i386 binaries (no IA32 emulation)")
    return str(binary)


def test_32_bit_personality(strace, hello32, tmp_path):
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as handle:
        subprocess.run([strace, "-f", "/bin/sh", "-c", f"{hello32}; /bin/true"], check=True,
                       stdout=subprocess.DEVNULL, stderr=handle)
    collector, obs = collect(str(err))
    found = subjects(obs)
    assert {"ugetrlimit", "set_thread_area", "write"} <= found[(hello32, "x86")]
    assert collector.stats.personality_switches == 1
    assert collector.stats.warnings == []
    # with -o strace writes no marker; the ABI is inferred, with a warning
    run([strace, "-f", "-o", str(tmp_path / "o.txt"), "/bin/sh", "-c", f"{hello32}; /bin/true"])
    collector, obs_o = collect(str(tmp_path / "o.txt"))
    assert subjects(obs_o) == found
    assert len(collector.stats.warnings) == 1 and "x86" in collector.stats.warnings[0]
    # and the -qcf table of the same command has a 32-bit section with the same names
    run([strace, "-qcf", "-o", str(tmp_path / "c.txt"), "/bin/sh", "-c", f"{hello32}; /bin/true"])
    _, table = collect(str(tmp_path / "c.txt"), subject=hello32)
    table_x86 = {o.syscall for o in table if o.abi == "x86"}
    assert table_x86 == found[(hello32, "x86")] - NON_RETURNING


def test_stored_C_sample_counts_match_its_table(tmp_path):
    """Same check as the live one, on the committed sample (runs without strace)."""
    path = os.path.join(DATA, "strace-f-C.txt")
    _, trace = collect(path)
    _, summary = collect(split_summary(path, tmp_path))
    got = counts(trace)
    for key in [k for k in got if k[1] in NON_RETURNING]:
        del got[key]
    assert got == counts(summary)
