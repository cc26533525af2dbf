#!/bin/sh
# Captures this host's own SECCOMP audit records (real kernel output, nothing synthesised).
# Run as root on an x86_64 host where no auditd or journald is running (the kernel then printk's
# audit records). Needs: cc, auditd and rsyslog installed but not running. Takes about 2 minutes.
# Needs: cc, auditd, rsyslog and systemd (journald) installed but not running. About 3 minutes.
# Writes: kmsg.txt dmesg.txt dmesg-notime.txt syslog-*.log audit.log kmsg-loss.txt journal-*.json uname.txt
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
work=$(mktemp -d /tmp/seccomp-audit-capture.XXXXXX)
trap 'rm -rf "$work"' EXIT
demo=$work/seccomp-demo
cc -O2 -Wall -o "$demo" "$here/seccomp-demo.c"
cp "$demo" "$work/seccomp demo"  # a space makes the kernel hex-encode comm and exe

kmsg_seq() {  # last /dev/kmsg sequence number
    python3 -c 'import os
fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK); seq = 0
while True:
    try: seq = int(os.read(fd, 8192).split(b",")[1])
    except BlockingIOError: break
print(seq)'
}
kmsg_since() {  # raw /dev/kmsg records after sequence $1
    python3 -c 'import os, sys
start = int(sys.argv[1]); fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
while True:
    try: rec = os.read(fd, 8192)
    except BlockingIOError: break
    if int(rec.split(b",")[1]) > start: sys.stdout.buffer.write(rec)' "$1"
}
pause() { sleep 6; }  # printk rate limiting of audit records is 10 per 5 s

scenarios() {
    "$demo" actions; pause
    "$demo" compat; pause
    "$demo" x32; pause
    "$work/seccomp demo" log /bin/true; pause
    "$demo" log /bin/ls /; pause
    "$demo" burst 200; pause
    "$demo" actions  # prints the pending "callbacks suppressed" count
}

uname -a > "$out/uname.txt"

# 1. kmsg: no audit daemon, the kernel printk's (rate limited)
pause
seq=$(kmsg_seq)
scenarios
sleep 1
kmsg_since "$seq" > "$out/kmsg.txt"
n=$(wc -l < "$out/kmsg.txt")
dmesg | tail -n "$n" > "$out/dmesg.txt"
dmesg --notime | tail -n "$n" > "$out/dmesg-notime.txt"

# 2. syslog: rsyslog reads the kernel log (imklog) and writes both file formats Debian uses
conf=$work/rsyslog.conf
cat > "$conf" <<CONF
module(load="imklog")
kern.* action(type="omfile" file="$out/syslog-traditional.log" template="RSYSLOG_TraditionalFileFormat")
kern.* action(type="omfile" file="$out/syslog-rfc3339.log" template="RSYSLOG_FileFormat")
CONF
rm -f "$out/syslog-traditional.log" "$out/syslog-rfc3339.log"
rsyslogd -n -f "$conf" -i "$work/rsyslog.pid" &
rsyslog_pid=$!
sleep 2
"$demo" actions; pause
"$work/seccomp demo" log /bin/true; pause
"$demo" burst 100; pause
"$demo" compat
sleep 2
kill "$rsyslog_pid"; wait "$rsyslog_pid" || true
# imklog replays the whole boot log first; keep only the audit-related lines and the seccomp runs
for f in syslog-traditional.log syslog-rfc3339.log; do
    grep -E 'audit|kauditd' "$out/$f" > "$out/$f.tmp" || true
    mv "$out/$f.tmp" "$out/$f"
done

# 3. audit.log: auditd owns the stream (no printk, no rate limit); then provoke backlog loss
rm -f /var/log/audit/audit.log
auditd -n > "$work/auditd.out" 2>&1 &
auditd_pid=$!
sleep 2
auditctl -b 8192 --backlog_wait_time 60000 > /dev/null
"$demo" actions
"$demo" compat
"$demo" x32
"$work/seccomp demo" log /bin/true
"$demo" log /bin/ls /
seq=$(kmsg_seq)
auditctl -b 1 --backlog_wait_time 0 > /dev/null  # tiny backlog: the burst below overflows it
"$demo" burst 3000
"$demo" burst 3000 &
"$demo" burst 3000
wait %2 2>/dev/null || true
sleep 1
auditctl -b 8192 --backlog_wait_time 60000 > /dev/null
sleep 1
kmsg_since "$seq" > "$out/kmsg-loss.txt"
kill "$auditd_pid"; wait "$auditd_pid" || true
cp /var/log/audit/audit.log "$out/audit.log"

# 4. journal-json: systemd-journald, started by hand (this host has no systemd as PID 1), reads the
#    audit multicast group (audit transport) and /dev/kmsg (kernel transport copies, rate limited)
sleep 6
mkdir -p /run/systemd/journald.conf.d /run/systemd/journal
printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' > /run/systemd/journald.conf.d/90-seccomp-capture.conf
/lib/systemd/systemd-journald > "$work/journald.out" 2>&1 &
journald_pid=$!
sleep 3
J="journalctl -D /run/log/journal --no-pager -q"
cursor=$($J -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
scenarios
sleep 3
$J -o json --after-cursor "$cursor" > "$out/journal-all.json"
$J -o json --after-cursor "$cursor" _TRANSPORT=audit _AUDIT_TYPE=1326 > "$out/journal-seccomp.json"
$J -o json --after-cursor "$cursor" _TRANSPORT=audit \
    --output-fields=_TRANSPORT,_AUDIT_TYPE,_AUDIT_ID,_SOURCE_REALTIME_TIMESTAMP,_PID,_COMM,_EXE,_AUDIT_FIELD_ARCH,_AUDIT_FIELD_SYSCALL,_AUDIT_FIELD_COMPAT,_AUDIT_FIELD_CODE \
    > "$out/journal-compact.json"
$J -o json --after-cursor "$cursor" _TRANSPORT=audit \
    --output-fields=MESSAGE,_AUDIT_ID,_SOURCE_REALTIME_TIMESTAMP > "$out/journal-message.json"
$J -o json-seq --after-cursor "$cursor" _TRANSPORT=audit _AUDIT_TYPE=1326 -n 5 > "$out/journal-seq.json"
kill "$journald_pid"; wait "$journald_pid" || true
rm -f /run/systemd/journald.conf.d/90-seccomp-capture.conf
rm -rf /run/log/journal
echo "captured into $out"
