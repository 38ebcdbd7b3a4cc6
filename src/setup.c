/* SPDX-License-Identifier: MIT */
/*
 * setup_per_cpu_areas(): the first chunk.
 *
 * The layout is the kernel's (pcpu_build_alloc_info); the memory is one
 * reservation holding every chunk back to back, each chunk one unit per
 * possible CPU at the layout's unit offsets, so percpu_cpu_offset[cpu]
 * serves every chunk.  Chunk 0 is the first chunk: each unit holds a copy
 * of the main program's per-CPU section (static), the reserved region
 * (shared libraries' sections) and the first dynamic region.  Each group
 * of units is bound to its NUMA node; pages are populated by first touch,
 * so a CPU that never runs costs only the image pages that are not zero.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

struct pcpu_state pcpu;
struct percpu_hot percpu_hot = { .getcpu = pcpu_getcpu_by_sched };
unsigned int percpu_nr_cpu_ids;
unsigned int percpu_nr_possible;

/* Before setup: statics resolve to their initial image (offset 0). */
static intptr_t offsets_before_setup[PCPU_MAX_CPUS];
intptr_t *percpu_cpu_offset = offsets_before_setup;

static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
static bool setup_failed_reported;

/* The most chunks we keep address space for, and the most we reserve. */
#define PCPU_MAX_CHUNKS 65536u
#define PCPU_MAX_REGION ((size_t)1 << 40)

void percpu_config_default(struct percpu_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->reserved_size = PERCPU_SIZE_DEFAULT;
	cfg->dynamic_size = PERCPU_SIZE_DEFAULT;
	cfg->atom_size = PERCPU_SIZE_DEFAULT;
}

int pcpu_parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return -1;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	else if (*end == 'G' || *end == 'g')
		shift = 30, end++;
	if (*end || v > (SIZE_MAX >> shift))
		return -1;
	*out = (size_t)v << shift;
	return 0;
}

static void apply_size_defaults(struct percpu_config *cfg);
static const char *config_error(const struct percpu_config *cfg);

/* A configuration from the environment; malformed values are reported and ignored. */
static void config_from_env(struct percpu_config *cfg)
{
	static const struct { const char *var; size_t off; } sizes[] = {
		{ "PERCPU_RESERVED", offsetof(struct percpu_config, reserved_size) },
		{ "PERCPU_DYNAMIC", offsetof(struct percpu_config, dynamic_size) },
		{ "PERCPU_ATOM", offsetof(struct percpu_config, atom_size) },
	};
	const char *v;

	percpu_config_default(cfg);
	cfg->cpus = getenv("PERCPU_CPUS");
	cfg->nodes = getenv("PERCPU_NODES");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t *field = (size_t *)((char *)cfg + sizes[i].off);
		struct percpu_config probe;
		const char *bad = NULL;

		v = getenv(sizes[i].var);
		if (!v)
			continue;
		if (pcpu_parse_size(v, field)) {
			bad = "not a size";
		} else {
			/* Judge this value alone, the others at their defaults. */
			percpu_config_default(&probe);
			apply_size_defaults(&probe);
			*(size_t *)((char *)&probe + sizes[i].off) = *field;
			bad = config_error(&probe);
		}
		if (bad) {
			pcpu_msg("%s: invalid value '%s': %s; using the default", sizes[i].var, v, bad);
			*field = PERCPU_SIZE_DEFAULT;
		}
	}
	v = getenv("PERCPU_INDEX");
	if (v && !strcmp(v, "mm_cid"))
		cfg->index_mode = PERCPU_INDEX_MM_CID;
	else if (v && strcmp(v, "cpu"))
		pcpu_msg("PERCPU_INDEX: invalid value '%s' (cpu or mm_cid), using cpu", v);
	v = getenv("PERCPU_FASTPATH");
	if (v && !strcmp(v, "atomic"))
		cfg->fastpath = PERCPU_FASTPATH_ATOMIC;
	else if (v && strcmp(v, "auto"))
		pcpu_msg("PERCPU_FASTPATH: invalid value '%s' (auto or atomic), using auto", v);
}

/* The kernel's constraints on the sizes; NULL if cfg is acceptable. */
static const char *config_error(const struct percpu_config *cfg)
{
	if (cfg->atom_size < PCPU_PAGE_SIZE || (cfg->atom_size & (cfg->atom_size - 1)) ||
	    cfg->atom_size > PCPU_MAX_ATOM_SIZE)
		return "atom size must be a power of two from a page to 1 GiB";
	if (cfg->reserved_size % 4)
		return "reserved size must be a multiple of 4";
	if (cfg->reserved_size > PCPU_MAX_CONFIG_SIZE || cfg->dynamic_size > PCPU_MAX_CONFIG_SIZE)
		return "reserved and dynamic sizes are limited to 1 GiB";
	if (cfg->index_mode != PERCPU_INDEX_CPU && cfg->index_mode != PERCPU_INDEX_MM_CID)
		return "unknown index mode";
	if (cfg->fastpath != PERCPU_FASTPATH_AUTO && cfg->fastpath != PERCPU_FASTPATH_ATOMIC)
		return "unknown fast path";
	return NULL;
}

static void apply_size_defaults(struct percpu_config *cfg)
{
	if (cfg->reserved_size == PERCPU_SIZE_DEFAULT)
		cfg->reserved_size = PERCPU_SMP ? PERCPU_DEFAULT_RESERVE : 0;
	if (cfg->dynamic_size == PERCPU_SIZE_DEFAULT)
		cfg->dynamic_size = PERCPU_DYNAMIC_RESERVE;
	if (cfg->atom_size == PERCPU_SIZE_DEFAULT)
		cfg->atom_size = PCPU_PAGE_SIZE;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_config(const struct percpu_config *a, const struct percpu_config *b)
{
	return same_str(a->cpus, b->cpus) && same_str(a->nodes, b->nodes) &&
	       a->reserved_size == b->reserved_size && a->dynamic_size == b->dynamic_size &&
	       a->atom_size == b->atom_size && a->index_mode == b->index_mode &&
	       a->fastpath == b->fastpath;
}

/*
 * The topology, falling back to the real one when an override is
 * malformed (each bad variable gets one line naming it).
 */
static int read_topology(struct percpu_config *cfg, bool from_env)
{
	char err[256];
	const char *what_cpus = from_env ? "PERCPU_CPUS" : "cpus";
	const char *what_nodes = from_env ? "PERCPU_NODES" : "nodes";

	if (cfg->cpus && pcpu_topology_read(&pcpu.topo, cfg->cpus, NULL, NULL, err, sizeof(err))) {
		if (!from_env) {
			/* An explicit configuration is the caller's to fix: refuse it. */
			pcpu_msg("percpu_setup: invalid cpus '%s': %s", cfg->cpus, err);
			errno = EINVAL;
			return -1;
		}
		pcpu_msg("%s: invalid value '%s': %s; using the real topology", what_cpus, cfg->cpus, err);
		cfg->cpus = NULL;
	} else if (cfg->cpus) {
		pcpu_topology_free(&pcpu.topo);
	}
	if (!pcpu_topology_read(&pcpu.topo, cfg->cpus, cfg->nodes, NULL, err, sizeof(err)))
		return 0;
	if (!cfg->nodes)
		return -1;	/* not an override's fault */
	if (!from_env) {
		pcpu_msg("percpu_setup: invalid nodes '%s': %s", cfg->nodes, err);
		errno = EINVAL;
		return -1;
	}
	pcpu_msg("%s: invalid value '%s': %s; using the real node map", what_nodes, cfg->nodes, err);
	cfg->nodes = NULL;
	return pcpu_topology_read(&pcpu.topo, cfg->cpus, NULL, NULL, err, sizeof(err));
}

static void find_static_section(void)
{
	char *start = NULL, *stop = NULL;

	pcpu.main_start = NULL;
	pcpu.static_size = 0;
	if (!PERCPU_SMP)
		return;		/* UP: static per-CPU variables are plain variables */
	if (pcpu_modules_main(&start, &stop) || !pcpu_main_section(&start, &stop)) {
		pcpu.main_start = start;
		pcpu.static_size = (size_t)(stop - start);
	}
}

static int reserve_region(void)
{
	const struct percpu_layout *l = pcpu.layout;
	size_t got;

	/*
	 * A power-of-two stride makes "which chunk" a shift on the free path;
	 * the padding after the units holds the chunk's live map, the rest is
	 * address space only.
	 */
	pcpu.chunk_shift = PCPU_PAGE_SHIFT;
	while (((size_t)1 << pcpu.chunk_shift) < l->chunk_span + pcpu_live_map_size(l->unit_size))
		pcpu.chunk_shift++;
	pcpu.chunk_stride = (size_t)1 << pcpu.chunk_shift;
	pcpu.live_shift = pcpu_live_shift(l->unit_size);
	pcpu.live_high = (((size_t)1 << pcpu.live_shift) - 1) & ~(size_t)63;
	pcpu.live_offset = l->chunk_span;
	size_t want = pcpu_min(PCPU_MAX_REGION / pcpu.chunk_stride, (size_t)PCPU_MAX_CHUNKS);
	want = pcpu_max(want, (size_t)1) * pcpu.chunk_stride;
	pcpu.region = pcpu_vm_reserve(want, pcpu.chunk_stride, &got);
	if (!pcpu.region)
		return -1;
	pcpu.region_size = got;
	pcpu.max_chunks = (unsigned int)(got / pcpu.chunk_stride);
#if PERCPU_SMP
	pcpu.ptr_base = PERCPU_PTR_BASE;
#else
	pcpu.ptr_base = (uintptr_t)pcpu.region;	/* UP: PERCPU_PTR_BASE does not exist */
#endif
	return 0;
}

static int build_offsets(void)
{
	const struct percpu_layout *l = pcpu.layout;

	pcpu.cpu_offset = calloc(l->nr_cpu_ids, sizeof(*pcpu.cpu_offset));
	pcpu.possible_offset = calloc(l->nr_possible, sizeof(*pcpu.possible_offset));
	if (!pcpu.cpu_offset || !pcpu.possible_offset)
		return -1;
	for (unsigned int cpu = 0; cpu < l->nr_cpu_ids; cpu++) {
		if (l->unit_map[cpu] < 0)
			continue;
		pcpu.cpu_offset[cpu] = (intptr_t)((uintptr_t)pcpu.region - pcpu.ptr_base +
						  l->unit_off[cpu]);
		pcpu.possible_offset[pcpu.nr_possible++] = pcpu.cpu_offset[cpu];
	}
	return 0;
}

static void undo_setup(void)
{
	pcpu_alloc_fini();
	if (pcpu.region)
		munmap(pcpu.region, pcpu.region_size);
	free(pcpu.cpu_offset);
	free(pcpu.possible_offset);
	percpu_layout_free(pcpu.layout);
	pcpu_topology_free(&pcpu.topo);
	free((char *)pcpu.cfg.cpus);
	free((char *)pcpu.cfg.nodes);
	memset(&pcpu, 0, sizeof(pcpu));
}

/* Maps chunk 0 and binds each group's units to its node. */
static int map_first_chunk(void)
{
	const struct percpu_layout *l = pcpu.layout;

	if (pcpu_vm_map(pcpu.region, pcpu.chunk_stride))
		return -1;
	for (unsigned int g = 0; g < l->nr_groups; g++) {
		const struct percpu_group_info *gi = &l->groups[g];
		if (pcpu_vm_bind(pcpu.region + gi->base_offset, gi->nr_units * l->unit_size, gi->node))
			return -1;
	}
	return 0;
}

static bool all_zero(const char *p, size_t n)
{
	for (; n && ((uintptr_t)p & 7); n--, p++)
		if (*p)
			return false;
	for (; n >= 8; n -= 8, p += 8)
		if (*(const uint64_t *)p)
			return false;
	for (; n; n--, p++)
		if (*p)
			return false;
	return true;
}

void pcpu_copy_image(uintptr_t a, const char *img, size_t size)
{
	unsigned int cpu;

	/* Walk the image in pieces that end on destination page boundaries. */
	for (size_t done = 0; done < size;) {
		size_t in_page = PCPU_PAGE_SIZE - ((a + done) & (PCPU_PAGE_SIZE - 1));
		size_t n = pcpu_min(in_page, size - done);
		if (!all_zero(img + done, n))
			for (cpu = 0; cpu < pcpu.layout->nr_cpu_ids; cpu++)
				if (pcpu.layout->unit_map[cpu] >= 0)
					memcpy((char *)pcpu_cpu_addr(a + done, cpu), img + done, n);
		done += n;
	}
}

void pcpu_zero_large(uintptr_t a, size_t size)
{
	for (unsigned int i = 0; i < pcpu.nr_possible; i++) {
		char *p = (char *)(a + (uintptr_t)pcpu.possible_offset[i]);
		/*
		 * Reading an untouched page maps the shared zero page; writing
		 * only where data is non-zero keeps CPUs that never wrote here
		 * from gaining resident pages.
		 */
		if (!all_zero(p, size))
			memset(p, 0, size);
	}
}

static void publish(void)
{
	percpu_nr_cpu_ids = pcpu.layout->nr_cpu_ids;
	percpu_nr_possible = pcpu.layout->nr_possible;
	__atomic_store_n(&percpu_cpu_offset, pcpu.cpu_offset, __ATOMIC_RELEASE);
	__atomic_store_n(&percpu_hot.ready, 1, __ATOMIC_RELEASE);
}

static int do_setup(struct percpu_config *cfg, bool from_env)
{
	const char *what = "out of memory";

	if (!PERCPU_SMP) {
		/* CONFIG_SMP=n: one CPU, one node, one unit (overrides still checked). */
		struct percpu_config up = *cfg;
		if (read_topology(cfg, from_env))
			goto bad_topology;
		pcpu_topology_free(&pcpu.topo);
		up.cpus = "1";	/* one CPU: CPU 0 */
		up.nodes = NULL;
		if (read_topology(&up, false))
			goto bad_topology;
	} else if (read_topology(cfg, from_env)) {
		goto bad_topology;
	}
	find_static_section();
	if (PERCPU_SMP) {
		pcpu.layout = pcpu_build_alloc_info(&pcpu.topo, pcpu.static_size,
						    cfg->reserved_size, cfg->dynamic_size,
						    cfg->atom_size);
	} else {
		pcpu.layout = pcpu_build_up_info();
	}
	if (!pcpu.layout) {
		what = "no layout for this configuration";
		goto fail;
	}
	pcpu.unit_size = pcpu.layout->unit_size;
	what = "cannot reserve address space";
	if (reserve_region())
		goto fail;
	what = "cannot map the first chunk";
	if (map_first_chunk())
		goto fail;
	what = "out of memory";
	if (build_offsets())
		goto fail;
	if (pcpu.static_size)
		pcpu_copy_image(pcpu.ptr_base, pcpu.main_start, pcpu.static_size);
	if (pcpu_alloc_init())
		goto fail;
	what = "cannot choose a fast path";
	if (pcpu_fastpath_init(cfg, pcpu.layout, pcpu.cpu_offset))
		goto fail;
	publish();
	/* A module that cannot be placed stops the program itself (module.c). */
	pcpu_modules_setup();
	/*
	 * Open the fast path now rather than at the first operation: an
	 * operation's inline attempt may keep the word it read (ops.h), and
	 * a loop that started with the path closed would take the slow way.
	 */
	pcpu_fastpath_open();
	return 0;

fail:
	pcpu_msg("Failed to initialize percpu areas: %s", what);
	undo_setup();
	if (!errno)
		errno = ENOMEM;
	return -1;
bad_topology:
	/* read_topology() said why in one line. */
	undo_setup();
	if (!errno)
		errno = EINVAL;
	return -1;
}

int percpu_setup(const struct percpu_config *user)
{
	struct percpu_config cfg;
	bool from_env = !user;
	int rc = 0;

	if (user)
		cfg = *user;
	else
		config_from_env(&cfg);
	apply_size_defaults(&cfg);

	const char *bad = config_error(&cfg);
	if (bad) {
		pcpu_msg("percpu_setup: invalid configuration: %s", bad);
		errno = EINVAL;
		return -1;
	}

	pthread_mutex_lock(&setup_lock);
	if (percpu_hot.ready) {
		if (!from_env && !same_config(&cfg, &pcpu.cfg)) {
			errno = EBUSY;
			rc = -1;
		}
		goto out;
	}
	/* Keep the request as asked, to compare later calls with it. */
	struct percpu_config asked = cfg;
	asked.cpus = cfg.cpus ? strdup(cfg.cpus) : NULL;
	asked.nodes = cfg.nodes ? strdup(cfg.nodes) : NULL;
	rc = do_setup(&cfg, from_env);
	if (rc) {
		free((char *)asked.cpus);
		free((char *)asked.nodes);
		if (from_env)
			setup_failed_reported = true;
	} else {
		pcpu.cfg = asked;
	}
out:
	pthread_mutex_unlock(&setup_lock);
	return rc;
}

int pcpu_setup_auto(void)
{
	/* The automatic setup failed and said why once: do not repeat it on every use. */
	if (__atomic_load_n(&setup_failed_reported, __ATOMIC_RELAXED)) {
		errno = ENOMEM;
		return -1;
	}
	return percpu_setup(NULL);
}

int percpu_is_setup(void)
{
	return __atomic_load_n(&percpu_hot.ready, __ATOMIC_ACQUIRE);
}

void percpu__auto_setup(const void *cookie)
{
	if (!percpu_is_setup() && pcpu_addr_in_main(cookie))
		percpu_setup(NULL);
}

const struct percpu_layout *percpu_layout_current(void)
{
	return percpu_is_setup() ? pcpu.layout : NULL;
}

/* ---- topology queries ---- */

int percpu_cpu_possible(unsigned int cpu)
{
	if (pcpu_ensure_setup())
		return 0;
	return cpu < pcpu.layout->nr_cpu_ids && pcpu.layout->unit_map[cpu] >= 0;
}

int percpu_cpu_to_node(unsigned int cpu)
{
	if (pcpu_ensure_setup() || cpu >= pcpu.topo.nr_cpu_ids)
		return -1;
	return pcpu.topo.cpu_node[cpu];
}

unsigned int percpu_nr_nodes(void)
{
	return pcpu_ensure_setup() ? 0 : pcpu.topo.nr_nodes;
}

unsigned int percpu_next_possible(int cpu)
{
	if (pcpu_ensure_setup())
		return UINT32_MAX;
	for (unsigned int c = (unsigned int)(cpu + 1); c < pcpu.layout->nr_cpu_ids; c++)
		if (pcpu.layout->unit_map[c] >= 0)
			return c;
	return UINT32_MAX;
}

unsigned int percpu_num_possible_cpus(void)
{
	return pcpu_ensure_setup() ? 0 : percpu_nr_possible;
}

unsigned int percpu_get_nr_cpu_ids(void)
{
	return pcpu_ensure_setup() ? 0 : percpu_nr_cpu_ids;
}
