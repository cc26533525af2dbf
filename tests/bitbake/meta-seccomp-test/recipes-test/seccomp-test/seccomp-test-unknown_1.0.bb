require seccomp-test.inc

# Names a syscall no ABI has.
SECCOMP_PROFILES = "unknown-syscall.json"
