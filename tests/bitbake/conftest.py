"""Session fixtures for tests/bitbake/: one staged checkout, one build directory, one full parse.

See bbenv.py for how the checkout is found and how BitBake runs (as user seccomp-bb when root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bbenv import (
    BB_USER,
    HOW_TO_PREPARE,
    KAS_VERSION,
    LAYER,
    MIRRORS_ENV,
    PARSE_TIMEOUT,
    ROOT,
    TEST_LAYER,
    BitBakeEnv,
    checkout_problem,
    copy_layer,
    ensure_user,
    find_checkout,
    find_mirrors,
    git_head,
    has_locale,
    kas_premirrors,
    make_kas_venv,
    mirrors_problem,
    python_problem,
    stage_checkout,
    write_conf,
)


@pytest.fixture(scope="session")
def bb_env(tmp_path_factory: pytest.TempPathFactory) -> BitBakeEnv:
    source = find_checkout()
    problem = checkout_problem(source) if source else "no checkout configured"
    if problem:
        pytest.skip(f"no BitBake checkout ({problem}); {HOW_TO_PREPARE}")
    if not has_locale():
        if os.geteuid() == 0:
            proc = subprocess.run(["localedef", "-i", "en_US", "-f", "UTF-8", "en_US.UTF-8"],
                                  capture_output=True, text=True, check=False)
            print(f"[bitbake tests] generated locale en_US.UTF-8 (BitBake requires it): rc={proc.returncode}")
        if not has_locale():
            pytest.skip("BitBake requires the en_US.UTF-8 locale: add 'en_US.UTF-8 UTF-8' to /etc/locale.gen "
                        "and run locale-gen")
    if os.geteuid() == 0:
        user = ensure_user()
        staging = Path(user.pw_dir) / ".cache/meta-seccomp-py/bitbake-tests"
        staging.mkdir(parents=True, exist_ok=True)
        checkout = staging / "checkout"
        stage_checkout(source, checkout)
        env = BitBakeEnv(checkout=checkout, layers=staging / "layers", build=staging / "build",
                         home=Path(user.pw_dir), uid=user.pw_uid, gid=user.pw_gid)
        os.chown(Path(user.pw_dir) / ".cache", user.pw_uid, user.pw_gid)
        os.chown(Path(user.pw_dir) / ".cache/meta-seccomp-py", user.pw_uid, user.pw_gid)
    else:
        staging = tmp_path_factory.mktemp("bitbake")
        env = BitBakeEnv(checkout=source, layers=staging / "layers", build=staging / "build", home=Path.home(),
                         extra_path=[os.path.dirname(sys.executable)])
    if not (env.checkout / "meta-yocto/meta-poky/conf/layer.conf").exists():
        env.distro = "nodistro"
    copy_layer(LAYER, env.layers / "meta-seccomp-py")
    copy_layer(TEST_LAYER, env.layers / "meta-seccomp-test")
    if env.build.exists():
        shutil.rmtree(env.build)  # a fresh parse, so warnings from our files cannot hide in a cache
    write_conf(env)
    env.chown(staging)
    problem = python_problem(env)
    if problem:
        pytest.skip(problem)
    print(f"[bitbake tests] checkout {source} (bitbake {git_head(source / 'bitbake')[:12]}, openembedded-core "
          f"{git_head(source / 'openembedded-core')[:12]}), build dir {env.build}, "
          f"running as {'uid ' + str(env.uid) if env.uid is not None else 'the current user'}", file=sys.stderr)
    env.parse = env.bitbake("-p", timeout=PARSE_TIMEOUT)
    return env


@pytest.fixture(scope="session")
def bb_parsed(bb_env: BitBakeEnv) -> BitBakeEnv:
    """bb_env after a successful full parse (the parse test itself reports a failed one)."""
    assert bb_env.parse is not None
    if bb_env.parse.returncode != 0:
        pytest.fail("`bitbake -p` failed, so this test cannot run:\n" + bb_env.parse.explain())
    return bb_env


@pytest.fixture(scope="session")
def kas_env(tmp_path_factory: pytest.TempPathFactory) -> BitBakeEnv:
    """A staged copy of this repository's kas files and layer, the local mirrors, and kas for the user
    BitBake runs as. build is kas's work dir; layers holds the staged repository."""
    mirrors = find_mirrors()
    problem = mirrors_problem(mirrors)
    if problem:
        pytest.skip(f"no local mirrors for kas ({problem}); make them with tools/prepare-bitbake "
                    f"(or point {MIRRORS_ENV} at a folder with bitbake.git, openembedded-core.git, meta-yocto.git)")
    if not has_locale():
        pytest.skip("BitBake requires the en_US.UTF-8 locale (the bitbake tests generate it when run as root)")
    if os.geteuid() == 0:
        user = ensure_user()
        staging = Path(user.pw_dir) / ".cache/meta-seccomp-py/kas-tests"
        staging.mkdir(parents=True, exist_ok=True)
        problem = make_kas_venv(staging / "kas-venv")
        if problem:
            pytest.skip(f"kas {KAS_VERSION} could not be installed for user {BB_USER}: {problem}")
        env = BitBakeEnv(checkout=staging, layers=staging / "src", build=staging / "work", home=Path(user.pw_dir),
                         uid=user.pw_uid, gid=user.pw_gid, extra_path=[str(staging / "kas-venv/bin")])
        staged_mirrors = staging / "mirrors"
        if staged_mirrors.exists():
            shutil.rmtree(staged_mirrors)
        shutil.copytree(mirrors, staged_mirrors, symlinks=True)
        mirrors = staged_mirrors
    else:
        kas = shutil.which("kas")
        if kas is None:
            pytest.skip(f"kas is not installed (pip install kas=={KAS_VERSION})")
        staging = tmp_path_factory.mktemp("kas")
        env = BitBakeEnv(checkout=staging, layers=staging / "src", build=staging / "work", home=Path.home(),
                         extra_path=[os.path.dirname(kas), os.path.dirname(sys.executable)])
    for folder in (env.layers, env.build):
        if folder.exists():
            shutil.rmtree(folder)
    env.layers.mkdir(parents=True)
    env.build.mkdir(parents=True)
    copy_layer(LAYER, env.layers / "meta-seccomp-py")
    shutil.copytree(ROOT / "kas", env.layers / "kas")
    shutil.copy2(ROOT / "kas.yml", env.layers / "kas.yml")
    (env.layers / "kas/test-offline.yml").write_text("""\
# Written by tests/bitbake: offline.
header:
  version: 14
local_conf_header:
  test-offline: |
    BB_NO_NETWORK = "1"
    CONNECTIVITY_CHECK_URIS = ""
    BB_NUMBER_PARSE_THREADS = "2"
""")
    env.chown(staging)
    env.premirrors = kas_premirrors(mirrors)
    return env
