/* SPDX-License-Identifier: MIT */
/*
 * Allocation counters for percpu_stats().  The fast paths count in plain
 * per-thread counters (no shared cache line, no atomic instruction, no
 * critical section); percpu_stats() sums the live threads' counters and
 * what exited threads left behind.
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

__thread struct pcpu_thread_counts pcpu_thread_counts
	__attribute__((tls_model("initial-exec")));

static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcpu_thread_counts *threads;	/* registered threads' counters */
static unsigned long exited_alloc, exited_dealloc;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg)
{
	struct pcpu_thread_counts *t = arg;

	pthread_mutex_lock(&counts_lock);
	exited_alloc += t->nr_alloc;
	exited_dealloc += t->nr_dealloc;
	for (struct pcpu_thread_counts **pp = &threads; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	t->registered = false;
	t->nr_alloc = t->nr_dealloc = 0;
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

void pcpu_counts_sum(unsigned long *alloc, unsigned long *dealloc)
{
	pthread_mutex_lock(&counts_lock);
	*alloc = exited_alloc;
	*dealloc = exited_dealloc;
	for (struct pcpu_thread_counts *t = threads; t; t = t->next) {
		*alloc += __atomic_load_n(&t->nr_alloc, __ATOMIC_RELAXED);
		*dealloc += __atomic_load_n(&t->nr_dealloc, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&counts_lock);
}
