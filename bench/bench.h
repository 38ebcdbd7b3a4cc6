/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness shared by every `percpu-bench` subcommand: timing,
 * threads, and one result format printed as a table or, with --json, as
 * JSON.  Baselines run in the same process and the same run, and every
 * row carries its ratio to a named baseline, because these machines are
 * shared and noisy.
 */
#ifndef PERCPU_BENCH_H
#define PERCPU_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct bench_opts {
	bool json;
	bool quick;		/* --quick: fewer iterations (for the README job) */
	double seconds;		/* target time per measurement */
	int reps;		/* --reps N: a row is the best of N runs, alternated */
};

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_cpu_ns(void)	/* this process's CPU time */
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Keeps the compiler from optimizing a value or memory away. */
#define bench_keep(v) __asm__ volatile("" : : "r"(v) : "memory")
#define bench_clobber() __asm__ volatile("" : : : "memory")

/*
 * One result row.  group: the table the row belongs to; name: what was
 * measured; threads; value and unit ("ns/op", "ms", "cpu-ns/op"...);
 * baseline: the row name (same group and threads) its ratio is against,
 * or NULL.
 */
void bench_result(const char *group, const char *name, int threads,
		  double value, const char *unit, const char *baseline);
/* Free text shown under the table (not in JSON). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Runs fn(arg, thread_index, iterations) on nthreads threads started
 * together and returns wall-clock ns per operation (per thread).  *cpu_ns
 * (if not NULL) receives process CPU ns per operation summed over
 * threads.  Threads are not pinned: the scheduler places them.
 */
double bench_threads(int nthreads, uint64_t iterations,
		     void (*fn)(void *arg, int thread, uint64_t iterations),
		     void *arg, double *cpu_ns_per_op);

/*
 * bench_threads() for one of several alternating runs: stores its wall
 * and CPU figures in *wall and *cpu_ns on the first run (first), keeps
 * the lower ones after that.
 */
void bench_threads_best(int nthreads, uint64_t iterations,
			void (*fn)(void *arg, int thread, uint64_t iterations),
			void *arg, bool first, double *wall, double *cpu_ns);

/* Picks an iteration count so that fn takes about opts->seconds. */
uint64_t bench_calibrate(const struct bench_opts *o,
			 void (*fn)(void *arg, int thread, uint64_t iterations),
			 void *arg);

/* Subcommands: each defined in bench/<name>.c. */
typedef int (*bench_fn)(const struct bench_opts *o, int argc, char **argv);
int bench_alloc(const struct bench_opts *o, int argc, char **argv) __attribute__((weak));
int bench_ops(const struct bench_opts *o, int argc, char **argv) __attribute__((weak));
int bench_counter(const struct bench_opts *o, int argc, char **argv) __attribute__((weak));
int bench_ref(const struct bench_opts *o, int argc, char **argv) __attribute__((weak));

#endif
