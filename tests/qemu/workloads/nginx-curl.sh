#!/bin/sh
# In-guest workload for nginx: pages, a 404, HEAD, a range request, keep-alive reuse.
# A light pass in the profiler's warm-up round (SECCOMP_ROUND_KIND=warm-up): the loop at the end only
# repeats the first request's path, so the warm-up leaves it out.
set -eu
count=20
[ "${SECCOMP_ROUND_KIND:-}" = warm-up ] && count=0
base=http://127.0.0.1
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
