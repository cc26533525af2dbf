SUMMARY = "Target-side packages for seccomp-py profiling images"
DESCRIPTION = "What do_seccomp_profile needs on the target: an ssh server (with sftp for file \
transfer), journald reading the kernel's audit records, and systemd-analyze for preflight checks."
LICENSE = "MIT"

inherit packagegroup

# An image with dropbear instead sets SECCOMP_SSH_SERVER = "dropbear"; the profiler falls back to
# exec+cat when there is no sftp server.
SECCOMP_SSH_SERVER ?= "openssh-sshd openssh-sftp-server"

RDEPENDS:${PN} = "\
    ${SECCOMP_SSH_SERVER} \
    seccomp-profiling-setup \
    systemd-analyze \
    "
