"""Glue between BitBake datastores and the library: the bbclasses make one call each.

    seccomp.bbclass        do_seccomp_render        -> render_recipe(d)
                           [file-checksums]         -> checksum_files(d)
    seccomp-image.bbclass  ROOTFS_POSTPROCESS_COMMAND -> check_rootfs(d)
                           do_seccomp_profile       -> profile_image(d)

Nothing here imports bb at module level, so the logic runs (and is unit-tested) with any object that has
getVar/getVarFlags. Messages name the profile file and the syscall, because that is what a user must edit.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from .errors import InputError, SeccompPyError
from .fileio import atomic_write
from .profile import Profile
from .syscalls import Abi, all_abis, get_abi
from .unitname import EXEC_UNIT_TYPES, unit_name_problem

MODES = ("enforce", "log", "off")
ACTIONS = ("errno", "kill")
FORMATS = ("systemd", "lxc", "oci", "firejail")
MANIFEST_SCHEMA = "seccomp-py/recipe-manifest/v1"
IMAGE_MANIFEST_SCHEMA = "seccomp-py/image-manifest/v1"

# TARGET_ARCH -> ABI. Tune features pick x32 (mx32); MIPS n32/o32 and big-endian ppc64 have no table.
TARGET_ARCH_ABIS = {
    "aarch64": "aarch64",
    "x86_64": "x86_64",
    "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86",
    "arm": "arm",
    "riscv64": "riscv64",
    "riscv32": "riscv32",
    "powerpc64le": "ppc64le",
    "mips64": "mips64", "mips64el": "mips64",
    "loongarch64": "loongarch64",
}

# Flags BitBake itself may set on our variables; every other flag names a unit or subject.
_META_FLAGS = frozenset({
    "doc", "type", "vardeps", "vardepsexclude", "vardepvalue", "vardepvalueexclude", "export", "unexport",
    "func", "python", "_content", "defaultval", "file", "lineno", "filename",
})


class SeccompBuildError(SeccompPyError):
    """The recipe's seccomp configuration or profiles cannot be built; the messages were reported already."""


@dataclass
class Finding:
    severity: str  # error | warning | info
    message: str


class Reporter:
    """Collects findings; BitBakeReporter also forwards them to BitBake's log as they come."""

    def __init__(self) -> None:
        self.findings: List[Finding] = []

    def add(self, severity: str, message: str) -> None:
        self.findings.append(Finding(severity, message))
        self.emit(severity, message)

    def emit(self, severity: str, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        self.add("error", message)

    def warning(self, message: str) -> None:
        self.add("warning", message)

    def info(self, message: str) -> None:
        self.add("info", message)

    def errors(self) -> List[str]:
        return [f.message for f in self.findings if f.severity == "error"]


class BitBakeReporter(Reporter):
    def emit(self, severity: str, message: str) -> None:
        import bb

        if severity == "error":
            bb.error(message)
        elif severity == "warning":
            bb.warn(message)
        else:
            bb.note(message)


# -- datastore helpers ----------------------------------------------------------------------------------
def _get(d: Any, name: str, default: str = "") -> str:
    value = d.getVar(name)
    return default if value is None else str(value)


def _words(d: Any, name: str) -> List[str]:
    return _get(d, name).split()


def _flags(d: Any, name: str) -> Dict[str, str]:
    flags = d.getVarFlags(name) or {}
    out = {}
    for flag, value in flags.items():
        if flag in _META_FLAGS or flag.startswith("_") or value is None:
            continue
        out[flag] = d.expand(value) if hasattr(d, "expand") else str(value)
    return out


def abi_for_target(target_arch: str, tune_features: Sequence[str] = ()) -> str:
    """The seccomp ABI of TARGET_ARCH (plus TUNE_FEATURES for x32 and MIPS ABIs)."""
    arch = target_arch.strip()
    tunes = set(tune_features)
    if arch == "x86_64" and "mx32" in tunes:
        return "x32"
    if arch.startswith("mips64") and ("n32" in tunes or "o32" in tunes):
        raise InputError(f"TARGET_ARCH {arch} with the {'n32' if 'n32' in tunes else 'o32'} ABI has no syscall table "
                         f"in seccomp-py (only MIPS n64)")
    try:
        return TARGET_ARCH_ABIS[arch]
    except KeyError:
        known = ", ".join(sorted(TARGET_ARCH_ABIS))
        raise InputError(f"TARGET_ARCH {arch!r} has no seccomp ABI in seccomp-py (supported: {known})") from None


def target_abi(d: Any) -> Abi:
    return get_abi(abi_for_target(_get(d, "TARGET_ARCH"), _words(d, "TUNE_FEATURES")))


# -- recipe settings ----------------------------------------------------------------------------------
@dataclass
class UnitSettings:
    mode: str
    action: str
    formats: List[str]
    allow_dangerous: Set[str]


@dataclass
class RecipeSettings:
    pn: str
    abi: Abi
    mode: str
    action: str
    errno: str
    formats: List[str]
    allow_dangerous: Set[str]
    profile_names: List[str]
    shipped_units: Set[str]
    workloads: List[str]
    overrides: Dict[str, Dict[str, str]] = field(default_factory=dict)  # variable -> {subject: value}
    systemd_version: Optional[int] = None

    def for_subject(self, subject: str) -> UnitSettings:
        mode = self.overrides["SECCOMP_MODE"].get(subject, self.mode)
        action = self.overrides["SECCOMP_DEFAULT_ACTION"].get(subject, self.action)
        formats = self.overrides["SECCOMP_FORMATS"].get(subject)
        allow = self.overrides["SECCOMP_ALLOW_DANGEROUS"].get(subject)
        return UnitSettings(
            mode=mode.strip(),
            action=action.strip(),
            formats=formats.split() if formats is not None else list(self.formats),
            allow_dangerous=self.allow_dangerous | set((allow or "").split()),
        )


def shipped_units(d: Any) -> Set[str]:
    """Units the recipe installs: SYSTEMD_SERVICE of every SYSTEMD_PACKAGES entry, plus SECCOMP_UNITS."""
    units: Set[str] = set(_words(d, "SECCOMP_UNITS"))
    packages = _words(d, "SYSTEMD_PACKAGES") or [_get(d, "PN")]
    for package in packages:
        units.update(_words(d, f"SYSTEMD_SERVICE:{package}"))
    units.update(_words(d, "SYSTEMD_SERVICE"))
    return units


def recipe_settings(d: Any, report: Reporter) -> RecipeSettings:
    def choice(name: str, value: str, allowed: Sequence[str]) -> str:
        if value not in allowed:
            report.error(f"{name} = {value!r} is not one of: {', '.join(allowed)}")
        return value

    mode = choice("SECCOMP_MODE", _get(d, "SECCOMP_MODE", "enforce").strip() or "enforce", MODES)
    action = choice("SECCOMP_DEFAULT_ACTION", _get(d, "SECCOMP_DEFAULT_ACTION", "errno").strip() or "errno", ACTIONS)
    formats = _words(d, "SECCOMP_FORMATS") or ["systemd"]
    for fmt in formats:
        choice("SECCOMP_FORMATS entry", fmt, FORMATS)
    version = _get(d, "SECCOMP_SYSTEMD_VERSION").strip()
    overrides = {name: _flags(d, name) for name in
                 ("SECCOMP_MODE", "SECCOMP_DEFAULT_ACTION", "SECCOMP_FORMATS", "SECCOMP_ALLOW_DANGEROUS")}
    for subject, value in overrides["SECCOMP_MODE"].items():
        choice(f"SECCOMP_MODE[{subject}]", value.strip(), MODES)
    for subject, value in overrides["SECCOMP_DEFAULT_ACTION"].items():
        choice(f"SECCOMP_DEFAULT_ACTION[{subject}]", value.strip(), ACTIONS)
    for subject, value in overrides["SECCOMP_FORMATS"].items():
        for fmt in value.split():
            choice(f"SECCOMP_FORMATS[{subject}] entry", fmt, FORMATS)
    pn = _get(d, "PN")
    return RecipeSettings(
        pn=pn,
        abi=target_abi(d),
        mode=mode,
        action=action,
        errno=_get(d, "SECCOMP_ERRNO", "EPERM").strip() or "EPERM",
        formats=formats,
        allow_dangerous=set(_words(d, "SECCOMP_ALLOW_DANGEROUS")),
        profile_names=_words(d, "SECCOMP_PROFILES"),
        shipped_units=shipped_units(d),
        workloads=_words(d, "SECCOMP_WORKLOADS"),
        overrides=overrides,
        systemd_version=int(version) if version.isdigit() else None,
    )


# -- finding profile files ----------------------------------------------------------------------------
def profile_search_path(d: Any) -> List[str]:
    """Where a bare profile name is looked for: the unpacked sources (SRC_URI), the recipe's
    FILESPATH (like file:// but without going through do_fetch), then SECCOMP_PROFILE_DIR."""
    folders = []
    unpack = _get(d, "UNPACKDIR") or _get(d, "WORKDIR")
    if unpack:
        folders.append(unpack)
    folders += [p for p in _get(d, "FILESPATH").split(":") if p]
    folders += _words(d, "SECCOMP_PROFILE_DIR")
    return folders


def find_profile(name: str, folders: Sequence[str]) -> Tuple[Optional[str], List[str]]:
    """(found path or None, every candidate path looked at)."""
    if name.startswith("file://"):
        name = name[len("file://"):]
    if os.path.isabs(name):
        return (name if os.path.isfile(name) else None), [name]
    candidates = [os.path.join(folder, name) for folder in folders]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate, candidates
    return None, candidates


def checksum_files(d: Any) -> str:
    """The [file-checksums] value for do_seccomp_render: each profile (path:True) or, when missing, every
    place it could appear (path:False), so adding or editing a profile changes the task signature."""
    names = _words(d, "SECCOMP_PROFILES")
    if not names:
        return ""
    # UNPACKDIR copies come from SRC_URI, whose checksums do_fetch already tracks.
    folders = [p for p in _get(d, "FILESPATH").split(":") if p] + _words(d, "SECCOMP_PROFILE_DIR")
    entries = []
    for name in names:
        found, candidates = find_profile(name, folders)
        if found:
            entries.append(f"{found}:True")
        else:
            entries += [f"{c}:False" for c in candidates]
    return " ".join(entries)


def library_checksum_files() -> str:
    """The library's own files: a new renderer or table changes what the task would write."""
    root = os.path.dirname(os.path.abspath(__file__))
    entries = []
    for pattern in ("*.py", "render/*.py", "render/templates/*", "syscalls/*.py", "syscalls/*.json", "data/*.json"):
        entries += sorted(glob.glob(os.path.join(root, pattern)))
    return " ".join(f"{path}:True" for path in entries)


# -- validation and rendering: the library calls --------------------------------------------------------
def is_unit(subject: str) -> bool:
    return unit_name_problem(subject) is None


@dataclass
class InstallPaths:
    unitdir: str
    dropin_name: str
    lxc_dir: str
    oci_dir: str
    firejail_dir: str
    manifest_dir: str

    @classmethod
    def from_datastore(cls, d: Any) -> InstallPaths:
        return cls(
            unitdir=_get(d, "systemd_system_unitdir", "/usr/lib/systemd/system"),
            dropin_name=_get(d, "SECCOMP_DROPIN_NAME", "50-seccomp.conf"),
            lxc_dir=_get(d, "SECCOMP_LXC_DIR", "/usr/share/lxc/seccomp"),
            oci_dir=_get(d, "SECCOMP_OCI_DIR", "/usr/share/seccomp-py/oci"),
            firejail_dir=_get(d, "SECCOMP_FIREJAIL_DIR", "/usr/share/seccomp-py/firejail"),
            manifest_dir=_get(d, "SECCOMP_MANIFEST_DIR", "/usr/share/seccomp-py/recipes"),
        )

    def folder_for(self, fmt: str) -> str:
        return {"systemd": self.unitdir, "lxc": self.lxc_dir, "oci": self.oci_dir,
                "firejail": self.firejail_dir}[fmt]


def syscall_findings(profile: Profile, subject: str, abi: Abi, allow_dangerous: Set[str]) -> List[Finding]:
    """Check one subject's names for the target ABI (and the compat ABIs the profile has calls for)."""
    from . import validate

    out = []
    for finding in validate.check_profile(profile, abi, allow_dangerous=sorted(allow_dangerous), subjects=[subject]):
        text = str(finding)
        prefix = f"{finding.severity}: "
        out.append(Finding(finding.severity, text[len(prefix):] if text.startswith(prefix) else text))
    return out


def render_subject(profile: Profile, subject: str, abi: Abi, fmt: str, unit: UnitSettings, errno: str,
                   profile_name: str, systemd_version: Optional[int], paths: InstallPaths) -> Dict[str, str]:
    """Output files (absolute target path -> text) for one subject in one format."""
    from . import render

    if unit.mode == "log":
        # Log everything, not only calls outside the committed profile: a profiling image re-profiles
        # from scratch, and the profiler's own runtime drop-in in /run replaces this one by name.
        text = render.render_log_dropin([], abi.name, unit=subject, profile_name=profile_name)
        return {os.path.join(paths.unitdir, render.log_dropin_path(subject)): text}
    files = render.render(profile, fmt, subjects=[subject], abi=abi.name, action=unit.action,
                          errno=errno, systemd_version=systemd_version, profile_name=profile_name,
                          dropin_name=paths.dropin_name)
    base = paths.folder_for(fmt)
    return {os.path.join(base, relative): text for relative, text in files.items()}


# -- do_seccomp_render --------------------------------------------------------------------------------
@dataclass
class RenderResult:
    files: Dict[str, str]  # target path -> text
    manifest: Dict[str, Any]


def plan_recipe(d: Any, report: Reporter) -> RenderResult:
    """Validate the recipe's profiles and render every output. Errors go to report; nothing is written."""
    settings = recipe_settings(d, report)
    paths = InstallPaths.from_datastore(d)
    abi = settings.abi
    manifest: Dict[str, Any] = {
        "schema": MANIFEST_SCHEMA, "recipe": settings.pn, "abi": abi.name, "mode": settings.mode,
        "units": {}, "subjects": {}, "workloads": settings.workloads, "profiles": [],
    }
    files: Dict[str, str] = {}
    if report.errors():
        return RenderResult(files, manifest)
    if settings.mode == "off" and not any(v.strip() != "off" for v in settings.overrides["SECCOMP_MODE"].values()):
        report.info(f"{settings.pn}: SECCOMP_MODE is 'off'; no seccomp filters installed")
        return RenderResult(files, manifest)

    folders = profile_search_path(d)
    names = settings.profile_names
    profiles: List[Tuple[str, Profile]] = []
    for name in names:
        found, candidates = find_profile(name, folders)
        if found is None:
            report.error(f"{settings.pn}: seccomp profile {name!r} not found (looked in: {', '.join(candidates)})")
            continue
        try:
            profiles.append((found, Profile.load(found)))
        except SeccompPyError as exc:
            report.error(f"{settings.pn}: {exc}")
    manifest["profiles"] = [os.path.basename(p) for p, _ in profiles]

    subjects: Dict[str, Tuple[str, Profile]] = {}
    for path, profile in profiles:
        for subject in profile.subjects():
            if subject in subjects:
                report.error(f"{path}: subject {subject!r} is also in {subjects[subject][0]}")
                continue
            subjects[subject] = (path, profile)
    for flag_var, values in settings.overrides.items():
        for subject in values:
            if subject not in subjects and subject not in settings.shipped_units:
                report.warning(f"{settings.pn}: {flag_var}[{subject}] names no profiled subject or shipped unit")

    covered = set()
    for subject, (path, profile) in sorted(subjects.items()):
        unit = settings.for_subject(subject)
        if unit.mode == "off":
            continue
        unit_subject = is_unit(subject)
        if unit_subject and subject not in settings.shipped_units:
            shipped = ", ".join(sorted(settings.shipped_units)) or "none"
            report.error(f"{path}: profile for unit {subject!r}, which recipe {settings.pn} does not ship "
                         f"(SYSTEMD_SERVICE / SECCOMP_UNITS: {shipped})")
            continue
        if unit_subject and subject.rsplit(".", 1)[1] not in EXEC_UNIT_TYPES:
            report.error(f"{path}: unit {subject!r} runs no processes; seccomp filters apply to "
                         f"{', '.join('.' + t for t in EXEC_UNIT_TYPES)} units")
            continue
        present = profile.abis(subject)
        if unit.mode == "enforce" and abi.name not in present:
            report.error(f"{path}: subject {subject!r} has no syscalls for the target ABI {abi.name} "
                         f"(the profile has: {', '.join(present) or 'none'}); profile an image of this "
                         f"machine with do_seccomp_profile")
            continue
        findings = syscall_findings(profile, subject, abi, unit.allow_dangerous) if abi.name in present else []
        failed = False
        for finding in findings:
            report.add(finding.severity, f"{path}: {finding.message}")
            failed = failed or finding.severity == "error"
        if failed:
            continue
        formats = ["systemd"] if unit.mode == "log" else unit.formats
        outputs = []
        for fmt in formats:
            if fmt == "systemd" and not unit_subject:
                report.info(f"{path}: subject {subject!r} is not a systemd unit; no drop-in rendered")
                continue
            try:
                rendered = render_subject(profile, subject, abi, fmt, unit, settings.errno,
                                          os.path.basename(path), settings.systemd_version, paths)
            except SeccompPyError as exc:
                report.error(f"{path}: {subject} ({fmt}): {exc}")
                continue
            for target, text in rendered.items():
                if target in files:
                    report.error(f"{path}: two subjects render to the same file {target}")
                    continue
                files[target] = text
                outputs.append(target)
        covered.add(subject)
        manifest["units" if unit_subject else "subjects"][subject] = {
            "mode": unit.mode, "action": unit.action, "files": outputs,
        }

    # Log mode needs no profile: an unprofiled unit logs every call it makes.
    for unit_name in sorted(settings.shipped_units - covered):
        unit = settings.for_subject(unit_name)
        if unit.mode == "log" and unit_name not in subjects:
            try:
                rendered = render_subject(Profile(), unit_name, abi, "systemd", unit, settings.errno,
                                          "(none)", settings.systemd_version, paths)
            except SeccompPyError as exc:
                report.error(f"{settings.pn}: {unit_name} (log mode): {exc}")
                continue
            files.update(rendered)
            manifest["units"][unit_name] = {"mode": "log", "action": unit.action, "files": sorted(rendered)}
        elif unit.mode == "enforce" and unit_name not in subjects:
            where = ", ".join(names) if names else "SECCOMP_PROFILES is empty"
            report.error(f"{settings.pn}: unit {unit_name!r} has no seccomp profile ({where}); create one with "
                         f"`bitbake -c seccomp_profile <image>` in a SECCOMP_MODE = \"log\" build, or set "
                         f"SECCOMP_MODE[{unit_name}] = \"off\"")
    if not names and settings.mode == "enforce" and not settings.shipped_units:
        report.error(f"{settings.pn}: inherits seccomp in enforce mode but SECCOMP_PROFILES is empty")
    if "systemd" in settings.formats and manifest["units"] and "seccomp" not in _words(d, "DISTRO_FEATURES"):
        report.error(f"{settings.pn}: DISTRO_FEATURES lacks 'seccomp', so systemd is built without seccomp support "
                     f"and would ignore SystemCallFilter=/SystemCallLog=; add DISTRO_FEATURES:append = \" seccomp\"")
    return RenderResult(files, manifest)


def write_result(result: RenderResult, render_dir: str, manifest_dir: str, pn: str) -> List[str]:
    """Write the outputs under render_dir/rootfs, laid out as they will be installed."""
    rootfs = os.path.join(render_dir, "rootfs")
    written = []
    for target, text in sorted(result.files.items()):
        dest = os.path.join(rootfs, target.lstrip("/"))
        atomic_write(dest, text)
        written.append(target)
    manifest_path = os.path.join(manifest_dir, f"{pn}.json")
    result.manifest["files"] = written
    atomic_write(os.path.join(rootfs, manifest_path.lstrip("/")),
                 json.dumps(result.manifest, indent=2, sort_keys=True) + "\n")
    return written


def render_recipe(d: Any, report: Optional[Reporter] = None) -> List[str]:
    """do_seccomp_render: validate and render into ${SECCOMP_RENDER_DIR}/rootfs; fail on any error."""
    report = report if report is not None else BitBakeReporter()
    variant = _get(d, "CLASSOVERRIDE", "class-target")
    if variant != "class-target":
        # Filters describe target binaries; native, nativesdk and cross builds get none.
        report.info(f"{_get(d, 'PN')}: no seccomp filters for {variant} builds")
        return []
    try:
        result = plan_recipe(d, report)
    except SeccompPyError as exc:
        report.error(f"{_get(d, 'PN')}: {exc}")
        result = None
    errors = report.errors()
    if errors or result is None:
        raise SeccompBuildError(f"{len(errors)} seccomp error(s) in recipe {_get(d, 'PN')}; see above")
    render_dir = _get(d, "SECCOMP_RENDER_DIR")
    if not render_dir:
        raise SeccompBuildError("SECCOMP_RENDER_DIR is not set")
    written = write_result(result, render_dir, InstallPaths.from_datastore(d).manifest_dir, _get(d, "PN"))
    for target in written:
        report.info(f"seccomp: rendered {target}")
    return written


# -- rootfs check (ROOTFS_POSTPROCESS_COMMAND) ----------------------------------------------------------
_LXC_SECTIONS = {abi.info.lxc_section: abi for abi in all_abis() if abi.info.lxc_section}


def _names_in_systemd_value(value: str) -> List[str]:
    value = value.strip()
    if value.startswith("~"):
        value = value[1:]
    return [w for w in value.split() if w and not w.startswith("@")]


def check_dropin(path: str, text: str, abi: Abi) -> List[Finding]:
    """A drop-in's SystemCallFilter=/SystemCallLog= names must exist on the image's ABI or on a compat ABI
    its SystemCallArchitectures= lists (systemd resolves one list per architecture)."""
    out = []
    entries: List[Tuple[int, str, str]] = []
    architectures: List[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")) or "=" not in stripped:
            continue
        key, value = (part.strip() for part in stripped.split("=", 1))
        if key in ("SystemCallFilter", "SystemCallLog"):
            entries += [(lineno, key, name.split(":", 1)[0]) for name in _names_in_systemd_value(value)]
        elif key == "SystemCallArchitectures":
            architectures = value.split() if value else []  # an empty assignment resets the list
    family = [abi]
    for token in architectures:
        if token == "native":
            continue
        try:
            member = get_abi(token)
        except SeccompPyError:
            out.append(Finding("error", f"{path}: SystemCallArchitectures= names unknown architecture {token!r}"))
            continue
        if member.name not in abi.info.compat:
            out.append(Finding("warning", f"{path}: SystemCallArchitectures= lists {token}, which a {abi.name} "
                                          f"image cannot run"))
        family.append(member)
    for lineno, key, name in entries:
        if not any(member.has(name) for member in family):
            names = ", ".join(m.name for m in family)
            out.append(Finding("error", f"{path}:{lineno}: {key}= names {name!r}, which does not exist on "
                                        f"ABI {names}"))
    if any(key == "SystemCallFilter" for _, key, _ in entries) and "native" not in architectures:
        out.append(Finding("error", f"{path}: SystemCallFilter= without SystemCallArchitectures=native lets "
                                    f"compat-ABI calls bypass the filter"))
    return out


def check_lxc_profile(path: str, text: str, abi: Abi) -> List[Finding]:
    """An LXC v2 profile: names in [all] and in the image ABI's sections must exist there."""
    out = []
    lines = text.splitlines()
    if not lines or lines[0].strip() != "2":
        return [Finding("error", f"{path}:1: not an LXC seccomp v2 profile (first line must be '2')")]
    family = {abi.name, *abi.info.compat}
    section: Optional[Abi] = abi
    applicable = 0
    for lineno, line in enumerate(lines[2:], 3):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            header = stripped.strip("[]").strip().lower()
            if header == "all":
                section = abi
            elif header in _LXC_SECTIONS:
                section = _LXC_SECTIONS[header]
                if section.name not in family:
                    out.append(Finding("warning", f"{path}:{lineno}: section [{header}] is for ABI {section.name}, "
                                                  f"which this {abi.name} image cannot run; LXC ignores it"))
                    section = None
            else:
                out.append(Finding("error", f"{path}:{lineno}: unknown LXC section [{header}]"))
                section = None
            continue
        if section is None:
            continue
        name = stripped.split()[0]
        applicable += 1
        if not section.has(name):
            out.append(Finding("error", f"{path}:{lineno}: {name!r} does not exist on ABI {section.name}"))
    if applicable == 0 and len(lines) > 1 and lines[1].split()[:1] == ["allowlist"]:
        out.append(Finding("error", f"{path}: no rules for ABI {abi.name} ([all] or [{abi.info.lxc_section}]): "
                                    f"this allow-list would deny every call on this image"))
    return out


def check_tree(rootfs: str, abi: Abi, unitdir: str, lxc_dir: str) -> List[Finding]:
    findings = []
    for folder in (unitdir, "/etc/systemd/system"):
        for dropin in sorted(glob.glob(os.path.join(rootfs, folder.lstrip("/"), "*.d", "*.conf"))):
            with open(dropin, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            if "SystemCall" not in text:
                continue
            shown = "/" + os.path.relpath(dropin, rootfs)
            findings += check_dropin(shown, text, abi)
            unit = os.path.basename(os.path.dirname(dropin))[:-2]
            unit_files = [os.path.join(rootfs, f.lstrip("/"), unit) for f in (unitdir, "/etc/systemd/system")]
            template = re.sub(r"@[^.]+\.", "@.", unit)
            unit_files += [os.path.join(rootfs, f.lstrip("/"), template) for f in (unitdir, "/etc/systemd/system")]
            if not any(os.path.exists(p) or os.path.islink(p) for p in unit_files):
                findings.append(Finding("warning", f"{shown}: drop-in for {unit}, which is not installed"))
    for profile in sorted(glob.glob(os.path.join(rootfs, lxc_dir.lstrip("/"), "*"))):
        if os.path.isfile(profile):
            with open(profile, encoding="utf-8", errors="replace") as handle:
                findings += check_lxc_profile("/" + os.path.relpath(profile, rootfs), handle.read(), abi)
    return findings


def check_rootfs(d: Any, report: Optional[Reporter] = None) -> int:
    """ROOTFS_POSTPROCESS_COMMAND: check installed drop-ins and LXC profiles against the image's ABI, and
    deploy the recipes' manifests as one image manifest for do_seccomp_profile."""
    report = report if report is not None else BitBakeReporter()
    abi = target_abi(d)
    paths = InstallPaths.from_datastore(d)
    rootfs = _get(d, "IMAGE_ROOTFS")
    findings = check_tree(rootfs, abi, paths.unitdir, paths.lxc_dir)
    for finding in findings:
        report.add(finding.severity, finding.message)
    errors = report.errors()
    if errors:
        raise SeccompBuildError(f"{len(errors)} seccomp error(s) in the root filesystem; see above")
    manifests = read_manifests(rootfs, paths.manifest_dir)
    deploy = _get(d, "IMGDEPLOYDIR")
    if deploy:
        image_manifest = {"schema": IMAGE_MANIFEST_SCHEMA, "abi": abi.name, "recipes": manifests}
        atomic_write(os.path.join(deploy, _get(d, "SECCOMP_IMAGE_MANIFEST", "seccomp.json")),
                     json.dumps(image_manifest, indent=2, sort_keys=True) + "\n")
    return len(findings)


# -- do_seccomp_profile -------------------------------------------------------------------------------
@dataclass
class ProfileRequest:
    """Everything the profiler needs for one image; built from the datastore by profile_request()."""

    qemuboot: str
    abi: str
    units: List[str]
    workloads: List[str]  # paths on the target, run with sh
    output_dir: str
    max_iterations: int
    kernel_args: List[str]
    allow_loss: bool
    manifests: List[Dict[str, Any]]
    ssh_user: str = "root"
    # Login and host-key settings for the profiler's QemuTarget: password, key_filename, host_key,
    # insecure_accept_host_key ("1" when there is no host key to pin).
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ProfileOutcome:
    profile: Profile
    converged: bool
    lost_records: int
    report_path: Optional[str] = None
    error: Optional[str] = None


def read_manifests(rootfs: str, manifest_dir: str) -> List[Dict[str, Any]]:
    """The recipe manifests installed in a root filesystem."""
    out = []
    for path in sorted(glob.glob(os.path.join(rootfs, manifest_dir.lstrip("/"), "*.json"))):
        out.append(_load_manifest(path, MANIFEST_SCHEMA))
    return out


def read_image_manifest(path: str) -> List[Dict[str, Any]]:
    """The recipe manifests an image's rootfs check deployed next to the image."""
    if not os.path.exists(path):
        raise InputError("no seccomp image manifest; build the image with IMAGE_CLASSES += \"seccomp-image\"", path)
    data = _load_manifest(path, IMAGE_MANIFEST_SCHEMA)
    recipes = data.get("recipes")
    if not isinstance(recipes, list) or not all(isinstance(r, dict) and r.get("schema") == MANIFEST_SCHEMA
                                                for r in recipes):
        raise InputError("'recipes' must be a list of recipe manifests", path)
    return recipes


def _load_manifest(path: str, schema: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable seccomp manifest: {exc}", path) from None
    if not isinstance(data, dict) or data.get("schema") != schema:
        raise InputError(f"not a {schema} manifest", path)
    return data


def profile_request(d: Any, manifests: Sequence[Dict[str, Any]]) -> ProfileRequest:
    deploy = _get(d, "DEPLOY_DIR_IMAGE")
    link = _get(d, "IMAGE_LINK_NAME")
    qemuboot = os.path.join(deploy, f"{link}.qemuboot.conf")
    units = sorted({u for m in manifests for u in m.get("units", {})} | set(_words(d, "SECCOMP_PROFILE_UNITS")))
    workloads = [w for m in manifests for w in m.get("workloads", [])] + _words(d, "SECCOMP_WORKLOADS")
    rootfs = _get(d, "IMAGE_ROOTFS")
    # The image was built here and boots on a private slirp port. Host keys are pinned when the rootfs
    # carries them; images that generate them at first boot cannot be pinned in advance.
    host_keys = sorted(glob.glob(os.path.join(rootfs, "etc/ssh/ssh_host_*_key.pub"))) if rootfs else []
    keys = _words(d, "SECCOMP_PROFILE_SSH_KEYS")
    extra: Dict[str, Any] = {"password": None if keys else "", "key_filename": keys or None,
                             "host_key": host_keys or None,
                             "insecure_accept_host_key": "0" if host_keys else "1"}
    return ProfileRequest(
        qemuboot=qemuboot,
        abi=target_abi(d).name,
        units=units,
        workloads=list(dict.fromkeys(workloads)),
        output_dir=_get(d, "SECCOMP_PROFILE_WORKDIR") or os.path.join(_get(d, "WORKDIR"), "seccomp-profile"),
        max_iterations=int(_get(d, "SECCOMP_PROFILE_MAX_ITERATIONS", "5") or 5),
        kernel_args=_words(d, "SECCOMP_PROFILING_KERNEL_ARGS"),
        allow_loss=_get(d, "SECCOMP_PROFILE_ALLOW_LOSS", "0") in ("1", "yes", "true"),
        manifests=list(manifests),
        extra=extra,
    )


def run_profiler(request: ProfileRequest) -> ProfileOutcome:
    """The one call into the profiler: boot the image with QemuTarget, profile to convergence, write
    profile.json, report.md/json and filters to request.output_dir (seccomp_py.profiler does it all)."""
    from .profiler import profile_for_bitbake

    return profile_for_bitbake(request)


def split_by_recipe(profile: Profile, manifests: Sequence[Dict[str, Any]]) -> Dict[str, Profile]:
    """One profile per recipe, holding the units (and subjects) that recipe declared."""
    out = {}
    for manifest in manifests:
        subjects = set(manifest.get("units", {})) | set(manifest.get("subjects", {}))
        part = profile.only(subjects & set(profile.subjects()))
        if part.subjects():
            out[manifest["recipe"]] = part
    return out


def merge_into_existing(path: str, fresh: Profile, abi: str) -> Profile:
    """Replace this ABI's (and its compat ABIs') names in an existing profile; keep the other ABIs."""
    if not os.path.exists(path):
        return fresh
    old = Profile.load(path)
    family = {abi, *get_abi(abi).info.compat}
    kept = old.copy()
    for subject in list(kept.table):
        for name in list(kept.table[subject]):
            if name in family:
                del kept.table[subject][name]
        if not kept.table[subject]:
            del kept.table[subject]
    return kept.merge(fresh)


def profile_image(d: Any, report: Optional[Reporter] = None,
                  runner: Callable[[ProfileRequest], ProfileOutcome] = run_profiler) -> Dict[str, str]:
    """do_seccomp_profile: boot the image, profile every declared unit, write one profile per recipe."""
    report = report if report is not None else BitBakeReporter()
    manifests = read_image_manifest(os.path.join(_get(d, "DEPLOY_DIR_IMAGE"),
                                                 _get(d, "SECCOMP_IMAGE_MANIFEST", "seccomp.json")))
    request = profile_request(d, manifests)
    if not os.path.exists(request.qemuboot):
        raise SeccompBuildError(f"{request.qemuboot} does not exist; build the image first (it needs the "
                                f"qemuboot class, which qemu machines inherit)")
    if not request.units:
        raise SeccompBuildError("no units to profile: no recipe in the image inherits seccomp, and "
                                "SECCOMP_PROFILE_UNITS is empty")
    outcome = runner(request)
    if outcome.report_path:
        report.info(f"seccomp: profiler report in {outcome.report_path}")
    problems = []
    if outcome.error:
        problems.append(f"profiling stopped: {outcome.error}")
    if not outcome.converged:
        problems.append(f"profiling did not converge within {request.max_iterations} iterations")
    if outcome.lost_records and not request.allow_loss:
        problems.append(f"{outcome.lost_records} audit records were lost, so the profile may be incomplete "
                        f"(SECCOMP_PROFILE_ALLOW_LOSS = \"1\" accepts that)")
    if problems:
        # The partial profile stays in the work folder; the commit-ready folder is not touched.
        for problem in problems:
            report.error(problem)
        raise SeccompBuildError("; ".join(problems) + f" (partial results in {request.output_dir})")
    outdir = _get(d, "SECCOMP_PROFILE_OUTDIR")
    written = {}
    for recipe, part in sorted(split_by_recipe(outcome.profile, manifests).items()):
        dest = os.path.join(outdir, f"{recipe}.json")
        merge_into_existing(dest, part, request.abi).save(dest)
        written[recipe] = dest
        report.info(f"seccomp: wrote {dest}")
    missing = sorted(set(request.units) - set(outcome.profile.subjects()))
    for unit in missing:
        report.warning(f"seccomp: the profiler saw no syscalls for {unit}; is it started, and do the workloads "
                       f"exercise it?")
    return written
