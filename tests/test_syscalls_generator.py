"""tools/gen-syscall-tables: byte-identical regeneration, --check, and --kernel-tree."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from seccomp_py.syscalls import TABLES_PATH, get_abi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "gen-syscall-tables")
# the workspace's reference data (libseccomp csv, kernel table fixtures); SECCOMP_PY_REFERENCE overrides
REFERENCE = os.environ.get("SECCOMP_PY_REFERENCE") or os.path.normpath(os.path.join(ROOT, "..", "shared", "reference"))
CSV = os.path.join(REFERENCE, "libseccomp", "syscalls.csv")
FIXTURES = os.path.join(REFERENCE, "linux")


def gen(*args):
    return subprocess.run([sys.executable, TOOL, "--libseccomp-csv", CSV, *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def inputs():
    if not os.path.isfile(CSV):
        pytest.skip(f"{CSV} not found: libseccomp's syscalls.csv is a dev-time input of the generator")


@pytest.fixture
def system_calls(inputs):
    if importlib.util.find_spec("system_calls") is None:
        pytest.skip("PyPI system-calls is not installed (dev dependency: pip install system-calls==7.2)")
    from system_calls.linux_version import linux_version
    if linux_version != "7.2.0":
        pytest.skip(f"system-calls has Linux {linux_version}; the committed tables are from 7.2.0")


def test_regeneration_is_byte_identical(system_calls, tmp_path):
    with open(TABLES_PATH, "rb") as handle:
        committed = handle.read()
    for attempt in range(2):
        out = tmp_path / f"tables{attempt}.json"
        proc = gen("-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == committed
    assert gen("--check").returncode == 0


def test_check_reports_stale_file(system_calls, tmp_path):
    stale = tmp_path / "tables.json"
    with open(TABLES_PATH, encoding="utf-8") as handle:
        data = json.load(handle)
    del data["abis"]["x86_64"]["syscalls"]["openat"]
    stale.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    before = stale.read_bytes()
    proc = gen("--check", "-o", str(stale))
    assert proc.returncode == 1 and "out of date" in proc.stderr
    assert stale.read_bytes() == before  # --check writes nothing


def test_missing_csv_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, TOOL, "--libseccomp-csv", str(tmp_path / "none.csv"), "-o",
                           str(tmp_path / "t.json")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "none.csv: libseccomp syscalls.csv not found" in proc.stderr
    assert not (tmp_path / "t.json").exists()


@pytest.fixture
def kernel_tree(inputs, tmp_path):
    if not os.path.isdir(FIXTURES):
        pytest.skip(f"{FIXTURES} not found (reference kernel tables of this workspace)")
    tree = tmp_path / "linux"
    shutil.copytree(FIXTURES, tree)
    return tree


def test_kernel_tree_with_missing_abi_fails_naming_it(kernel_tree, tmp_path):
    out = tmp_path / "t.json"
    proc = gen("--kernel-tree", str(kernel_tree), "-o", str(out))
    assert proc.returncode == 1
    assert "aarch64: not in this tree: arch/arm64/tools/syscall_64.tbl" in proc.stderr
    assert "loongarch64" in proc.stderr
    assert not out.exists()


def test_kernel_tree_generates_consistent_tables(kernel_tree, tmp_path):
    # complete the fixture tree the way a real checkout has it
    os.symlink("../../../scripts/syscall.tbl", kernel_tree / "arch" / "arm64" / "tools" / "syscall_64.tbl")
    (kernel_tree / "arch" / "loongarch" / "kernel").mkdir(parents=True)
    (kernel_tree / "arch" / "loongarch" / "kernel" / "Makefile.syscalls").write_text("syscall_abis_64 +=\n")
    (kernel_tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 10\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    out = tmp_path / "t.json"
    proc = gen("--kernel-tree", str(kernel_tree), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "no ARM private calls" in proc.stderr  # the fixtures lack arch/arm/include/uapi/asm/unistd.h
    data = json.loads(out.read_text())
    assert data["linux_version"] == "6.10.0"
    assert data["source"]["numbers"] == "kernel tree (Linux 6.10.0)"
    for abi, entry in data["abis"].items():
        ours = get_abi(abi)
        gone = {"quotactl_path", "reserved177", "reserved193"}  # see test_syscalls_kerneltree
        wrong = {n: (nr, ours.by_name.get(n)) for n, nr in entry["syscalls"].items()
                 if ours.by_name.get(n) != nr and n not in gone}
        assert wrong == {}, abi
        assert set(entry["kver"]) <= set(entry["syscalls"])
    assert data["abis"]["arm"]["syscalls"]["set_tls"] == 0x0F0005  # added by the generator
