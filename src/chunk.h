/* SPDX-License-Identifier: MIT */
/*
 * One chunk's allocation metadata: the kernel's bitmap allocator, written
 * fresh.  Pure: no locks, no system calls, no global state, so it can be
 * unit-tested and fuzzed on its own.  The caller (alloc.c) holds the lock.
 *
 * A chunk's unit is nr_pages pages; one bit of alloc_map covers
 * PCPU_MIN_ALLOC_SIZE (4) bytes, one *block* covers one page (1024 bits).
 * bound_map has a bit at the start of every allocation and one past its
 * end, so a free needs no size.  Each block keeps hints that let the fit
 * search skip it (contig, scan, first_free, left/right free); the
 * chunk-level hints summarize the blocks.  Hints are repaired lazily: a
 * block is rescanned only when its contig hint was broken.
 *
 * The first chunk hides its head (static + reserved regions) and tail by
 * marking them allocated (start_offset / end_offset).
 *
 * populated: pages the allocator may hand out without waiting (atomic
 * allocations use only populated pages).  A page is *empty* when no bit of
 * it is allocated.
 */
#ifndef PERCPU_CHUNK_H
#define PERCPU_CHUNK_H

#include <stdbool.h>
#include <stddef.h>

#define PCPU_MIN_ALLOC_SHIFT 2
#define PCPU_MIN_ALLOC_SIZE (1 << PCPU_MIN_ALLOC_SHIFT)
#define PCPU_BITMAP_BLOCK_SIZE 4096
#define PCPU_BITMAP_BLOCK_BITS (PCPU_BITMAP_BLOCK_SIZE >> PCPU_MIN_ALLOC_SHIFT)

struct pcpu_block_md {
	int scan_hint;		/* a free run found by a scan, <= contig_hint */
	int scan_hint_start;
	int contig_hint;	/* largest known free run */
	int contig_hint_start;
	int left_free;		/* free bits at the block's start */
	int right_free;		/* free bits at the block's end */
	int first_free;		/* first free bit */
	int nr_bits;		/* bits in the block */
};

struct pcpu_chunk_map {
	int nr_pages;
	int nr_bits;		/* nr_pages * PCPU_BITMAP_BLOCK_BITS */
	int start_offset;	/* hidden head, bytes (multiple of 4) */
	int end_offset;		/* hidden tail, bytes */
	unsigned long *alloc_map;	/* nr_bits */
	unsigned long *bound_map;	/* nr_bits + 1 */
	unsigned long *populated;	/* nr_pages */
	struct pcpu_block_md *md_blocks;	/* nr_pages */
	struct pcpu_block_md chunk_md;
	int free_bytes;		/* free space, bytes, hidden parts excluded */
	int nr_alloc;		/* live allocations */
	int nr_populated;	/* populated pages */
	int nr_empty_pop_pages;	/* populated pages with no allocated bit */
	size_t max_alloc_size;	/* largest allocation ever made, bytes */
};

/* Bytes of memory pcpu_chunk_map_init() needs for nr_pages pages. */
size_t pcpu_chunk_map_mem_size(int nr_pages);

/*
 * Initializes m over mem (pcpu_chunk_map_mem_size(nr_pages) bytes, any
 * content).  start_offset/end_offset bytes at the head/tail are hidden
 * (marked allocated, never freed).  populated: all pages start populated.
 */
void pcpu_chunk_map_init(struct pcpu_chunk_map *m, void *mem, int nr_pages,
			 int start_offset, int end_offset, bool populated);

/*
 * Allocates bits bits (>= 1) aligned to align_bits bits (a power of two,
 * <= PCPU_BITMAP_BLOCK_BITS).  pop_only: only within populated pages.
 * Returns the first bit, or -1 if no free run fits.
 */
int pcpu_chunk_map_alloc(struct pcpu_chunk_map *m, int bits, int align_bits,
			 bool pop_only);

/*
 * Frees the allocation starting at bit; returns its size in bits, or -1
 * (nothing changed) if bit does not start a live allocation.
 */
int pcpu_chunk_map_free(struct pcpu_chunk_map *m, int bit);

/*
 * Frees nr adjacent whole allocations covering [bit, bit + bits) in one
 * step (the object cache returns runs of neighbours).  Returns bits, or -1
 * (nothing changed) if the range does not start and end on allocation
 * boundaries or holds free space.
 */
int pcpu_chunk_map_free_run(struct pcpu_chunk_map *m, int bit, int bits, int nr);

/*
 * Divides the live allocation starting at bit into allocations of piece
 * bits each (the object cache takes one run and splits it).  Returns the
 * number of pieces, or -1 (nothing changed).
 */
int pcpu_chunk_map_split(struct pcpu_chunk_map *m, int bit, int piece);

/* Size in bits of the live allocation starting at bit, or -1. */
int pcpu_chunk_map_alloc_bits(const struct pcpu_chunk_map *m, int bit);

/* Marks pages [start, end) populated / not populated. */
void pcpu_chunk_map_populate(struct pcpu_chunk_map *m, int start, int end);
void pcpu_chunk_map_depopulate(struct pcpu_chunk_map *m, int start, int end);

/* True if no bit of page is allocated (hidden parts count as allocated). */
bool pcpu_chunk_map_page_empty(const struct pcpu_chunk_map *m, int page);

/* Largest free run in bits (the chunk's contig hint, exact). */
int pcpu_chunk_map_contig_bits(struct pcpu_chunk_map *m);

/* The kernel's per-chunk stats: first free bit, fragmentation. */
struct pcpu_chunk_map_stats {
	int first_bit;		/* first free bit, or nr_bits */
	size_t free_bytes, contig_bytes;
	size_t sum_frag;	/* free bytes in runs shorter than ... (kernel def) */
	size_t max_frag;
};
void pcpu_chunk_map_stats(const struct pcpu_chunk_map *m,
			  struct pcpu_chunk_map_stats *st);

/*
 * Recomputes every hint from the bitmaps and compares: 0 if consistent,
 * else -1 with a description in buf.  For tests and fuzzing.
 */
int pcpu_chunk_map_check(const struct pcpu_chunk_map *m, char *buf, size_t len);

#endif
