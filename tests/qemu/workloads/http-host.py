#!/usr/bin/env python3
"""Host workload for nginx through the forwarded port: keep-alive requests (SECCOMP_TARGET_PORT_80).
A light pass in the profiler's warm-up round (SECCOMP_ROUND_KIND=warm-up)."""

import http.client
import os
import sys

port = int(os.environ.get("SECCOMP_TARGET_PORT_80", "0"))
if not port:
    sys.exit("SECCOMP_TARGET_PORT_80 is not set (profile with --forward 80)")
count = int(os.environ.get("HTTP_REQUESTS", "200"))
if os.environ.get("SECCOMP_ROUND_KIND") == "warm-up":
    count = min(count, 5)  # a light pass: same code paths, fewer records
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for i in range(count):
    conn.request("GET", f"/?i={i}")
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"request {i}: HTTP {response.status}")
conn.close()
print(f"{count} requests ok")
