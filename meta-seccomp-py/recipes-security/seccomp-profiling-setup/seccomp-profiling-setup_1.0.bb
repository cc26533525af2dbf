# nooelint: oelint.var.mandatoryvar.HOMEPAGE
# (The sources live in this layer; there is no upstream project page.)
SUMMARY = "Configuration for seccomp-py profiling images"
DESCRIPTION = "Makes journald collect kernel audit records (SECCOMP) through its audit socket, \
and installs the seccomp-py-boot-log generator, which puts the units named by seccomp_py.log= on \
the kernel command line in seccomp log mode from boot. \
Only for profiling images: packagegroup-seccomp-profiling pulls it in."
SECTION = "base"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://50-seccomp-profiling.conf;beginline=1;endline=1;md5=b2dccaa94b3629a08bfb4f983cad6f89"

SRC_URI = "file://50-seccomp-profiling.conf \
           file://seccomp-py-boot-log \
           "

S = "${UNPACKDIR}"

inherit allarch

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${systemd_system_unitdir}/systemd-journald.service.d
    install -m 0644 ${S}/50-seccomp-profiling.conf \
        ${D}${systemd_system_unitdir}/systemd-journald.service.d/50-seccomp-profiling.conf
    install -d ${D}${systemd_unitdir}/system-generators
    install -m 0755 ${S}/seccomp-py-boot-log ${D}${systemd_unitdir}/system-generators/seccomp-py-boot-log
}

FILES:${PN} += "${systemd_system_unitdir}/systemd-journald.service.d \
                ${systemd_unitdir}/system-generators \
                "
RDEPENDS:${PN} = "systemd"
