#!/bin/sh
# In-guest workload for nginx: pages, a 404, HEAD, a range request, keep-alive reuse.
# A light pass in the profiler's warm-up round (SECCOMP_ROUND_KIND=warm-up): the same requests from one
# curl (each curl costs ~0.2 s to start on a TCG guest; nginx walks the same paths for them), and
# without the loop at the end, which only repeats the first request's path.
set -eu
base=http://127.0.0.1
if [ "${SECCOMP_ROUND_KIND:-}" = warm-up ]; then
    exec curl -sS -o /dev/null "$base/" --next -sS -o /dev/null -I "$base/" \
        --next -sS -o /dev/null -r 0-99 "$base/" --next -sS -o /dev/null "$base/no-such-page" \
        --next -sS -o /dev/null -o /dev/null -o /dev/null "$base/" "$base/" "$base/"
fi
count=20
curl -fsS -o /dev/null "$base/"
curl -fsS -o /dev/null -I "$base/"
curl -fsS -o /dev/null -r 0-99 "$base/"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/no-such-page")
[ "$code" = 404 ]
# one connection, several requests
curl -fsS -o /dev/null -o /dev/null -o /dev/null "$base/" "$base/" "$base/"
i=0
while [ "$i" -lt "$count" ]; do
    curl -fsS -o /dev/null "$base/?n=$i"
    i=$((i + 1))
done
