#!/bin/sh
# Workload for profiling seccomp-demo.service: exercise every command and check each reply.
# Runs on the target; seccomp-image.bbclass's do_seccomp_profile finds it through SECCOMP_WORKLOADS.
set -eu

PORT="${SECCOMP_DEMO_PORT:-7777}"
CLIENT="${SECCOMP_DEMO_CLIENT:-seccomp-demo}"

ask() {
    "$CLIENT" --client -p "$PORT" "$1"
}

expect() {
    reply="$(ask "$1")"
    case "$reply" in
        "$2"*) echo "ok   $1 -> $reply" ;;
        *) echo "FAIL $1 -> '$reply' (expected $2...)" >&2; exit 1 ;;
    esac
}

# The unit may still be starting right after a restart.
tries=0
until ask PING >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
        echo "FAIL seccomp-demo does not answer on port $PORT" >&2
        exit 1
    fi
    sleep 1
done

rounds="${SECCOMP_DEMO_ROUNDS:-3}"
i=0
while [ "$i" -lt "$rounds" ]; do
    expect PING PONG
    expect TIME "TIME "
    expect COUNT "COUNT "
    expect LOAD "LOAD "
    expect HELLO "HELLO from child"
    i=$((i + 1))
done
expect BOGUS "ERR unknown command"
echo "seccomp-demo workload: $rounds rounds passed"
