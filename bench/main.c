/* SPDX-License-Identifier: MIT */
/* percpu-bench: the benchmark driver and its result table. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct row {
	char group[96], name[64], unit[16], baseline[64];
	int threads;
	double value;
};

static struct row rows[512];
static int nrows;
static char notes[4096];

void bench_result(const char *group, const char *name, int threads,
		  double value, const char *unit, const char *baseline)
{
	if (nrows == (int)(sizeof(rows) / sizeof(rows[0])))
		return;
	struct row *r = &rows[nrows++];
	snprintf(r->group, sizeof(r->group), "%s", group);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	snprintf(r->baseline, sizeof(r->baseline), "%s", baseline ? baseline : "");
	r->threads = threads;
	r->value = value;
}

void bench_note(const char *fmt, ...)
{
	size_t used = strlen(notes);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(notes + used, sizeof(notes) - used, fmt, ap);
	va_end(ap);
	used = strlen(notes);
	if (used + 1 < sizeof(notes))
		strcat(notes, "\n");
}

static double ratio_of(const struct row *r)
{
	if (!r->baseline[0])
		return NAN;
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].group, r->group) && rows[i].threads == r->threads &&
		    !strcmp(rows[i].name, r->baseline) && rows[i].value > 0)
			return r->value / rows[i].value;
	return NAN;
}

static void print_table(void)
{
	const char *group = "";
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		if (strcmp(group, r->group)) {
			group = r->group;
			printf("\n%s\n%-40s %7s %12s %-10s %s\n", group, "", "threads",
			       "value", "unit", "ratio");
		}
		double q = ratio_of(r);
		printf("%-40s %7d %12.2f %-10s ", r->name, r->threads, r->value, r->unit);
		if (isnan(q))
			printf("\n");
		else
			printf("%.2fx %s\n", q, r->baseline);
	}
	if (notes[0])
		printf("\n%s", notes);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void print_json(void)
{
	printf("{\"results\": [");
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		double q = ratio_of(r);
		printf("%s\n  {\"group\": ", i ? "," : "");
		json_str(r->group);
		printf(", \"name\": ");
		json_str(r->name);
		printf(", \"threads\": %d, \"value\": %.4f, \"unit\": ", r->threads, r->value);
		json_str(r->unit);
		if (r->baseline[0]) {
			printf(", \"baseline\": ");
			json_str(r->baseline);
			if (isnan(q))
				printf(", \"ratio\": null");
			else
				printf(", \"ratio\": %.4f", q);
		}
		printf("}");
	}
	printf("\n]}\n");
}

struct thread_arg {
	void (*fn)(void *, int, uint64_t);
	void *arg;
	int index;
	uint64_t iterations;
	pthread_barrier_t *start;
};

static void *thread_main(void *p)
{
	struct thread_arg *t = p;
	pthread_barrier_wait(t->start);
	t->fn(t->arg, t->index, t->iterations);
	return NULL;
}

double bench_threads(int nthreads, uint64_t iterations,
		     void (*fn)(void *, int, uint64_t), void *arg, double *cpu_ns)
{
	pthread_t tid[256];
	struct thread_arg ta[256];
	pthread_barrier_t start;

	if (nthreads > 256)
		nthreads = 256;
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++) {
		ta[i] = (struct thread_arg){ fn, arg, i, iterations, &start };
		if (pthread_create(&tid[i], NULL, thread_main, &ta[i])) {
			perror("pthread_create");
			exit(1);
		}
	}
	uint64_t c0 = bench_cpu_ns(), t0 = bench_now_ns();
	pthread_barrier_wait(&start);
	for (int i = 0; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	uint64_t t1 = bench_now_ns(), c1 = bench_cpu_ns();
	pthread_barrier_destroy(&start);
	if (cpu_ns)
		*cpu_ns = (double)(c1 - c0) / ((double)iterations * nthreads);
	return (double)(t1 - t0) / (double)iterations;
}

void bench_threads_best(int nthreads, uint64_t iterations,
			void (*fn)(void *, int, uint64_t), void *arg, bool first,
			double *wall, double *cpu_ns)
{
	double c, w = bench_threads(nthreads, iterations, fn, arg, &c);

	if (first || w < *wall)
		*wall = w;
	if (first || c < *cpu_ns)
		*cpu_ns = c;
}

uint64_t bench_calibrate(const struct bench_opts *o, void (*fn)(void *, int, uint64_t),
			 void *arg)
{
	uint64_t n = 1000;
	for (;;) {
		uint64_t t0 = bench_now_ns();
		fn(arg, 0, n);
		uint64_t dt = bench_now_ns() - t0;
		if (dt > 20000000 || n >= (1ull << 40)) {
			double per = (double)dt / (double)n;
			double want = o->seconds * 1e9 / (per > 0 ? per : 1);
			return want < 1000 ? 1000 : (uint64_t)want;
		}
		n *= 4;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: percpu-bench [--json] [--quick] [--seconds S] [--reps N] COMMAND [ARGS]\n"
		"commands:%s%s%s%s\n",
		bench_alloc ? " alloc" : "", bench_ops ? " ops" : "",
		bench_counter ? " counter" : "", bench_ref ? " ref" : "");
}

int main(int argc, char **argv)
{
	/*
	 * Five short runs per row rather than three longer ones: the VM's slow
	 * spells last seconds, and a row is the best of its runs, alternated.
	 */
	struct bench_opts o = { .json = false, .quick = false, .seconds = 0.12, .reps = 5 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json"))
			o.json = true;
		else if (!strcmp(argv[i], "--quick"))
			o.quick = true, o.seconds = 0.05, o.reps = 1;
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			o.seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			o.reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "percpu-bench: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	/* Options may also follow the command. */
	for (int j = i + 1; j < argc; j++) {
		if (!strcmp(argv[j], "--json"))
			o.json = true;
		else if (!strcmp(argv[j], "--quick"))
			o.quick = true, o.seconds = 0.05, o.reps = 1;
	}
	const char *cmd = argv[i];
	bench_fn fn = NULL;
	if (!strcmp(cmd, "alloc"))
		fn = bench_alloc;
	else if (!strcmp(cmd, "ops"))
		fn = bench_ops;
	else if (!strcmp(cmd, "counter"))
		fn = bench_counter;
	else if (!strcmp(cmd, "ref"))
		fn = bench_ref;
	if (!fn) {
		fprintf(stderr, "percpu-bench: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	int rc = fn(&o, argc - i, argv + i);
	if (o.json)
		print_json();
	else
		print_table();
	return rc;
}
