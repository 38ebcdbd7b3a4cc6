/* SPDX-License-Identifier: MIT */
/*
 * Allocation counters for percpu_stats().  The allocator's slow paths
 * count in plain per-thread counters (no shared cache line, no atomic
 * instruction, no critical section); the cached fast paths are counted by
 * the cache stacks themselves (src/pcpu_stack.h).  pcpu_counts_sum() adds
 * the live threads' counters and what exited threads left behind.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

__thread struct pcpu_thread_counts pcpu_thread_counts
	__attribute__((tls_model("initial-exec")));

static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcpu_thread_counts *threads;	/* registered threads' counters */
static struct pcpu_counts exited;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void add_counts(struct pcpu_counts *sum, const struct pcpu_counts *c)
{
	sum->nr_alloc += __atomic_load_n(&c->nr_alloc, __ATOMIC_RELAXED);
	sum->nr_dealloc += __atomic_load_n(&c->nr_dealloc, __ATOMIC_RELAXED);
	sum->refill_pushes += __atomic_load_n(&c->refill_pushes, __ATOMIC_RELAXED);
	sum->cache_taken += __atomic_load_n(&c->cache_taken, __ATOMIC_RELAXED);
}

static void thread_exit(void *arg)
{
	struct pcpu_thread_counts *t = arg;

	pthread_mutex_lock(&counts_lock);
	add_counts(&exited, &t->c);
	for (struct pcpu_thread_counts **pp = &threads; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	t->registered = false;
	memset(&t->c, 0, sizeof(t->c));
	pthread_mutex_unlock(&counts_lock);
}

static void make_exit_key(void)
{
	pthread_key_create(&exit_key, thread_exit);
}

void pcpu_counts_register(void)
{
	struct pcpu_thread_counts *t = &pcpu_thread_counts;

	pthread_once(&exit_key_once, make_exit_key);
	pthread_mutex_lock(&counts_lock);
	t->next = threads;
	threads = t;
	__atomic_store_n(&t->registered, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&counts_lock);
	pthread_setspecific(exit_key, t);
}

void pcpu_counts_sum(struct pcpu_counts *sum)
{
	pthread_mutex_lock(&counts_lock);
	*sum = exited;
	for (struct pcpu_thread_counts *t = threads; t; t = t->next)
		add_counts(sum, &t->c);
	pthread_mutex_unlock(&counts_lock);
}
