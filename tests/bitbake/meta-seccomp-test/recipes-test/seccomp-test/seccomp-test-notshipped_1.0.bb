require seccomp-test.inc

# Has a profile for a unit this recipe does not install.
SECCOMP_PROFILES = "not-shipped.json"
