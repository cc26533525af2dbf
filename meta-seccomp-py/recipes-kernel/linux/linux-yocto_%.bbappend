# Only for distros with the seccomp feature: filters need CONFIG_SECCOMP_FILTER, and the records
# that SystemCallLog= produces for seccomp-py's profiler need CONFIG_AUDITSYSCALL.
# (oelint sees the expansion without the feature, "require ", as a trailing space.)
# nooelint: oelint.spaces.lineend
require ${@bb.utils.contains('DISTRO_FEATURES', 'seccomp', 'linux-yocto-seccomp.inc', '', d)}
