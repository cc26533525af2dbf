require seccomp-test.inc

# Lists x86_64-only calls (open, poll) under aarch64.
SECCOMP_PROFILES = "wrong-abi.json"
