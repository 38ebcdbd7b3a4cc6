/* SPDX-License-Identifier: MIT */
/*
 * The per-CPU stack (src/pcpu_stack.h): exact LIFO behaviour on one
 * pinned thread, then N migrating threads pushing and popping distinct
 * tokens: at the end every token is in exactly one place (a thread's
 * hand or some CPU's stack), none lost, none duplicated, and the stacks'
 * heads have counted every successful push, none more.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "pcpu_stack.h"

#define CAP 16
#define TOKENS_PER_THREAD 64

static uintptr_t stack;		/* translated per-CPU address */
static unsigned long rounds = 300000;
static int nr_cpus;
static unsigned char *seen;

static struct pcpu_stack *copy(unsigned int cpu)
{
	return (struct pcpu_stack *)(stack + (uintptr_t)percpu_cpu_offset[cpu]);
}

static int fail(const char *what)
{
	printf("FAILED: %s\n", what);
	return 1;
}

struct hand {
	int id;
	uintptr_t held[TOKENS_PER_THREAD * 64];
	int n;
	unsigned long pushes;	/* successful ones */
};

static void *worker(void *arg)
{
	struct hand *h = arg;
	unsigned int seed = (unsigned int)h->id + 1;

	for (unsigned long i = 0; i < rounds; i++) {
		if ((i & 1023) == 0) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(rand_r(&seed) % nr_cpus, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		if (h->n && (rand_r(&seed) & 1)) {
			int r = pcpu_stack_push(stack, h->held[h->n - 1]);
			if (r < 0)
				abort();
			if (r == 1) {
				h->n--;
				h->pushes++;
			}
		} else if (h->n + CAP <= (int)(sizeof(h->held) / sizeof(h->held[0]))) {
			uintptr_t t;
			int r;
			if (rand_r(&seed) & 4) {
				r = pcpu_stack_pop(stack, &t);
				if (r == 1)
					h->held[h->n++] = t;
			} else {
				/* Several at once, straight into the hand. */
				r = pcpu_stack_pop_n(stack, &h->held[h->n], 1 + rand_r(&seed) % CAP);
				if (r > 0)
					h->n += r;
			}
			if (r < 0)
				abort();
		}
	}
	return NULL;
}

int main(void)
{
	const char *scale = getenv("PERCPU_TEST_SCALE");
	unsigned int cpu;
	uintptr_t t;

	if (scale)
		rounds = (unsigned long)(rounds * atof(scale)) + 1000;
	if (percpu_setup(NULL))
		return 1;
	void *p = percpu_alloc(sizeof(struct pcpu_stack) + CAP * sizeof(uintptr_t), 8);
	if (!p)
		return fail("percpu_alloc");
	stack = percpu__addr(p);
	percpu_for_each_possible_cpu(cpu)
		copy(cpu)->cap = CAP;

	if (pcpu_stack_pop(stack, &t) < 0) {
		printf("test_pcpu_stack: mode %s: rseq unavailable, the stack is unused; skipped\n",
		       percpu_mode_name());
		return 77;
	}

	/* One pinned thread: exact LIFO, full and empty. */
	cpu_set_t set, all;
	sched_getaffinity(0, sizeof(all), &all);
	int here = sched_getcpu();
	CPU_ZERO(&set);
	CPU_SET(here, &set);
	sched_setaffinity(0, sizeof(set), &set);
	for (uintptr_t i = 0; i < CAP; i++)
		if (pcpu_stack_push(stack, 1000 + i) != 1)
			return fail("push below cap");
	if (pcpu_stack_push(stack, 1) != 0)
		return fail("push on a full stack");
	if (PCPU_STACK_COUNT(copy((unsigned int)here)->head) != CAP ||
	    PCPU_STACK_PUSHES(copy((unsigned int)here)->head) != CAP)
		return fail("count and pushes after pushes");
	for (uintptr_t i = CAP; i-- > 0;)
		if (pcpu_stack_pop(stack, &t) != 1 || t != 1000 + i)
			return fail("LIFO order");
	if (pcpu_stack_pop(stack, &t) != 0)
		return fail("pop on an empty stack");
	/* pop_n: the top want items in push order, fewer when there are fewer. */
	uintptr_t many[CAP];
	for (uintptr_t i = 0; i < 5; i++)
		pcpu_stack_push(stack, 2000 + i);
	if (pcpu_stack_pop_n(stack, many, 3) != 3 || many[0] != 2002 || many[1] != 2003 ||
	    many[2] != 2004)
		return fail("pop_n of 3 from 5");
	if (pcpu_stack_pop_n(stack, many, CAP) != 2 || many[0] != 2000 || many[1] != 2001)
		return fail("pop_n of more than there are");
	if (pcpu_stack_pop_n(stack, many, CAP) != 0 ||
	    PCPU_STACK_COUNT(copy((unsigned int)here)->head) != 0 ||
	    PCPU_STACK_PUSHES(copy((unsigned int)here)->head) != CAP + 5)
		return fail("pop_n on an empty stack (count 0, pushes CAP + 5)");
	sched_setaffinity(0, sizeof(all), &all);

	/* Threads: each starts holding its own tokens. */
	nr_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int n = 4 * nr_cpus, nr_tokens = n * TOKENS_PER_THREAD;
	struct hand *hands = calloc((size_t)n, sizeof(*hands));
	pthread_t tid[n];
	for (int i = 0; i < n; i++) {
		hands[i].id = i;
		for (int k = 0; k < TOKENS_PER_THREAD; k++)
			hands[i].held[hands[i].n++] = (uintptr_t)(1 + i * TOKENS_PER_THREAD + k);
		pthread_create(&tid[i], NULL, worker, &hands[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(tid[i], NULL);

	seen = calloc((size_t)nr_tokens + 1, 1);
	int dup = 0, bogus = 0, total = 0;
#define SEE(tok) do {								\
		uintptr_t x_ = (tok);						\
		if (x_ < 1 || x_ > (uintptr_t)nr_tokens) bogus++;		\
		else if (seen[x_]++) dup++;					\
		total++;							\
	} while (0)
	for (int i = 0; i < n; i++)
		for (int k = 0; k < hands[i].n; k++)
			SEE(hands[i].held[k]);
	int stacked = 0;
	unsigned long pushes = CAP + 5, counted = 0;	/* the pinned part's */
	for (int i = 0; i < n; i++)
		pushes += hands[i].pushes;
	percpu_for_each_possible_cpu(cpu) {
		struct pcpu_stack *s = copy(cpu);
		uint32_t count = PCPU_STACK_COUNT(s->head);
		if (count > CAP)
			bogus++;
		for (uint32_t k = 0; k < count && k < CAP; k++)
			SEE(s->item[k]);
		stacked += (int)count;
		counted += (unsigned long)PCPU_STACK_PUSHES(s->head);
	}
	if (counted != pushes) {
		printf("pushes counted by the heads: %lu, made: %lu\n", counted, pushes);
		return fail("pushes counted");
	}
	printf("test_pcpu_stack: mode %s, %d threads, %d tokens: %d seen (%d on stacks), "
	       "%d duplicated, %d bogus\n", percpu_mode_name(), n, nr_tokens, total, stacked,
	       dup, bogus);
	if (dup || bogus || total != nr_tokens)
		return fail("tokens lost or duplicated");
	printf("ok\n");
	return 0;
}
