/* SPDX-License-Identifier: MIT */
/*
 * The first chunk's layout (the kernel's pcpu_build_alloc_info()) and its
 * boot report (pcpu_dump_alloc_info()), written fresh from their rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"


#define PCPU_MIN_ATOM_SIZE PCPU_PAGE_SIZE
#define PCPU_UNUSED_UNIT "--------"

static bool page_aligned(size_t x)
{
	return (x & (PCPU_PAGE_SIZE - 1)) == 0;
}

static bool is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

static size_t roundup_pow2(size_t x)
{
	size_t p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

static unsigned int rounddown_pow2(unsigned int x)
{
	unsigned int p = 1;

	while (p * 2 <= x)
		p *= 2;
	return p;
}

static unsigned int div_round_up(unsigned int n, unsigned int d)
{
	return (n + d - 1) / d;
}

/* ---- allocation of the layout --------------------------------------- */

void percpu_layout_free(struct percpu_layout *l)
{
	if (!l)
		return;
	if (l->groups)
		for (unsigned int g = 0; g < l->nr_groups; g++)
			free(l->groups[g].cpu_map);
	free(l->groups);
	free(l->unit_map);
	free(l->unit_off);
	free(l);
}

/* A layout with nr_groups empty groups and per-CPU maps of nr_cpu_ids. */
static struct percpu_layout *layout_alloc(unsigned int nr_groups,
					  unsigned int nr_cpu_ids)
{
	struct percpu_layout *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->nr_groups = nr_groups;
	l->nr_cpu_ids = nr_cpu_ids;
	l->groups = calloc(nr_groups, sizeof(*l->groups));
	l->unit_map = malloc(nr_cpu_ids * sizeof(*l->unit_map));
	l->unit_off = calloc(nr_cpu_ids, sizeof(*l->unit_off));
	if (!l->groups || !l->unit_map || !l->unit_off) {
		percpu_layout_free(l);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned int cpu = 0; cpu < nr_cpu_ids; cpu++)
		l->unit_map[cpu] = -1;
	return l;
}

/* ---- pcpu_build_alloc_info ------------------------------------------- */

/*
 * Groups: all possible CPUs of one node, ordered by their first CPU.
 * Fills cpu_group[cpu] (-1 if not possible), group_cnt[] and group_node[];
 * returns the number of groups.
 */
static unsigned int group_cpus(const struct pcpu_topology *t, int *cpu_group,
			       unsigned int *group_cnt, int *group_node,
			       int *node_group)
{
	unsigned int nr_groups = 0;

	for (unsigned int cpu = 0; cpu < t->nr_cpu_ids; cpu++) {
		int node;

		cpu_group[cpu] = -1;
		if (!pcpu_test_bit(t->possible, cpu))
			continue;
		node = t->cpu_node[cpu];
		if (node < 0 || node >= PCPU_MAX_NODES)
			node = 0;
		if (node_group[node] < 0) {
			group_node[nr_groups] = node;
			group_cnt[nr_groups] = 0;
			node_group[node] = (int)nr_groups++;
		}
		cpu_group[cpu] = node_group[node];
		group_cnt[cpu_group[cpu]]++;
	}
	return nr_groups;
}

/* The largest units-per-allocation that divides alloc_size into pages. */
static unsigned int max_units_per_alloc(size_t alloc_size, size_t min_unit)
{
	size_t upa = alloc_size / min_unit;

	while (alloc_size % upa || !page_aligned(alloc_size / upa))
		upa--;
	return (unsigned int)upa;
}

/*
 * The kernel's choice: from the largest upa down, skip those that waste
 * more than a third of nr_possible unit slots, and stop as soon as a
 * smaller upa would need more allocations.
 */
static unsigned int best_units_per_alloc(size_t alloc_size,
					 unsigned int max_upa,
					 const unsigned int *group_cnt,
					 unsigned int nr_groups,
					 unsigned int nr_possible)
{
	unsigned int last_allocs = ~0u, best_upa = 1;

	for (unsigned int upa = max_upa; upa; upa--) {
		unsigned int allocs = 0, wasted = 0;

		if (alloc_size % upa || !page_aligned(alloc_size / upa))
			continue;
		for (unsigned int g = 0; g < nr_groups; g++) {
			unsigned int n = div_round_up(group_cnt[g], upa);

			allocs += n;
			wasted += n * upa - group_cnt[g];
		}
		if (wasted > nr_possible / 3)
			continue;
		if (allocs > last_allocs)
			break;
		last_allocs = allocs;
		best_upa = upa;
	}
	return best_upa;
}

/* Lays the groups out back to back and fills the per-CPU maps. */
static int place_units(struct percpu_layout *l, const struct pcpu_topology *t,
		       const int *cpu_group, const unsigned int *group_cnt,
		       const int *group_node, unsigned int upa)
{
	unsigned int unit = 0;
	unsigned int *fill;

	for (unsigned int g = 0; g < l->nr_groups; g++) {
		struct percpu_group_info *gi = &l->groups[g];

		gi->node = group_node[g];
		gi->nr_units = div_round_up(group_cnt[g], upa) * upa;
		gi->base_offset = (size_t)unit * l->unit_size;
		gi->cpu_map = malloc(gi->nr_units * sizeof(*gi->cpu_map));
		if (!gi->cpu_map)
			return -1;
		for (unsigned int u = 0; u < gi->nr_units; u++)
			gi->cpu_map[u] = PERCPU_NO_CPU;
		unit += gi->nr_units;
	}
	l->nr_units = unit;
	l->chunk_span = (size_t)unit * l->unit_size;

	fill = calloc(l->nr_groups, sizeof(*fill));
	if (!fill)
		return -1;
	/* CPUs in id order, so each group's map is sorted too. */
	for (unsigned int cpu = 0; cpu < t->nr_cpu_ids; cpu++) {
		struct percpu_group_info *gi;
		unsigned int idx;

		if (cpu_group[cpu] < 0)
			continue;
		gi = &l->groups[cpu_group[cpu]];
		idx = fill[cpu_group[cpu]]++;
		gi->cpu_map[idx] = cpu;
		l->unit_map[cpu] = (int)(gi->base_offset / l->unit_size + idx);
		l->unit_off[cpu] = gi->base_offset + idx * l->unit_size;
	}
	free(fill);
	return 0;
}

struct percpu_layout *pcpu_build_alloc_info(const struct pcpu_topology *t,
					    size_t static_size,
					    size_t reserved_size,
					    size_t dyn_size, size_t atom_size)
{
	size_t size_sum, min_unit, alloc_size;
	unsigned int *group_cnt, nr_groups, max_upa, upa;
	int *cpu_group, *group_node, *node_group;
	struct percpu_layout *l = NULL;

	if (!t->nr_possible || !is_pow2(atom_size) ||
	    atom_size < PCPU_MIN_ATOM_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	size_sum = PCPU_ALIGN(static_size + reserved_size +
			      pcpu_max(dyn_size, (size_t)PERCPU_DYNAMIC_EARLY_SIZE),
			      PCPU_PAGE_SIZE);
	min_unit = pcpu_max(size_sum, (size_t)PERCPU_MIN_UNIT_SIZE);
	alloc_size = PCPU_ALIGN(min_unit, atom_size);
	max_upa = max_units_per_alloc(alloc_size, min_unit);

	cpu_group = malloc(t->nr_cpu_ids * sizeof(int));
	group_cnt = malloc(t->nr_possible * sizeof(unsigned int));
	group_node = malloc(t->nr_possible * sizeof(int));
	node_group = malloc(PCPU_MAX_NODES * sizeof(int));
	if (!cpu_group || !group_cnt || !group_node || !node_group)
		goto out;
	for (unsigned int n = 0; n < PCPU_MAX_NODES; n++)
		node_group[n] = -1;
	nr_groups = group_cpus(t, cpu_group, group_cnt, group_node, node_group);
	upa = best_units_per_alloc(alloc_size, max_upa, group_cnt, nr_groups,
				   t->nr_possible);

	l = layout_alloc(nr_groups, t->nr_cpu_ids);
	if (!l)
		goto out;
	l->static_size = static_size;
	l->reserved_size = reserved_size;
	l->dyn_size = size_sum - static_size - reserved_size;
	l->unit_size = alloc_size / upa;
	l->atom_size = atom_size;
	l->alloc_size = alloc_size;
	l->nr_possible = t->nr_possible;
	if (place_units(l, t, cpu_group, group_cnt, group_node, upa)) {
		percpu_layout_free(l);
		l = NULL;
	}
out:
	if (!l)
		errno = ENOMEM;
	free(cpu_group);
	free(group_cnt);
	free(group_node);
	free(node_group);
	return l;
}

struct percpu_layout *pcpu_build_up_info(void)
{
	size_t unit = roundup_pow2(pcpu_max((size_t)PERCPU_MIN_UNIT_SIZE,
					    (size_t)PERCPU_DYNAMIC_RESERVE));
	struct percpu_layout *l = layout_alloc(1, 1);

	if (!l)
		return NULL;
	l->groups[0].cpu_map = malloc(sizeof(unsigned int));
	if (!l->groups[0].cpu_map) {
		percpu_layout_free(l);
		errno = ENOMEM;
		return NULL;
	}
	l->dyn_size = unit;
	l->unit_size = unit;
	l->atom_size = unit;
	l->alloc_size = unit;
	l->groups[0].nr_units = 1;
	l->groups[0].cpu_map[0] = 0;
	l->nr_possible = 1;
	l->nr_units = 1;
	l->up = 1;
	l->unit_map[0] = 0;
	l->unit_off[0] = 0;
	l->chunk_span = unit;
	return l;
}

/* ---- percpu_layout_compute ------------------------------------------- */

static int size_error(char *err, size_t errlen, const char *what, size_t v,
		      const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "%s size %zu %s", what, v, why);
	errno = EINVAL;
	return -1;
}

/* Applies the defaults and the kernel's rules to the requested sizes. */
static int resolve_sizes(const struct percpu_config *cfg, size_t static_size,
			 size_t *reserved, size_t *dyn, size_t *atom,
			 char *err, size_t errlen)
{
	*reserved = PERCPU_DEFAULT_RESERVE;
	*dyn = PERCPU_DYNAMIC_RESERVE;
	*atom = PCPU_PAGE_SIZE;
	if (cfg && cfg->reserved_size != PERCPU_SIZE_DEFAULT)
		*reserved = cfg->reserved_size;
	if (cfg && cfg->dynamic_size != PERCPU_SIZE_DEFAULT)
		*dyn = cfg->dynamic_size;
	/* 0 cannot be an atom: a zeroed config means the default too */
	if (cfg && cfg->atom_size != PERCPU_SIZE_DEFAULT && cfg->atom_size)
		*atom = cfg->atom_size;

	if (static_size > PCPU_MAX_STATIC_SIZE)
		return size_error(err, errlen, "static", static_size, "is too large");
	if (*reserved > PCPU_MAX_CONFIG_SIZE)
		return size_error(err, errlen, "reserved", *reserved, "is too large");
	if (*reserved % 4)
		return size_error(err, errlen, "reserved", *reserved,
				  "is not a multiple of 4");
	if (*dyn > PCPU_MAX_CONFIG_SIZE)
		return size_error(err, errlen, "dynamic", *dyn, "is too large");
	if (!is_pow2(*atom) || *atom < PCPU_MIN_ATOM_SIZE ||
	    *atom > PCPU_MAX_ATOM_SIZE)
		return size_error(err, errlen, "atom", *atom,
				  "is not a power of two from 4096 to 1G");
	return 0;
}

struct percpu_layout *
percpu_layout_compute(const struct percpu_config *cfg, size_t static_size,
		      int up, char *err, size_t errlen)
{
	size_t reserved, dyn, atom;
	struct pcpu_topology t;
	struct percpu_layout *l;
	int saved;

	if (err && errlen)
		err[0] = '\0';
	if (up)
		return pcpu_build_up_info();
	if (resolve_sizes(cfg, static_size, &reserved, &dyn, &atom, err, errlen))
		return NULL;
	if (pcpu_topology_read(&t, cfg ? cfg->cpus : NULL,
			       cfg ? cfg->nodes : NULL, NULL, err, errlen))
		return NULL;
	l = pcpu_build_alloc_info(&t, static_size, reserved, dyn, atom);
	saved = errno;
	pcpu_topology_free(&t);
	if (!l && err && errlen)
		snprintf(err, errlen, "cannot build the layout: %s",
			 strerror(saved));
	errno = saved;
	return l;
}

/* ---- pcpu_dump_alloc_info -------------------------------------------- */

/* Decimal digits of v, as the kernel counts them. */
static int digits(unsigned int v)
{
	int width = 1;

	while (v /= 10)
		width++;
	return width;
}

/*
 * The unit map.  The kernel prints "item " and leaves a trailing space;
 * printing " item" after the "pcpu-alloc:" prefix gives the same text
 * without it.
 */
static void print_unit_map(FILE *f, const struct percpu_layout *l)
{
	int group_width = digits(l->nr_groups);
	int cpu_width = digits(l->nr_possible);
	unsigned int upa = (unsigned int)(l->alloc_size / l->unit_size);
	unsigned int width = upa * (unsigned int)(cpu_width + 1) +
			     (unsigned int)group_width + 3;
	unsigned int apl = rounddown_pow2(pcpu_max(60 / width, 1u));
	int dashes = pcpu_min(cpu_width, (int)strlen(PCPU_UNUSED_UNIT));
	unsigned int alloc = 0;

	for (unsigned int g = 0; g < l->nr_groups; g++) {
		const struct percpu_group_info *gi = &l->groups[g];

		for (unsigned int u = 0; u < gi->nr_units; u++) {
			if (u % upa == 0) {
				if (alloc % apl == 0)
					fprintf(f, "%spcpu-alloc:",
						alloc ? "\n" : "");
				alloc++;
				fprintf(f, " [%0*u]", group_width, g);
			}
			if (gi->cpu_map[u] == PERCPU_NO_CPU)
				fprintf(f, " %.*s", dashes, PCPU_UNUSED_UNIT);
			else
				fprintf(f, " %0*u", cpu_width, gi->cpu_map[u]);
		}
	}
	if (alloc)
		fputc('\n', f);
}

void percpu_layout_print(FILE *f, const struct percpu_layout *l)
{
	size_t size_sum;

	if (!f || !l || !l->unit_size || !l->nr_groups)
		return;
	size_sum = l->static_size + l->reserved_size + l->dyn_size;
	if (!l->up)
		fprintf(f, "percpu: Embedded %zu pages/cpu s%zu r%zu d%zu u%zu\n",
			size_sum / PCPU_PAGE_SIZE, l->static_size,
			l->reserved_size, l->dyn_size, l->unit_size);
	fprintf(f, "pcpu-alloc: s%zu r%zu d%zu u%zu alloc=%zu*%zu\n",
		l->static_size, l->reserved_size, l->dyn_size, l->unit_size,
		l->alloc_size / l->atom_size, l->atom_size);
	print_unit_map(f, l);
}
