"""kas.yml and its overlays: valid for kas 5.5's own schema, consistent with tools/prepare-bitbake, and usable
offline (kas checkout from local mirrors through KAS_PREMIRRORS, then `bitbake -p` in kas shell)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys

import pytest
from bbenv import KAS_VERSION, OUR_FILES, PARSE_TIMEOUT, ROOT, BitBakeEnv

KAS_FILES = ["kas.yml", "kas/qemux86-64.yml", "kas/profiling.yml"]


def kas_schema() -> dict:
    kas = pytest.importorskip("kas", reason=f"kas is not installed (pip install kas=={KAS_VERSION})")
    from kas.configschema import CONFIGSCHEMA

    print(f"kas {kas.__version__}")
    return CONFIGSCHEMA


def load(name: str) -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (kas depends on it)")
    with open(ROOT / name, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("name", KAS_FILES)
def test_kas_file_validates_against_kas_schema(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (kas depends on it)")
    schema = kas_schema()
    config = load(name)
    jsonschema.validate(config, schema)
    assert config["header"]["version"] >= 14


def test_kas_file_rejects_what_the_schema_rejects() -> None:
    """The validation above can fail: a misspelt key is an error."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (kas depends on it)")
    schema = kas_schema()
    config = load("kas.yml")
    config["machines"] = config.pop("machine")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)


def test_kas_yml_describes_the_documented_image() -> None:
    config = load("kas.yml")
    assert config["machine"] == "qemuarm64"
    assert config["distro"] == "poky"
    repos = config["repos"]
    assert repos["bitbake"]["branch"] == "2.18"
    assert repos["openembedded-core"]["branch"] == "wrynose"
    assert repos["meta-yocto"]["branch"] == "wrynose"
    assert "meta-seccomp-py" in repos["meta-seccomp-py"]["layers"]
    assert "url" not in repos["meta-seccomp-py"]  # this repository itself
    local_conf = "\n".join(config["local_conf_header"].values())
    for line in ('INIT_MANAGER = "systemd"', 'DISTRO_FEATURES:append = " seccomp"',
                 'IMAGE_CLASSES += "seccomp-image"', "ssh-server-openssh", "seccomp-demo"):
        assert line in local_conf
    assert load("kas/qemux86-64.yml")["machine"] == "qemux86-64"
    assert 'SECCOMP_MODE = "log"' in "\n".join(load("kas/profiling.yml")["local_conf_header"].values())


def test_kas_pins_match_prepare_bitbake() -> None:
    loader = importlib.machinery.SourceFileLoader("prepare_bitbake", str(ROOT / "tools/prepare-bitbake"))
    spec = importlib.util.spec_from_loader("prepare_bitbake", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["prepare_bitbake"] = module  # dataclasses look their module up there
    try:
        loader.exec_module(module)
    finally:
        del sys.modules["prepare_bitbake"]
    repos = load("kas.yml")["repos"]
    for upstream in module.REPOS:
        entry = repos[upstream.name]
        assert (entry["url"], entry["branch"], entry["commit"]) == (upstream.url, upstream.branch, upstream.commit)


@pytest.mark.bitbake
def test_kas_checkout_from_premirrors_then_parse_in_kas_shell(kas_env: BitBakeEnv) -> None:
    config = "kas.yml:kas/test-offline.yml"
    env = {"KAS_WORK_DIR": str(kas_env.build), "KAS_PREMIRRORS": kas_env.premirrors}
    checkout = kas_env.run(["kas", "checkout", config], env=env, cwd=kas_env.layers, timeout=600)
    print(checkout.output[-1500:])
    assert checkout.returncode == 0, checkout.explain()
    for name in ("bitbake", "openembedded-core", "meta-yocto"):
        head = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(kas_env.build / name), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert head == load("kas.yml")["repos"][name]["commit"]
    bblayers = (kas_env.build / "build/conf/bblayers.conf").read_text()
    assert "/src/meta-seccomp-py " in bblayers  # kas writes ${TOPDIR}-relative paths

    parse = kas_env.run(["kas", "shell", config, "-c", "bitbake -p"], env=env, cwd=kas_env.layers,
                        timeout=PARSE_TIMEOUT)
    print(parse.output[-1500:])
    assert parse.returncode == 0, parse.explain()
    assert any(line.startswith("Parsing of ") and " 0 errors" in line for line in parse.output.splitlines()), \
        parse.explain()
    ours = [line for line in parse.output.splitlines()
            if line.startswith(("WARNING:", "ERROR:")) and OUR_FILES.search(line)]
    assert not ours, "\n".join(ours)
