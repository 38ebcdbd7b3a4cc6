/* SPDX-License-Identifier: MIT */
/*
 * percpu-bench ops: ns per this_cpu_inc / this_cpu_add_return with 1, 2
 * and 8 threads, on a static and a dynamic per-CPU variable, against
 * baselines measured in the same run: a __thread increment, one shared
 * atomic counter, the hand-written per-CPU counter (cache-line-padded
 * slots indexed by sched_getcpu(), relaxed __atomic_fetch_add), and on
 * x86-64 librseq's rseq add (the same instruction sequence, see below).
 *
 * The mode is process-wide, so the fallback rows come from children: this
 * program re-executed with PERCPU_FASTPATH=atomic (rseq registered but not
 * used) and with GLIBC_TUNABLES=glibc.pthread.rseq=0 (no rseq at all, as
 * under valgrind), each with PERCPU_BENCH_CHILD set.  A child measures
 * the hand-written baseline too, so its ratios compare like with like,
 * and prints its rows as "row\t..." lines that the parent merges.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <percpu/ops.h>
#include "bench.h"

PERCPU_DEFINE(unsigned long, bench_static);
static unsigned long *bench_dyn;
static __thread unsigned long tls_counter;
static unsigned long shared_counter;

struct padded {
	unsigned long v;
} __attribute__((aligned(PERCPU_CACHELINE_SIZE)));
static struct padded *hand;
static unsigned int hand_n;

static void run_tls(void *a, int t, uint64_t n)
{
	(void)a, (void)t;
	for (uint64_t i = 0; i < n; i++) {
		tls_counter++;
		bench_clobber();
	}
}

static void run_shared(void *a, int t, uint64_t n)
{
	(void)a, (void)t;
	for (uint64_t i = 0; i < n; i++)
		__atomic_fetch_add(&shared_counter, 1, __ATOMIC_RELAXED);
}

static void run_hand(void *a, int t, uint64_t n)
{
	(void)a, (void)t;
	for (uint64_t i = 0; i < n; i++) {
		unsigned int c = (unsigned int)sched_getcpu();
		__atomic_fetch_add(&hand[c < hand_n ? c : 0].v, 1, __ATOMIC_RELAXED);
	}
}

static void run_inc_static(void *a, int t, uint64_t n)
{
	(void)a, (void)t;
	for (uint64_t i = 0; i < n; i++)
		percpu_this_inc(PERCPU_VAR(bench_static));
}

/*
 * The dynamic pointer in a local, as a caller's hot loop holds it; the
 * static variable's address is a constant anyway.
 */
static void run_inc_dyn(void *a, int t, uint64_t n)
{
	unsigned long *p = bench_dyn;

	(void)a, (void)t;
	for (uint64_t i = 0; i < n; i++)
		percpu_this_inc(p);
}

static void run_ret_static(void *a, int t, uint64_t n)
{
	(void)a, (void)t;
	for (uint64_t i = 0; i < n; i++)
		bench_keep(percpu_this_add_return(PERCPU_VAR(bench_static), 1));
}

static void run_ret_dyn(void *a, int t, uint64_t n)
{
	unsigned long *p = bench_dyn;

	(void)a, (void)t;
	for (uint64_t i = 0; i < n; i++)
		bench_keep(percpu_this_add_return(p, 1));
}

#if defined(__x86_64__)
/*
 * librseq's rseq add (rseq_load_add_store__ptr, cpu_id index), the
 * reference of the "at or below librseq" target: read cpu_id,
 * index a pool with a fixed per-CPU stride, then a critical section that
 * stores rseq_cs, compares cpu_id again and adds.  No fallback, no mode,
 * no bound on the CPU id: the least an rseq add can do.  Written here
 * from the rseq ABI; librseq itself is not a dependency.
 */
# define LIBRSEQ_STYLE 1
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
# define POOL_STRIDE ((size_t)1 << 16)
static char *pool;

static inline int librseq_style_add(unsigned long *v, int cpu, long rseq_off)
{
	__asm__ __volatile__ goto(
		".pushsection __rseq_cs, \"aw\"\n\t"
		".balign 32\n"
		"3:\n\t"
		".long 0, 0\n\t"
		".quad 1f, 2f - 1f, 4f\n\t"
		".popsection\n\t"
		"leaq 3b(%%rip), %%rax\n\t"
		"movq %%rax, %%fs:8(%[off])\n"
		"1:\n\t"
		"cmpl %[cpu], %%fs:4(%[off])\n\t"
		"jnz 4f\n\t"
		"addq $1, %[v]\n"
		"2:\n\t"
		".pushsection __percpu_bench_abort, \"ax\"\n\t"
		".byte 0x0f, 0xb9, 0x3d\n\t"
		".long 0x53053053\n"
		"4:\n\t"
		"jmp %l[abort]\n\t"
		".popsection\n\t"
		: : [cpu] "r"(cpu), [off] "r"(rseq_off), [v] "m"(*v)
		: "memory", "cc", "rax" : abort);	/* *v is written: "memory" */
	return 0;
abort:
	return -1;
}

/* librseq keeps the area's offset in a global and reads it per operation. */
static ptrdiff_t lr_rseq_offset;

static void run_librseq_style(void *a, int t, uint64_t n)
{
	char *tp = __builtin_thread_pointer(), *base = pool;

	(void)a, (void)t;
	for (uint64_t i = 0; i < n; i++) {
		long off;
		int cpu;
		do {
			off = lr_rseq_offset;
			cpu = *(const volatile int32_t *)(tp + off + 4);
		} while (librseq_style_add((unsigned long *)(base + (size_t)cpu * POOL_STRIDE),
					   cpu, off));
	}
}

/* The kernel's highest possible CPU id + 1 (ids may be sparse). */
static long kernel_nr_cpu_ids(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	char buf[4096] = "", *p = buf, *end;
	long last = -1;

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	/* "0-3,8-11": the ids are the digits between ',' and '-'. */
	for (; *p; p = *end ? end + 1 : end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v > last)
			last = v;
	}
	return last + 1;
}

/* Only where glibc registered rseq and every CPU id fits the pool. */
static bool librseq_style_ok(void)
{
	if (!&__rseq_size || __rseq_size == 0)
		return false;
	long pool_cpus = kernel_nr_cpu_ids();
	if (pool_cpus <= 0 || pool_cpus > 4096)
		return false;
	lr_rseq_offset = __rseq_offset;
	pool = aligned_alloc(4096, POOL_STRIDE * (size_t)pool_cpus);
	return pool != NULL;
}
#else
# define LIBRSEQ_STYLE 0
#endif

enum kind_class { BASELINE, FALLBACK_BASELINE, OURS, RSEQ_ONLY };

struct kind {
	const char *name;
	void (*fn)(void *, int, uint64_t);
	enum kind_class cls;
};

#define HAND "hand-written sched_getcpu+atomic"
#define LIBRSEQ "librseq's rseq add"
static const struct kind kinds[] = {
	{ "__thread increment", run_tls, BASELINE },
	{ "shared atomic counter", run_shared, BASELINE },
	{ HAND, run_hand, FALLBACK_BASELINE },
#if LIBRSEQ_STYLE
	{ LIBRSEQ, run_librseq_style, RSEQ_ONLY },
#endif
	{ "this_cpu_inc static", run_inc_static, OURS },
	{ "this_cpu_inc dynamic", run_inc_dyn, OURS },
	{ "this_cpu_add_return static", run_ret_static, OURS },
	{ "this_cpu_add_return dynamic", run_ret_dyn, OURS },
};
enum { NKINDS = sizeof(kinds) / sizeof(kinds[0]) };

static const int nthreads[] = { 1, 2, 8 };
enum { NTHREADS = sizeof(nthreads) / sizeof(nthreads[0]) };

/* The fallback children: their environment and the name of their group. */
static const struct fallback {
	const char *env, *value, *label;
} fallbacks[] = {
	{ "PERCPU_FASTPATH", "atomic", "atomic, rseq registered" },
	{ "GLIBC_TUNABLES", "glibc.pthread.rseq=0", "atomic, no rseq" },
};

/* The mode label of the rows measured in pairs with librseq's add. */
#define PAIRED "paired"

/* In a child every row goes to stdout for the parent to merge. */
static bool child;

/* Rows are buffered so each group prints as one table. */
struct ops_row {
	char name[80], mode[40];
	int threads;
	double wall, cpu;
};
static struct ops_row results[96];
static int nresults;

static void row(const char *name, const char *mode, int threads, double wall, double cpu)
{
	if (child) {
		printf("row\t%s\t%s\t%d\t%.4f\t%.4f\n", name, mode, threads, wall, cpu);
		return;
	}
	if (nresults < (int)(sizeof(results) / sizeof(results[0]))) {
		struct ops_row *r = &results[nresults++];
		snprintf(r->name, sizeof(r->name), "%s", name);
		snprintf(r->mode, sizeof(r->mode), "%s", mode);
		r->threads = threads;
		r->wall = wall;
		r->cpu = cpu;
	}
}

/*
 * The fast path's group: wall time against __thread, CPU time against
 * the hand-written baseline and librseq's add.  Then one group per
 * fallback child, against its own hand-written rows.
 */
static void emit(const char *mode)
{
	char g[128];

	for (int i = 0; i < nresults; i++)
		if (!strcmp(results[i].mode, mode))
			bench_result("ops: wall ns/op (ratio vs __thread)", results[i].name,
				     results[i].threads, results[i].wall, "ns/op",
				     i ? "__thread increment" : NULL);
	for (int i = 0; i < nresults; i++)
		if (!strcmp(results[i].mode, mode))
			bench_result("ops: CPU ns/op (ratio vs hand-written)", results[i].name,
				     results[i].threads, results[i].cpu, "cpu-ns/op",
				     strcmp(results[i].name, HAND) ? HAND : NULL);
	for (int i = 0; LIBRSEQ_STYLE && i < nresults; i++) {
		const struct ops_row *r = &results[i];
		bool base = !strcmp(r->name, LIBRSEQ);
		if (!strcmp(r->mode, PAIRED))
			bench_result("ops: CPU ns/op, medians of runs paired with librseq's rseq add",
				     r->name, r->threads, r->cpu, "cpu-ns/op", base ? NULL : LIBRSEQ);
	}
	for (size_t f = 0; f < sizeof(fallbacks) / sizeof(fallbacks[0]); f++) {
		snprintf(g, sizeof(g), "ops fallback (%s): CPU ns/op (ratio vs hand-written)",
			 fallbacks[f].label);
		for (int i = 0; i < nresults; i++)
			if (!strcmp(results[i].mode, fallbacks[f].label))
				bench_result(g, results[i].name, results[i].threads,
					     results[i].cpu, "cpu-ns/op",
					     strcmp(results[i].name, HAND) ? HAND : NULL);
	}
}

#if LIBRSEQ_STYLE
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
#endif

/*
 * "At or below librseq's rseq add" is a question of some 10% on a VM
 * whose speed moves by more than that, from one second to the next.  So
 * this_cpu_inc and librseq's add are also measured in short runs taken
 * one right after the other, many times, and each figure is the median of
 * its runs: both kinds see the same spells.
 */
static void paired_with_librseq(const struct bench_opts *o)
{
#if LIBRSEQ_STYLE
	enum { ROUNDS = 15, NPAIRED = 3 };
	static const char *const paired[NPAIRED] = { LIBRSEQ, "this_cpu_inc static",
						     "this_cpu_inc dynamic" };
	int which[NPAIRED];
	struct bench_opts shorter = *o;
	uint64_t iters[NPAIRED];
	double cpu[NPAIRED][ROUNDS];
	char name[80];

	if (!pool)	/* librseq_style_ok() said no */
		return;
	for (int k = 0; k < NPAIRED; k++) {
		for (which[k] = 0; which[k] < NKINDS; which[k]++)
			if (!strcmp(kinds[which[k]].name, paired[k]))
				break;
		if (which[k] == NKINDS)
			return;
	}
	shorter.seconds = o->seconds / 6;
	for (int k = 0; k < NPAIRED; k++)
		iters[k] = bench_calibrate(&shorter, kinds[which[k]].fn, NULL);
	for (int t = 0; t < NTHREADS; t++) {
		for (int r = 0; r < ROUNDS; r++)
			for (int k = 0; k < NPAIRED; k++)
				bench_threads(nthreads[t], iters[k], kinds[which[k]].fn, NULL,
					      &cpu[k][r]);
		for (int k = 0; k < NPAIRED; k++) {
			const struct kind *kd = &kinds[which[k]];
			bool ours = kd->cls == OURS;
			qsort(cpu[k], ROUNDS, sizeof(double), cmp_double);
			snprintf(name, sizeof(name), "%s%s", kd->name, ours ? " [rseq]" : "");
			row(name, PAIRED, nthreads[t], cpu[k][ROUNDS / 2], cpu[k][ROUNDS / 2]);
		}
	}
#else
	(void)o;
#endif
}

/* Each row: the best of o->reps runs, the kinds alternating. */
static void measure(const struct bench_opts *o, const char *mode, bool fallback)
{
	static double wall[NKINDS][NTHREADS], cpu[NKINDS][NTHREADS];
	static uint64_t iters[NKINDS];
	bool use[NKINDS];
	char name[80];

	for (int k = 0; k < NKINDS; k++) {
		enum kind_class c = kinds[k].cls;
		use[k] = fallback ? c == OURS || c == FALLBACK_BASELINE : true;
#if LIBRSEQ_STYLE
		if (c == RSEQ_ONLY)
			use[k] = !fallback && librseq_style_ok();
#endif
		if (use[k])
			iters[k] = bench_calibrate(o, kinds[k].fn, NULL);
	}
	for (int r = 0; r < o->reps; r++)
		for (int k = 0; k < NKINDS; k++)
			for (int t = 0; use[k] && t < NTHREADS; t++)
				bench_threads_best(nthreads[t], iters[k], kinds[k].fn, NULL, !r,
						   &wall[k][t], &cpu[k][t]);
	for (int k = 0; k < NKINDS; k++)
		for (int t = 0; use[k] && t < NTHREADS; t++) {
			bool ours = kinds[k].cls == OURS;
			snprintf(name, sizeof(name), "%s%s%s%s", kinds[k].name,
				 ours ? " [" : "", ours ? percpu_mode_name() : "", ours ? "]" : "");
			row(name, mode, nthreads[t], wall[k][t], cpu[k][t]);
		}
}

/* Runs one fallback child and merges its rows. */
static int fallback_rows(const struct bench_opts *o, const struct fallback *f)
{
	char secs[32], reps[16];
	int fd[2];

	snprintf(secs, sizeof(secs), "%g", o->seconds);
	snprintf(reps, sizeof(reps), "%d", o->reps);
	if (pipe(fd))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		setenv(f->env, f->value, 1);
		setenv("PERCPU_BENCH_CHILD", f->label, 1);
		execl("/proc/self/exe", "percpu-bench", "--seconds", secs, "--reps", reps, "ops",
		      (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	FILE *fp = fdopen(fd[0], "r");
	char line[512];
	while (fp && fgets(line, sizeof(line), fp)) {
		char *fld[6], *s = line;
		int n = 0;
		line[strcspn(line, "\n")] = 0;
		while (n < 6 && (fld[n] = strsep(&s, "\t")))
			n++;
		if (n == 6 && !strcmp(fld[0], "row"))
			row(fld[1], fld[2], atoi(fld[3]), atof(fld[4]), atof(fld[5]));
	}
	if (fp)
		fclose(fp);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int bench_ops(const struct bench_opts *o, int argc, char **argv)
{
	const char *label = getenv("PERCPU_BENCH_CHILD");

	(void)argc, (void)argv;
	child = label != NULL;
	if (percpu_setup(NULL))
		return 1;
	bench_dyn = PERCPU_ALLOC(unsigned long);
	hand_n = percpu_nr_cpu_ids;
	hand = aligned_alloc(PERCPU_CACHELINE_SIZE, sizeof(*hand) * hand_n);
	if (!bench_dyn || !hand)
		return 1;
	memset(hand, 0, sizeof(*hand) * hand_n);
	/* Open the fast path before timing anything. */
	percpu_this_inc(bench_dyn);
	const char *mode = percpu_mode_name();
	if (child) {
		measure(o, label, true);
		fflush(stdout);
		_exit(0);	/* no table from the child */
	}
	measure(o, mode, false);
	if (!strcmp(mode, "rseq")) {
		paired_with_librseq(o);
		for (size_t f = 0; f < sizeof(fallbacks) / sizeof(fallbacks[0]); f++)
			if (fallback_rows(o, &fallbacks[f]))
				bench_note("fallback child (%s) failed: no rows from it",
					   fallbacks[f].label);
	}
	emit(mode);
	bench_note("each row: the best of %d runs, alternating with the others; "
		   "[%s] rows: this process (index %s); fallback groups: children "
		   "re-executed as named, each against its own hand-written rows.",
		   o->reps, mode,
		   percpu_index_mode() == PERCPU_INDEX_MM_CID ? "mm_cid" : "cpu");
	bench_note("targets: this_cpu_inc [rseq] <= 3x __thread and at or below librseq's "
		   "rseq add (about 0.7 ns); fallback <= 1.2x the hand-written baseline.");
	return 0;
}
