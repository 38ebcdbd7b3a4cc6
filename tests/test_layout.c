/* SPDX-License-Identifier: MIT */
/*
 * pcpu_build_alloc_info(), the UP layout, percpu_layout_compute() and the
 * boot report.  Every expected number is worked out by hand from the
 * kernel's rules in the comment above its case (page = 4096, EARLY = 20480,
 * MIN_UNIT = 32768):
 *   size_sum = page_align(s + r + max(d, EARLY)); d' = size_sum - s - r
 *   min_unit = max(size_sum, MIN_UNIT); alloc = roundup(min_unit, atom)
 *   max_upa  = largest upa <= alloc/min_unit dividing alloc into pages
 *   upa      = from max_upa down: skip if wasted > nr_possible/3, stop when
 *              allocs grows; unit = alloc / upa
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int failures;

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: failed: %s\n",		\
				__FILE__, __LINE__, #cond);		\
			failures++;					\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long a_ = (long long)(a), b_ = (long long)(b);	\
		if (a_ != b_) {						\
			fprintf(stderr, "%s:%d: [%s] %s = %lld, want %lld\n", \
				__FILE__, __LINE__, cur_case, #a, a_, b_); \
			failures++;					\
		}							\
	} while (0)

static const char *cur_case = "";

#define MAX_GROUPS 8
#define MAX_SPOTS 6

struct group_want {
	int node;
	unsigned int nr_units;
	const char *cpus;	/* the used units' CPUs, in order */
	unsigned int pad;	/* unused units after them */
};

struct spot {			/* a hand-computed unit offset */
	unsigned int cpu;
	size_t off;
};

struct layout_case {
	const char *name;
	const char *cpus, *nodes;
	size_t s, r, d, atom;	/* requested */
	/* expected */
	size_t e_static, e_reserved, e_dyn, e_unit, e_atom, e_alloc;
	unsigned int upa, nr_cpu_ids, nr_possible, nr_units, nr_groups;
	size_t chunk_span;
	struct group_want groups[MAX_GROUPS];
	struct spot spots[MAX_SPOTS];
	const char *report;	/* exact text, or NULL */
};

#define NODES_4096 \
	"0-511,512-1023,1024-1535,1536-2047,2048-2559,2560-3071,3072-3583,3584-4095"
#define K 1024ul
#define M (1024ul * 1024ul)

static const struct layout_case cases[] = {
	/*
	 * The kernel's boot log.  s+r+d = 185048+8192+28672 = 221912 ->
	 * 55 pages = 225280; d' = 225280-185048-8192 = 32040.  alloc =
	 * roundup(225280, 2M) = 2097152; 2097152/225280 = 9, 9 does not
	 * divide 2^21, 8 does (262144, page aligned): max_upa 8.  upa 8:
	 * allocs 2, waste 0.  upa 4: allocs 4 > 2, stop.  unit 262144.
	 * Dump: widths group 1, cpu 2; width 8*3+1+3 = 28; apl = 2.
	 */
	{ "16 cpus 2M", "16", NULL, 185048, 8192, 28672, 2 * M,
	  185048, 8192, 32040, 262144, 2 * M, 2 * M,
	  8, 16, 16, 16, 1, 16 * 262144,
	  { { 0, 16, "0-15", 0 } },
	  { { 0, 0 }, { 1, 262144 }, { 8, 2097152 }, { 15, 3932160 } },
	  "percpu: Embedded 55 pages/cpu s185048 r8192 d32040 u262144\n"
	  "pcpu-alloc: s185048 r8192 d32040 u262144 alloc=1*2097152\n"
	  "pcpu-alloc: [0] 00 01 02 03 04 05 06 07 [0] 08 09 10 11 12 13 14 15\n" },

	/*
	 * 0+8192+28672 = 36864 = 9 pages; d' 28672; alloc = 36864 (atom 4K);
	 * upa 1; unit 36864; alloc= 36864/4096 = 9 atoms.  Dump: width
	 * 1*2+1+3 = 6, apl = rounddown_pow2(10) = 8: one line.
	 */
	{ "4 cpus 4K", "4", NULL, 0, 8192, 28672, 4 * K,
	  0, 8192, 28672, 36864, 4096, 36864,
	  1, 4, 4, 4, 1, 4 * 36864,
	  { { 0, 4, "0-3", 0 } },
	  { { 0, 0 }, { 1, 36864 }, { 2, 73728 }, { 3, 110592 } },
	  "percpu: Embedded 9 pages/cpu s0 r8192 d28672 u36864\n"
	  "pcpu-alloc: s0 r8192 d28672 u36864 alloc=9*4096\n"
	  "pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3\n" },

	/*
	 * 8 CPUs, 2 nodes of 4.  size_sum 36864; alloc 2M; 2097152/36864 =
	 * 56 -> largest power of two below: 32 = max_upa.  nr_possible/3 = 2:
	 * upa 32 wastes 28+28, 16: 12+12, 8: 4+4 (all > 2, skipped); upa 4:
	 * allocs 2, waste 0; upa 2: allocs 4 > 2, stop.  unit = 2M/4 = 524288.
	 * Group 1 starts at unit 4: 2097152.
	 */
	{ "8 cpus 2 nodes 2M", "8", "0-3;4-7", 0, 8192, 28672, 2 * M,
	  0, 8192, 28672, 524288, 2 * M, 2 * M,
	  4, 8, 8, 8, 2, 8 * 524288,
	  { { 0, 4, "0-3", 0 }, { 1, 4, "4-7", 0 } },
	  { { 3, 1572864 }, { 4, 2097152 }, { 5, 2621440 }, { 7, 3670016 } },
	  NULL },

	/*
	 * 10 CPUs on nodes of 4, 4, 2.  As above, max_upa 32; limit 10/3 = 3.
	 * upa 32: waste 28+28+30; 16: 12+12+14; 8: 4+4+6 = 14 (skipped);
	 * upa 4: allocs 1+1+1 = 3, waste 0+0+2 = 2 <= 3; upa 2: allocs
	 * 2+2+1 = 5 > 3, stop.  unit 524288; group 2 = CPUs 8,9 + 2 unused
	 * units, starting at unit 8 (4194304).  Dump: widths group 1, cpu 2
	 * (10 CPUs); width 4*3+1+3 = 16; apl = rounddown_pow2(3) = 2.
	 */
	{ "3 uneven nodes", "10", "0-3;4-7;8-9", 0, 8192, 28672, 2 * M,
	  0, 8192, 28672, 524288, 2 * M, 2 * M,
	  4, 10, 10, 12, 3, 12 * 524288,
	  { { 0, 4, "0-3", 0 }, { 1, 4, "4-7", 0 }, { 2, 4, "8-9", 2 } },
	  { { 4, 2097152 }, { 8, 4194304 }, { 9, 4718592 } },
	  "percpu: Embedded 9 pages/cpu s0 r8192 d28672 u524288\n"
	  "pcpu-alloc: s0 r8192 d28672 u524288 alloc=1*2097152\n"
	  "pcpu-alloc: [0] 00 01 02 03 [1] 04 05 06 07\n"
	  "pcpu-alloc: [2] 08 09 -- --\n" },

	/*
	 * Sparse ids 0-3,64-67 on two nodes: the same sizes as "8 cpus 2
	 * nodes" (upa 4, unit 524288); nr_cpu_ids 68.  Dump: cpu width 1
	 * (8 CPUs), width 4*2+1+3 = 12, apl = rounddown_pow2(5) = 4.
	 */
	{ "sparse 2 nodes", "0-3,64-67", "0-3;64-67", 0, 8192, 28672, 2 * M,
	  0, 8192, 28672, 524288, 2 * M, 2 * M,
	  4, 68, 8, 8, 2, 8 * 524288,
	  { { 0, 4, "0-3", 0 }, { 1, 4, "64-67", 0 } },
	  { { 3, 1572864 }, { 64, 2097152 }, { 67, 3670016 } },
	  "percpu: Embedded 9 pages/cpu s0 r8192 d28672 u524288\n"
	  "pcpu-alloc: s0 r8192 d28672 u524288 alloc=1*2097152\n"
	  "pcpu-alloc: [0] 0 1 2 3 [1] 64 65 66 67\n" },

	/*
	 * The 1/3 waste rule.  5 CPUs, one node: limit 5/3 = 1.  max_upa 32
	 * (as above); upa 32 wastes 27, 16: 11, 8: 3, 4: 2*4-5 = 3 (all
	 * skipped); upa 2: allocs 3, waste 1 -> best; upa 1: allocs 5 > 3,
	 * stop.  unit = 2M/2 = 1048576; 6 units, the last unused.
	 * Dump: width 2*2+1+3 = 8, apl = rounddown_pow2(7) = 4.
	 */
	{ "waste rule", "5", NULL, 0, 8192, 28672, 2 * M,
	  0, 8192, 28672, 1048576, 2 * M, 2 * M,
	  2, 5, 5, 6, 1, 6 * 1048576,
	  { { 0, 6, "0-4", 1 } },
	  { { 1, 1048576 }, { 4, 4194304 } },
	  "percpu: Embedded 9 pages/cpu s0 r8192 d28672 u1048576\n"
	  "pcpu-alloc: s0 r8192 d28672 u1048576 alloc=1*2097152\n"
	  "pcpu-alloc: [0] 0 1 [0] 2 3 [0] 4 -\n" },

	/*
	 * Large static section.  1000000+8192+28672 = 1036864 -> 254 pages =
	 * 1040384; d' = 1040384-1000000-8192 = 32192.  alloc = 2M;
	 * 2097152/1040384 = 2 (divides, 1048576 page aligned): max_upa 2.
	 * 4 CPUs: upa 2 allocs 2 waste 0; upa 1 allocs 4 > 2, stop.
	 * Dump: width 2*2+1+3 = 8, apl 4: one line.
	 */
	{ "large static", "4", NULL, 1000000, 8192, 28672, 2 * M,
	  1000000, 8192, 32192, 1048576, 2 * M, 2 * M,
	  2, 4, 4, 4, 1, 4 * 1048576,
	  { { 0, 4, "0-3", 0 } },
	  { { 1, 1048576 }, { 3, 3145728 } },
	  "percpu: Embedded 254 pages/cpu s1000000 r8192 d32192 u1048576\n"
	  "pcpu-alloc: s1000000 r8192 d32192 u1048576 alloc=1*2097152\n"
	  "pcpu-alloc: [0] 0 1 [0] 2 3\n" },

	/*
	 * Static larger than the atom.  3145728+0+max(0, 20480) = 3166208 =
	 * 773 pages exactly; d' = 20480.  alloc = roundup(3166208, 2M) =
	 * 4194304; 4194304/3166208 = 1: upa 1, unit 4194304, alloc=2*2M.
	 */
	{ "static beyond atom", "2", NULL, 3 * M, 0, 0, 2 * M,
	  3 * M, 0, 20480, 4 * M, 2 * M, 4 * M,
	  1, 2, 2, 2, 1, 2 * 4 * M,
	  { { 0, 2, "0-1", 0 } },
	  { { 0, 0 }, { 1, 4 * M } },
	  "percpu: Embedded 773 pages/cpu s3145728 r0 d20480 u4194304\n"
	  "pcpu-alloc: s3145728 r0 d20480 u4194304 alloc=2*2097152\n"
	  "pcpu-alloc: [0] 0 [0] 1\n" },

	/*
	 * Small dynamic reserve: 4096+0+max(100, 20480) = 24576 (6 pages);
	 * d' = 20480.  min_unit = max(24576, 32768) = 32768 = alloc; upa 1.
	 */
	{ "min unit", "2", NULL, 4096, 0, 100, 4 * K,
	  4096, 0, 20480, 32768, 4096, 32768,
	  1, 2, 2, 2, 1, 65536,
	  { { 0, 2, "0-1", 0 } },
	  { { 1, 32768 } },
	  "percpu: Embedded 6 pages/cpu s4096 r0 d20480 u32768\n"
	  "pcpu-alloc: s4096 r0 d20480 u32768 alloc=8*4096\n"
	  "pcpu-alloc: [0] 0 [0] 1\n" },

	/*
	 * 64K atom: size_sum 20480, min_unit 32768, alloc 65536, max_upa 2.
	 * 8 CPUs: upa 2 allocs 4 waste 0; upa 1 allocs 8 > 4, stop.
	 */
	{ "64K atom", "8", NULL, 0, 0, 0, 64 * K,
	  0, 0, 20480, 32768, 65536, 65536,
	  2, 8, 8, 8, 1, 8 * 32768,
	  { { 0, 8, "0-7", 0 } },
	  { { 5, 163840 }, { 7, 229376 } },
	  NULL },

	/*
	 * Interleaved nodes (evens on node 0, odds on node 1), 4K atom:
	 * size_sum 36864, upa 1, unit 36864.  Group 1 starts at unit 4
	 * (147456): CPU 1 -> 147456, CPU 7 -> 147456 + 3*36864 = 258048.
	 */
	{ "interleaved nodes", "8", "0,2,4,6;1,3,5,7", 0, 8192, 28672, 4 * K,
	  0, 8192, 28672, 36864, 4096, 36864,
	  1, 8, 8, 8, 2, 8 * 36864,
	  { { 0, 4, "0,2,4,6", 0 }, { 1, 4, "1,3,5,7", 0 } },
	  { { 2, 36864 }, { 6, 110592 }, { 1, 147456 }, { 7, 258048 } },
	  NULL },

	/*
	 * Groups follow their first CPU, not the node id: node 1 holds CPU 0
	 * so it is group 0.  Sizes as "interleaved nodes".
	 */
	{ "node order", "8", "4-7;0-3", 0, 8192, 28672, 4 * K,
	  0, 8192, 28672, 36864, 4096, 36864,
	  1, 8, 8, 8, 2, 8 * 36864,
	  { { 1, 4, "0-3", 0 }, { 0, 4, "4-7", 0 } },
	  { { 0, 0 }, { 4, 147456 } },
	  NULL },

	/*
	 * 4096 CPUs on 8 nodes of 512, sizes of the 16-CPU case: max_upa 8;
	 * upa 8: allocs 8*64 = 512, waste 0; upa 4: 1024 > 512, stop.  unit
	 * 262144; group g starts at g*512*262144 = g*134217728.
	 * CPU 513 -> 134217728+262144 = 134479872; CPU 4095 -> 4095*262144 =
	 * 1073479680.  chunk_span = 4096*262144 = 1073741824.
	 */
	{ "4096 cpus 8 nodes", "4096", NODES_4096,
	  185048, 8192, 28672, 2 * M,
	  185048, 8192, 32040, 262144, 2 * M, 2 * M,
	  8, 4096, 4096, 4096, 8, 1073741824,
	  { { 0, 512, "0-511", 0 }, { 1, 512, "512-1023", 0 },
	    { 2, 512, "1024-1535", 0 }, { 3, 512, "1536-2047", 0 },
	    { 4, 512, "2048-2559", 0 }, { 5, 512, "2560-3071", 0 },
	    { 6, 512, "3072-3583", 0 }, { 7, 512, "3584-4095", 0 } },
	  { { 511, 133955584 }, { 512, 134217728 }, { 513, 134479872 },
	    { 4095, 1073479680 } },
	  NULL },
};

/* The group's cpu_map: want's CPUs in order, then want->pad unused units. */
static void check_group(const struct percpu_group_info *gi,
			const struct group_want *want, unsigned int first_unit,
			const struct percpu_layout *l, size_t unit)
{
	unsigned long *bits;
	unsigned int nbits, u = 0;

	CHECK_EQ(gi->node, want->node);
	CHECK_EQ(gi->nr_units, want->nr_units);
	CHECK_EQ(gi->base_offset, (size_t)first_unit * unit);
	if (gi->nr_units != want->nr_units)
		return;
	if (pcpu_cpulist_parse(want->cpus, PCPU_MAX_CPUS, &bits, &nbits)) {
		fprintf(stderr, "bad expectation %s\n", want->cpus);
		exit(1);
	}
	for (unsigned int cpu = 0; cpu < nbits; cpu++) {
		if (!pcpu_test_bit(bits, cpu))
			continue;
		CHECK_EQ(gi->cpu_map[u], cpu);
		CHECK_EQ(l->unit_map[cpu], first_unit + u);
		CHECK_EQ(l->unit_off[cpu], (size_t)(first_unit + u) * unit);
		u++;
	}
	CHECK_EQ(u + want->pad, want->nr_units);
	for (; u < gi->nr_units; u++)
		CHECK_EQ(gi->cpu_map[u], PERCPU_NO_CPU);
	free(bits);
}

static void check_report(const struct percpu_layout *l, const char *want)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	CHECK(f != NULL);
	if (!f)
		return;
	percpu_layout_print(f, l);
	fclose(f);
	if (strcmp(text, want)) {
		fprintf(stderr, "[%s] report:\n%s--- want:\n%s---\n", cur_case,
			text, want);
		failures++;
	}
	free(text);
}

static void check_sizes(const struct percpu_layout *l,
			const struct layout_case *c)
{
	CHECK_EQ(l->static_size, c->e_static);
	CHECK_EQ(l->reserved_size, c->e_reserved);
	CHECK_EQ(l->dyn_size, c->e_dyn);
	CHECK_EQ(l->unit_size, c->e_unit);
	CHECK_EQ(l->atom_size, c->e_atom);
	CHECK_EQ(l->alloc_size, c->e_alloc);
	CHECK_EQ(l->alloc_size / l->unit_size, c->upa);
	CHECK_EQ(l->nr_cpu_ids, c->nr_cpu_ids);
	CHECK_EQ(l->nr_possible, c->nr_possible);
	CHECK_EQ(l->nr_units, c->nr_units);
	CHECK_EQ(l->nr_groups, c->nr_groups);
	CHECK_EQ(l->chunk_span, c->chunk_span);
	CHECK_EQ(l->up, 0);
}

static void run_case(const struct layout_case *c)
{
	struct pcpu_topology t;
	struct percpu_layout *l;
	unsigned int first_unit = 0;
	char err[256];

	cur_case = c->name;
	if (pcpu_topology_read(&t, c->cpus, c->nodes, "/nonexistent-sysfs",
			       err, sizeof(err))) {
		fprintf(stderr, "[%s] topology: %s\n", c->name, err);
		failures++;
		return;
	}
	l = pcpu_build_alloc_info(&t, c->s, c->r, c->d, c->atom);
	pcpu_topology_free(&t);
	CHECK(l != NULL);
	if (!l)
		return;
	check_sizes(l, c);
	for (unsigned int g = 0; g < l->nr_groups && g < MAX_GROUPS; g++) {
		check_group(&l->groups[g], &c->groups[g], first_unit, l,
			    c->e_unit);
		first_unit += c->groups[g].nr_units;
	}
	/* unfilled spots are { 0, 0 }: CPU 0 is at offset 0 in every case */
	for (unsigned int i = 0; i < MAX_SPOTS; i++)
		CHECK_EQ(l->unit_off[c->spots[i].cpu], c->spots[i].off);
	for (unsigned int cpu = 0; cpu < l->nr_cpu_ids; cpu++)
		if (l->unit_map[cpu] < 0)
			CHECK_EQ(l->unit_off[cpu], 0);
	if (c->report)
		check_report(l, c->report);
	percpu_layout_free(l);
}

/* Sparse ids: the holes are not possible and map to no unit. */
static void test_sparse_holes(void)
{
	struct pcpu_topology t;
	struct percpu_layout *l;

	cur_case = "sparse holes";
	CHECK(pcpu_topology_read(&t, "0-3,64-67", NULL, "/nonexistent-sysfs",
				 NULL, 0) == 0);
	l = pcpu_build_alloc_info(&t, 0, 8192, 28672, 4096);
	pcpu_topology_free(&t);
	CHECK(l != NULL);
	if (!l)
		return;
	for (unsigned int cpu = 4; cpu < 64; cpu++)
		CHECK_EQ(l->unit_map[cpu], -1);
	CHECK_EQ(l->unit_map[64], 4);
	CHECK_EQ(l->unit_off[64], 4 * 36864);
	percpu_layout_free(l);
}

/* 4096 CPUs: one allocation per line (width 8*5+1+3 = 44, apl 1). */
static void test_big_report(void)
{
	struct percpu_config cfg = {
		.cpus = "4096",
		.nodes = NODES_4096,
		.reserved_size = 8192,
		.dynamic_size = 28672,
		.atom_size = 2 * M,
	};
	struct percpu_layout *l;
	char *text = NULL, *p;
	size_t len = 0;
	unsigned int lines = 0;
	FILE *f;

	cur_case = "4096 report";
	l = percpu_layout_compute(&cfg, 185048, 0, NULL, 0);
	CHECK(l != NULL);
	if (!l)
		return;
	f = open_memstream(&text, &len);
	percpu_layout_print(f, l);
	fclose(f);
	for (p = text; *p; p++)
		lines += *p == '\n';
	CHECK_EQ(lines, 2 + 512);
	CHECK(strstr(text, "\npcpu-alloc: [0] 0000 0001 0002 0003 0004 0005 0006 0007\n") != NULL);
	CHECK(strstr(text, "\npcpu-alloc: [1] 0512 0513 0514 0515 0516 0517 0518 0519\n") != NULL);
	p = strrchr(text, '[');
	CHECK(p && strcmp(p - 12, "pcpu-alloc: [7] 4088 4089 4090 4091 4092 4093 4094 4095\n") == 0);
	free(text);
	percpu_layout_free(l);
}

/*
 * UP: unit = roundup_pow2(max(32768, 28672)) = 32768; dyn = unit = atom
 * = alloc; one unit for CPU 0.  No "Embedded" line.
 */
static void test_up(void)
{
	struct percpu_layout *l = pcpu_build_up_info();

	cur_case = "up";
	CHECK(l != NULL);
	if (!l)
		return;
	CHECK_EQ(l->static_size, 0);
	CHECK_EQ(l->reserved_size, 0);
	CHECK_EQ(l->dyn_size, 32768);
	CHECK_EQ(l->unit_size, 32768);
	CHECK_EQ(l->atom_size, 32768);
	CHECK_EQ(l->alloc_size, 32768);
	CHECK_EQ(l->nr_groups, 1);
	CHECK_EQ(l->groups[0].nr_units, 1);
	CHECK_EQ(l->groups[0].cpu_map[0], 0);
	CHECK_EQ(l->groups[0].base_offset, 0);
	CHECK_EQ(l->nr_cpu_ids, 1);
	CHECK_EQ(l->nr_possible, 1);
	CHECK_EQ(l->nr_units, 1);
	CHECK_EQ(l->up, 1);
	CHECK_EQ(l->unit_map[0], 0);
	CHECK_EQ(l->unit_off[0], 0);
	CHECK_EQ(l->chunk_span, 32768);
	check_report(l, "pcpu-alloc: s0 r0 d32768 u32768 alloc=1*32768\n"
			"pcpu-alloc: [0] 0\n");
	percpu_layout_free(l);

	l = percpu_layout_compute(NULL, 12345, 1, NULL, 0);
	CHECK(l != NULL && l->up == 1 && l->unit_size == 32768);
	percpu_layout_free(l);
}

/*
 * percpu_layout_compute() defaults: reserved 65536, dynamic 28672, atom
 * 4096.  s0: 65536+28672 = 94208 = 23 pages, upa 1, unit 94208.
 */
static void test_compute_defaults(void)
{
	struct percpu_config cfg = {
		.cpus = "4",
		.reserved_size = PERCPU_SIZE_DEFAULT,
		.dynamic_size = PERCPU_SIZE_DEFAULT,
		.atom_size = PERCPU_SIZE_DEFAULT,
	};
	struct percpu_layout *l;

	cur_case = "compute defaults";
	l = percpu_layout_compute(&cfg, 0, 0, NULL, 0);
	CHECK(l != NULL);
	if (l) {
		CHECK_EQ(l->reserved_size, 65536);
		CHECK_EQ(l->dyn_size, 28672);
		CHECK_EQ(l->atom_size, 4096);
		CHECK_EQ(l->unit_size, 94208);
		CHECK_EQ(l->alloc_size, 94208);
		CHECK_EQ(l->unit_off[3], 3 * 94208);
		CHECK_EQ(l->chunk_span, 4 * 94208);
		CHECK_EQ(l->nr_groups, 1);
	}
	percpu_layout_free(l);

	/* NULL config: the real machine, default sizes */
	l = percpu_layout_compute(NULL, 0, 0, NULL, 0);
	CHECK(l != NULL);
	if (l) {
		CHECK(l->nr_possible >= 1);
		CHECK_EQ(l->unit_size, 94208);
		CHECK(l->nr_units >= l->nr_possible);
	}
	percpu_layout_free(l);
}

static void check_compute_fails(const struct percpu_config *cfg, size_t s,
				const char *what)
{
	struct percpu_layout *l;
	char err[256] = "";

	cur_case = what;
	errno = 0;
	l = percpu_layout_compute(cfg, s, 0, err, sizeof(err));
	if (l) {
		fprintf(stderr, "[%s] accepted\n", what);
		failures++;
		percpu_layout_free(l);
		return;
	}
	CHECK_EQ(errno, EINVAL);
	CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
}

static void test_compute_errors(void)
{
	struct percpu_config cfg = {
		.cpus = "4",
		.reserved_size = PERCPU_SIZE_DEFAULT,
		.dynamic_size = PERCPU_SIZE_DEFAULT,
		.atom_size = 3000,
	};

	check_compute_fails(&cfg, 0, "atom not a power of two");
	cfg.atom_size = 2048;
	check_compute_fails(&cfg, 0, "atom below a page");
	cfg.atom_size = PERCPU_SIZE_DEFAULT;
	cfg.reserved_size = 8190;
	check_compute_fails(&cfg, 0, "reserved not a multiple of 4");
	cfg.reserved_size = PERCPU_SIZE_DEFAULT;
	check_compute_fails(&cfg, (size_t)-4096, "static too large");
	cfg.cpus = "3-1";
	check_compute_fails(&cfg, 0, "bad cpus");
	cfg.cpus = "8";
	cfg.nodes = "0-3";
	check_compute_fails(&cfg, 0, "bad nodes");
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_sparse_holes();
	test_big_report();
	test_up();
	test_compute_defaults();
	test_compute_errors();
	if (failures) {
		fprintf(stderr, "test_layout: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_layout: ok (%zu layouts)\n", sizeof(cases) / sizeof(cases[0]));
	return 0;
}
