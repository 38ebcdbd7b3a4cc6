/* SPDX-License-Identifier: MIT */
/*
 * setup_per_cpu_areas(): runs before main exactly once; a later call with
 * the same configuration succeeds, with another fails with EBUSY; a
 * malformed environment override gets one line naming the variable and
 * the real topology is used (checked in a child process).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <percpu/layout.h>
#include <percpu/percpu.h>
#include "check.h"

/* Runs this program again with one environment variable; returns its stderr. */
static int run_child(const char *assign, char *err, size_t len)
{
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		putenv((char *)assign);
		execl("/proc/self/exe", "test_setup", "--child", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	size_t got = 0;
	ssize_t n;
	while (got + 1 < len && (n = read(fds[0], err + got, len - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = '\0';
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static unsigned int count_lines(const char *s)
{
	unsigned int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void malformed_overrides(void)
{
	static const struct { const char *assign, *var; } cases[] = {
		{ "PERCPU_CPUS=0-x", "PERCPU_CPUS" },
		{ "PERCPU_CPUS=5-2", "PERCPU_CPUS" },
		{ "PERCPU_NODES=0,,1", "PERCPU_NODES" },
		{ "PERCPU_RESERVED=12Q", "PERCPU_RESERVED" },
		{ "PERCPU_ATOM=3000", "PERCPU_ATOM" },
		{ "PERCPU_INDEX=bogus", "PERCPU_INDEX" },
	};
	char err[4096];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_child(cases[i].assign, err, sizeof(err));
		CHECK_EQ(rc, 0);
		CHECK_EQ(count_lines(err), 1);
		CHECK(strstr(err, cases[i].var) != NULL);
		if (rc || count_lines(err) != 1)
			fprintf(stderr, "%s -> rc %d, stderr:\n%s", cases[i].assign, rc, err);
	}
}

/* In the child: setup used the real topology despite the bad override. */
static int child(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	if (!percpu_is_setup())
		return 3;
	if (percpu_layout_current()->reserved_size != PERCPU_DEFAULT_RESERVE && PERCPU_SMP)
		return 4;
	return percpu_num_possible_cpus() >= 1 && (long)percpu_num_possible_cpus() <= cpus + 4096 ? 0 : 5;
}

static void setup_once(void)
{
	struct percpu_config cfg;

	CHECK(percpu_is_setup());	/* before main, by the constructor */
	CHECK_EQ(percpu_setup(NULL), 0);	/* again: nothing changes */

	percpu_config_default(&cfg);
	CHECK_EQ(percpu_setup(&cfg), 0);	/* the configuration it runs with */

	cfg.reserved_size = 128 * 1024;
	errno = 0;
	CHECK_EQ(percpu_setup(&cfg), -1);
	CHECK_EQ(errno, EBUSY);

	percpu_config_default(&cfg);
	cfg.cpus = "0-3";
	errno = 0;
	CHECK_EQ(percpu_setup(&cfg), -1);
	CHECK_EQ(errno, EBUSY);
	CHECK(percpu_layout_current() != NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--child"))
		return child();
	setup_once();
	if (CHECK_EMULATED)
		printf("emulated: the re-exec checks of malformed overrides are skipped\n");
	else
		malformed_overrides();
	return check_report();
}
