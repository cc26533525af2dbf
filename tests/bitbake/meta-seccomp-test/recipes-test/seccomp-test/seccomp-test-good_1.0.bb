require seccomp-test.inc

# Fetched through SRC_URI (not FILESPATH), several formats, and a per-unit action override.
SRC_URI += "file://good.json"
SECCOMP_PROFILES = "good.json"
SECCOMP_FORMATS = "systemd lxc oci"
SECCOMP_DEFAULT_ACTION[seccomp-test.service] = "kill"
