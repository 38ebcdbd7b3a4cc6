// SPDX-License-Identifier: MIT
/*
 * One chunk's allocation metadata: a bitmap allocator with per-page block
 * hints, after the design of the kernel's mm/percpu.c (written fresh).
 *
 * Hint semantics kept by this file, for every block and for the chunk
 * (the chunk_md uses chunk coordinates, a block uses offsets in its page):
 *
 *  - first_free, left_free, right_free: exact.
 *  - contig_hint/contig_hint_start: exact; the start names a maximal free
 *    run of that length.  A run is maximal in its own scope: a block's
 *    runs are cut at the page boundaries, the chunk's are not.
 *  - scan_hint/scan_hint_start: the largest free run *other than* the
 *    contig run, exact, or SCAN_UNKNOWN (-1) when an allocation broke it.
 *    0 means there is no other run.
 *
 * Knowing the runner-up exactly is what makes the common cases O(1): an
 * allocation carved from the contig run leaves two pieces, and the new
 * contig run is the largest of the two pieces and the runner-up, with no
 * scan.  Only when the runner-up is unknown is the block rescanned from
 * the bitmap (16 words) or the chunk rescanned from the block hints
 * (one step per page).  A free merges at most two neighbouring runs, so the
 * merged run's extent, and with it both hints, follows in O(1) as long as
 * the neighbours are within the page or are the chunk's contig/scan runs.
 *
 * bound_map: bit at the start and one past the end of each allocation,
 * plus a sentinel at nr_bits.  Bits left behind in free space by a free
 * are harmless (an allocation clears its interior), so "alloc bit and
 * bound bit both set" means exactly "a live allocation starts here".
 */
#include "chunk.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define LONG_BITS ((int)(sizeof(unsigned long) * CHAR_BIT))
#define NR_LONGS(bits) (((bits) + LONG_BITS - 1) / LONG_BITS)
#define BLOCK_BITS PCPU_BITMAP_BLOCK_BITS
#define SCAN_UNKNOWN (-1)

struct run {
	int start;
	int len;
};

/* ---- word-at-a-time bitmap helpers --------------------------------------- */

static inline bool test_bit_(const unsigned long *map, int bit)
{
	return (map[bit / LONG_BITS] >> (bit % LONG_BITS)) & 1;
}

static inline void set_bit_(unsigned long *map, int bit)
{
	map[bit / LONG_BITS] |= 1UL << (bit % LONG_BITS);
}

static inline unsigned long low_mask(int start)
{
	return ~0UL << (start % LONG_BITS);
}

/* Sets (set) or clears bits [start, start + n). */
static inline void change_range(unsigned long *map, int start, int n, bool set)
{
	unsigned long *w = map + start / LONG_BITS;
	unsigned long mask = low_mask(start);
	int room = LONG_BITS - start % LONG_BITS;
	int end = start + n;

	/* Small allocations live in one word: the common case. */
	if (n < room) {
		mask &= (1UL << (end % LONG_BITS)) - 1;
		*w = set ? *w | mask : *w & ~mask;
		return;
	}

	while (n >= room) {
		*w = set ? *w | mask : *w & ~mask;
		w++;
		n -= room;
		room = LONG_BITS;
		mask = ~0UL;
	}
	if (n > 0) {
		/* n < room: the run ends inside this word. */
		mask &= (1UL << (end % LONG_BITS)) - 1;
		*w = set ? *w | mask : *w & ~mask;
	}
}

/* First set bit of (map ^ flip) in [start, end), or end if none. */
static inline int find_next(const unsigned long *map, int start, int end,
			    unsigned long flip)
{
	int idx;
	unsigned long word;

	if (start >= end)
		return end;
	idx = start / LONG_BITS;
	word = (map[idx] ^ flip) & low_mask(start);
	while (!word) {
		if (++idx * LONG_BITS >= end)
			return end;
		word = map[idx] ^ flip;
	}
	idx = idx * LONG_BITS + __builtin_ctzl(word);
	return idx < end ? idx : end;
}

static inline int find_next_set(const unsigned long *map, int start, int end)
{
	return find_next(map, start, end, 0);
}

static inline int find_next_zero(const unsigned long *map, int start, int end)
{
	return find_next(map, start, end, ~0UL);
}

/* Last set bit in [lo, hi), or -1. */
static int find_last_set(const unsigned long *map, int lo, int hi)
{
	int idx, top;
	unsigned long word;

	if (hi <= lo)
		return -1;
	idx = (hi - 1) / LONG_BITS;
	word = map[idx] & (~0UL >> (LONG_BITS - 1 - (hi - 1) % LONG_BITS));
	for (;;) {
		if (word) {
			top = idx * LONG_BITS + LONG_BITS - 1 - __builtin_clzl(word);
			return top >= lo ? top : -1;
		}
		if (idx * LONG_BITS <= lo)
			return -1;
		word = map[--idx];
	}
}

static inline int align_up(int x, int align)
{
	return (x + align - 1) & ~(align - 1);
}

static inline bool starts_in(int pos, int lo, int hi)
{
	return pos >= lo && pos < hi;
}

/* ---- hint updates, shared by blocks and the chunk -------------------------- */

static void md_set_free(struct pcpu_block_md *md)
{
	md->contig_hint = md->nr_bits;
	md->contig_hint_start = 0;
	md->scan_hint = 0;
	md->scan_hint_start = 0;
	md->left_free = md->nr_bits;
	md->right_free = md->nr_bits;
	md->first_free = 0;
}

static void md_set_full(struct pcpu_block_md *md)
{
	md->contig_hint = 0;
	md->contig_hint_start = 0;
	md->scan_hint = 0;
	md->scan_hint_start = 0;
	md->left_free = 0;
	md->right_free = 0;
	md->first_free = md->nr_bits;
}

static inline void md_set_contig(struct pcpu_block_md *md, struct run r)
{
	md->contig_hint_start = r.start;
	md->contig_hint = r.len;
}

static inline void md_set_scan(struct pcpu_block_md *md, struct run r)
{
	md->scan_hint_start = r.start;
	md->scan_hint = r.len;
}

/*
 * [a, b) was just allocated out of one maximal free run.  Updates
 * contig/scan/left/right (not first_free).  Returns false when the contig
 * run was broken and the runner-up is unknown: the caller must rescan.
 */
static inline bool md_alloc_update(struct pcpu_block_md *md, int a, int b)
{
	int c_start = md->contig_hint_start;
	int c_end = c_start + md->contig_hint;

	if (a < md->left_free)
		md->left_free = a;
	if (b > md->nr_bits - md->right_free)
		md->right_free = md->nr_bits - b;

	if (md->contig_hint && a < c_end && b > c_start) {
		struct run left = { c_start, a - c_start };
		struct run right = { b, c_end - b };
		bool right_wins = right.len > left.len;
		struct run piece = right_wins ? right : left;
		struct run other = right_wins ? left : right;

		if (md->scan_hint == SCAN_UNKNOWN)
			return false;
		if (piece.len >= md->scan_hint) {
			md_set_contig(md, piece);
			if (other.len > md->scan_hint)
				md_set_scan(md, other);
		} else {
			/* The runner-up wins; the next best is not known. */
			md->contig_hint_start = md->scan_hint_start;
			md->contig_hint = md->scan_hint;
			md->scan_hint = SCAN_UNKNOWN;
		}
	} else if (md->scan_hint > 0 && a < md->scan_hint_start + md->scan_hint &&
		   b > md->scan_hint_start) {
		md->scan_hint = SCAN_UNKNOWN;
	}
	return true;
}

/*
 * A free made [ms, me) one maximal free run (the freed bits plus the free
 * runs on either side).  Any recorded run inside it was one of those sides.
 */
static inline void md_free_update(struct pcpu_block_md *md, int ms, int me)
{
	struct run merged = { ms, me - ms };
	bool contig_in = md->contig_hint && starts_in(md->contig_hint_start, ms, me);
	bool scan_in = md->scan_hint > 0 && starts_in(md->scan_hint_start, ms, me);

	if (merged.len == md->nr_bits) {
		md_set_free(md);
		return;
	}
	if (ms == 0)
		md->left_free = me;
	if (me == md->nr_bits)
		md->right_free = md->nr_bits - ms;
	if (ms < md->first_free)
		md->first_free = ms;

	if (contig_in) {
		md_set_contig(md, merged);
		if (scan_in)
			md->scan_hint = SCAN_UNKNOWN;
	} else if (merged.len > md->contig_hint) {
		/* The old contig run is now the runner-up, exactly. */
		md->scan_hint_start = md->contig_hint_start;
		md->scan_hint = md->contig_hint;
		md_set_contig(md, merged);
	} else if (scan_in || (md->scan_hint != SCAN_UNKNOWN &&
			       merged.len > md->scan_hint)) {
		md_set_scan(md, merged);
	}
}

/* ---- rescans ---------------------------------------------------------------- */

/* Keeps the two largest runs; the earliest wins ties. */
struct top2 {
	struct run best;
	struct run second;
};

static inline void top2_add(struct top2 *t, int start, int len)
{
	if (len > t->best.len) {
		t->second = t->best;
		t->best.start = start;
		t->best.len = len;
	} else if (len > t->second.len) {
		t->second.start = start;
		t->second.len = len;
	}
}

/* Recomputes a block's hints from the bitmap. */
static void block_rescan(struct pcpu_chunk_map *m, int page)
{
	struct pcpu_block_md *md = &m->md_blocks[page];
	int base = page * BLOCK_BITS, end = base + BLOCK_BITS;
	struct top2 t = { { 0, 0 }, { 0, 0 } };
	int pos, run_end;

	md->first_free = BLOCK_BITS;
	md->left_free = 0;
	md->right_free = 0;
	pos = find_next_zero(m->alloc_map, base, end);
	while (pos < end) {
		run_end = find_next_set(m->alloc_map, pos, end);
		if (md->first_free == BLOCK_BITS)
			md->first_free = pos - base;
		if (pos == base)
			md->left_free = run_end - pos;
		if (run_end == end)
			md->right_free = run_end - pos;
		top2_add(&t, pos - base, run_end - pos);
		pos = find_next_zero(m->alloc_map, run_end, end);
	}
	md_set_contig(md, t.best);
	md_set_scan(md, t.second);
}

/*
 * One pass of the chunk rescan over the block hints.  Runs that touch a
 * page boundary are joined across pages exactly (right_free, free pages,
 * left_free); runs inside a page are known through the block's contig and
 * scan hints.  Returns an upper bound on the inner runs no hint names.
 */
static int chunk_scan_blocks(struct pcpu_chunk_map *m, struct top2 *t)
{
	struct pcpu_block_md *cm = &m->chunk_md;
	int carry = -1, unnamed = 0;

	cm->first_free = m->nr_bits;
	cm->left_free = 0;
	cm->right_free = 0;
	for (int i = 0; i < m->nr_pages; i++) {
		struct pcpu_block_md *md = &m->md_blocks[i];
		int base = i * BLOCK_BITS;

		if (cm->first_free == m->nr_bits && md->first_free < BLOCK_BITS)
			cm->first_free = base + md->first_free;
		if (md->left_free == BLOCK_BITS) {
			if (carry < 0)
				carry = base;
			continue;
		}
		if (carry >= 0 || md->left_free) {
			int start = carry >= 0 ? carry : base;
			int len = base + md->left_free - start;

			if (start == 0)
				cm->left_free = len;
			top2_add(t, start, len);
		}
		carry = -1;
		if (md->contig_hint_start > 0 &&
		    md->contig_hint_start + md->contig_hint < BLOCK_BITS)
			top2_add(t, base + md->contig_hint_start, md->contig_hint);
		if (md->scan_hint > 0 && md->scan_hint_start > 0 &&
		    md->scan_hint_start + md->scan_hint < BLOCK_BITS)
			top2_add(t, base + md->scan_hint_start, md->scan_hint);
		if (md->scan_hint == SCAN_UNKNOWN) {
			if (md->contig_hint > unnamed)
				unnamed = md->contig_hint;
		} else if (md->scan_hint > unnamed) {
			unnamed = md->scan_hint;
		}
		if (md->right_free)
			carry = base + BLOCK_BITS - md->right_free;
	}
	if (carry >= 0) {
		cm->right_free = m->nr_bits - carry;
		if (carry == 0)
			cm->left_free = cm->right_free;
		top2_add(t, carry, m->nr_bits - carry);
	}
	return unnamed;
}

/*
 * Recomputes the chunk hints from the block hints.  The contig run is
 * always exact (every run is either joined across pages or some block's
 * contig run); the runner-up is exact unless a block may hide a larger
 * unnamed inner run, in which case such blocks are rescanned once.
 */
static void chunk_refresh(struct pcpu_chunk_map *m)
{
	struct pcpu_block_md *cm = &m->chunk_md;
	struct top2 t = { { 0, 0 }, { 0, 0 } };
	int unnamed = chunk_scan_blocks(m, &t);

	if (unnamed > t.second.len) {
		bool rescanned = false;

		for (int i = 0; i < m->nr_pages; i++) {
			struct pcpu_block_md *md = &m->md_blocks[i];

			if (md->scan_hint == SCAN_UNKNOWN &&
			    md->contig_hint > t.second.len) {
				block_rescan(m, i);
				rescanned = true;
			}
		}
		if (rescanned) {
			memset(&t, 0, sizeof(t));
			unnamed = chunk_scan_blocks(m, &t);
		}
	}
	md_set_contig(cm, t.best);
	if (unnamed > t.second.len)
		cm->scan_hint = SCAN_UNKNOWN;
	else
		md_set_scan(cm, t.second);
}

/* First free bit at or after bit (blocks before it are up to date). */
static int chunk_next_free(const struct pcpu_chunk_map *m, int bit)
{
	int page = bit / BLOCK_BITS;
	int end, pos;

	if (bit >= m->nr_bits)
		return m->nr_bits;
	end = (page + 1) * BLOCK_BITS;
	pos = find_next_zero(m->alloc_map, bit, end);
	if (pos < end)
		return pos;
	for (page++; page < m->nr_pages; page++)
		if (m->md_blocks[page].first_free < BLOCK_BITS)
			return page * BLOCK_BITS + m->md_blocks[page].first_free;
	return m->nr_bits;
}

/* ---- layout and init ---------------------------------------------------- */

static size_t map_longs(int nr_pages)
{
	int nr_bits = nr_pages * BLOCK_BITS;

	return NR_LONGS(nr_bits) + NR_LONGS(nr_bits + 1) + NR_LONGS(nr_pages);
}

size_t pcpu_chunk_map_mem_size(int nr_pages)
{
	return map_longs(nr_pages) * sizeof(unsigned long) +
	       (size_t)nr_pages * sizeof(struct pcpu_block_md);
}

static int head_bits(const struct pcpu_chunk_map *m)
{
	return m->start_offset / PCPU_MIN_ALLOC_SIZE;
}

static int tail_bits(const struct pcpu_chunk_map *m)
{
	return m->end_offset / PCPU_MIN_ALLOC_SIZE;
}

/* Marks [start, start + bits) allocated as one hidden allocation. */
static void hide_range(struct pcpu_chunk_map *m, int start, int bits)
{
	if (bits <= 0)
		return;
	change_range(m->alloc_map, start, bits, true);
	set_bit_(m->bound_map, start);
	set_bit_(m->bound_map, start + bits);
}

void pcpu_chunk_map_init(struct pcpu_chunk_map *m, void *mem, int nr_pages,
			 int start_offset, int end_offset, bool populated)
{
	unsigned long *words = mem;
	int nr_bits = nr_pages * BLOCK_BITS;
	int head, tail;

	memset(m, 0, sizeof(*m));
	memset(mem, 0, pcpu_chunk_map_mem_size(nr_pages));
	m->nr_pages = nr_pages;
	m->nr_bits = nr_bits;
	m->alloc_map = words;
	m->bound_map = words + NR_LONGS(nr_bits);
	m->populated = m->bound_map + NR_LONGS(nr_bits + 1);
	m->md_blocks = (struct pcpu_block_md *)(words + map_longs(nr_pages));

	/* Hidden parts are rounded out to whole bits and clamped. */
	head = (start_offset + PCPU_MIN_ALLOC_SIZE - 1) / PCPU_MIN_ALLOC_SIZE;
	head = head < 0 ? 0 : head > nr_bits ? nr_bits : head;
	tail = (end_offset + PCPU_MIN_ALLOC_SIZE - 1) / PCPU_MIN_ALLOC_SIZE;
	tail = tail < 0 ? 0 : tail > nr_bits - head ? nr_bits - head : tail;
	m->start_offset = head * PCPU_MIN_ALLOC_SIZE;
	m->end_offset = tail * PCPU_MIN_ALLOC_SIZE;
	hide_range(m, 0, head);
	hide_range(m, nr_bits - tail, tail);
	set_bit_(m->bound_map, nr_bits);	/* sentinel for the end search */

	for (int i = 0; i < nr_pages; i++) {
		m->md_blocks[i].nr_bits = BLOCK_BITS;
		block_rescan(m, i);
	}
	m->chunk_md.nr_bits = nr_bits;
	chunk_refresh(m);

	m->free_bytes = (nr_bits - head - tail) * PCPU_MIN_ALLOC_SIZE;
	if (populated)
		pcpu_chunk_map_populate(m, 0, nr_pages);
}

/* ---- populated pages ------------------------------------------------------ */

bool pcpu_chunk_map_page_empty(const struct pcpu_chunk_map *m, int page)
{
	if (page < 0 || page >= m->nr_pages)
		return false;
	return m->md_blocks[page].left_free == BLOCK_BITS;
}

static void set_populated(struct pcpu_chunk_map *m, int start, int end,
			  bool populate)
{
	if (start < 0)
		start = 0;
	if (end > m->nr_pages)
		end = m->nr_pages;
	for (int page = start; page < end; page++) {
		int delta = populate ? 1 : -1;

		if (test_bit_(m->populated, page) == populate)
			continue;
		change_range(m->populated, page, 1, populate);
		m->nr_populated += delta;
		if (pcpu_chunk_map_page_empty(m, page))
			m->nr_empty_pop_pages += delta;
	}
}

void pcpu_chunk_map_populate(struct pcpu_chunk_map *m, int start, int end)
{
	set_populated(m, start, end, true);
}

void pcpu_chunk_map_depopulate(struct pcpu_chunk_map *m, int start, int end)
{
	set_populated(m, start, end, false);
}

/* ---- fit ------------------------------------------------------------------ */

static inline int run_fit(int start, int len, int bits, int align)
{
	int pos = align_up(start, align);

	return pos + bits <= start + len ? pos : -1;
}

/* A fit inside one page, or -1.  Runs crossing its edges are the caller's. */
static int block_fit(const struct pcpu_chunk_map *m, int page, int bits,
		     int align)
{
	const struct pcpu_block_md *md = &m->md_blocks[page];
	int base = page * BLOCK_BITS, end = base + BLOCK_BITS;
	int pos, run_end;

	/* Only the contig run is long enough: no need to look elsewhere. */
	if (md->scan_hint != SCAN_UNKNOWN && bits > md->scan_hint)
		return run_fit(base + md->contig_hint_start, md->contig_hint,
			       bits, align);

	pos = base + md->first_free;
	while (pos < end) {
		run_end = find_next_set(m->alloc_map, pos, end);
		if (run_end - pos >= bits) {
			int at = run_fit(pos, run_end - pos, bits, align);

			if (at >= 0)
				return at;
		}
		pos = find_next_zero(m->alloc_map, run_end, end);
	}
	return -1;
}

/*
 * Walks the pages from the chunk's first free bit.  carry is the start of
 * a free run reaching the current page from the left; it is joined with
 * the page's left_free, so a run may span any number of pages.
 */
static int chunk_fit(const struct pcpu_chunk_map *m, int bits, int align,
		     bool pop_only)
{
	const struct pcpu_block_md *cm = &m->chunk_md;
	int carry = -1;

	if (bits > cm->contig_hint)
		return -1;
	if (!pop_only && cm->scan_hint != SCAN_UNKNOWN && bits > cm->scan_hint)
		return run_fit(cm->contig_hint_start, cm->contig_hint, bits,
			       align);

	for (int page = cm->first_free / BLOCK_BITS; page < m->nr_pages; page++) {
		const struct pcpu_block_md *md = &m->md_blocks[page];
		int base = page * BLOCK_BITS;

		if (pop_only && !test_bit_(m->populated, page)) {
			carry = -1;
			continue;
		}
		if (carry >= 0) {
			int at = run_fit(carry, base + md->left_free - carry,
					 bits, align);

			if (at >= 0)
				return at;
			if (md->left_free == BLOCK_BITS)
				continue;
			carry = -1;
		}
		if (md->contig_hint >= bits) {
			int at = block_fit(m, page, bits, align);

			if (at >= 0)
				return at;
		}
		if (md->right_free)
			carry = base + BLOCK_BITS - md->right_free;
	}
	return -1;
}

/* ---- alloc ----------------------------------------------------------------- */

static void alloc_update_block(struct pcpu_chunk_map *m, int page, int a, int b)
{
	struct pcpu_block_md *md = &m->md_blocks[page];
	int base = page * BLOCK_BITS;
	int ka = (a > base ? a : base) - base;
	int kb = (b < base + BLOCK_BITS ? b : base + BLOCK_BITS) - base;
	bool was_empty = md->left_free == BLOCK_BITS;

	if (ka == 0 && kb == BLOCK_BITS)
		md_set_full(md);
	else if (!md_alloc_update(md, ka, kb))
		block_rescan(m, page);
	else if (md->first_free == ka)
		md->first_free = find_next_zero(m->alloc_map, base + kb,
						base + BLOCK_BITS) - base;
	if (was_empty && test_bit_(m->populated, page))
		m->nr_empty_pop_pages--;
}

static void alloc_area(struct pcpu_chunk_map *m, int bit, int bits)
{
	struct pcpu_block_md *cm = &m->chunk_md;
	int end = bit + bits;

	change_range(m->alloc_map, bit, bits, true);
	set_bit_(m->bound_map, bit);
	if (bits > 1)
		change_range(m->bound_map, bit + 1, bits - 1, false);
	set_bit_(m->bound_map, end);

	for (int page = bit / BLOCK_BITS; page <= (end - 1) / BLOCK_BITS; page++)
		alloc_update_block(m, page, bit, end);

	if (!md_alloc_update(cm, bit, end))
		chunk_refresh(m);
	else if (cm->first_free == bit)
		cm->first_free = chunk_next_free(m, end);

	m->free_bytes -= bits * PCPU_MIN_ALLOC_SIZE;
	m->nr_alloc++;
	if ((size_t)bits * PCPU_MIN_ALLOC_SIZE > m->max_alloc_size)
		m->max_alloc_size = (size_t)bits * PCPU_MIN_ALLOC_SIZE;
}

int pcpu_chunk_map_alloc(struct pcpu_chunk_map *m, int bits, int align_bits,
			 bool pop_only)
{
	int bit;

	if (bits < 1 || bits > m->nr_bits || align_bits < 1 ||
	    align_bits > BLOCK_BITS || (align_bits & (align_bits - 1)))
		return -1;
	bit = chunk_fit(m, bits, align_bits, pop_only);
	if (bit >= 0)
		alloc_area(m, bit, bits);
	return bit;
}

/* ---- free ------------------------------------------------------------------ */

/* Size of the live allocation starting at bit, or -1. */
static inline int live_alloc_bits(const struct pcpu_chunk_map *m, int bit)
{
	if (bit < head_bits(m) || bit >= m->nr_bits - tail_bits(m))
		return -1;
	if (!test_bit_(m->alloc_map, bit) || !test_bit_(m->bound_map, bit))
		return -1;
	return find_next_set(m->bound_map, bit + 1, m->nr_bits + 1) - bit;
}

int pcpu_chunk_map_alloc_bits(const struct pcpu_chunk_map *m, int bit)
{
	return live_alloc_bits(m, bit);
}

/* Start of the free run that ends at bit (bit itself if bit - 1 is used). */
static inline int free_run_start(const struct pcpu_chunk_map *m, int bit)
{
	const struct pcpu_block_md *cm = &m->chunk_md;
	int page, last;

	if (bit == 0 || test_bit_(m->alloc_map, bit - 1))
		return bit;
	if (cm->contig_hint && cm->contig_hint_start + cm->contig_hint == bit)
		return cm->contig_hint_start;
	if (cm->scan_hint > 0 && cm->scan_hint_start + cm->scan_hint == bit)
		return cm->scan_hint_start;
	page = (bit - 1) / BLOCK_BITS;
	last = find_last_set(m->alloc_map, page * BLOCK_BITS, bit);
	if (last >= 0)
		return last + 1;
	while (page > 0 && m->md_blocks[page - 1].left_free == BLOCK_BITS)
		page--;
	if (page == 0)
		return 0;
	return page * BLOCK_BITS - m->md_blocks[page - 1].right_free;
}

/* End of the free run that starts at bit (bit itself if bit is used). */
static inline int free_run_end(const struct pcpu_chunk_map *m, int bit)
{
	const struct pcpu_block_md *cm = &m->chunk_md;
	int page, end, pos;

	if (bit >= m->nr_bits || test_bit_(m->alloc_map, bit))
		return bit;
	if (cm->contig_hint && cm->contig_hint_start == bit)
		return bit + cm->contig_hint;
	if (cm->scan_hint > 0 && cm->scan_hint_start == bit)
		return bit + cm->scan_hint;
	page = bit / BLOCK_BITS;
	end = (page + 1) * BLOCK_BITS;
	pos = find_next_set(m->alloc_map, bit, end);
	if (pos < end)
		return pos;
	for (page++; page < m->nr_pages; page++)
		if (m->md_blocks[page].left_free != BLOCK_BITS)
			return page * BLOCK_BITS + m->md_blocks[page].left_free;
	return m->nr_bits;
}

/* Clears [bit, bit + bits), nr whole allocations, and merges the hints. */
static void free_area(struct pcpu_chunk_map *m, int bit, int bits, int nr)
{
	int end = bit + bits, run_start, run_end;

	/* The merged run, measured before any hint changes. */
	run_start = free_run_start(m, bit);
	run_end = free_run_end(m, end);
	change_range(m->alloc_map, bit, bits, false);

	for (int page = bit / BLOCK_BITS; page <= (end - 1) / BLOCK_BITS; page++) {
		struct pcpu_block_md *md = &m->md_blocks[page];
		int base = page * BLOCK_BITS;
		int ks = run_start > base ? run_start - base : 0;
		int ke = run_end < base + BLOCK_BITS ? run_end - base : BLOCK_BITS;

		md_free_update(md, ks, ke);
		if (md->left_free == BLOCK_BITS && test_bit_(m->populated, page))
			m->nr_empty_pop_pages++;
	}
	md_free_update(&m->chunk_md, run_start, run_end);

	m->free_bytes += bits * PCPU_MIN_ALLOC_SIZE;
	m->nr_alloc -= nr;
}

int pcpu_chunk_map_free(struct pcpu_chunk_map *m, int bit)
{
	int bits = live_alloc_bits(m, bit);

	if (bits < 0)
		return -1;
	free_area(m, bit, bits, 1);
	return bits;
}

int pcpu_chunk_map_free_run(struct pcpu_chunk_map *m, int bit, int bits, int nr)
{
	int end = bit + bits;

	/* Whole live allocations only: a start, allocated bits, a boundary at the end. */
	if (bits <= 0 || live_alloc_bits(m, bit) < 0 || end > m->nr_bits - tail_bits(m) ||
	    !test_bit_(m->bound_map, end) || find_next_zero(m->alloc_map, bit, end) < end)
		return -1;
	free_area(m, bit, bits, nr);
	return bits;
}

int pcpu_chunk_map_split(struct pcpu_chunk_map *m, int bit, int piece)
{
	int bits = live_alloc_bits(m, bit);

	if (bits < 0 || piece <= 0 || bits % piece)
		return -1;
	/* An allocation's interior has no boundary bits: add one per piece. */
	for (int b = bit + piece; b < bit + bits; b += piece)
		set_bit_(m->bound_map, b);
	m->nr_alloc += bits / piece - 1;
	return bits / piece;
}

int pcpu_chunk_map_contig_bits(struct pcpu_chunk_map *m)
{
	return m->chunk_md.contig_hint;
}

/* ---- stats and self-check --------------------------------------------------- */

/* What a scan of the bitmap over [lo, hi) finds. */
struct run_census {
	int first_free;		/* offset from lo, or hi - lo */
	int left_free, right_free;
	int free_bits;
	struct top2 top;
	int other_max;		/* largest run not starting at 'skip' */
};

static void census(const struct pcpu_chunk_map *m, int lo, int hi, int skip,
		   struct run_census *c)
{
	int pos, run_end;

	memset(c, 0, sizeof(*c));
	c->first_free = hi - lo;
	pos = find_next_zero(m->alloc_map, lo, hi);
	while (pos < hi) {
		run_end = find_next_set(m->alloc_map, pos, hi);
		if (c->first_free == hi - lo)
			c->first_free = pos - lo;
		if (pos == lo)
			c->left_free = run_end - pos;
		if (run_end == hi)
			c->right_free = run_end - pos;
		c->free_bits += run_end - pos;
		top2_add(&c->top, pos - lo, run_end - pos);
		if (pos - lo != skip && run_end - pos > c->other_max)
			c->other_max = run_end - pos;
		pos = find_next_zero(m->alloc_map, run_end, hi);
	}
}

/*
 * sum_frag and max_frag, our definition: every free run except the
 * largest one counts as a fragment; sum_frag is their total size and
 * max_frag the largest of them (the second largest run), both in bytes.
 */
void pcpu_chunk_map_stats(const struct pcpu_chunk_map *m,
			  struct pcpu_chunk_map_stats *st)
{
	struct run_census c;

	census(m, 0, m->nr_bits, -1, &c);
	st->first_bit = c.first_free;
	st->free_bytes = (size_t)c.free_bits * PCPU_MIN_ALLOC_SIZE;
	st->contig_bytes = (size_t)c.top.best.len * PCPU_MIN_ALLOC_SIZE;
	st->sum_frag = (size_t)(c.free_bits - c.top.best.len) * PCPU_MIN_ALLOC_SIZE;
	st->max_frag = (size_t)c.top.second.len * PCPU_MIN_ALLOC_SIZE;
}

static int fail(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (buf && len) {
		va_start(ap, fmt);
		vsnprintf(buf, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* True if [lo + start, lo + start + len) is a maximal free run of [lo, hi). */
static bool is_free_run(const struct pcpu_chunk_map *m, int lo, int hi,
			int start, int len)
{
	int s = lo + start;

	if (len <= 0 || start < 0 || s + len > hi)
		return false;
	if (s > lo && !test_bit_(m->alloc_map, s - 1))
		return false;
	return find_next_set(m->alloc_map, s, hi) == s + len;
}

static int check_md(const struct pcpu_chunk_map *m,
		    const struct pcpu_block_md *md, int lo, int hi,
		    const char *what, int idx, char *buf, size_t len)
{
	struct run_census c;

	census(m, lo, hi, md->contig_hint ? md->contig_hint_start : -1, &c);
	if (md->nr_bits != hi - lo)
		return fail(buf, len, "%s %d: nr_bits %d, want %d", what, idx,
			    md->nr_bits, hi - lo);
	if (md->first_free != c.first_free || md->left_free != c.left_free ||
	    md->right_free != c.right_free)
		return fail(buf, len,
			    "%s %d: first/left/right %d/%d/%d, want %d/%d/%d",
			    what, idx, md->first_free, md->left_free,
			    md->right_free, c.first_free, c.left_free,
			    c.right_free);
	if (md->contig_hint != c.top.best.len)
		return fail(buf, len, "%s %d: contig_hint %d, want %d", what,
			    idx, md->contig_hint, c.top.best.len);
	if (md->contig_hint &&
	    !is_free_run(m, lo, hi, md->contig_hint_start, md->contig_hint))
		return fail(buf, len, "%s %d: contig run %d+%d is not a run",
			    what, idx, md->contig_hint_start, md->contig_hint);
	if (md->scan_hint == SCAN_UNKNOWN)
		return 0;
	if (md->scan_hint != c.other_max)
		return fail(buf, len, "%s %d: scan_hint %d, want %d", what, idx,
			    md->scan_hint, c.other_max);
	if (md->scan_hint &&
	    (md->scan_hint_start == md->contig_hint_start ||
	     !is_free_run(m, lo, hi, md->scan_hint_start, md->scan_hint)))
		return fail(buf, len, "%s %d: scan run %d+%d is not a run",
			    what, idx, md->scan_hint_start, md->scan_hint);
	return 0;
}

/* Every allocated stretch must have bound bits at both of its ends. */
static int check_bounds(const struct pcpu_chunk_map *m, char *buf, size_t len)
{
	int pos = find_next_set(m->alloc_map, 0, m->nr_bits);

	if (!test_bit_(m->bound_map, m->nr_bits))
		return fail(buf, len, "bound sentinel missing");
	while (pos < m->nr_bits) {
		int end = find_next_zero(m->alloc_map, pos, m->nr_bits);

		if (!test_bit_(m->bound_map, pos) || !test_bit_(m->bound_map, end))
			return fail(buf, len, "bound bits missing around %d..%d",
				    pos, end);
		pos = find_next_set(m->alloc_map, end, m->nr_bits);
	}
	return 0;
}

static int count_allocs(const struct pcpu_chunk_map *m)
{
	int lo = head_bits(m), hi = m->nr_bits - tail_bits(m), n = 0;

	for (int pos = lo; pos < hi; pos = (pos / LONG_BITS + 1) * LONG_BITS) {
		int idx = pos / LONG_BITS;
		unsigned long word = m->alloc_map[idx] & m->bound_map[idx];

		word &= low_mask(pos);
		if ((idx + 1) * LONG_BITS > hi)
			word &= (1UL << (hi % LONG_BITS)) - 1;
		n += __builtin_popcountl(word);
	}
	return n;
}

int pcpu_chunk_map_check(const struct pcpu_chunk_map *m, char *buf, size_t len)
{
	int head = head_bits(m), tail = tail_bits(m);
	int nr_populated = 0, nr_empty = 0, free_bits;
	struct run_census c;

	if (m->nr_bits != m->nr_pages * BLOCK_BITS || head + tail > m->nr_bits)
		return fail(buf, len, "bad geometry");
	if (find_next_zero(m->alloc_map, 0, head) != head ||
	    find_next_zero(m->alloc_map, m->nr_bits - tail, m->nr_bits) != m->nr_bits)
		return fail(buf, len, "hidden head/tail not allocated");
	if (check_bounds(m, buf, len))
		return -1;
	for (int i = 0; i < m->nr_pages; i++) {
		int base = i * BLOCK_BITS;

		if (check_md(m, &m->md_blocks[i], base, base + BLOCK_BITS,
			     "block", i, buf, len))
			return -1;
		if (test_bit_(m->populated, i)) {
			nr_populated++;
			nr_empty += find_next_set(m->alloc_map, base,
						  base + BLOCK_BITS) == base + BLOCK_BITS;
		}
	}
	if (check_md(m, &m->chunk_md, 0, m->nr_bits, "chunk", 0, buf, len))
		return -1;
	census(m, 0, m->nr_bits, -1, &c);
	free_bits = c.free_bits;
	if (m->free_bytes != free_bits * PCPU_MIN_ALLOC_SIZE)
		return fail(buf, len, "free_bytes %d, want %d", m->free_bytes,
			    free_bits * PCPU_MIN_ALLOC_SIZE);
	if (m->nr_alloc != count_allocs(m))
		return fail(buf, len, "nr_alloc %d, want %d", m->nr_alloc,
			    count_allocs(m));
	if (m->nr_populated != nr_populated || m->nr_empty_pop_pages != nr_empty)
		return fail(buf, len, "populated %d empty %d, want %d %d",
			    m->nr_populated, m->nr_empty_pop_pages,
			    nr_populated, nr_empty);
	return 0;
}
