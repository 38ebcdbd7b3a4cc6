/* SPDX-License-Identifier: MIT */
/*
 * Invalid frees are caught: each case runs in a forked child, which must
 * die of SIGABRT after printing "percpu: invalid free of".  Before the
 * invalid free the child checks that its other live allocations are
 * intact; a control child doing only valid frees must exit normally.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>

#include "alloc_test_util.h"

PERCPU_DEFINE(long, static_counter);

static char __percpu *bystander;

static void make_bystander(void)
{
	unsigned int cpu;

	bystander = percpu_alloc(200, 8);
	CHECK(bystander);
	percpu_for_each_possible_cpu(cpu)
		pat_fill(percpu_ptr(bystander, cpu), 200, 42, cpu);
}

static void check_bystander(void)
{
	unsigned int cpu;

	percpu_for_each_possible_cpu(cpu)
		if (pat_check(percpu_ptr(bystander, cpu), 200, 42, cpu) >= 0)
			FAIL("bystander clobbered on cpu %u", cpu);
}

enum kind { DOUBLE_SMALL, DOUBLE_LARGE, INTERIOR, INTERIOR_LARGE, STATIC_VAR, MALLOC_PTR,
	    DOUBLE_RESERVED, RESERVED_INTERIOR, WILD, CONTROL, NR_KINDS };

static const char *const names[] = {
	"double free (small, cached class)", "double free (large, 5000 B)",
	"interior pointer p + 4", "interior pointer of a large allocation",
	"static per-CPU variable", "malloc() pointer", "double free (reserved)",
	"interior pointer of a reserved allocation", "pointer past every chunk",
	"control: valid frees only",
};

static void child(enum kind k)
{
	char __percpu *p, *q;
	void *m;

	make_bystander();
	switch (k) {
	case DOUBLE_SMALL:
		p = percpu_alloc(16, 8);
		q = percpu_alloc(16, 8);	/* a cached neighbour */
		CHECK(p && q);
		percpu_free(p);
		check_bystander();
		percpu_free(p);
		break;
	case DOUBLE_LARGE:
		p = percpu_alloc(5000, 8);
		CHECK(p);
		percpu_free(p);
		check_bystander();
		percpu_free(p);
		break;
	case INTERIOR:
		p = percpu_alloc(64, 8);
		CHECK(p);
		check_bystander();
		percpu_free(p + 4);
		break;
	case INTERIOR_LARGE:
		p = percpu_alloc(8192, 64);
		CHECK(p);
		check_bystander();
		percpu_free(p + 4096);
		break;
	case STATIC_VAR:
		check_bystander();
		percpu_free(PERCPU_VAR(static_counter));
		break;
	case MALLOC_PTR:
		m = malloc(64);
		CHECK(m);
		check_bystander();
		percpu_free((void __percpu *)m);
		break;
	case DOUBLE_RESERVED:
		p = percpu_alloc_reserved(64, 8);
		CHECK(p);
		percpu_free(p);
		check_bystander();
		percpu_free(p);
		break;
	case RESERVED_INTERIOR:
		p = percpu_alloc_reserved(64, 8);
		CHECK(p);
		check_bystander();
		percpu_free(p + 8);
		break;
	case WILD:
		check_bystander();
		percpu_free((void __percpu *)(uintptr_t)((uintptr_t)bystander + ((uintptr_t)1 << 44)));
		break;
	case CONTROL:
		for (int i = 0; i < 1000; i++) {
			p = percpu_alloc((size_t)(i % 50) * 40 + 1, 8);
			q = PERCPU_SMP ? percpu_alloc_reserved(16, 8) : percpu_alloc(16, 8);
			CHECK(p && q);
			percpu_free(p);
			percpu_free(q);
		}
		percpu_free(NULL);
		percpu_balance();
		check_bystander();
		percpu_free(bystander);
		exit(0);
	default:
		break;
	}
	/* Still alive after an invalid free: that is the failure. */
	fprintf(stderr, "survived\n");
	exit(3);
}

static void run(enum kind k)
{
	FILE *err = tmpfile();
	int status;

	CHECK(err);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(fileno(err), 2);
		child(k);
		_exit(4);
	}
	CHECK(waitpid(pid, &status, 0) == pid);

	char buf[4096];
	ssize_t n = pread(fileno(err), buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	fclose(err);
	if (k == CONTROL) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			FAIL("%s: child status %#x, stderr:\n%s", names[k], status, buf);
		if (strstr(buf, "invalid free"))
			FAIL("%s: reported an invalid free:\n%s", names[k], buf);
	} else {
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
			FAIL("%s: child not killed by SIGABRT (status %#x), stderr:\n%s", names[k],
			     status, buf);
		if (!strstr(buf, "percpu: invalid free of"))
			FAIL("%s: no \"percpu: invalid free of\" on stderr:\n%s", names[k], buf);
		if (strstr(buf, "FAILED"))
			FAIL("%s: the child failed a check first:\n%s", names[k], buf);
	}
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	printf("%-45s %s: %s\n", names[k], k == CONTROL ? "exit 0" : "SIGABRT", buf);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK(percpu_setup(NULL) == 0);
	for (int k = 0; k < NR_KINDS; k++)
		if (PERCPU_SMP || (k != DOUBLE_RESERVED && k != RESERVED_INTERIOR))
			run((enum kind)k);	/* the UP layout has no reserved region */
	/* The parent's allocator is untouched by all this. */
	char __percpu *p = percpu_alloc(16, 8);
	CHECK(p);
	percpu_free(p);
	printf("test_invalid_free: OK\n");
	return 0;
}
