#!/bin/sh
# Re-capture the strace samples in this directory (run as root on an x86_64 Debian host with
# strace and gcc-multilib installed). Every sample below is the unedited output of one command.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# A static 32-bit hello, to make strace switch personality.
printf '#include <unistd.h>\nint main(void){write(1,"hello32\\n",8);return 0;}\n' > hello.c
gcc -m32 -static -O2 -o hello32 hello.c

# A small multi-process workload: a pipe, a fork/exec, a vfork/exec (python's subprocess), a clone thread.
PY=/usr/bin/python3
workload="echo hi | wc -c; ls / > /dev/null; $PY -S -c 'import subprocess, threading; t = threading.Thread(target=print); t.start(); t.join(); subprocess.run([\"true\"])'"

strace -f -o "$here/strace-f.txt" sh -c "$workload"
rm -rf "$here/ff" && mkdir "$here/ff"
strace -ff -o "$here/ff/trace" sh -c "echo hi | wc -c; ls / > /dev/null"
strace -f -tt -T -y -o "$here/strace-f-tt-T-y.txt" sh -c "echo hi | wc -c"
strace -f -ttt -yy -o "$here/strace-f-ttt-yy.txt" $PY -S -c 'import socket; s = socket.create_server(("127.0.0.1", 0)); c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.send(b"x"); a.recv(1)'
strace -f -r -n -i -o "$here/strace-f-r-n-i.txt" sh -c "echo hi | cat > /dev/null"
strace -f -Y -o "$here/strace-f-Y.txt" sh -c "echo hi | wc -c"
# A child killed by a signal ("+++ killed by SIGKILL +++", "--- SIGCHLD ... CLD_KILLED").
strace -f -o "$here/strace-f-kill.txt" sh -c 'sleep 5 & kill -9 $!; wait'
# Attaching to a running process: no execve, a restart_syscall.
sleep 1 & sleeper=$!
sleep 0.3
strace -o "$here/strace-p.txt" -p "$sleeper" 2> /dev/null
# The personality marker only appears when strace writes to stderr (with -o it is not printed).
strace -f sh -c "./hello32; true" 2> "$here/strace-f-m32.txt"
strace -f -o "$here/strace-f-m32-o.txt" sh -c "./hello32; true"
# stderr again: strace's "Process N attached" note splits call lines (where exactly depends on timing)
strace -f -tt -T -y /bin/sh -c "/bin/echo hi | /bin/cat > /dev/null; /bin/true" 2> "$here/strace-f-stderr.txt" > /dev/null

strace -c -o "$here/summary-c.txt" ls / > /dev/null
strace -qcf -o "$here/summary-qcf.txt" sh -c "$workload"
strace -c -S name -o "$here/summary-c-S-name.txt" ls / > /dev/null
# -f with a 32-bit child: one table per personality.
strace -qcf -o "$here/summary-qcf-m32.txt" sh -c "./hello32; true"
strace -c -U name,calls,errors -o "$here/summary-c-U.txt" ls / > /dev/null
# -C: the trace and the summary in one file.
strace -f -C -o "$here/strace-f-C.txt" sh -c "echo hi | wc -c"
