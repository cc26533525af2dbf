"""oelint-adv reports nothing above info on the layer's recipes, bbappends, includes and classes."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from bbenv import LAYER

LINTED = ("*.bb", "*.bbappend", "*.bbclass", "*.inc")


@pytest.mark.parametrize("mode", ["fast", "all"])
def test_oelint_adv_finds_nothing_above_info(mode: str) -> None:
    oelint = shutil.which("oelint-adv")
    if oelint is None:
        pytest.skip("oelint-adv is not installed (pip install oelint-adv)")
    files = sorted(str(p.relative_to(LAYER)) for pattern in LINTED for p in LAYER.rglob(pattern))
    assert any(f.endswith("seccomp.bbclass") for f in files) and any(f.endswith(".bbappend") for f in files)
    proc = subprocess.run([oelint, "--quiet", "--release", "wrynose", "--mode", mode, "--relpaths",
                           "--constantmods", "+conf/oelint-constantmods.json", "--", *files],
                          cwd=LAYER, capture_output=True, text=True, check=False, timeout=600)
    findings = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    above_info = [line for line in findings if ":warning:" in line or ":error:" in line]
    print(f"{len(files)} files, {len(findings)} findings ({len(findings) - len(above_info)} info)")
    assert not above_info, "\n".join(above_info)
    assert all(":info:" in line for line in findings), "\n".join(findings)
