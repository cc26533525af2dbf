/* seccomp-demo: a tiny line-oriented TCP daemon used to demonstrate seccomp profiling.
 * SPDX-License-Identifier: MIT
 * Copyright (c) 2026 meta-seccomp-py contributors
 *
 * Server:  seccomp-demo [-a ADDR] [-p PORT] [-d STATEDIR]
 * Client:  seccomp-demo --client [-a ADDR] [-p PORT] COMMAND
 *
 * Commands, one per connection: PING, TIME, COUNT (persistent counter in STATEDIR), LOAD
 * (reads /proc/loadavg), HELLO (reply from a forked child). Each exercises a different
 * set of system calls, so a profile of the daemon is small but not trivial.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT 7777
#define LINE_MAX_LEN 128

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_line(int fd, char *buf, size_t size)
{
	size_t used = 0;
	while (used + 1 < size) {
		ssize_t n = read(fd, buf + used, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf[used] == '\n')
			break;
		used++;
	}
	while (used > 0 && buf[used - 1] == '\r')
		used--;
	buf[used] = '\0';
	return (int)used;
}

/* Read, increment and atomically replace the counter file. */
static long bump_counter(const char *statedir)
{
	char path[256], tmp[272], text[32];
	long value = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/count", statedir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, text, sizeof(text) - 1);
		if (n > 0) {
			text[n] = '\0';
			value = strtol(text, NULL, 10);
		}
		close(fd);
	}
	value++;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	snprintf(text, sizeof(text), "%ld\n", value);
	if (write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0)
		return -1;
	return value;
}

static void reply_hello(int conn)
{
	int pipefd[2];
	char buf[64];
	pid_t pid;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		write_all(conn, "ERR pipe\n", 9);
		return;
	}
	pid = fork();
	if (pid == 0) {
		int len = snprintf(buf, sizeof(buf), "HELLO from child %ld\n", (long)getpid());
		write_all(pipefd[1], buf, (size_t)len);
		_exit(0);
	}
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		write_all(conn, "ERR fork\n", 9);
		return;
	}
	n = read(pipefd[0], buf, sizeof(buf));
	close(pipefd[0]);
	waitpid(pid, NULL, 0);
	if (n > 0)
		write_all(conn, buf, (size_t)n);
}

static void serve(int conn, const char *statedir)
{
	char line[LINE_MAX_LEN], out[160];
	int len;

	read_line(conn, line, sizeof(line));
	if (strcmp(line, "PING") == 0) {
		write_all(conn, "PONG\n", 5);
	} else if (strcmp(line, "TIME") == 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		len = snprintf(out, sizeof(out), "TIME %lld\n", (long long)now.tv_sec);
		write_all(conn, out, (size_t)len);
	} else if (strcmp(line, "COUNT") == 0) {
		long value = bump_counter(statedir);
		len = value < 0 ? snprintf(out, sizeof(out), "ERR %s\n", strerror(errno))
				: snprintf(out, sizeof(out), "COUNT %ld\n", value);
		write_all(conn, out, (size_t)len);
	} else if (strcmp(line, "LOAD") == 0) {
		char load[64] = "";
		int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, load, sizeof(load) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0)
			load[n] = '\0';
		len = snprintf(out, sizeof(out), "LOAD %s", n > 0 ? load : "unknown\n");
		write_all(conn, out, (size_t)len);
	} else if (strcmp(line, "HELLO") == 0) {
		reply_hello(conn);
	} else {
		write_all(conn, "ERR unknown command\n", 20);
	}
}

static int make_address(const char *addr, int port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)port);
	return inet_pton(AF_INET, addr, &sa->sin_addr) == 1 ? 0 : -1;
}

static int run_server(const char *addr, int port, const char *statedir)
{
	struct sigaction act;
	struct sockaddr_in sa;
	int one = 1, listener;

	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);

	if (mkdir(statedir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "seccomp-demo: cannot create %s: %s\n", statedir, strerror(errno));
		return 1;
	}
	if (make_address(addr, port, &sa) < 0) {
		fprintf(stderr, "seccomp-demo: bad address %s\n", addr);
		return 2;
	}
	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(listener, 16) < 0) {
		fprintf(stderr, "seccomp-demo: cannot listen on %s:%d: %s\n", addr, port, strerror(errno));
		return 1;
	}
	printf("seccomp-demo: listening on %s:%d, state in %s\n", addr, port, statedir);
	fflush(stdout);

	while (!stopping) {
		struct pollfd pfd = { .fd = listener, .events = POLLIN };
		int conn, ready = poll(&pfd, 1, 1000);
		if (ready <= 0)
			continue;
		conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		serve(conn, statedir);
		shutdown(conn, SHUT_RDWR);
		close(conn);
	}
	close(listener);
	printf("seccomp-demo: stopped\n");
	return 0;
}

static int run_client(const char *addr, int port, const char *command)
{
	struct sockaddr_in sa;
	char buf[256];
	ssize_t n;
	int fd;

	if (make_address(addr, port, &sa) < 0) {
		fprintf(stderr, "seccomp-demo: bad address %s\n", addr);
		return 2;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "seccomp-demo: cannot connect to %s:%d: %s\n", addr, port, strerror(errno));
		return 1;
	}
	snprintf(buf, sizeof(buf), "%s\n", command);
	if (write_all(fd, buf, strlen(buf)) < 0)
		return 1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: seccomp-demo [-a ADDR] [-p PORT] [-d STATEDIR]\n"
			"       seccomp-demo --client [-a ADDR] [-p PORT] PING|TIME|COUNT|LOAD|HELLO\n");
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *statedir = "/var/lib/seccomp-demo";
	int port = DEFAULT_PORT, client = 0, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--client") == 0)
			client = 1;
		else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc)
			addr = argv[++i];
		else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			statedir = argv[++i];
		else if (argv[i][0] == '-') {
			usage();
			return 2;
		} else
			break;
	}
	if (port <= 0 || port > 65535) {
		usage();
		return 2;
	}
	if (client) {
		if (i != argc - 1) {
			usage();
			return 2;
		}
		return run_client(addr ? addr : "127.0.0.1", port, argv[i]);
	}
	if (i != argc) {
		usage();
		return 2;
	}
	return run_server(addr ? addr : "0.0.0.0", port, statedir);
}
