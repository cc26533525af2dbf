"""do_seccomp_profile's code path for real: image manifest -> profile request -> the profiler on a booted qemu
guest -> one profile per recipe in SECCOMP_PROFILE_OUTDIR. The x86_64 reference guest (tests/qemu/guest.py)
stands in for a Yocto image: it has the same deploy-dir layout and qemuboot.conf."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest
from bbenv import ROOT

from seccomp_py import bitbake as glue
from seccomp_py.profile import Profile

pytestmark = pytest.mark.qemu


class Data:
    def __init__(self, values: Dict[str, str]) -> None:
        self.values = values

    def getVar(self, name: str) -> Optional[str]:
        return self.values.get(name)

    def getVarFlags(self, name: str) -> Dict[str, str]:
        return {}


def test_profile_task_profiles_the_declared_unit_on_a_booted_image(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "qemu"))
    import guest as guests

    guest = guests.find_guest("x86_64")
    if guest is None:
        pytest.skip("no cached x86_64 reference guest (python3 tests/qemu/guest.py build --arch x86_64)")
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc/ssh").mkdir(parents=True)
    shutil.copy(guest.host_key, rootfs / "etc/ssh" / guest.host_key.name)  # pinned, as for a Yocto rootfs
    manifest = tmp_path / "image.seccomp.json"
    manifest.write_text(json.dumps({
        "schema": glue.IMAGE_MANIFEST_SCHEMA, "abi": "x86_64",
        "recipes": [{"schema": glue.MANIFEST_SCHEMA, "recipe": "nginx", "abi": "x86_64", "mode": "log",
                     "units": {"nginx.service": {"mode": "log", "action": "errno", "files": []}},
                     "subjects": {},
                     # any shell script already on the guest: what matters here is that it is run there
                     "workloads": ["/etc/profile"], "profiles": []}]}))
    outdir = tmp_path / "profiles"
    image = Data({
        "TARGET_ARCH": "x86_64", "IMAGE_ROOTFS": str(rootfs), "DEPLOY_DIR_IMAGE": str(guest.directory),
        "IMAGE_LINK_NAME": guest.image_link_name, "SECCOMP_IMAGE_MANIFEST": str(manifest),
        "SECCOMP_PROFILE_OUTDIR": str(outdir), "SECCOMP_PROFILE_WORKDIR": str(tmp_path / "work"),
        "SECCOMP_PROFILE_SSH_KEYS": str(guest.ssh_key), "SECCOMP_PROFILE_MAX_ITERATIONS": "3",
    })
    report = glue.Reporter()
    written = glue.profile_image(image, report)
    assert list(written) == ["nginx"]
    profile = Profile.load(written["nginx"])
    assert profile.subjects() == ["nginx.service"]
    names = profile.syscalls("nginx.service", "x86_64")
    print(f"nginx.service: {len(names)} syscalls on x86_64")
    assert {"openat", "read", "socket", "bind", "listen"} <= set(names)  # nginx opens its config, listens on :80
    assert (tmp_path / "work/report.md").is_file()
    assert "Status: complete" in (tmp_path / "work/report.md").read_text()
