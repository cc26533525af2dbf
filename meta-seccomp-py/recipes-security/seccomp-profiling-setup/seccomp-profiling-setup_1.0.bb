# nooelint: oelint.var.mandatoryvar.HOMEPAGE
# (The sources live in this layer; there is no upstream project page.)
SUMMARY = "Configuration for seccomp-py profiling images"
DESCRIPTION = "Makes journald collect kernel audit records (SECCOMP) through its audit socket. \
Only for profiling images: packagegroup-seccomp-profiling pulls it in."
SECTION = "base"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://50-seccomp-profiling.conf;beginline=1;endline=1;md5=b2dccaa94b3629a08bfb4f983cad6f89"

SRC_URI = "file://50-seccomp-profiling.conf"

S = "${UNPACKDIR}"

inherit allarch

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${systemd_system_unitdir}/systemd-journald.service.d
    install -m 0644 ${S}/50-seccomp-profiling.conf \
        ${D}${systemd_system_unitdir}/systemd-journald.service.d/50-seccomp-profiling.conf
}

FILES:${PN} += "${systemd_system_unitdir}/systemd-journald.service.d"
RDEPENDS:${PN} = "systemd"
