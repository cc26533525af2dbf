# seccomp.bbclass: bake seccomp filters for a recipe's services into its package.
#
#   inherit seccomp
#   SECCOMP_PROFILES = "mydaemon.json"
#
# The profiles (seccomp-py/profile/v1 JSON, as do_seccomp_profile writes them) are found in the
# unpacked sources (SRC_URI), in the recipe's FILESPATH (files/ next to the recipe, without going
# through SRC_URI) or in SECCOMP_PROFILE_DIR. Every syscall name is checked against the target ABI
# (from TARGET_ARCH) before anything is rendered; an unknown name, a name the target ABI lacks or a
# profile for a unit the recipe does not ship fails do_seccomp_render. Details: docs/yocto.md.

# enforce: install filters. log: install SystemCallLog= drop-ins (profiling images). off: nothing.
SECCOMP_MODE ??= "enforce"
# Any of: systemd lxc oci firejail
SECCOMP_FORMATS ??= "systemd"
# What a call outside the allow-list gets: errno (SECCOMP_ERRNO) or kill.
SECCOMP_DEFAULT_ACTION ??= "errno"
SECCOMP_ERRNO ??= "EPERM"
# Dangerous syscalls (kexec_load, bpf, ptrace, mount...) that may be allowed without a warning.
SECCOMP_ALLOW_DANGEROUS ??= ""
SECCOMP_PROFILES ??= "${BPN}.json"
# Space-separated folders searched for profiles, e.g. set in a layer.conf:
#   SECCOMP_PROFILE_DIR := "${SECCOMP_PROFILE_DIR} ${LAYERDIR}/seccomp-profiles"
SECCOMP_PROFILE_DIR ??= ""
# Units the recipe ships besides SYSTEMD_SERVICE (e.g. installed by hand).
SECCOMP_UNITS ??= ""
# Scripts, as paths on the target, that exercise the units; do_seccomp_profile runs them with sh.
SECCOMP_WORKLOADS ??= ""
# The target's systemd version; when set, fully covered syscall groups are written as @group.
SECCOMP_SYSTEMD_VERSION ??= ""
# Per-unit overrides use varflags: SECCOMP_MODE[foo.service] = "log",
# SECCOMP_DEFAULT_ACTION[foo.service] = "kill", SECCOMP_FORMATS[...], SECCOMP_ALLOW_DANGEROUS[...].

SECCOMP_DROPIN_NAME ??= "50-seccomp.conf"
SECCOMP_LXC_DIR ??= "${datadir}/lxc/seccomp"
SECCOMP_OCI_DIR ??= "${datadir}/seccomp-py/oci"
SECCOMP_FIREJAIL_DIR ??= "${datadir}/seccomp-py/firejail"
SECCOMP_MANIFEST_DIR ??= "${datadir}/seccomp-py/recipes"
SECCOMP_RENDER_DIR = "${WORKDIR}/seccomp"

def seccomp_render_checksums(d):
    import seccomp_py.bitbake
    return " ".join((seccomp_py.bitbake.checksum_files(d), seccomp_py.bitbake.library_checksum_files()))

def seccomp_systemd_service_vars(d):
    packages = (d.getVar("SYSTEMD_PACKAGES") or d.getVar("PN") or "").split()
    return " ".join("SYSTEMD_SERVICE:%s" % p for p in packages)

python do_seccomp_render() {
    import seccomp_py.bitbake
    import seccomp_py.errors
    try:
        seccomp_py.bitbake.render_recipe(d)
    except seccomp_py.errors.SeccompPyError as exc:
        bb.fatal(str(exc))
}
do_seccomp_render[doc] = "Checks the recipe's seccomp profiles against the target ABI and renders the filters"
do_seccomp_render[dirs] = "${SECCOMP_RENDER_DIR}"
do_seccomp_render[cleandirs] = "${SECCOMP_RENDER_DIR}"
# The library reads these through d, which BitBake cannot see into; list them for the signature.
do_seccomp_render[vardeps] += "SECCOMP_MODE SECCOMP_FORMATS SECCOMP_DEFAULT_ACTION SECCOMP_ERRNO \
                                SECCOMP_ALLOW_DANGEROUS SECCOMP_PROFILES SECCOMP_PROFILE_DIR SECCOMP_UNITS \
                                SECCOMP_WORKLOADS SECCOMP_SYSTEMD_VERSION SECCOMP_DROPIN_NAME SECCOMP_LXC_DIR \
                                SECCOMP_OCI_DIR SECCOMP_FIREJAIL_DIR SECCOMP_MANIFEST_DIR TARGET_ARCH TUNE_FEATURES \
                                DISTRO_FEATURES SYSTEMD_PACKAGES CLASSOVERRIDE systemd_system_unitdir \
                                ${@seccomp_systemd_service_vars(d)}"
# Editing a profile re-runs this task (and the install/package tasks that copy its output) only.
do_seccomp_render[file-checksums] += "${@seccomp_render_checksums(d)}"
addtask seccomp_render after do_unpack before do_install

do_install:append() {
    if [ -d "${SECCOMP_RENDER_DIR}/rootfs" ]; then
        cp -R --no-preserve=ownership "${SECCOMP_RENDER_DIR}/rootfs/." "${D}/"
    fi
}

# Log-mode drop-ins are named 50-seccomp-log.conf, the name the profiler's runtime drop-ins in /run use.
FILES:${PN} += "${systemd_system_unitdir}/*.d/${SECCOMP_DROPIN_NAME} ${systemd_system_unitdir}/*.d/50-seccomp-log.conf \
                ${SECCOMP_LXC_DIR} ${SECCOMP_OCI_DIR} ${SECCOMP_FIREJAIL_DIR} ${SECCOMP_MANIFEST_DIR}/${PN}.json"
