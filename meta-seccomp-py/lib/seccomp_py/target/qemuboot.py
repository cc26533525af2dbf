"""Read Yocto's <image>.qemuboot.conf (written by openembedded-core's qemuboot.bbclass).

The file is a ConfigParser file with one [config_bsp] section of lower-case keys (qb_*,
deploy_dir_image, image_link_name, staging_bindir_native, serial_consoles ...). Paths in it are
relative to the folder holding the file, which is how runqemu treats a conf passed on its command
line, so a deploy dir can be copied anywhere and still boot.
"""

from __future__ import annotations

import configparser
import glob
import os
import shlex
from pathlib import Path
from typing import Dict, List, Optional

from seccomp_py.errors import InputError

SECTION = "config_bsp"

# runqemu's guess_qb_system(), for confs that lack qb_system_name.
_SYSTEM_BY_MACHINE = {
    "qemux86-64": "qemu-system-x86_64",
    "qemux86": "qemu-system-i386",
    "qemuarm64": "qemu-system-aarch64",
    "qemuarm": "qemu-system-arm",
    "qemuriscv64": "qemu-system-riscv64",
    "qemuriscv32": "qemu-system-riscv32",
    "qemuppc64": "qemu-system-ppc64",
    "qemumips64": "qemu-system-mips64",
    "qemuloongarch64": "qemu-system-loongarch64",
}


class QemuBootConfig:
    """One parsed qemuboot.conf. Keys are lower case, as ConfigParser writes them."""

    def __init__(self, path: Path, values: Dict[str, str]) -> None:
        self.path = path
        self.values = values

    # -- loading --------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: os.PathLike[str] | str) -> QemuBootConfig:
        """Load a *.qemuboot.conf, or the newest one in a deploy dir (runqemu's choice,
        skipping -initramfs- confs when another exists)."""
        path = Path(path)
        if path.is_dir():
            path = cls._pick_in_folder(path)
        if not path.is_file():
            raise InputError("no such qemuboot.conf", str(path))
        parser = configparser.RawConfigParser(strict=False)
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=str(path))
        except UnicodeDecodeError as exc:
            raise InputError(f"not a text file: {exc.reason}", str(path)) from exc
        except configparser.MissingSectionHeaderError as exc:
            raise InputError("not a qemuboot.conf: no [config_bsp] section header", str(path), exc.lineno) from exc
        except configparser.ParsingError as exc:
            line = exc.errors[0][0] if getattr(exc, "errors", None) else None
            raise InputError("cannot parse qemuboot.conf line", str(path), line) from exc
        except configparser.Error as exc:
            raise InputError(f"cannot parse qemuboot.conf: {exc.message}", str(path),
                             getattr(exc, "lineno", None)) from exc
        if not parser.has_section(SECTION):
            raise InputError(f"no [{SECTION}] section (is this a qemuboot.conf?)", str(path))
        values = {key.lower(): value for key, value in parser.items(SECTION)}
        return cls(path.resolve(), values)

    @staticmethod
    def _pick_in_folder(folder: Path) -> Path:
        confs = sorted(folder.glob("*.qemuboot.conf"), key=lambda p: p.stat().st_mtime, reverse=True)
        if not confs:
            raise InputError("no *.qemuboot.conf in this folder", str(folder))
        plain = [p for p in confs if "-initramfs-" not in p.name]
        return (plain or confs)[0]

    # -- raw access -----------------------------------------------------------------------------

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        value = self.values.get(key.lower())
        if value is None or value == "":
            return default
        return value

    def require(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise InputError(f"{key} is not set", str(self.path))
        return value

    def options(self, key: str) -> List[str]:
        """A qemu option string (qb_cpu, qb_rootfs_opt ...) split like a shell would."""
        value = self.get(key)
        if value is None:
            return []
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise InputError(f"{key}: cannot split {value!r}: {exc}", str(self.path)) from exc

    # -- resolved values ------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        return self.path.parent

    def resolve(self, value: str) -> Path:
        """A path from the conf: relative ones are relative to the conf's folder."""
        path = Path(value)
        return path if path.is_absolute() else (self.folder / path)

    @property
    def deploy_dir(self) -> Path:
        # runqemu uses the conf's own folder when it is given the conf file; we always are.
        return self.folder

    @property
    def machine(self) -> Optional[str]:
        return self.get("machine")

    @property
    def system_name(self) -> str:
        name = self.get("qb_system_name")
        if name:
            return name
        machine = self.machine or ""
        if machine in _SYSTEM_BY_MACHINE:
            return _SYSTEM_BY_MACHINE[machine]
        raise InputError("qb_system_name is not set and the machine is not one we can guess "
                         f"({machine or 'no machine= either'})", str(self.path))

    @property
    def staging_bindir_native(self) -> Optional[Path]:
        value = self.get("staging_bindir_native")
        return self.resolve(value) if value else None

    @property
    def kernel(self) -> Path:
        """The kernel image: qb_default_kernel's file name inside the deploy dir, as runqemu does."""
        name = self.get("qb_default_kernel")
        if not name:
            imagetype = self.get("kernel_imagetype")
            if not imagetype:
                raise InputError("neither qb_default_kernel nor kernel_imagetype is set", str(self.path))
            name = imagetype
        kernel = self.deploy_dir / os.path.basename(name)
        if not kernel.exists():
            raise InputError(f"kernel {kernel} does not exist (from qb_default_kernel={name})", str(self.path))
        return kernel

    @property
    def fstype(self) -> str:
        return self.get("qb_default_fstype", "ext4") or "ext4"

    def rootfs(self, fstype: Optional[str] = None) -> Path:
        """<deploy>/<image_link_name>.<fstype>, falling back to <image_name>*.<fstype> (runqemu's globs)."""
        fstype = fstype or self.fstype
        candidates: List[Path] = []
        for key in ("image_link_name", "image_name"):
            name = self.get(key)
            if not name:
                continue
            exact = self.deploy_dir / f"{name}.{fstype}"
            if exact.exists():
                return exact
            candidates.append(exact)
            matches = sorted(glob.glob(glob.escape(str(self.deploy_dir / name)) + "*." + glob.escape(fstype)))
            if matches:
                return Path(matches[0])
        if not candidates:
            raise InputError("neither image_link_name nor image_name is set; cannot find the rootfs",
                             str(self.path))
        raise InputError(f"rootfs {candidates[0]} does not exist (qb_default_fstype={fstype})", str(self.path))

    @property
    def dtb(self) -> Optional[Path]:
        name = self.get("qb_dtb")
        if not name:
            return None
        path = self.deploy_dir / os.path.basename(name)
        if not path.exists():
            raise InputError(f"dtb {path} does not exist (from qb_dtb={name})", str(self.path))
        return path

    @property
    def serial_consoles(self) -> List[str]:
        """TTY names from serial_consoles ("115200;ttyS0 115200;ttyS1" -> ["ttyS0", "ttyS1"])."""
        value = self.get("serial_consoles", "") or ""
        ttys = []
        for entry in value.split():
            tty = entry.split(";")[-1]
            if tty:
                ttys.append(tty)
        return ttys

    @property
    def memory_mb(self) -> Optional[int]:
        """qb_mem as MiB ("-m 256", "256M", "512")."""
        value = self.get("qb_mem")
        if not value:
            return None
        text = value.replace("-m", "").strip().rstrip("Mm")
        if text.upper().endswith("G") and text[:-1].isdigit():
            return int(text[:-1]) * 1024
        if not text.isdigit():
            raise InputError(f"cannot read qb_mem={value!r}", str(self.path))
        return int(text)

    def substitute(self, text: str) -> str:
        return text.replace("@DEPLOY_DIR_IMAGE@", str(self.deploy_dir))

    def __repr__(self) -> str:
        return f"QemuBootConfig({str(self.path)!r})"
