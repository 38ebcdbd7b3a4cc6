// SPDX-License-Identifier: MIT
/*
 * Model-based randomized test of src/chunk.c.  The model is one byte per
 * bitmap bit plus the list of live allocations; every operation is applied
 * to both and the results, counters and pcpu_chunk_map_check() are
 * compared after each step.  An allocation may fail only if brute force
 * finds no fitting run in the model.
 *
 * PERCPU_SEED=N replays one seed; PERCPU_MODEL_OPS=N changes the length.
 * By default the fixed seed runs, then a random one (printed).
 */
#include "chunk.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK PCPU_BITMAP_BLOCK_BITS
#define LB ((int)(8 * sizeof(unsigned long)))

struct live {
	int start, bits;
};

struct model {
	struct pcpu_chunk_map m;
	void *mem;
	size_t mem_size;
	int nr_pages, nr_bits, head, tail;
	unsigned char *used;	/* per bit */
	unsigned char *pop;	/* per page */
	int *page_used;		/* allocated bits per page, hidden included */
	struct live *live;
	int nr_live, free_bits;
	int last_freed;		/* a start freed recently, for double frees */
	void *snap;		/* copy of mem for invalid-free checks */
	struct pcpu_chunk_map snap_m;
};

static uint64_t rng_state;
static uint64_t cur_seed;
static long cur_step;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int rnd_below(int n)
{
	return (int)(rnd() % (uint64_t)n);
}

static void die(struct model *md, const char *what)
{
	char msg[256] = "";

	pcpu_chunk_map_check(&md->m, msg, sizeof(msg));
	fprintf(stderr,
		"test_chunk_model: FAIL seed=%" PRIu64 " step=%ld chunk=%dp head=%d tail=%d: %s (check: %s)\n"
		"replay with PERCPU_SEED=%" PRIu64 "\n",
		cur_seed, cur_step, md->nr_pages, md->head, md->tail, what,
		msg, cur_seed);
	exit(1);
}

static void mark(struct model *md, int start, int bits, unsigned char v)
{
	for (int i = start; i < start + bits; i++) {
		md->used[i] = v;
		md->page_used[i / BLOCK] += v ? 1 : -1;
	}
	md->free_bits += v ? -bits : bits;
}

static void model_init(struct model *md, int nr_pages, int head_bytes,
		       int tail_bytes, bool populated)
{
	memset(md, 0, sizeof(*md));
	md->nr_pages = nr_pages;
	md->nr_bits = nr_pages * BLOCK;
	md->head = head_bytes / PCPU_MIN_ALLOC_SIZE;
	md->tail = tail_bytes / PCPU_MIN_ALLOC_SIZE;
	md->mem_size = pcpu_chunk_map_mem_size(nr_pages);
	md->mem = malloc(md->mem_size);
	md->snap = malloc(md->mem_size);
	md->used = calloc(md->nr_bits, 1);
	md->pop = calloc(nr_pages, 1);
	md->page_used = calloc(nr_pages, sizeof(int));
	md->live = calloc(md->nr_bits, sizeof(*md->live));
	memset(md->mem, 0xa5, md->mem_size);	/* init must not need zeroes */
	md->free_bits = md->nr_bits;
	md->last_freed = -1;
	mark(md, 0, md->head, 1);
	mark(md, md->nr_bits - md->tail, md->tail, 1);
	memset(md->pop, populated, nr_pages);
	pcpu_chunk_map_init(&md->m, md->mem, nr_pages, head_bytes, tail_bytes,
			    populated);
}

static void model_destroy(struct model *md)
{
	free(md->mem);
	free(md->snap);
	free(md->used);
	free(md->pop);
	free(md->page_used);
	free(md->live);
}

static bool run_ok(const struct model *md, int start, int bits, bool pop_only)
{
	for (int i = start; i < start + bits; i++)
		if (md->used[i] || (pop_only && !md->pop[i / BLOCK]))
			return false;
	return true;
}

/* Brute force: is there any aligned, free (and populated) run of bits? */
static bool model_has_fit(const struct model *md, int bits, int align,
			  bool pop_only)
{
	int run = 0;

	for (int i = 0; i < md->nr_bits; i++) {
		if (md->used[i] || (pop_only && !md->pop[i / BLOCK])) {
			run = 0;
			continue;
		}
		run++;
		/* a run ending at i fits if its aligned start is in it */
		int start = i + 1 - bits;

		if (run >= bits && start % align == 0)
			return true;
	}
	return false;
}

static int model_contig(const struct model *md)
{
	int run = 0, best = 0;

	for (int i = 0; i < md->nr_bits; i++) {
		run = md->used[i] ? 0 : run + 1;
		if (run > best)
			best = run;
	}
	return best;
}

static int model_empty_pop(const struct model *md)
{
	int n = 0;

	for (int p = 0; p < md->nr_pages; p++)
		n += md->pop[p] && md->page_used[p] == 0;
	return n;
}

static void verify(struct model *md, bool deep)
{
	char msg[256];

	if (pcpu_chunk_map_check(&md->m, msg, sizeof(msg)))
		die(md, "pcpu_chunk_map_check");
	if (md->m.free_bytes != md->free_bits * PCPU_MIN_ALLOC_SIZE)
		die(md, "free_bytes");
	if (md->m.nr_alloc != md->nr_live)
		die(md, "nr_alloc");
	if (md->m.nr_empty_pop_pages != model_empty_pop(md))
		die(md, "nr_empty_pop_pages");
	if (!deep)
		return;
	for (int i = 0; i < md->nr_bits; i++)
		if (((md->m.alloc_map[i / LB] >> (i % LB)) & 1) != md->used[i])
			die(md, "alloc_map differs from the model");
	if (pcpu_chunk_map_contig_bits(&md->m) != model_contig(md))
		die(md, "contig_bits");
	for (int i = 0; i < md->nr_live; i++)
		if (pcpu_chunk_map_alloc_bits(&md->m, md->live[i].start) !=
		    md->live[i].bits)
			die(md, "alloc_bits of a live allocation");
}

/* Sizes right at the hints' edges find off-by-one errors in the fit. */
static int edge_size(const struct model *md)
{
	const struct pcpu_block_md *b = &md->m.md_blocks[rnd_below(md->nr_pages)];
	int pick[] = { md->m.chunk_md.contig_hint, md->m.chunk_md.scan_hint,
		       b->contig_hint, b->scan_hint, b->left_free, b->right_free };
	int size = pick[rnd_below(6)] + rnd_below(3) - 1;

	return size < 1 ? 1 : size;
}

static int random_size(const struct model *md)
{
	int r = rnd_below(100);

	if (r < 12)
		return edge_size(md);
	int max = r < 50 ? 16 : r < 75 ? 256 : r < 90 ? BLOCK :
		  r < 98 ? 3 * BLOCK : md->nr_bits;

	return 1 + rnd_below(max);
}

static int random_align(void)
{
	return rnd_below(10) < 6 ? 1 : 1 << rnd_below(11);
}

static void op_alloc(struct model *md, bool pop_only)
{
	int bits = random_size(md), align = random_align();
	int at = pcpu_chunk_map_alloc(&md->m, bits, align, pop_only);

	if (at < 0) {
		if (model_has_fit(md, bits, align, pop_only))
			die(md, "alloc failed but the model has a fitting run");
		return;
	}
	if (at % align || at + bits > md->nr_bits)
		die(md, "alloc returned a misaligned or out-of-range run");
	if (!run_ok(md, at, bits, pop_only))
		die(md, "alloc returned a run that is not free (or populated)");
	mark(md, at, bits, 1);
	md->live[md->nr_live++] = (struct live){ at, bits };
}

static void op_free(struct model *md)
{
	int i, got;
	struct live l;

	if (!md->nr_live)
		return;
	i = rnd_below(md->nr_live);
	l = md->live[i];
	got = pcpu_chunk_map_free(&md->m, l.start);
	if (got != l.bits)
		die(md, "free returned the wrong size");
	mark(md, l.start, l.bits, 0);
	md->live[i] = md->live[--md->nr_live];
	md->last_freed = l.start;
}

static bool is_live_start(const struct model *md, int bit)
{
	for (int i = 0; i < md->nr_live; i++)
		if (md->live[i].start == bit)
			return true;
	return false;
}

static int invalid_bit(const struct model *md)
{
	switch (rnd_below(6)) {
	case 0:		/* interior of a live allocation */
		for (int i = 0; i < md->nr_live; i++)
			if (md->live[i].bits > 1)
				return md->live[i].start + 1 +
				       rnd_below(md->live[i].bits - 1);
		return -1;
	case 1:		/* double free */
		return md->last_freed;
	case 2:		/* hidden head or tail */
		if (md->head && rnd_below(2))
			return rnd_below(md->head);
		return md->tail ? md->nr_bits - 1 - rnd_below(md->tail) : 0;
	case 3:		/* out of range */
		return rnd_below(2) ? -1 - rnd_below(100) :
				      md->nr_bits + rnd_below(100);
	default:	/* anywhere */
		return rnd_below(md->nr_bits);
	}
}

static void op_invalid_free(struct model *md)
{
	int bit = invalid_bit(md);

	if (bit >= md->head && bit < md->nr_bits - md->tail &&
	    is_live_start(md, bit))
		return;
	memcpy(md->snap, md->mem, md->mem_size);
	md->snap_m = md->m;
	if (pcpu_chunk_map_free(&md->m, bit) != -1)
		die(md, "invalid free was accepted");
	if (pcpu_chunk_map_alloc_bits(&md->m, bit) != -1)
		die(md, "alloc_bits accepted a bit that starts nothing");
	if (memcmp(md->snap, md->mem, md->mem_size) ||
	    memcmp(&md->snap_m, &md->m, sizeof(md->m)))
		die(md, "invalid free changed the map");
}

static void op_population(struct model *md)
{
	int a = rnd_below(md->nr_pages), b = a + 1 + rnd_below(md->nr_pages - a);
	bool populate = rnd_below(2);

	if (populate)
		pcpu_chunk_map_populate(&md->m, a, b);
	else
		pcpu_chunk_map_depopulate(&md->m, a, b);
	memset(md->pop + a, populate, b - a);
}

struct config {
	int nr_pages, head_bytes, tail_bytes;
	bool populated;
};

static const struct config configs[] = {
	{ 1, 0, 0, true },
	{ 2, 100, 52, true },
	{ 3, 4096 + 12, 2000, false },
	{ 6, 0, 4, true },
	{ 16, 8192, 0, true },
	{ 4, 0, 0, true },
};

static void run_config(const struct config *c, long ops)
{
	struct model md;
	int fill_bias = 60;

	model_init(&md, c->nr_pages, c->head_bytes, c->tail_bytes, c->populated);
	verify(&md, true);
	for (long i = 0; i < ops; i++, cur_step++) {
		int r = rnd_below(100);

		/* Alternate filling and draining phases to reach every load. */
		if (i % 3000 == 0)
			fill_bias = 30 + rnd_below(50);
		if (r < fill_bias * 8 / 10)
			op_alloc(&md, rnd_below(4) == 0);
		else if (r < 88)
			op_free(&md);
		else if (r < 95)
			op_invalid_free(&md);
		else
			op_population(&md);
		verify(&md, (i & 63) == 0);
	}
	/* Drain: the map must return to its initial state. */
	while (md.nr_live) {
		op_free(&md);
		verify(&md, false);
	}
	verify(&md, true);
	if (md.m.free_bytes != (md.nr_bits - md.head - md.tail) * PCPU_MIN_ALLOC_SIZE)
		die(&md, "free_bytes after draining");
	model_destroy(&md);
}

static void run_seed(uint64_t seed, long ops)
{
	int n = sizeof(configs) / sizeof(configs[0]);

	cur_seed = seed;
	cur_step = 0;
	rng_state = seed;
	for (int round = 0; round < 4 * n; round++)
		run_config(&configs[round % n], ops / (4 * n));
	printf("test_chunk_model: seed %" PRIu64 ": %ld operations ok\n",
	       seed, cur_step);
}

int main(void)
{
	const char *seed_env = getenv("PERCPU_SEED");
	const char *ops_env = getenv("PERCPU_MODEL_OPS");
	long ops = ops_env ? atol(ops_env) : 1000000;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (seed_env) {
		run_seed(strtoull(seed_env, NULL, 0), ops);
		return 0;
	}
	run_seed(20240601, ops);
	run_seed((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20), ops / 4);
	return 0;
}
