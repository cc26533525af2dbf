# nooelint: oelint.var.mandatoryvar.HOMEPAGE
# (The sources live in this layer; there is no upstream project page.)
SUMMARY = "Tiny TCP daemon that demonstrates seccomp profiling and baked-in filters"
DESCRIPTION = "seccomp-demo answers PING, TIME, COUNT, LOAD and HELLO on a TCP port. It ships \
with a systemd unit, a workload script for do_seccomp_profile and committed seccomp profiles \
for aarch64 and x86_64, made by seccomp-py's profiler."
SECTION = "examples"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://seccomp-demo.c;beginline=1;endline=3;md5=b3baef2433b0d080877bd1916e527379"

SRC_URI = "file://seccomp-demo.c \
           file://seccomp-demo.service \
           file://seccomp-demo-workload.sh \
           "

S = "${UNPACKDIR}"

inherit systemd seccomp

SYSTEMD_SERVICE:${PN} = "seccomp-demo.service"

# The profile is read from files/ by do_seccomp_render, not fetched: editing it then re-runs only
# the seccomp tasks and packaging, not the compile.
SECCOMP_PROFILES = "seccomp-demo.json"
SECCOMP_WORKLOADS = "${datadir}/seccomp-demo/workload.sh"

do_compile() {
    ${CC} ${CFLAGS} ${LDFLAGS} -o ${B}/seccomp-demo ${S}/seccomp-demo.c
}

do_install() {
    install -d ${D}${bindir} ${D}${systemd_system_unitdir} ${D}${datadir}/seccomp-demo
    install -m 0755 ${B}/seccomp-demo ${D}${bindir}/seccomp-demo
    install -m 0644 ${S}/seccomp-demo.service ${D}${systemd_system_unitdir}/seccomp-demo.service
    install -m 0755 ${S}/seccomp-demo-workload.sh ${D}${datadir}/seccomp-demo/workload.sh
}
