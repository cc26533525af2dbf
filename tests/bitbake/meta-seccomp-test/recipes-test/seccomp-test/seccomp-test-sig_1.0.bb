require seccomp-test.inc

# tests/bitbake edits this profile (in its staged copy) to check that the task signature follows it.
SECCOMP_PROFILES = "sig.json"
