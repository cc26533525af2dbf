/* Produces real SECCOMP audit records on an x86_64 host, one scenario per argv[1].
 * Raw BPF through seccomp(2), so it needs only a C compiler (no libseccomp).
 * Build: cc -O2 -o seccomp-demo seccomp-demo.c   (run as root or with no_new_privs)
 *   log CMD...   allow everything but log it (SECCOMP_RET_LOG), then exec CMD
 *   actions      one child per action code: ERRNO TRAP TRACE USER_NOTIF KILL_THREAD KILL_PROCESS
 *   compat       a 32-bit call through int $0x80 (arch=40000003 compat=1)
 *   x32          a call with the x32 bit set (arch=c000003e syscall=0x40000000+n)
 *   burst N      N logged getppid() calls, to trigger printk rate limiting
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif

static long install(unsigned int nr, unsigned int action, unsigned long flags)
{
	/* nr == (unsigned)-1: apply action to every call */
	struct sock_filter all[] = {
		BPF_STMT(BPF_RET | BPF_K, action),
	};
	struct sock_filter one[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog;
	if (nr == (unsigned int)-1) {
		prog.len = sizeof(all) / sizeof(all[0]);
		prog.filter = all;
	} else {
		prog.len = sizeof(one) / sizeof(one[0]);
		prog.filter = one;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		perror("no_new_privs");
		exit(1);
	}
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (rc < 0) {
		perror("seccomp");
		exit(1);
	}
	return rc;
}

static void on_sigsys(int sig) { (void)sig; }

/* Fork; the child installs the filter for nr and calls it; the parent waits. */
static void in_child(const char *label, unsigned int nr, unsigned int action, unsigned long flags)
{
	pid_t pid = fork();
	if (pid == 0) {
		long fd = install(nr, action, flags | SECCOMP_FILTER_FLAG_LOG);
		if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)
			close((int)fd); /* no listener: the call fails with ENOSYS and is logged */
		signal(SIGSYS, on_sigsys);
		long r = syscall(nr);
		printf("%s: syscall %u returned %ld (%s)\n", label, nr, r, r < 0 ? strerror(errno) : "ok");
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status))
		printf("%s: child killed by signal %d\n", label, WTERMSIG(status));
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0); /* children must not re-flush the parent's buffer */
	if (argc < 2) {
		fprintf(stderr, "usage: %s log CMD...|actions|compat|x32|burst N\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "log") && argc > 2) {
		install((unsigned int)-1, SECCOMP_RET_LOG, 0);
		execvp(argv[2], argv + 2);
		perror("execvp");
		return 1;
	}
	if (!strcmp(argv[1], "actions")) {
		in_child("ERRNO", SYS_getppid, SECCOMP_RET_ERRNO | EPERM, 0);
		in_child("TRAP", SYS_getpgrp, SECCOMP_RET_TRAP, 0);
		in_child("TRACE", SYS_getuid, SECCOMP_RET_TRACE, 0);
		in_child("USER_NOTIF", SYS_getgid, SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER);
		in_child("KILL_THREAD", SYS_geteuid, SECCOMP_RET_KILL_THREAD, 0);
		in_child("KILL_PROCESS", SYS_getegid, SECCOMP_RET_KILL_PROCESS, 0);
		in_child("LOG", SYS_getsid, SECCOMP_RET_LOG, 0);
		return 0;
	}
	if (!strcmp(argv[1], "compat")) {
		install((unsigned int)-1, SECCOMP_RET_LOG, 0);
		long r;
		/* i386 getpid is 20; int $0x80 enters the ia32 syscall path */
		__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
		printf("compat getpid via int $0x80 returned %ld\n", r);
		return 0;
	}
	if (!strcmp(argv[1], "x32")) {
		install((unsigned int)-1, SECCOMP_RET_LOG, 0);
		/* x32 getpid is 39 | 0x40000000; ENOSYS here if the kernel lacks CONFIG_X86_X32_ABI */
		long r = syscall(0x40000000L | 39);
		printf("x32 getpid returned %ld (%s)\n", r, r < 0 ? strerror(errno) : "ok");
		return 0;
	}
	if (!strcmp(argv[1], "burst") && argc > 2) {
		long n = strtol(argv[2], NULL, 10);
		install(SYS_getppid, SECCOMP_RET_LOG, 0);
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		return 0;
	}
	fprintf(stderr, "unknown scenario %s\n", argv[1]);
	return 2;
}
