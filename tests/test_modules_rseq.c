/* SPDX-License-Identifier: MIT */
/*
 * rseq critical sections in library code across dlclose.
 *
 * Each round dlopens modlib_rseq, runs this_cpu_inc in it on several
 * threads, and dlcloses it while those threads go on in the main program
 * (sleeping, yielding: preempted many times).  Each thread's rseq_cs must
 * be 0 once it is back from the library, before and after the dlclose: a
 * pointer to a descriptor in the unmapped library would make the kernel
 * kill the thread (SIGSEGV) at its next preemption.
 *
 * Negative control: modlib_rseq_noclear is the same library compiled as if
 * position-independent-executable code (no clearing).  Its threads come
 * back with rseq_cs set; after dlclose the child process dies of SIGSEGV.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "modlib.h"
#include "check.h"

#define NR_THREADS 4
#define WORK 2000

static pthread_barrier_t barrier;
static void (*volatile work_fn)(long);
static volatile int stop;
static uint64_t cs_after_work[NR_THREADS], cs_after_close[NR_THREADS];

/* This thread's rseq_cs (0 when no rseq area is in use). */
static uint64_t my_rseq_cs(void)
{
#if PERCPU_SMP && (defined(__x86_64__) || defined(__aarch64__))
	if (!percpu_rseq_registered() || !percpu_hot.rseq_tp_offs)
		return 0;
	long cs_off = (int32_t)percpu_hot.rseq_tp_offs;

	return *(volatile uint64_t *)((char *)__builtin_thread_pointer() + cs_off);
#else
	return 0;
#endif
}

static void nap(void)
{
	struct timespec ts = { 0, 200 * 1000 };
	for (int i = 0; i < 3; i++) {
		nanosleep(&ts, NULL);
		sched_yield();
	}
}

static void *thread(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (;;) {
		pthread_barrier_wait(&barrier);		/* the library is loaded */
		if (stop)
			return NULL;
		work_fn(WORK);
		cs_after_work[id] = my_rseq_cs();
		pthread_barrier_wait(&barrier);		/* main dlcloses now */
		nap();					/* preempted while it unmaps */
		pthread_barrier_wait(&barrier);		/* closed */
		nap();
		cs_after_close[id] = my_rseq_cs();
		pthread_barrier_wait(&barrier);
	}
}

static int rounds(const char *path, int n, bool expect_clear)
{
	pthread_t t[NR_THREADS];
	int nonzero = 0;

	pthread_barrier_init(&barrier, NULL, NR_THREADS + 1);
	for (int i = 0; i < NR_THREADS; i++)
		pthread_create(&t[i], NULL, thread, (void *)(intptr_t)i);
	for (int r = 0; r < n; r++) {
		void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
			exit(1);
		}
		work_fn = (void (*)(long))dlsym(h, "modr_work");
		unsigned long (*sum)(void) = (unsigned long (*)(void))dlsym(h, "modr_sum");
		pthread_barrier_wait(&barrier);
		pthread_barrier_wait(&barrier);		/* the work is done */
		CHECK_EQ(sum(), (unsigned long)NR_THREADS * WORK);
		for (int i = 0; i < NR_THREADS; i++)
			nonzero += cs_after_work[i] != 0;
		if (!expect_clear)
			return nonzero;			/* the threads are still out there */
		CHECK(dlclose(h) == 0);
		pthread_barrier_wait(&barrier);
		pthread_barrier_wait(&barrier);
		for (int i = 0; i < NR_THREADS; i++) {
			CHECK_EQ(cs_after_work[i], 0);
			CHECK_EQ(cs_after_close[i], 0);
		}
	}
	stop = 1;
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < NR_THREADS; i++)
		pthread_join(t[i], NULL);
	return nonzero;
}

/*
 * The control, in a child: one thread runs the no-clear library's code,
 * then spins (no system call) while the main thread dlcloses it, then
 * sleeps with rseq_cs pointing into the unmapped library.  Exit 2: the
 * control left rseq_cs clear (the check above would prove nothing);
 * exit 3: inconclusive (the thread was preempted before the unmap, and
 * the kernel cleared rseq_cs itself); exit 0: survived.
 */
static int control_worked, control_closed;

static void *control_thread(void *fn)
{
	((void (*)(long))fn)(WORK);
	uint64_t cs = my_rseq_cs();
	__atomic_store_n(&control_worked, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&control_closed, __ATOMIC_ACQUIRE))
		;
	if (!cs)
		_exit(2);
	if (!my_rseq_cs())
		_exit(3);
	nap();
	nap();
	_exit(0);
}

static void control_child(void)
{
	pthread_t t;
	void *h = dlopen(MODLIB_RSEQ_NOCLEAR_PATH, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		_exit(4);
	pthread_create(&t, NULL, control_thread, dlsym(h, "modr_work"));
	while (!__atomic_load_n(&control_worked, __ATOMIC_ACQUIRE))
		;
	dlclose(h);
	__atomic_store_n(&control_closed, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	_exit(5);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 300;
	bool rseq = !strcmp(percpu_mode_name(), "rseq");

	printf("mode %s\n", percpu_mode_name());
	rounds(MODLIB_RSEQ_PATH, n, true);

	for (int tries = 0; rseq && tries < 20; tries++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			control_child();
		int status = 0;
		CHECK(waitpid(pid, &status, 0) == pid);
		printf("control: %s %d\n", WIFSIGNALED(status) ? "signal" : "exit",
		       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
			continue;	/* inconclusive: try again */
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
		break;
	}
	return check_report();
}
