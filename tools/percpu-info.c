/* SPDX-License-Identifier: MIT */
/*
 * percpu-info: the per-CPU layout of this machine (or of a hypothetical
 * one), in the kernel's boot-log format, and the library's running state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not before main: with options this computes another machine's layout. */
#define PERCPU_NO_AUTO_SETUP
#include <percpu/percpu.h>
#include <percpu/layout.h>

/*
 * The tool links the static library, so it also uses the cpulist and
 * topology code directly (formatting, and the online CPUs, which the
 * public API does not report).
 */
#include "internal.h"

#define PROG "percpu-info"

struct options {
	struct percpu_config cfg;
	size_t static_size;
	int up;
	int stats;
	int hypothetical;	/* any option that describes another machine */
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: " PROG " [OPTIONS]\n"
"Prints the per-CPU first chunk layout in the kernel's boot-log format.\n"
"With no option: sets the library up on this machine and prints its\n"
"layout, possible/online CPUs, NUMA nodes, rseq state, fast path, index\n"
"mode and the largest allocation.\n"
"\n"
"Describe a hypothetical machine (prints only its layout, sets nothing up):\n"
"  --cpus N|CPULIST     possible CPUs: a count (0..N-1) or a cpulist (0-3,64-67)\n"
"  --nodes LISTS        one cpulist per NUMA node, ';'-separated, or\n"
"                       ','-separated when each node is one range (0-7,8-15)\n"
"  --static BYTES       static per-CPU section size (default 0)\n"
"  --reserved BYTES     reserved region (default %u)\n"
"  --dynamic BYTES      dynamic reserve (default %u)\n"
"  --atom BYTES         allocation granule, a power of two >= 4096 (default 4096)\n"
"  --up                 the uniprocessor (CONFIG_SMP=n) layout\n"
"BYTES take an optional K, M or G suffix (64K, 2M).\n"
"\n"
"Other options:\n"
"  --stats              also print the allocator statistics (live mode only)\n"
"  --help               this text\n",
		(unsigned int)PERCPU_DEFAULT_RESERVE,
		(unsigned int)PERCPU_DYNAMIC_RESERVE);
}

static int bad_value(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, PROG ": invalid value for --%s: '%s': %s\n", opt, val,
		why);
	return 2;
}

/* "185048", "64K", "2M": -1 if not a size. */
static int parse_size(const char *s, size_t *out)
{
	unsigned long long v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (~0ull - 9) / 10)
			return -1;
		v = v * 10 + (unsigned int)(*p - '0');
	}
	switch (*p) {
	case 'k': case 'K': mult = 1ull << 10; p++; break;
	case 'm': case 'M': mult = 1ull << 20; p++; break;
	case 'g': case 'G': mult = 1ull << 30; p++; break;
	}
	if (*p || v > (unsigned long long)SIZE_MAX / mult)
		return -1;
	*out = (size_t)(v * mult);
	return 0;
}

enum { OPT_CPUS = 1, OPT_NODES, OPT_STATIC, OPT_RESERVED, OPT_DYNAMIC,
       OPT_ATOM, OPT_UP, OPT_STATS, OPT_HELP };

static const struct option long_options[] = {
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "nodes", required_argument, NULL, OPT_NODES },
	{ "static", required_argument, NULL, OPT_STATIC },
	{ "reserved", required_argument, NULL, OPT_RESERVED },
	{ "dynamic", required_argument, NULL, OPT_DYNAMIC },
	{ "atom", required_argument, NULL, OPT_ATOM },
	{ "up", no_argument, NULL, OPT_UP },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* A size option: parses it and checks the kernel's rule for it. */
static int size_option(int opt, const char *val, struct options *o)
{
	const char *name = long_options[opt - 1].name;
	size_t v;

	if (parse_size(val, &v))
		return bad_value(name, val,
				 "expected bytes with an optional K, M or G suffix");
	if (v > (opt == OPT_STATIC ? PCPU_MAX_STATIC_SIZE : PCPU_MAX_CONFIG_SIZE))
		return bad_value(name, val, opt == OPT_STATIC ? "larger than 1T" : "larger than 1G");
	switch (opt) {
	case OPT_STATIC:
		o->static_size = v;
		break;
	case OPT_RESERVED:
		if (v % 4)
			return bad_value(name, val, "not a multiple of 4");
		o->cfg.reserved_size = v;
		break;
	case OPT_DYNAMIC:
		o->cfg.dynamic_size = v;
		break;
	case OPT_ATOM:
		if (v < 4096 || (v & (v - 1)) || v > PCPU_MAX_ATOM_SIZE)
			return bad_value(name, val,
					 "not a power of two from 4096 to 1G");
		o->cfg.atom_size = v;
		break;
	}
	return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct options *o)
{
	int opt, ret;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
		switch (opt) {
		case OPT_CPUS:
			o->cfg.cpus = optarg;
			break;
		case OPT_NODES:
			o->cfg.nodes = optarg;
			break;
		case OPT_STATIC: case OPT_RESERVED: case OPT_DYNAMIC: case OPT_ATOM:
			ret = size_option(opt, optarg, o);
			if (ret)
				return ret;
			break;
		case OPT_UP:
			o->up = 1;
			break;
		case OPT_STATS:
			o->stats = 1;
			continue;
		case OPT_HELP:
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, PROG ": option '%s' needs a value (see --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, PROG ": unknown option '%s' (see --help)\n",
				argv[optind - 1]);
			return 2;
		}
		o->hypothetical = 1;
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	return -1;
}

/* ---- a hypothetical machine ---------------------------------------------- */

static int print_hypothetical(const struct options *o)
{
	struct percpu_config cpus_only = o->cfg;
	struct percpu_layout *l;
	char err[256];

	/* Try --cpus alone first, so an error names the right option. */
	cpus_only.nodes = NULL;
	if (!o->up && o->cfg.cpus) {
		l = percpu_layout_compute(&cpus_only, o->static_size, 0, err,
					  sizeof(err));
		if (!l && errno == EINVAL)
			return bad_value("cpus", o->cfg.cpus, err);
		percpu_layout_free(l);
	}
	l = percpu_layout_compute(&o->cfg, o->static_size, o->up, err,
				  sizeof(err));
	if (!l && errno == EINVAL && o->cfg.nodes)
		return bad_value("nodes", o->cfg.nodes, err);
	if (!l) {
		fprintf(stderr, PROG ": %s\n", err[0] ? err : strerror(errno));
		return 1;
	}
	percpu_layout_print(stdout, l);
	percpu_layout_free(l);
	return 0;
}

/* ---- this machine --------------------------------------------------------- */

/* "what: LIST (N)", or "what: LIST" without the count */
static void print_cpus(const char *what, const unsigned long *bits,
		       unsigned int nbits, bool count)
{
	unsigned int n = 0;
	size_t len = (size_t)nbits * 12 + 16;
	char *buf = malloc(len);

	if (!buf)
		return;
	for (unsigned int i = 0; i < nbits; i++)
		n += pcpu_test_bit(bits, i);
	pcpu_cpulist_format(buf, len, bits, nbits);
	if (count)
		printf("%s: %s (%u)\n", what, n ? buf : "none", n);
	else
		printf("%s: %s\n", what, n ? buf : "none");
	free(buf);
}

/* possible CPUs (from the library), online ones (from sysfs), nodes */
static void print_topology(void)
{
	unsigned int nbits = percpu_nr_cpu_ids, cpu;
	unsigned long *possible = pcpu_bitmap_alloc(nbits);
	unsigned long *set = pcpu_bitmap_alloc(nbits);
	struct pcpu_topology real;

	if (!possible || !set)
		goto out;
	percpu_for_each_possible_cpu(cpu)
		pcpu_set_bit(possible, cpu);
	print_cpus("possible CPUs", possible, nbits, true);

	if (pcpu_topology_read(&real, NULL, NULL, NULL, NULL, 0) == 0) {
		for (cpu = 0; cpu < nbits; cpu++)
			if (pcpu_test_bit(possible, cpu) &&
			    pcpu_bit_in(real.online, real.nr_cpu_ids, cpu))
				pcpu_set_bit(set, cpu);
		pcpu_topology_free(&real);
	}
	print_cpus("online CPUs", set, nbits, true);

	printf("nodes: %u\n", percpu_nr_nodes());
	for (unsigned int node = 0; node < percpu_nr_nodes(); node++) {
		char name[32];

		memset(set, 0, BITS_TO_LONGS(pcpu_max(nbits, 1u)) * sizeof(*set));
		percpu_for_each_possible_cpu(cpu)
			if (percpu_cpu_to_node(cpu) == (int)node)
				pcpu_set_bit(set, cpu);
		snprintf(name, sizeof(name), "node %u", node);
		print_cpus(name, set, nbits, false);
	}
out:
	free(possible);
	free(set);
}

static int print_stats(void)
{
	struct percpu_chunk_stats chunks[256];
	struct percpu_stats st;

	memset(&st, 0, sizeof(st));
	st.chunks = chunks;
	st.max_chunk_stats = sizeof(chunks) / sizeof(chunks[0]);
	if (percpu_stats(&st)) {
		fprintf(stderr, PROG ": percpu_stats: %s\n", strerror(errno));
		return 1;
	}
	percpu_stats_print(stdout, &st);
	return 0;
}

static int print_live(const struct options *o)
{
	const struct percpu_layout *l;

	if (percpu_setup(NULL)) {
		fprintf(stderr, PROG ": percpu_setup failed: %s\n",
			strerror(errno));
		return 1;
	}
	l = percpu_layout_current();
	if (l)
		percpu_layout_print(stdout, l);
	else
		printf("layout: not available\n");
	print_topology();
	printf("rseq: %s\n",
	       percpu_rseq_registered() ? "registered" : "not registered");
	printf("fast path: %s\n", percpu_mode_name());
	printf("index: %s\n",
	       percpu_index_mode() == PERCPU_INDEX_MM_CID ? "mm_cid" : "cpu");
	printf("largest allocation: %zu bytes\n", percpu_max_alloc_size());
	return o->stats ? print_stats() : 0;
}

int main(int argc, char **argv)
{
	struct options o;
	int ret;

	memset(&o, 0, sizeof(o));
	o.cfg.reserved_size = PERCPU_SIZE_DEFAULT;
	o.cfg.dynamic_size = PERCPU_SIZE_DEFAULT;
	o.cfg.atom_size = PERCPU_SIZE_DEFAULT;
	ret = parse_args(argc, argv, &o);
	if (ret >= 0)
		return ret;
	if (o.hypothetical)
		return print_hypothetical(&o);
	return print_live(&o);
}
