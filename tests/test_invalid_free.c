/* SPDX-License-Identifier: MIT */
/*
 * Invalid frees are caught: each case runs in a forked child, which must
 * die of SIGABRT after printing "percpu: invalid free of".  Before the
 * invalid free the child checks that its other live allocations are
 * intact; a control child doing only valid frees must exit normally.
 * A racing child frees each pointer from two CPUs at the same instant
 * and must see exactly one of the two refused, every time.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

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
	    DOUBLE_RESERVED, RESERVED_INTERIOR, WILD, CONTROL, RACING, NR_KINDS };

static const char *const names[] = {
	"double free (small, cached class)", "double free (large, 5000 B)",
	"interior pointer p + 4", "interior pointer of a large allocation",
	"static per-CPU variable", "malloc() pointer", "double free (reserved)",
	"interior pointer of a reserved allocation", "pointer past every chunk",
	"control: valid frees only", "double free racing on two CPUs",
};

/*
 * The racing child: two threads, each pinned to its own CPU when there
 * are two, free the same pointer at the same instant.  A refused free
 * calls abort(); its SIGABRT handler jumps back into the thread's loop,
 * which records the refusal.  Each round must have exactly one refusal:
 * two would be a valid free refused, none a double free absorbed (the
 * area would then be handed out twice, from the caches or the bitmaps).
 * The threads meet at spinning barriers: after the first both hold the
 * pointer; after the second, which each enters after a random short
 * spin, they free it, so the frees start a few nanoseconds apart, in
 * either order, and overlap in many rounds.
 */
#define RACE_ROUNDS 20000
#define RACE_SECONDS 5

static const size_t race_sizes[] = { 8, 64, 5000 };	/* cached classes and the bitmap path */
static char __percpu *race_ptr;
static unsigned int race_arrived;	/* barrier: arrivals, two per crossing */
static int race_refused[2];
static bool race_stop;
static int race_rounds;
static __thread sigjmp_buf race_env;
static __thread bool race_armed;

static void race_abort(int sig)
{
	if (!race_armed) {	/* a failed check outside the frees: die */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	siglongjmp(race_env, 1);
}

/* One free; 1 if it was refused (its abort() jumped back here). */
static __attribute__((noinline)) int race_free(char __percpu *p)
{
	int refused = 0;

	race_armed = true;
	if (sigsetjmp(race_env, 1))
		refused = 1;
	else
		percpu_free(p);
	race_armed = false;
	return refused;
}

static void race_barrier(unsigned int *crossing)
{
	unsigned int target = 2 * ++*crossing;

	__atomic_fetch_add(&race_arrived, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&race_arrived, __ATOMIC_ACQUIRE) < target)
		;
}

static void *race_thread(void *arg)
{
	int t = (int)(intptr_t)arg;
	unsigned int crossing = 0, seed = 12345u + (unsigned int)t;
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(t, &one);
	(void)sched_setaffinity(0, sizeof(one), &one);	/* one CPU: both run, in turn */
	time_t end = time(NULL) + RACE_SECONDS;
	for (int round = 1;; round++) {
		if (t == 0) {
			race_stop = round > RACE_ROUNDS || time(NULL) > end;
			race_ptr = race_stop ? NULL : percpu_alloc(race_sizes[round % 3], 8);
			CHECK(race_stop || race_ptr);
		}
		race_barrier(&crossing);
		if (race_stop)
			break;
		char __percpu *p = race_ptr;
		for (volatile int spin = rand_r(&seed) % 64; spin > 0; spin--)
			;
		race_barrier(&crossing);
		race_refused[t] += race_free(p);
		race_barrier(&crossing);
		if (t == 0) {
			int refused = race_refused[0] + race_refused[1] - round + 1;
			if (refused != 1) {
				/* On stdout too: stderr is full of the refusals' messages. */
				printf("racing: round %d (%zu B): %d of the two frees refused\n",
				       round, race_sizes[round % 3], refused);
				FAIL("round %d: %d of the two frees refused", round, refused);
			}
			race_rounds = round;
		}
	}
	return NULL;
}

static void race_child(void)
{
	struct sigaction sa = { .sa_handler = race_abort };
	pthread_t th[2];

	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGABRT, &sa, NULL) == 0);
	for (intptr_t t = 0; t < 2; t++)
		CHECK(pthread_create(&th[t], NULL, race_thread, (void *)t) == 0);
	for (int t = 0; t < 2; t++)
		CHECK(pthread_join(th[t], NULL) == 0);
	/* Every area came back exactly once: all of them can be had again. */
	for (int round = 0; round < 100; round++) {
		char __percpu *p = percpu_alloc(race_sizes[round % 3], 8);
		CHECK(p);
		percpu_free(p);
	}
	percpu_balance();
	check_bystander();
	printf("racing: %d rounds, one free refused in each (%d on the first thread)\n",
	       race_rounds, race_refused[0]);
	exit(0);
}

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
	case RACING:
		race_child();
		break;
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
	} else if (k == RACING) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			FAIL("%s: child status %#x, stderr:\n%s", names[k], status, buf);
		if (!strstr(buf, "percpu: invalid free of"))
			FAIL("%s: no \"percpu: invalid free of\" on stderr:\n%s", names[k], buf);
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
	printf("%-45s %s: %s\n", names[k], k == CONTROL || k == RACING ? "exit 0" : "SIGABRT",
	       buf);
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
