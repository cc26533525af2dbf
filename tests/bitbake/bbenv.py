"""Helpers for tests/bitbake/ (see conftest.py): running real BitBake as an unprivileged user.

Real BitBake for tests/bitbake/: a bitbake 2.18 + openembedded-core (+ meta-yocto) wrynose checkout.

The checkout is found through $SECCOMP_PY_BB_CHECKOUT or in ~/.cache/meta-seccomp-py/bitbake-checkout,
where tools/prepare-bitbake puts it (from local mirrors: SECCOMP_PY_GIT_SOURCES=DIR tools/prepare-bitbake).
Without one, every test here skips and says so.

BitBake refuses to run as root, so when the tests run as root they create an unprivileged user
(seccomp-bb), copy the checkout and the layers into its home and run BitBake as that user. The build is
offline (BB_NO_NETWORK = "1"). One session parses all recipes once (about 2 minutes on 2 cores); the
other tests reuse that parse cache or run single tasks with `bitbake -b` (seconds).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "meta-seccomp-py"
TEST_LAYER = Path(__file__).resolve().parent / "meta-seccomp-test"
BB_USER = "seccomp-bb"
CHECKOUT_ENV = "SECCOMP_PY_BB_CHECKOUT"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
PARSE_TIMEOUT = 1800
TASK_TIMEOUT = 600

# One cache folder for the whole test suite: the reference guests' builder (tests/qemu/guest.py) owns its lookup.
_QEMU_TESTS = str(ROOT / "tests" / "qemu")
if _QEMU_TESTS not in sys.path:
    sys.path.insert(0, _QEMU_TESTS)
from guest import cache_root  # noqa: E402


def find_checkout() -> Optional[Path]:
    explicit = os.environ.get(CHECKOUT_ENV)
    return Path(explicit) if explicit else cache_root() / "bitbake-checkout"


def checkout_problem(path: Path) -> Optional[str]:
    for needed in ("bitbake/bin/bitbake", "openembedded-core/meta/conf/layer.conf"):
        if not (path / needed).exists():
            return f"{path / needed} is missing"
    return None


HOW_TO_PREPARE = (f"prepare one with `SECCOMP_PY_GIT_SOURCES=<folder with bitbake, openembedded-core, meta-yocto "
                  f"git repos> tools/prepare-bitbake` (or --upstream), or point {CHECKOUT_ENV} at a folder holding "
                  f"bitbake/ and openembedded-core/")


def has_locale(name: str = "en_US.utf8") -> bool:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return False
    return name.lower() in {line.strip().lower().replace("utf-8", "utf8") for line in out.splitlines()}


def git_head(path: Path) -> str:
    proc = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(path), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


@dataclass
class Result:
    argv: List[str]
    returncode: int
    output: str

    def lines(self, prefix: str) -> List[str]:
        return [line for line in self.output.splitlines() if line.startswith(prefix)]

    def explain(self) -> str:
        tail = "\n".join(self.output.splitlines()[-60:])
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\n{tail}"


@dataclass
class BitBakeEnv:
    """Where BitBake runs for these tests, and as whom."""

    checkout: Path
    layers: Path
    build: Path
    home: Path
    uid: Optional[int] = None
    gid: Optional[int] = None
    distro: str = "poky"
    extra_path: List[str] = field(default_factory=list)
    parse: Optional[Result] = None
    premirrors: str = ""

    @property
    def demo_recipe(self) -> Path:
        return self.layers / "meta-seccomp-py/recipes-security/seccomp-demo/seccomp-demo_1.0.bb"

    def test_recipe(self, name: str) -> Path:
        return self.layers / f"meta-seccomp-test/recipes-test/seccomp-test/{name}_1.0.bb"

    def environ(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = {
            "HOME": str(self.home),
            "PATH": ":".join([str(self.checkout / "bitbake/bin"), *self.extra_path, SYSTEM_PATH]),
            "LANG": "en_US.UTF-8",
            "LC_ALL": "en_US.UTF-8",
            "BB_ENV_PASSTHROUGH_ADDITIONS": "MACHINE SECCOMP_MODE",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(extra or {})
        return env

    def run(self, argv: Sequence[str], *, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None,
            timeout: int = TASK_TIMEOUT) -> Result:
        kwargs = {}
        if self.uid is not None:
            kwargs = {"user": self.uid, "group": self.gid, "extra_groups": []}
        try:
            proc = subprocess.run(list(argv), cwd=str(cwd or self.build), env=self.environ(env),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                  timeout=timeout, check=False, **kwargs)
        except subprocess.TimeoutExpired as exc:
            out = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else (exc.output or "")
            return Result(list(argv), -1, out + f"\n[timed out after {timeout} s]")
        self.wait_for_server()
        return Result(list(argv), proc.returncode, proc.stdout)

    def wait_for_server(self, timeout: float = 600.0) -> None:
        """The BitBake server outlives its client while it saves the parse cache; a command started in that
        window finds the cache half-written and parses everything again. Wait until it lets go of its lock."""
        deadline = time.monotonic() + timeout
        for lock in (self.build / "bitbake.lock", self.build / "build" / "bitbake.lock"):
            while lock.exists() and time.monotonic() < deadline:
                try:
                    fd = os.open(lock, os.O_RDONLY)  # never create it: it belongs to the BitBake user
                except FileNotFoundError:
                    break
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    break  # nobody holds it: a stale file
                except BlockingIOError:
                    time.sleep(0.5)
                finally:
                    os.close(fd)

    def bitbake(self, *args: str, machine: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                timeout: int = TASK_TIMEOUT) -> Result:
        extra = dict(env or {})
        if machine:
            extra["MACHINE"] = machine
        return self.run(["bitbake", *args], env=extra, timeout=timeout)

    def chown(self, path: Path) -> None:
        if self.uid is None:
            return
        for folder, dirs, files in os.walk(path):
            os.lchown(folder, self.uid, self.gid)
            for name in dirs + files:
                os.lchown(os.path.join(folder, name), self.uid, self.gid)


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(BB_USER)
    except KeyError:
        pass
    proc = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--comment",
                           "meta-seccomp-py BitBake tests", BB_USER], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"BitBake refuses to run as root and user {BB_USER} could not be created: {proc.stderr.strip()}")
    print(f"[bitbake tests] created user {BB_USER} (BitBake refuses to run as root)")
    return pwd.getpwnam(BB_USER)


def stage_checkout(source: Path, dest: Path) -> None:
    """Copy the checkout into the unprivileged user's home once per set of commits."""
    stamp = "\n".join(f"{name} {git_head(source / name)}" for name in ("bitbake", "openembedded-core", "meta-yocto"))
    stamp += f"\nfrom {source}\n"
    stamp_file = dest / ".staged-from"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    stamp_file.write_text(stamp)
    print(f"[bitbake tests] staged {source} -> {dest}")


def copy_layer(source: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def write_conf(env: BitBakeEnv) -> None:
    conf = env.build / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    layers = [env.checkout / "openembedded-core/meta"]
    if env.distro == "poky":
        layers.append(env.checkout / "meta-yocto/meta-poky")
    layers += [env.layers / "meta-seccomp-py", env.layers / "meta-seccomp-test"]
    (conf / "bblayers.conf").write_text(
        'BBPATH = "${TOPDIR}"\nBBFILES ?= ""\nBBLAYERS = " \\\n'
        + "".join(f"    {p} \\\n" for p in layers) + '    "\n')
    (conf / "local.conf").write_text(f"""\
MACHINE ??= "qemuarm64"
DISTRO = "{env.distro}"
BB_NO_NETWORK = "1"
CONNECTIVITY_CHECK_URIS = ""
# uninative cannot download its tarball offline; it would only add warnings to every run.
INHERIT:remove = "uninative"
INIT_MANAGER = "systemd"
DISTRO_FEATURES:append = " seccomp"
IMAGE_CLASSES += "seccomp-image"
IMAGE_INSTALL:append = " seccomp-demo"
SECCOMP_MODE ??= "enforce"
DL_DIR = "${{TOPDIR}}/downloads"
SSTATE_DIR = "${{TOPDIR}}/sstate-cache"
BB_NUMBER_THREADS = "2"
BB_NUMBER_PARSE_THREADS = "2"
""")


def python_problem(env: BitBakeEnv) -> Optional[str]:
    probe = env.run(["python3", "-c", "import jinja2, sys; print(sys.version_info >= (3, 9))"], cwd=env.home)
    if probe.returncode != 0 or probe.output.strip() != "True":
        return (f"python3 on {SYSTEM_PATH} cannot import jinja2 (needed by the layer's renderer; Debian: "
                f"python3-jinja2): {probe.output.strip()[-300:]}")
    return None




# A warning or error line that concerns our layers (not merely a path under ~/.cache/meta-seccomp-py).
OUR_FILES = re.compile(r"meta-seccomp-py/(?:classes|conf|recipes-|lib)|meta-seccomp-test/|seccomp(?:-image)?\.bbclass|"
                       r"seccomp-demo|seccomp-profiling|seccomp-test|packagegroup-seccomp|seccomp_py")

KAS_VERSION = "5.5"
MIRROR_NAMES = ("bitbake", "openembedded-core", "meta-yocto")
MIRRORS_ENV = "SECCOMP_PY_BB_MIRRORS"


def find_mirrors() -> Path:
    explicit = os.environ.get(MIRRORS_ENV)
    return Path(explicit) if explicit else cache_root() / "mirrors"


def mirrors_problem(path: Path) -> Optional[str]:
    for name in MIRROR_NAMES:
        if not (path / f"{name}.git" / "HEAD").exists():
            return f"{path / (name + '.git')} is missing"
    return None


def kas_premirrors(mirrors: Path) -> str:
    """KAS_PREMIRRORS lines mapping kas.yml's URLs to the local bare mirrors."""
    urls = {
        "bitbake": "https://git.openembedded.org/bitbake",
        "openembedded-core": "https://git.openembedded.org/openembedded-core",
        "meta-yocto": "https://git.yoctoproject.org/meta-yocto",
    }
    return "\n".join(f"{urls[name]} file://{mirrors / (name + '.git')}" for name in MIRROR_NAMES)


def make_kas_venv(venv: Path) -> Optional[str]:
    """A venv with kas for the unprivileged user (root's Python environment is not readable by it).
    System site packages stay visible: the layer's renderer needs the system's jinja2."""
    kas = venv / "bin/kas"
    if kas.exists():
        probe = subprocess.run([str(kas), "--version"], capture_output=True, text=True, check=False)
        if KAS_VERSION in (probe.stdout + probe.stderr):
            return None
        shutil.rmtree(venv)
    steps = [["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
             [str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", f"kas=={KAS_VERSION}"]]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return f"`{' '.join(step)}` failed: {(proc.stdout + proc.stderr).strip()[-400:]}"
    print(f"[kas tests] installed kas {KAS_VERSION} into {venv} for user {BB_USER}")
    return None
