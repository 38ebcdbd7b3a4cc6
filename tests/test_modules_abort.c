/* SPDX-License-Identifier: MIT */
/*
 * A library whose per-CPU section fits neither the reserved region nor
 * the dynamic area (PERCPU_RESERVED=4K, a 512 KiB page-aligned array,
 * more than a unit) must not run with a wrong pointer: loading it prints
 * one line naming the library and the size it needed, and aborts.  Both
 * ways: dlopen'ed after setup (a child of this program) and linked at
 * start-up, placed at setup (test_modules_big_linked).  In the UP build
 * static per-CPU variables are plain variables: both load and run.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modlib.h"
#include "check.h"

static void run(const char *exe, const char *arg)
{
	int fd[2];
	char out[8192];
	size_t len = 0;

	CHECK(pipe(fd) == 0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		dup2(fd[1], 1);
		close(fd[0]);
		setenv("PERCPU_RESERVED", "4K", 1);
		execl(exe, exe, arg, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	for (ssize_t r; (r = read(fd[0], out + len, sizeof(out) - 1 - len)) > 0;)
		len += (size_t)r;
	out[len] = '\0';
	close(fd[0]);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	printf("%s %s: %s %d; output:\n%s", exe, arg, WIFSIGNALED(status) ? "signal" : "exit",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), out);
	if (!PERCPU_SMP) {
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK(strstr(out, "loaded") != NULL);
		return;
	}
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CHECK(strstr(out, "loaded") == NULL);
	const char *m = strstr(out, "percpu: cannot load ");
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(strstr(m, "libmodlib_big.so") != NULL);
	const char *needs = strstr(m, "needs ");
	CHECK(needs != NULL);
	if (needs)
		CHECK(strtoul(needs + 6, NULL, 10) >= 512 * 1024);
}

int main(int argc, char **argv)
{
#ifdef PERCPU_TEST_EMULATED
	/* Needs to run other programs: not under qemu-user without binfmt_misc. */
	if (argc == 1) {
		printf("emulated: skipped\n");
		return 77;
	}
#endif
	if (argc > 1 && !strcmp(argv[1], "child")) {
		void *h = dlopen(MODLIB_BIG_PATH, RTLD_NOW);
		if (!h) {
			printf("dlopen: %s\n", dlerror());
			return 1;
		}
		int (*first)(unsigned int) = (int (*)(unsigned int))dlsym(h, "modbig_first");
		printf("loaded: %d\n", first(percpu_next_possible(-1)));
		return 0;
	}
	run("/proc/self/exe", "child");
	run(MODLIB_BIG_LINKED_PATH, "");
	return check_report();
}
