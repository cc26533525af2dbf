# nooelint: oelint.bbclass.underscores
# (The dash is in the name users write in IMAGE_CLASSES; this class exports no functions, which is
# what a dash would break.)
#
# seccomp-image.bbclass: image-side seccomp support, enabled with IMAGE_CLASSES += "seccomp-image".
#
# - A rootfs post-process check: every installed seccomp drop-in and LXC profile must name only
#   syscalls of the image's ABI; the recipes' seccomp manifests are collected for do_seccomp_profile.
# - do_seccomp_profile (like do_testimage): boots ${IMAGE_LINK_NAME}.qemuboot.conf in qemu, runs
#   the workloads the recipes declare (SECCOMP_WORKLOADS), iterates until no new syscalls appear and
#   writes one profile per recipe to SECCOMP_PROFILE_OUTDIR, ready to commit to your layer.
# - With SECCOMP_MODE = "log" (profiling images): the profiling packages, ssh access for root and
#   the audit kernel arguments are added.

SECCOMP_MODE ??= "enforce"
SECCOMP_MANIFEST_DIR ??= "${datadir}/seccomp-py/recipes"
SECCOMP_LXC_DIR ??= "${datadir}/lxc/seccomp"
SECCOMP_DROPIN_NAME ??= "50-seccomp.conf"

SECCOMP_PROFILING_PACKAGES ??= "packagegroup-seccomp-profiling"
SECCOMP_PROFILING_IMAGE_FEATURES ??= "ssh-server-openssh allow-empty-password empty-root-password allow-root-login"
SECCOMP_PROFILING_KERNEL_ARGS ??= "audit=1 audit_backlog_limit=8192"

SECCOMP_PROFILE_OUTDIR ??= "${TOPDIR}/seccomp-profiles"
SECCOMP_PROFILE_WORKDIR ??= "${WORKDIR}/seccomp-profile"
# Units to profile besides those the recipes' manifests list, and extra workloads (target paths).
SECCOMP_PROFILE_UNITS ??= ""
SECCOMP_WORKLOADS ??= ""
SECCOMP_PROFILE_MAX_ITERATIONS ??= "5"
# "1" accepts a profile although audit records were lost (it is then marked incomplete).
SECCOMP_PROFILE_ALLOW_LOSS ??= "0"
# Private keys for root's ssh login (default: empty password, as the profiling image features set up).
SECCOMP_PROFILE_SSH_KEYS ??= ""
SECCOMP_IMAGE_MANIFEST = "${IMAGE_LINK_NAME}.seccomp.json"

IMAGE_INSTALL:append = " ${@oe.utils.conditional('SECCOMP_MODE', 'log', '${SECCOMP_PROFILING_PACKAGES}', '', d)}"
# Only images inherit this class (through IMAGE_CLASSES), so image variables belong here.
# nooelint: oelint.vars.outofcontext
EXTRA_IMAGE_FEATURES:append = " ${@oe.utils.conditional('SECCOMP_MODE', 'log', '${SECCOMP_PROFILING_IMAGE_FEATURES}', '', d)}"
QB_KERNEL_CMDLINE_APPEND:append = " ${@oe.utils.conditional('SECCOMP_MODE', 'log', '${SECCOMP_PROFILING_KERNEL_ARGS}', '', d)}"
APPEND:append = " ${@oe.utils.conditional('SECCOMP_MODE', 'log', '${SECCOMP_PROFILING_KERNEL_ARGS}', '', d)}"

python seccomp_rootfs_check() {
    import seccomp_py.bitbake
    import seccomp_py.errors
    try:
        seccomp_py.bitbake.check_rootfs(d)
    except seccomp_py.errors.SeccompPyError as exc:
        bb.fatal(str(exc))
}
seccomp_rootfs_check[vardeps] += "TARGET_ARCH TUNE_FEATURES SECCOMP_MANIFEST_DIR SECCOMP_LXC_DIR \
                                   SECCOMP_IMAGE_MANIFEST systemd_system_unitdir"
ROOTFS_POSTPROCESS_COMMAND += "seccomp_rootfs_check"

python do_seccomp_profile() {
    import seccomp_py.bitbake
    import seccomp_py.errors
    try:
        seccomp_py.bitbake.profile_image(d)
    except seccomp_py.errors.SeccompPyError as exc:
        bb.fatal(str(exc))
}
addtask seccomp_profile after do_image_complete
do_seccomp_profile[doc] = "Boots the image in qemu, profiles the units of seccomp recipes and writes their profiles"
do_seccomp_profile[nostamp] = "1"
# The guest is reached over ssh through qemu's user-mode network, as do_testimage does.
# nooelint: oelint.task.network
do_seccomp_profile[network] = "1"
do_seccomp_profile[depends] += "qemu-system-native:do_populate_sysroot qemu-helper-native:do_populate_sysroot \
                                qemu-helper-native:do_addto_recipe_sysroot"
do_seccomp_profile[cleandirs] = "${SECCOMP_PROFILE_WORKDIR}"
