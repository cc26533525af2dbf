#!/bin/sh
# In-guest workload for redis-server: commands, pipelined benchmark clients, a forked background save.
# In the profiler's warm-up round (SECCOMP_ROUND_KIND=warm-up) it does the same with few requests:
# every code path, a fraction of the audit records.
set -eu
requests=${REDIS_REQUESTS:-2000}
if [ "${SECCOMP_ROUND_KIND:-}" = warm-up ]; then
    # the single commands from one redis-cli (each costs ~0.2 s to start on a TCG guest)
    requests=20
    printf 'PING\nSET greeting hello\nGET greeting\nLPUSH queue a b c\nEXPIRE greeting 60\n' | redis-cli >/dev/null
else
    [ "$(redis-cli ping)" = PONG ]
    redis-cli set greeting hello >/dev/null
    [ "$(redis-cli get greeting)" = hello ]
    redis-cli lpush queue a b c >/dev/null
    redis-cli expire greeting 60 >/dev/null
fi
redis-benchmark -q -n "$requests" -c 4 -t set,get,incr,lpush,lpop,sadd,hset >/dev/null
redis-cli bgsave >/dev/null
n=0
until redis-cli info persistence | grep -q '^rdb_bgsave_in_progress:0'; do
    n=$((n + 1)); [ "$n" -lt 100 ] || exit 1
    sleep 0.2
done
redis-cli info >/dev/null
