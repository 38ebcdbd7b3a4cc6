/* SPDX-License-Identifier: MIT */
/*
 * The dynamic per-CPU allocator: alloc_percpu()/free_percpu().
 *
 * The kernel's structure, written fresh.  Chunks live in one reservation
 * (src/setup.c), each chunk one unit per possible CPU; chunk.c keeps each
 * chunk's bitmaps and hints.  Chunks sit in lists ("slots") by the size of
 * their largest free run; an allocation scans from the slot of its size
 * upward, then the sidelined chunks (those with released pages), then the
 * fully free chunk, and creates a chunk when a blocking allocation finds
 * no room.  Two locks, as in the kernel: pcpu_lock (short) protects every
 * bitmap, list and counter; pcpu_alloc_mutex serializes chunk creation,
 * destruction and page release, so a blocking allocation that takes a
 * page being released waits, and a non-blocking one never does (it uses
 * only populated pages and never creates a chunk).
 *
 * In front of the bitmaps sits a per-CPU cache of free objects per size
 * class (4..1024 bytes), itself per-CPU memory whose stacks are pushed
 * and popped with rseq critical sections: an alloc+free pair takes no
 * lock; one atomic exchange on the chunk's live map makes every double
 * free visible.  Cached objects stay allocated in the bitmaps, which
 * remain the source of truth; the live map also records an object's
 * class, so a free needs no size.
 *
 * Every allocation starts as zero on every possible CPU.  A "dirty" bit
 * per 4-byte granule says the granule was handed out since its page was
 * last released, so some unit may hold data there; an area with a dirty
 * granule is zeroed on every CPU, writing only where a copy is non-zero,
 * so a CPU that never wrote an area never gains its page.  Released pages
 * (MADV_DONTNEED) read as zero again and lose their bits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "internal.h"
#include "pcpu_stack.h"
#include <percpu/ops.h>

/* ---- the kernel's constants ---- */
#define PCPU_SLOT_BASE_SHIFT 5
#define PCPU_SLOT_FAIL_THRESHOLD 3
#define PCPU_EMPTY_POP_PAGES_LOW 2
#define PCPU_EMPTY_POP_PAGES_HIGH 4
/* Fully free chunks kept before a free destroys them in one batch (ours). */
#define PCPU_FREE_CHUNKS_TRIGGER 8
/*
 * The kernel releases isolated chunks' pages from a worker; the freeing
 * thread does it here, so it waits until a few chunks are queued: frees
 * that keep going empty most of them meanwhile, and whole chunks go back
 * in one call for all units instead of one per unit and page range.
 */
#define PCPU_DEPOPULATE_BATCH 16

/* ---- the object cache ---- */
#define PCPU_NR_CLASSES 9		/* 4, 8, ... 1024 bytes */
#define PCPU_MAX_CLASS_SIZE (4u << (PCPU_NR_CLASSES - 1))
#define PCPU_CACHE_CAP 64		/* objects per class per CPU */
#define PCPU_CACHE_BATCH (PCPU_CACHE_CAP / 2)
#define PCPU_STACK_BYTES (sizeof(struct pcpu_stack) + PCPU_CACHE_CAP * sizeof(uintptr_t))


struct pcpu_chunk {
	struct pcpu_chunk_map map;
	struct pcpu_chunk *prev, *next;	/* its list */
	int list;			/* index of its list, -1: none */
	unsigned int idx;		/* position in the reservation */
	bool mapped;
	bool immutable;			/* the first chunk: never released */
	bool reserved;			/* the reserved chunk */
	void *map_mem;			/* the chunk map's memory */
	uint8_t *live;			/* the live map, one byte per granule (live_byte()) */
	unsigned long *dirty;		/* map.nr_bits bits: handed out since released */
};

/*
 * Lists: [0, nr_slots) by largest free run; then the fully free chunks,
 * the chunks waiting for page release and the sidelined chunks.
 */
struct pcpu_lists {
	int nr_slots, free_list, to_depopulate, sidelined, nr_lists;
	struct pcpu_chunk **head, **tail;
	unsigned int *count;
};

static pthread_mutex_t pcpu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pcpu_alloc_mutex = PTHREAD_MUTEX_INITIALIZER;

static struct pcpu_lists lists;
static struct pcpu_chunk **chunks;	/* by idx; never freed, reused */
static struct pcpu_chunk *reserved_chunk;
static size_t reserved_end;		/* unit offset where chunk 0's dynamic part starts */
static unsigned int nr_chunks, nr_max_chunks;
static unsigned int chunks_hi;		/* highest chunk index ever used + 1 */
static unsigned int chunks_free_hint = 1;	/* no unmapped index below it */
static int global_empty_pop_pages;
static bool atomic_alloc_failed;	/* the balance work should refill the reserve */
static uintptr_t cache_ptr;		/* per-CPU pointer of the caches, 0: none */
/*
 * The CPUs (by id) whose caches were ever set up: statistics and drains
 * read only those, so the pages of CPUs that never cached stay untouched.
 */
static unsigned long *cache_used;

/* Statistics (under pcpu_lock unless noted; user-level counts in stats.c). */
static unsigned long nr_map_live, nr_max_alloc;
static size_t min_alloc_size = SIZE_MAX, max_alloc_size;	/* atomic, no lock: note_size() */

/* ------------------------------------------------------------------------ */

static int fls_size(size_t x)
{
	return x ? (int)(sizeof(long) * 8) - __builtin_clzl(x) : 0;
}

static int size_to_slot(size_t size)
{
	return pcpu_max(fls_size(size) - PCPU_SLOT_BASE_SHIFT + 2, 1);
}

static size_t chunk_capacity(const struct pcpu_chunk *c)
{
	return (size_t)c->map.nr_bits * PCPU_MIN_ALLOC_SIZE -
	       (size_t)c->map.start_offset - (size_t)c->map.end_offset;
}

static int chunk_slot(struct pcpu_chunk *c)
{
	int contig = pcpu_chunk_map_contig_bits(&c->map);

	if (c->map.free_bytes < PCPU_MIN_ALLOC_SIZE || !contig)
		return 0;
	return pcpu_min(size_to_slot((size_t)contig * PCPU_MIN_ALLOC_SIZE), lists.nr_slots - 1);
}

static void list_del(struct pcpu_chunk *c)
{
	if (c->list < 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		lists.head[c->list] = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		lists.tail[c->list] = c->prev;
	lists.count[c->list]--;
	c->prev = c->next = NULL;
	c->list = -1;
}

/* At the head, or at the tail (a chunk moving down is tried last there). */
static void list_add(struct pcpu_chunk *c, int list, bool tail)
{
	list_del(c);
	c->list = list;
	lists.count[list]++;
	if (tail) {
		c->prev = lists.tail[list];
		c->next = NULL;
		if (c->prev)
			c->prev->next = c;
		else
			lists.head[list] = c;
		lists.tail[list] = c;
	} else {
		c->next = lists.head[list];
		c->prev = NULL;
		if (c->next)
			c->next->prev = c;
		else
			lists.tail[list] = c;
		lists.head[list] = c;
	}
}

/* Puts a chunk in the list its free space calls for (pcpu_chunk_relocate). */
static void chunk_relocate(struct pcpu_chunk *c)
{
	if (c->reserved || c->list == lists.to_depopulate)
		return;
	int list;
	if (!c->immutable && (size_t)c->map.free_bytes == chunk_capacity(c))
		list = lists.free_list;
	else if (c->list == lists.sidelined && c->map.nr_populated < c->map.nr_pages)
		return;		/* stays sidelined until it is repopulated */
	else
		list = chunk_slot(c);
	if (list != c->list)
		list_add(c, list, list < c->list);
}

/* ---- chunk creation and destruction (pcpu_alloc_mutex held) ---- */

static struct pcpu_chunk *chunk_struct(unsigned int idx, int start_off, int end_off,
				       int nr_pages)
{
	size_t map_mem = pcpu_chunk_map_mem_size(nr_pages);
	size_t nr_bits = (size_t)nr_pages * PCPU_BITMAP_BLOCK_BITS;
	struct pcpu_chunk *c = calloc(1, sizeof(*c));
	void *mem = malloc(map_mem);
	unsigned long *dirty = calloc(BITS_TO_LONGS(nr_bits), sizeof(long));

	if (!c || !mem || !dirty) {
		free(c), free(mem), free(dirty);
		return NULL;
	}
	pcpu_chunk_map_init(&c->map, mem, nr_pages, start_off, end_off, true);
	c->map_mem = mem;
	/* In the slot's padding (see pcpu_live_map_size); the reserved chunk shares slot 0's. */
	c->live = (uint8_t *)pcpu.region + (size_t)idx * pcpu.chunk_stride + pcpu.live_offset;
	c->idx = idx;
	c->list = -1;
	c->dirty = dirty;
	return c;
}

/*
 * Chunk slots of the reservation are mapped (read/write, each group's
 * units bound to its node) in batches and never unmapped: a destroyed
 * chunk gives its memory back with one MADV_DONTNEED over its span and
 * keeps its mapping and NUMA policy for the next chunk in that slot.  So
 * chunk churn costs no mmap/mbind and no VMA splits.
 */
#define PCPU_MAP_BATCH 16

static unsigned int slots_mapped = 1;	/* slots [0, slots_mapped) are mapped */

/* Binds chunk slots [first, first + n), merging neighbouring ranges of one node. */
static int bind_slots(unsigned int first, unsigned int n)
{
	const struct percpu_layout *l = pcpu.layout;
	char *run = NULL;
	size_t run_len = 0;
	int run_node = -1;

	for (unsigned int idx = first; idx < first + n; idx++) {
		char *base = pcpu.region + (size_t)idx * pcpu.chunk_stride;
		for (unsigned int g = 0; g < l->nr_groups; g++) {
			const struct percpu_group_info *gi = &l->groups[g];
			char *lo = base + (g ? gi->base_offset : 0);
			/* The last group also takes the stride's padding, so slots merge. */
			char *hi = g + 1 < l->nr_groups ? base + l->groups[g + 1].base_offset :
							  base + pcpu.chunk_stride;
			if (run && run + run_len == lo && run_node == gi->node) {
				run_len += (size_t)(hi - lo);
				continue;
			}
			if (run && pcpu_vm_bind(run, run_len, run_node))
				return -1;
			run = lo;
			run_len = (size_t)(hi - lo);
			run_node = gi->node;
		}
	}
	return run ? pcpu_vm_bind(run, run_len, run_node) : 0;
}

/* Maps the next batch of slots, covering at least slot idx. */
static int map_slots(unsigned int idx)
{
	unsigned int first = slots_mapped;
	unsigned int n = pcpu_min(pcpu_max(idx + 1 - first, (unsigned)PCPU_MAP_BATCH),
				  pcpu.max_chunks - first);
	char *base = pcpu.region + (size_t)first * pcpu.chunk_stride;

	if (pcpu_vm_map(base, (size_t)n * pcpu.chunk_stride))
		return -1;
	if (bind_slots(first, n)) {
		pcpu_vm_unmap(base, (size_t)n * pcpu.chunk_stride);
		return -1;
	}
	slots_mapped = first + n;
	return 0;
}

/* A new chunk, in the free list; NULL if none can be made. */
static struct pcpu_chunk *chunk_create(const char **why)
{
	unsigned int idx;
	int nr_pages = (int)(pcpu.layout->unit_size / PCPU_PAGE_SIZE);

	pthread_mutex_lock(&pcpu_lock);
	for (idx = chunks_free_hint; idx < pcpu.max_chunks && chunks[idx] && chunks[idx]->mapped; idx++)
		;
	chunks_free_hint = idx;
	pthread_mutex_unlock(&pcpu_lock);
	if (idx >= pcpu.max_chunks) {
		*why = "address space for chunks exhausted";
		return NULL;
	}
	struct pcpu_chunk *c = chunks[idx];
	if (!c) {
		c = chunk_struct(idx, 0, 0, nr_pages);
		if (!c) {
			*why = "out of memory for chunk metadata";
			return NULL;
		}
		__atomic_store_n(&chunks[idx], c, __ATOMIC_RELEASE);
	}
	if (idx >= slots_mapped && map_slots(idx)) {
		*why = "failed to map a new chunk";
		return NULL;
	}
	pthread_mutex_lock(&pcpu_lock);
	/* The dirty bits stay as the last destruction left them. */
	pcpu_chunk_map_init(&c->map, c->map_mem, nr_pages, 0, 0, true);
	__atomic_store_n(&c->mapped, true, __ATOMIC_RELEASE);
	chunks_hi = pcpu_max(chunks_hi, idx + 1);
	nr_chunks++;
	nr_max_chunks = pcpu_max(nr_max_chunks, nr_chunks);
	global_empty_pop_pages += c->map.nr_empty_pop_pages;
	list_add(c, lists.free_list, false);
	pthread_mutex_unlock(&pcpu_lock);
	return c;
}

static int cmp_uint(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;
	return (x > y) - (x < y);
}

/* After [first, first + n) was released (or not), their dirty bits. */
static void slots_released(const unsigned int *idx, int n, bool ok)
{
	for (int i = 0; ok && i < n; i++) {
		struct pcpu_chunk *c = chunks[idx[i]];
		memset(c->dirty, 0, BITS_TO_LONGS((size_t)c->map.nr_bits) * sizeof(long));
	}
}

/*
 * Destroys every fully free chunk but one, as the kernel's balance work
 * does: their memory goes back in one call per run of neighbouring slots.
 * If that fails, their dirty bits stay and reuse zeroes them.
 * pcpu_alloc_mutex held.
 */
static void destroy_free_chunks(void)
{
	unsigned int idx[256];
	int n;

	do {
		n = 0;
		pthread_mutex_lock(&pcpu_lock);
		struct pcpu_chunk *keep = lists.head[lists.free_list];
		while (keep && keep->next && n < (int)(sizeof(idx) / sizeof(idx[0]))) {
			struct pcpu_chunk *c = keep->next;
			list_del(c);
			__atomic_store_n(&c->mapped, false, __ATOMIC_RELEASE);
			nr_chunks--;
			global_empty_pop_pages -= c->map.nr_empty_pop_pages;
			chunks_free_hint = pcpu_min(chunks_free_hint, c->idx);
			idx[n++] = c->idx;
		}
		pthread_mutex_unlock(&pcpu_lock);
		qsort(idx, (size_t)n, sizeof(idx[0]), cmp_uint);
		for (int i = 0, j; i < n; i = j) {
			for (j = i + 1; j < n && idx[j] == idx[j - 1] + 1; j++)
				;
			bool ok = !pcpu_vm_release(pcpu.region + (size_t)idx[i] * pcpu.chunk_stride,
						   (size_t)(j - i) * pcpu.chunk_stride);
			slots_released(idx + i, j - i, ok);
		}
	} while (n == (int)(sizeof(idx) / sizeof(idx[0])));
}

/* ---- the first chunk ---- */

static void *alloc_from_chunks(size_t size, size_t align, int flags, const char **why);
static void drain_to_depopulate(void);
static void repopulate_reserve(bool may_create);

int pcpu_alloc_init(void)
{
	const struct percpu_layout *l = pcpu.layout;
	int unit_pages = (int)(l->unit_size / PCPU_PAGE_SIZE);
	size_t static_end = PCPU_ALIGN(l->static_size, PCPU_MIN_ALLOC_SIZE);

	lists.nr_slots = size_to_slot(l->unit_size) + 1;
	lists.free_list = lists.nr_slots;
	lists.to_depopulate = lists.nr_slots + 1;
	lists.sidelined = lists.nr_slots + 2;
	lists.nr_lists = lists.nr_slots + 3;
	lists.head = calloc((size_t)lists.nr_lists, sizeof(*lists.head));
	lists.tail = calloc((size_t)lists.nr_lists, sizeof(*lists.tail));
	lists.count = calloc((size_t)lists.nr_lists, sizeof(*lists.count));
	chunks = calloc(pcpu.max_chunks, sizeof(*chunks));
	if (!lists.head || !lists.tail || !lists.count || !chunks)
		return -1;

	/* The reserved chunk covers [static, static + reserved) of chunk 0. */
	reserved_end = PCPU_ALIGN(static_end + l->reserved_size, PCPU_MIN_ALLOC_SIZE);
	if (l->reserved_size) {
		size_t span = PCPU_ALIGN(reserved_end, PCPU_PAGE_SIZE);
		reserved_chunk = chunk_struct(0, (int)static_end, (int)(span - reserved_end),
					      (int)(span / PCPU_PAGE_SIZE));
		if (!reserved_chunk)
			return -1;
		reserved_chunk->reserved = reserved_chunk->immutable = true;
		reserved_chunk->mapped = true;
	}
	/* The first dynamic chunk: the rest of chunk 0, static and reserved hidden. */
	struct pcpu_chunk *c = chunk_struct(0, (int)reserved_end, 0, unit_pages);
	if (!c)
		return -1;
	c->immutable = c->mapped = true;
	chunks[0] = c;
	nr_chunks = nr_max_chunks = chunks_hi = 1;
	global_empty_pop_pages = c->map.nr_empty_pop_pages;
	chunk_relocate(c);

	/* Internal per-CPU state: statistics counters and the object cache. */
	const char *why;
	if (PERCPU_SMP) {
		cache_used = calloc(BITS_TO_LONGS(pcpu.layout->nr_cpu_ids), sizeof(unsigned long));
		if (cache_used)
			cache_ptr = (uintptr_t)alloc_from_chunks(PCPU_NR_CLASSES * PCPU_STACK_BYTES,
								 64, 0, &why);
	}
	return 0;
}

static void chunk_struct_free(struct pcpu_chunk *c)
{
	if (!c)
		return;
	free(c->map_mem);
	free(c->dirty);
	free(c);
}

/*
 * Undoes pcpu_alloc_init() after a setup that failed later, so that a
 * retry starts from nothing (the region itself is unmapped by setup).
 */
void pcpu_alloc_fini(void)
{
	if (chunks)
		for (unsigned int idx = 0; idx < pcpu.max_chunks; idx++)
			chunk_struct_free(chunks[idx]);
	chunk_struct_free(reserved_chunk);
	free(chunks);
	free(lists.head);
	free(lists.tail);
	free(lists.count);
	memset(&lists, 0, sizeof(lists));
	chunks = NULL;
	reserved_chunk = NULL;
	reserved_end = 0;
	nr_chunks = nr_max_chunks = chunks_hi = 0;
	chunks_free_hint = slots_mapped = 1;
	global_empty_pop_pages = 0;
	atomic_alloc_failed = false;
	cache_ptr = 0;
	free(cache_used);
	cache_used = NULL;
	nr_map_live = nr_max_alloc = 0;
	min_alloc_size = SIZE_MAX;
	max_alloc_size = 0;
}

/* ---- lookup and validation ---- */

/* The chunk holding per-CPU address a, with its bit (set even if none); NULL if none. */
static inline struct pcpu_chunk *chunk_of(uintptr_t a, int *bit)
{
	uintptr_t rel = a - pcpu.ptr_base;	/* below the base: a huge idx */
	size_t idx = rel >> pcpu.chunk_shift, off = rel & (pcpu.chunk_stride - 1);
	struct pcpu_chunk *c;

	*bit = (int)(off / PCPU_MIN_ALLOC_SIZE);
	if (idx >= pcpu.max_chunks || off >= pcpu.unit_size || off % PCPU_MIN_ALLOC_SIZE)
		return NULL;
	if (__builtin_expect(idx == 0 && off < reserved_end, 0)) {
		/* The reserved chunk's map covers only the start of the unit. */
		c = reserved_chunk;
		return c && *bit < c->map.nr_bits ? c : NULL;
	}
	/* A dynamic chunk's map covers the whole unit. */
	c = __atomic_load_n(&chunks[idx], __ATOMIC_ACQUIRE);
	return c && __atomic_load_n(&c->mapped, __ATOMIC_ACQUIRE) ? c : NULL;
}

static __attribute__((noreturn)) void invalid_free(const void *p)
{
	pcpu_msg("invalid free of %p", p);
	abort();
}

static inline int size_class(size_t size, size_t align)
{
	if (size > PCPU_MAX_CLASS_SIZE)
		return -1;
	int cls = size <= 4 ? 0 : fls_size(size - 1) - 2;
	return align <= (4u << cls) ? cls : -1;
}

/* ---- statistics helpers ---- */

static void note_size_slow(size_t size)
{
	size_t v = __atomic_load_n(&min_alloc_size, __ATOMIC_RELAXED);
	while (size < v && !__atomic_compare_exchange_n(&min_alloc_size, &v, size, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	v = __atomic_load_n(&max_alloc_size, __ATOMIC_RELAXED);
	while (size > v && !__atomic_compare_exchange_n(&max_alloc_size, &v, size, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* A request size for min/max_alloc_size; a thread's repeated size costs one compare. */
static inline void note_size(size_t size)
{
	if (__builtin_expect(size != pcpu_thread_counts.last_size, 0)) {
		note_size_slow(size);
		pcpu_thread_counts.last_size = size;
	}
}

/* ---- bitmap allocation (pcpu_lock held) ---- */

/* The dirty bits of [bit, bit + bits) in word w, as a mask. */
static unsigned long word_mask(int bit, int bits, int w)
{
	int lo = pcpu_max(bit, w * BITS_PER_LONG) - w * BITS_PER_LONG;
	int hi = pcpu_min(bit + bits, (w + 1) * BITS_PER_LONG) - w * BITS_PER_LONG;
	unsigned long m = hi == BITS_PER_LONG ? ~0ul : (1ul << hi) - 1;
	return m & ~((1ul << lo) - 1);
}

static bool range_dirty(const struct pcpu_chunk *c, int bit, int bits)
{
	for (int w = bit / BITS_PER_LONG; w <= (bit + bits - 1) / BITS_PER_LONG; w++)
		if (__atomic_load_n(&c->dirty[w], __ATOMIC_RELAXED) & word_mask(bit, bits, w))
			return true;
	return false;
}

static void mark_dirty(struct pcpu_chunk *c, int bit, int bits)
{
	for (int w = bit / BITS_PER_LONG; w <= (bit + bits - 1) / BITS_PER_LONG; w++) {
		unsigned long m = word_mask(bit, bits, w);
		if ((__atomic_load_n(&c->dirty[w], __ATOMIC_RELAXED) & m) != m)
			__atomic_fetch_or(&c->dirty[w], m, __ATOMIC_RELAXED);
	}
}

/* Released pages read as zero on every unit. */
static void clear_dirty_pages(struct pcpu_chunk *c, int start, int end)
{
	int w0 = start * PCPU_BITMAP_BLOCK_BITS / BITS_PER_LONG;
	int w1 = end * PCPU_BITMAP_BLOCK_BITS / BITS_PER_LONG;
	for (int w = w0; w < w1; w++)
		__atomic_store_n(&c->dirty[w], 0ul, __ATOMIC_RELAXED);
}

/* Accounting around a chunk-map call that may change its empty pages. */
static int map_alloc(struct pcpu_chunk *c, int bits, int align_bits, bool pop_only)
{
	int before = c->map.nr_empty_pop_pages;
	int bit = pcpu_chunk_map_alloc(&c->map, bits, align_bits, pop_only);
	if (bit >= 0) {
		if (!c->reserved)
			global_empty_pop_pages += c->map.nr_empty_pop_pages - before;
		nr_max_alloc = pcpu_max(nr_max_alloc, ++nr_map_live);
	}
	return bit;
}

/* Frees nr adjacent allocations of bits in all (nr = 1: one of any size). */
static int map_free(struct pcpu_chunk *c, int bit, int bits, int nr)
{
	int before = c->map.nr_empty_pop_pages;
	int freed = nr == 1 ? pcpu_chunk_map_free(&c->map, bit) :
			      pcpu_chunk_map_free_run(&c->map, bit, bits, nr);
	if (freed > 0) {
		if (!c->reserved)
			global_empty_pop_pages += c->map.nr_empty_pop_pages - before;
		nr_map_live -= (unsigned long)nr;
	}
	return freed;
}

/* Populates (bookkeeping: pages fault in lazily) the pages an area covers. */
static void populate_area(struct pcpu_chunk *c, int bit, int bits)
{
	int first = bit / PCPU_BITMAP_BLOCK_BITS, last = (bit + bits - 1) / PCPU_BITMAP_BLOCK_BITS;
	if (c->map.nr_populated == c->map.nr_pages)
		return;
	pcpu_chunk_map_populate(&c->map, first, last + 1);
	if (c->map.nr_populated == c->map.nr_pages && c->list == lists.sidelined)
		list_del(c), c->list = -1;
}

/*
 * Finds room for bits in the existing chunks, as pcpu_alloc() does:
 * slots from the size's upward, then sidelined chunks, then free ones.
 */
static struct pcpu_chunk *find_area(int bits, int align_bits, bool atomic, int *bit)
{
	int first = size_to_slot((size_t)bits * PCPU_MIN_ALLOC_SIZE);
	int order[3] = { lists.sidelined, lists.free_list, -1 };

	for (int slot = first; slot < lists.nr_slots + 2; slot++) {
		int list = slot < lists.nr_slots ? slot : order[slot - lists.nr_slots];
		struct pcpu_chunk *c, *next;
		for (c = lists.head[list]; c; c = next) {
			next = c->next;
			*bit = map_alloc(c, bits, align_bits, atomic);
			if (*bit >= 0)
				return c;
			if (list > 0 && list < PCPU_SLOT_FAIL_THRESHOLD)
				list_add(c, 0, false);	/* a chunk that keeps failing here */
		}
	}
	return NULL;
}

/*
 * The live map: one byte for the first granule of each allocation a user
 * holds, 0 otherwise.  The byte says where a free sends the area: its
 * cache class + 1, or LIVE_UNCACHED (reserved areas, other sizes), so a
 * free reads no boundary map.  A free takes the byte with one atomic
 * exchange: of two threads freeing the same pointer at once, one sees 0.
 *
 * The bytes are spread over the map's 2^live_shift cache lines: granule
 * g's byte is byte g >> live_shift of the line whose index is the low
 * live_shift bits of g rotated right by six.  That is a bijection, so
 * areas less than lines granules apart never share a line: objects side
 * by side often sit in different CPUs' caches (a refill takes what frees
 * left), and two CPUs allocating and freeing neighbours would otherwise
 * pass one line back and forth.  The rotation puts areas at multiples of
 * 256 bytes (g % 64 == 0) in the first lines, so a chunk of such areas
 * writes one page of its map (units up to 1 MiB), not one per 64 lines.
 *
 * A chunk of 4- or 8-byte objects writes all of its map: a quarter of one
 * unit, resident while the chunk lives (the old bitmap was 1/32).  It is
 * metadata, and resident_bytes does not count it.
 *
 * The map sits in the chunk slot's padding: it is given back with the
 * chunk's memory when the chunk is destroyed (all its bytes are zero
 * then), and the reserved chunk shares the first chunk's map.  So a new
 * chunk faults in the pages of its map that it writes.
 */
#define LIVE_UNCACHED 0xff

static inline uint8_t *live_byte_in(uint8_t *map, size_t g)
{
	unsigned int s = pcpu.live_shift;
	/* line * 64: the rotated index's high part stays, g % 64 moves up. */
	size_t line_off = (g & pcpu.live_high) + ((g % 64) << s);
	return &map[line_off + (g >> s)];
}

static inline uint8_t *live_byte(const struct pcpu_chunk *c, int bit)
{
	return live_byte_in(c->live, (unsigned int)bit);
}

/* The live byte of per-CPU address a of a dynamic chunk: its slot, its granule. */
static inline uint8_t *live_byte_of(uintptr_t a)
{
	uintptr_t rel = a - pcpu.ptr_base;
	size_t off = rel & (pcpu.chunk_stride - 1);
	uint8_t *map = (uint8_t *)pcpu.region + (rel - off) + pcpu.live_offset;

	return live_byte_in(map, off / PCPU_MIN_ALLOC_SIZE);
}

/* An area of bits at bit, handed out by the bitmap path: its live byte. */
static uint8_t live_code(const struct pcpu_chunk *c, int bit, int bits)
{
	size_t size = (size_t)bits * PCPU_MIN_ALLOC_SIZE;
	if (c->reserved || size > PCPU_MAX_CLASS_SIZE || (size & (size - 1)) ||
	    (((size_t)bit * PCPU_MIN_ALLOC_SIZE) & (size - 1)))
		return LIVE_UNCACHED;
	return (uint8_t)(fls_size(size) - 2);	/* class + 1 */
}

static inline void live_set(struct pcpu_chunk *c, int bit, uint8_t code)
{
	__atomic_store_n(live_byte(c, bit), code, __ATOMIC_RELAXED);
}

/*
 * Takes one area (pcpu_lock held).  live: handed to a user now; cached
 * objects are marked live and dirty when handed out instead.
 */
static uintptr_t take_area(int bits, int align_bits, bool atomic, bool live, bool *dirty)
{
	int bit;
	struct pcpu_chunk *c = find_area(bits, align_bits, atomic, &bit);

	if (!c)
		return 0;
	if (!atomic)
		populate_area(c, bit, bits);
	chunk_relocate(c);
	*dirty = false;
	if (live) {
		*dirty = range_dirty(c, bit, bits);
		mark_dirty(c, bit, bits);
		live_set(c, bit, live_code(c, bit, bits));
	}
	return pcpu_chunk_ptr(c->idx, (size_t)bit * PCPU_MIN_ALLOC_SIZE);
}

/*
 * A cache entry: the object's per-CPU address, with CACHED_DIRTY set when
 * some CPU's copy may hold data (the object was handed out since its page
 * was last released), so that a hand-out from the cache knows whether to
 * zero without reading the dirty bits.  Objects are at least 4-aligned.
 */
#define CACHED_DIRTY ((uintptr_t)1)

/*
 * A fresh object for the cache (pcpu_lock held): its entry.  The caller
 * marks it dirty (it will be handed out) after this looked.
 */
static uintptr_t cache_entry(struct pcpu_chunk *c, int bit, int bits, bool maybe_dirty)
{
	uintptr_t a = pcpu_chunk_ptr(c->idx, (size_t)bit * PCPU_MIN_ALLOC_SIZE);

	if (maybe_dirty && range_dirty(c, bit, bits))
		a |= CACHED_DIRTY;
	return a;
}

/*
 * Takes n objects of bits each for the cache: one run split in pieces when
 * a run fits, else one by one.  Returns how many; out[] gets cache
 * entries.  pcpu_lock held.
 */
static int take_objects(int bits, int align_bits, bool atomic, uintptr_t *out, int n)
{
	bool ignored;
	int got = 0;

	if (n <= 0)
		return 0;
	uintptr_t run = take_area(bits * n, align_bits, atomic, false, &ignored);
	if (run) {
		int bit = 0;
		struct pcpu_chunk *c = chunk_of(run, &bit);
		pcpu_chunk_map_split(&c->map, bit, bits);
		nr_map_live += (unsigned long)n - 1;
		nr_max_alloc = pcpu_max(nr_max_alloc, nr_map_live);
		/* A run never handed out since its pages came back: one look for all. */
		bool maybe_dirty = range_dirty(c, bit, bits * n);
		for (got = 0; got < n; got++)
			out[got] = cache_entry(c, bit + got * bits, bits, maybe_dirty);
		mark_dirty(c, bit, bits * n);
		return got;
	}
	for (; got < n; got++) {
		uintptr_t a = take_area(bits, align_bits, atomic, false, &ignored);
		int bit = 0;
		if (!a)
			break;
		struct pcpu_chunk *c = chunk_of(a, &bit);
		out[got] = cache_entry(c, bit, bits, true);
		mark_dirty(c, bit, bits);
	}
	return got;
}

static uintptr_t take_reserved(int bits, int align_bits, bool *dirty)
{
	struct pcpu_chunk *c = reserved_chunk;
	int bit = c ? map_alloc(c, bits, align_bits, false) : -1;

	if (bit < 0)
		return 0;
	*dirty = range_dirty(c, bit, bits);
	mark_dirty(c, bit, bits);
	live_set(c, bit, LIVE_UNCACHED);
	return pcpu_chunk_ptr(0, (size_t)bit * PCPU_MIN_ALLOC_SIZE);
}

/*
 * The bitmap path: n areas of one size (the first for the caller, the
 * rest for the cache), creating a chunk if the first finds no room and
 * that is allowed.  Returns how many were taken; out[0] is zeroed if needed.
 */
static int alloc_from_chunks_n(size_t size, size_t align, int flags,
			       uintptr_t *out, int n, const char **why)
{
	int bits = (int)(PCPU_ALIGN(size, PCPU_MIN_ALLOC_SIZE) / PCPU_MIN_ALLOC_SIZE);
	int align_bits = (int)(pcpu_max(align, (size_t)PCPU_MIN_ALLOC_SIZE) / PCPU_MIN_ALLOC_SIZE);
	bool atomic = flags & PCPU_ALLOC_NOWAIT, dirty = false;
	int got = 0;

	if (!atomic)
		pthread_mutex_lock(&pcpu_alloc_mutex);
	pthread_mutex_lock(&pcpu_lock);
	if (flags & PCPU_ALLOC_RESERVED) {
		out[0] = take_reserved(bits, align_bits, &dirty);
		if (!out[0])
			*why = "alloc from reserved chunk failed";
	} else {
		/*
		 * As the kernel: after making a chunk, search again from the
		 * start, however often: non-blocking allocations (which do not
		 * wait for the mutex) may have taken the new chunk's space.
		 * Only a failure to make a chunk ends a blocking allocation.
		 */
		bool drained = false, refilled = false;
		while (!(out[0] = take_area(bits, align_bits, atomic, true, &dirty))) {
			if (atomic) {
				/*
				 * The kernel schedules its balance work here.  Without
				 * waiting for anything, give released pages back to the
				 * reserve if nobody holds the mutex, and try once more;
				 * a chunk is made only by the next balance pass.
				 */
				__atomic_store_n(&atomic_alloc_failed, true, __ATOMIC_RELAXED);
				if (refilled || pthread_mutex_trylock(&pcpu_alloc_mutex)) {
					*why = "atomic alloc failed, no space left";
					break;
				}
				pthread_mutex_unlock(&pcpu_lock);
				repopulate_reserve(false);
				pthread_mutex_unlock(&pcpu_alloc_mutex);
				pthread_mutex_lock(&pcpu_lock);
				refilled = true;
				continue;
			}
			pthread_mutex_unlock(&pcpu_lock);
			bool made;
			if (!drained) {
				/* Chunks waiting for page release are free space too. */
				drain_to_depopulate();
				made = drained = true;
			} else {
				made = chunk_create(why) != NULL;
			}
			pthread_mutex_lock(&pcpu_lock);
			if (!made)
				break;
		}
	}
	if (out[0])
		got = 1 + take_objects(bits, align_bits, atomic, out + 1, n - 1);
	pthread_mutex_unlock(&pcpu_lock);
	if (!atomic) {
		/* A non-blocking allocation failed meanwhile: refill its reserve. */
		if (__atomic_load_n(&atomic_alloc_failed, __ATOMIC_RELAXED))
			repopulate_reserve(true);
		pthread_mutex_unlock(&pcpu_alloc_mutex);
	}
	if (dirty)
		pcpu_zero_area(out[0], (size_t)bits * PCPU_MIN_ALLOC_SIZE);
	return got;
}

static void *alloc_from_chunks(size_t size, size_t align, int flags, const char **why)
{
	uintptr_t p;
	return alloc_from_chunks_n(size, align, flags, &p, 1, why) ? (void *)p : NULL;
}

static void balance(bool all);

/*
 * A chunk whose empty pages are worth releasing waits on the to_depopulate
 * list, out of the allocator's way (the kernel's condition).  pcpu_lock held.
 */
static void maybe_isolate(struct pcpu_chunk *c)
{
	int empty = c->map.nr_empty_pop_pages;

	if (c->immutable || c->reserved || c->list == lists.free_list ||
	    c->list == lists.to_depopulate || empty < c->map.nr_pages / 4 ||
	    global_empty_pop_pages <= PCPU_EMPTY_POP_PAGES_HIGH + empty)
		return;
	list_add(c, lists.to_depopulate, true);
}

/* Cache batches come back nearly sorted: insertion sort is the right tool. */
static void sort_addresses(uintptr_t *p, int n)
{
	/*
	 * A batch holds frees in the order they came: reversing a descending
	 * one first keeps the insertion sort linear for both directions.
	 */
	if (n > 1 && p[0] > p[n - 1]) {
		for (int i = 0, j = n - 1; i < j; i++, j--) {
			uintptr_t t = p[i];
			p[i] = p[j];
			p[j] = t;
		}
	}
	for (int i = 1; i < n; i++) {
		uintptr_t v = p[i];
		int j = i;
		for (; j > 0 && p[j - 1] > v; j--)
			p[j] = p[j - 1];
		p[j] = v;
	}
}

/*
 * Frees areas to the bitmaps under one lock hold.  size != 0: all are
 * objects of that size (from the cache), so runs of neighbours are freed
 * in one step each.
 */
static void free_to_chunks(uintptr_t *ptrs, int n, size_t size)
{
	bool work;

	if (size) {
		for (int i = 0; i < n; i++)
			ptrs[i] &= ~CACHED_DIRTY;	/* cache entries: addresses */
		sort_addresses(ptrs, n);
	}
	pthread_mutex_lock(&pcpu_lock);
	struct pcpu_chunk *prev = NULL;
	for (int i = 0, j; i < n; i = j) {
		int bit, nr = 1;
		struct pcpu_chunk *c = chunk_of(ptrs[i], &bit);
		for (j = i + 1; size && j < n && ptrs[j] == ptrs[j - 1] + size &&
				(ptrs[j] & (pcpu.chunk_stride - 1)) > (ptrs[i] & (pcpu.chunk_stride - 1)); j++)
			nr++;
		int bits = (int)(size / PCPU_MIN_ALLOC_SIZE) * nr;
		if (!c || map_free(c, bit, bits, nr) < 0) {
			pthread_mutex_unlock(&pcpu_lock);
			invalid_free((void *)ptrs[i]);
		}
		/* A sorted batch visits each chunk once: move it when done with it. */
		if (prev && prev != c) {
			chunk_relocate(prev);
			maybe_isolate(prev);
		}
		prev = c;
	}
	if (prev) {
		chunk_relocate(prev);
		maybe_isolate(prev);
	}
	work = lists.count[lists.free_list] > PCPU_FREE_CHUNKS_TRIGGER ||
	       lists.count[lists.to_depopulate] >= PCPU_DEPOPULATE_BATCH ||
	       __atomic_load_n(&atomic_alloc_failed, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&pcpu_lock);
	/*
	 * The kernel schedules its balance work here; a library has no worker,
	 * so the freeing thread does it, unless someone else already is.
	 */
	if (work && !pthread_mutex_trylock(&pcpu_alloc_mutex)) {
		balance(false);
		pthread_mutex_unlock(&pcpu_alloc_mutex);
	}
}

/* ---- the object cache ---- */

static uintptr_t stack_of(int cls)
{
	return cache_ptr + (uintptr_t)cls * PCPU_STACK_BYTES;
}

/*
 * A CPU's stacks start with cap 0 (the cache is zeroed memory, and CPUs
 * that never allocate must not gain its page); the first push on a CPU
 * finds it "full" and sets the capacity of the copy it runs on.
 */
static bool init_stack_here(int cls)
{
	struct pcpu_stack *s = percpu_this_ptr((struct pcpu_stack *)stack_of(cls));
	if (__atomic_load_n(&s->cap, __ATOMIC_RELAXED))
		return false;
	/* The CPU whose copy this is (in mm_cid mode, a possible CPU's unit). */
	intptr_t off = (intptr_t)((uintptr_t)s - stack_of(cls));
	for (unsigned int cpu = 0; cpu < pcpu.layout->nr_cpu_ids; cpu++)
		if (pcpu.layout->unit_map[cpu] >= 0 && pcpu.cpu_offset[cpu] == off) {
			__atomic_fetch_or(&cache_used[cpu / BITS_PER_LONG], 1ul << (cpu % BITS_PER_LONG),
					  __ATOMIC_RELAXED);
			break;
		}
	__atomic_store_n(&s->cap, PCPU_CACHE_CAP, __ATOMIC_RELAXED);
	return true;
}

static bool cache_was_used(unsigned int cpu)
{
	return __atomic_load_n(&cache_used[cpu / BITS_PER_LONG], __ATOMIC_RELAXED) &
	       (1ul << (cpu % BITS_PER_LONG));
}

/* Refills the current CPU's stack of class cls and returns one object. */
static void *refill(int cls, int flags, const char **why)
{
	size_t size = 4u << cls;
	uintptr_t objs[PCPU_CACHE_BATCH];
	/* A non-blocking refill leaves the small reserve to other such callers. */
	int want = flags & PCPU_ALLOC_NOWAIT ? 2 : PCPU_CACHE_BATCH;
	int n = alloc_from_chunks_n(size, size, flags, objs, want, why);

	/*
	 * Pushed from the highest address down, so that they come out in
	 * address order: frees in allocation order then reach the bitmaps as
	 * sorted batches, with neighbours next to each other.
	 */
	int pushed = 0;
	/* Counted before the pushes, for percpu_stats() (see cache_counts()). */
	pcpu_count(&pcpu_thread_counts.c.refill_pushes, n > 1 ? (unsigned long)n - 1 : 0);
	for (int i = n - 1; i >= 1; i--, pushed++) {
		int r = pcpu_stack_push(stack_of(cls), objs[i]);
		if (r == 0 && init_stack_here(cls))
			r = pcpu_stack_push(stack_of(cls), objs[i]);
		if (r != 1) {
			free_to_chunks(&objs[1], i, size);
			break;
		}
	}
	if (n > 1 && pushed < n - 1)
		pcpu_count(&pcpu_thread_counts.c.refill_pushes, 0ul - (unsigned long)(n - 1 - pushed));
	return n ? (void *)objs[0] : NULL;
}

/* Pushes p, or, when the stack is full, frees half of it and p to the chunks. */
static __attribute__((noinline)) void cache_free_slow(uintptr_t p, int cls)
{
	/* A user held it: some copy may hold data. */
	int r = pcpu_stack_push(stack_of(cls), p | CACHED_DIRTY);
	if (r == 0 && init_stack_here(cls))
		r = pcpu_stack_push(stack_of(cls), p | CACHED_DIRTY);
	if (r == 1)
		return;
	/* The stack's top half in push order, then p: as the frees came. */
	uintptr_t batch[PCPU_CACHE_BATCH + 1];
	int n = 0;
	if (r == 0) {
		n = pcpu_stack_pop_n(stack_of(cls), batch, PCPU_CACHE_BATCH);
		if (n < 0)
			n = 0;
		pcpu_count(&pcpu_thread_counts.c.cache_taken, (unsigned long)n);
	}
	pcpu_count(&pcpu_thread_counts.c.nr_dealloc, 1);	/* p itself goes to the chunks */
	batch[n++] = p;
	free_to_chunks(batch, n, (size_t)4 << cls);
}

static inline void cache_free(uintptr_t p, int cls)
{
	if (pcpu_stack_push(stack_of(cls), p | CACHED_DIRTY) != 1)
		cache_free_slow(p, cls);
}

/* ---- the public API ---- */

static bool warned_illegal;
static int failure_warnings = 10;

static void *alloc_failed(size_t size, size_t align, int flags, const char *why)
{
	bool atomic = flags & PCPU_ALLOC_NOWAIT;
	if (!(flags & PCPU_ALLOC_NOWARN) &&
	    __atomic_fetch_sub(&failure_warnings, 1, __ATOMIC_RELAXED) > 0) {
		pcpu_msg("allocation failed, size=%zu align=%zu atomic=%d, %s", size, align,
			 atomic, why);
		if (__atomic_load_n(&failure_warnings, __ATOMIC_RELAXED) == 0)
			pcpu_msg("limit reached, disable warning");
	}
	errno = ENOMEM;
	return NULL;
}

size_t percpu_max_alloc_size(void)
{
	return pcpu_ensure_setup() ? 0 : pcpu.layout->unit_size;
}

static bool invalid_request(size_t size, size_t align, int flags);

static inline bool valid_request(size_t size, size_t align, int flags)
{
	if (__builtin_expect(size && size <= pcpu.unit_size && align && align <= PCPU_PAGE_SIZE &&
			     !(align & (align - 1)), 1))
		return true;
	return invalid_request(size, align, flags);
}

static __attribute__((noinline)) bool invalid_request(size_t size, size_t align, int flags)
{
	/* As the kernel's do_warn: NOWARN silences this warning too. */
	if (!(flags & PCPU_ALLOC_NOWARN) &&
	    !__atomic_exchange_n(&warned_illegal, true, __ATOMIC_RELAXED))
		pcpu_msg("illegal size (%zu) or align (%zu) for percpu allocation", size, align);
	errno = EINVAL;
	return false;
}

/*
 * Hands out a popped cache entry: zero the object where it may hold data,
 * mark it live.  Cached objects are areas of dynamic chunks, checked when
 * freed, and were marked dirty when they entered the cache: no chunk
 * lookup and no dirty bits here.
 */
static inline void *cache_handout(uintptr_t entry, int cls)
{
	uintptr_t obj = entry & ~CACHED_DIRTY;

	if (entry & CACHED_DIRTY)
		pcpu_zero_area(obj, (size_t)PCPU_MIN_ALLOC_SIZE << cls);
	__atomic_store_n(live_byte_of(obj), (uint8_t)(cls + 1), __ATOMIC_RELAXED);
	return (void *)obj;
}

/* Everything but a cache hit: refills, the bitmap path, failures. */
static __attribute__((noinline)) void *alloc_slow(size_t size, size_t align, int flags, int cls)
{
	const char *why = "unknown";
	void *p;

	if (cls >= 0 && cache_ptr) {
		uintptr_t obj;
		int r = pcpu_stack_pop(stack_of(cls), &obj);
		if (r == 1) {
			/* Counted by the stack (a pop). */
			note_size(size);
			return cache_handout(obj, cls);
		}
		if (r == 0)
			p = refill(cls, flags, &why);
		else
			p = alloc_from_chunks((size_t)4 << cls, (size_t)4 << cls, flags, &why);
	} else {
		p = alloc_from_chunks(size, align, flags, &why);
	}
	if (!p)
		return alloc_failed(size, align, flags, why);
	pcpu_count(&pcpu_thread_counts.c.nr_alloc, 1);
	note_size(size);
	return p;
}

/* The fast path: a cache hit, no lock; everything else goes to alloc_slow(). */
static inline __attribute__((always_inline)) void *alloc_area(size_t size, size_t align,
							       int flags)
{
	int cls = flags & PCPU_ALLOC_RESERVED ? -1 : size_class(size, align);
	uintptr_t obj;

	if (cls >= 0 && cache_ptr && pcpu_stack_pop(stack_of(cls), &obj) == 1) {
		/* Counted by the stack (a pop). */
		note_size(size);
		return cache_handout(obj, cls);
	}
	return alloc_slow(size, align, flags, cls);
}

void *pcpu_alloc_area(size_t size, size_t align, int flags)
{
	return alloc_area(size, align, flags);
}

static inline __attribute__((always_inline)) void *alloc_checked(size_t size, size_t align,
								   int flags)
{
	if (pcpu_ensure_setup())
		return NULL;
	if (!valid_request(size, align, flags))
		return NULL;
	return alloc_area(size, align, flags);
}

void __percpu *percpu_alloc(size_t size, size_t align)
{
	return alloc_checked(size, align, 0);
}

void __percpu *percpu_alloc_nowait(size_t size, size_t align)
{
	return alloc_checked(size, align, PCPU_ALLOC_NOWAIT);
}

void __percpu *percpu_alloc_flags(size_t size, size_t align, unsigned int flags)
{
	return alloc_checked(size, align, (int)(flags & (PCPU_ALLOC_NOWAIT | PCPU_ALLOC_NOWARN)));
}

void __percpu *percpu_alloc_reserved(size_t size, size_t align)
{
	return alloc_checked(size, align, PCPU_ALLOC_RESERVED);
}

void percpu_free(void __percpu *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	int bit;

	if (!ptr)
		return;
	struct pcpu_chunk *c = __atomic_load_n(&percpu_hot.ready, __ATOMIC_ACQUIRE) ?
			       chunk_of(p, &bit) : NULL;
	if (!c)
		invalid_free(ptr);
	/* One atomic exchange: a double free is seen even when two threads race. */
	uint8_t code = __atomic_exchange_n(live_byte(c, bit), 0, __ATOMIC_ACQ_REL);
	if (!code)
		invalid_free(ptr);
	/*
	 * The cache is used in rseq mode only (pcpu_stack.h), and counts its
	 * pushes itself.  Any code but a class (LIVE_UNCACHED; a byte forged
	 * by an overrun of the last unit) goes to the bitmaps, which check it.
	 */
	if ((uint8_t)(code - 1) < PCPU_NR_CLASSES && cache_ptr &&
	    __atomic_load_n(&percpu_hot.mode, __ATOMIC_RELAXED) == PCPU_MODE_RSEQ) {
		cache_free(p, code - 1);
	} else {
		pcpu_count(&pcpu_thread_counts.c.nr_dealloc, 1);
		free_to_chunks(&p, 1, 0);
	}
}

/* ---- balance: release empty pages, as pcpu_balance_workfn() ---- */

struct page_range {
	int start, end;
};

/*
 * Takes a chunk's empty populated pages out of use (so no allocation can
 * land there while they are released) and returns them as ranges.
 */
static int isolate_empty_pages(struct pcpu_chunk *c, struct page_range *r, int max)
{
	int n = 0;
	for (int pg = 0; pg < c->map.nr_pages && n < max; pg++) {
		if (!pcpu_test_bit(c->map.populated, (unsigned)pg) ||
		    !pcpu_chunk_map_page_empty(&c->map, pg))
			continue;
		int end = pg + 1;
		while (end < c->map.nr_pages && pcpu_test_bit(c->map.populated, (unsigned)end) &&
		       pcpu_chunk_map_page_empty(&c->map, end))
			end++;
		int before = c->map.nr_empty_pop_pages;
		pcpu_chunk_map_depopulate(&c->map, pg, end);
		global_empty_pop_pages += c->map.nr_empty_pop_pages - before;
		r[n++] = (struct page_range){ pg, end };
		pg = end;
	}
	return n;
}

/* Releases ranges of every unit; on failure the pages stay populated. */
static void release_pages(struct pcpu_chunk *c, const struct page_range *r, int n)
{
	const struct percpu_layout *l = pcpu.layout;
	char *base = pcpu.region + (size_t)c->idx * pcpu.chunk_stride;

	for (int i = 0; i < n; i++) {
		bool ok = true;
		for (unsigned int cpu = 0; cpu < l->nr_cpu_ids && ok; cpu++)
			if (l->unit_map[cpu] >= 0)
				ok = !pcpu_vm_release(base + l->unit_off[cpu] +
							      (size_t)r[i].start * PCPU_PAGE_SIZE,
						      (size_t)(r[i].end - r[i].start) * PCPU_PAGE_SIZE);
		pthread_mutex_lock(&pcpu_lock);
		if (ok) {
			clear_dirty_pages(c, r[i].start, r[i].end);
		} else {
			/* Some units kept their data: the pages stay dirty and in use. */
			int before = c->map.nr_empty_pop_pages;
			pcpu_chunk_map_populate(&c->map, r[i].start, r[i].end);
			global_empty_pop_pages += c->map.nr_empty_pop_pages - before;
		}
		pthread_mutex_unlock(&pcpu_lock);
	}
}

/* Releases a chunk's empty pages; it then waits on the sidelined list. */
static void depopulate(struct pcpu_chunk *c)
{
	struct page_range r[64];

	pthread_mutex_lock(&pcpu_lock);
	if (!c->immutable && (size_t)c->map.free_bytes == chunk_capacity(c)) {
		/*
		 * Emptied while it waited: destroy_free_chunks() releases it
		 * whole, with its neighbours, in one call for all units.
		 */
		list_del(c);
		chunk_relocate(c);
		pthread_mutex_unlock(&pcpu_lock);
		return;
	}
	int n = isolate_empty_pages(c, r, 64);
	if (c->list != lists.to_depopulate)
		list_add(c, lists.to_depopulate, false);
	pthread_mutex_unlock(&pcpu_lock);
	release_pages(c, r, n);
	pthread_mutex_lock(&pcpu_lock);
	list_del(c);
	if (c->map.nr_populated < c->map.nr_pages)
		list_add(c, lists.sidelined, false);
	chunk_relocate(c);
	pthread_mutex_unlock(&pcpu_lock);
}

/* Releases the pages of the chunks the free path isolated (mutex held). */
static void drain_to_depopulate(void)
{
	for (;;) {
		pthread_mutex_lock(&pcpu_lock);
		struct pcpu_chunk *c = lists.head[lists.to_depopulate];
		pthread_mutex_unlock(&pcpu_lock);
		if (!c)
			break;
		depopulate(c);
	}
}

/*
 * Keeps LOW..HIGH empty populated pages for non-blocking allocations, as
 * the kernel's pcpu_balance_populated(): released pages of sidelined
 * chunks are populated again (bookkeeping only: they fault in lazily and
 * read as zero); may_create: if that is not enough after a non-blocking
 * allocation failed, a chunk is made.  pcpu_alloc_mutex held.
 */
static void repopulate_reserve(bool may_create)
{
	pthread_mutex_lock(&pcpu_lock);
	struct pcpu_chunk *c = lists.head[lists.sidelined];
	while (c && global_empty_pop_pages < PCPU_EMPTY_POP_PAGES_HIGH) {
		struct pcpu_chunk *next = c->next;
		int before = c->map.nr_empty_pop_pages;
		for (int pg = 0; pg < c->map.nr_pages; pg++)
			if (!pcpu_test_bit(c->map.populated, (unsigned)pg))
				pcpu_chunk_map_populate(&c->map, pg, pg + 1);
		global_empty_pop_pages += c->map.nr_empty_pop_pages - before;
		list_del(c);
		chunk_relocate(c);
		c = next;
	}
	bool create = may_create && atomic_alloc_failed &&
		      global_empty_pop_pages < PCPU_EMPTY_POP_PAGES_LOW;
	__atomic_store_n(&atomic_alloc_failed, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&pcpu_lock);
	if (create) {
		const char *ignored;
		chunk_create(&ignored);
	}
}

/*
 * One balance pass (pcpu_alloc_mutex held): destroy all but one fully
 * free chunk; release the empty pages of the chunks that qualify; keep
 * LOW..HIGH empty populated pages for non-blocking allocations.
 * all: release every empty page beyond that reserve (explicit call).
 */
static void balance(bool all)
{
	drain_to_depopulate();
	destroy_free_chunks();
	if (all) {
		/* An explicit pass: every chunk's empty pages beyond the reserve. */
		for (unsigned int idx = 0; idx < chunks_hi; idx++) {
			struct pcpu_chunk *c = chunks[idx];
			if (!c || !c->mapped || c->immutable)
				continue;
			pthread_mutex_lock(&pcpu_lock);
			int empty = c->map.nr_empty_pop_pages;
			bool worth = empty &&
				     global_empty_pop_pages > PCPU_EMPTY_POP_PAGES_HIGH + empty;
			pthread_mutex_unlock(&pcpu_lock);
			if (worth)
				depopulate(c);
		}
	}
	repopulate_reserve(true);
}

/*
 * After a switch to atomics no critical section can commit, so nothing
 * pushes or pops any more: the objects left in every unit's stacks are
 * read as plain memory and freed to the chunks (under pcpu_alloc_mutex,
 * so that two balance passes do not both free them).  Without this they
 * would stay allocated for the life of the process.
 */
static void drain_frozen_caches(void)
{
	const struct percpu_layout *l = pcpu.layout;

	pthread_mutex_lock(&pcpu_alloc_mutex);
	for (unsigned int cpu = 0; cpu < l->nr_cpu_ids; cpu++) {
		if (l->unit_map[cpu] < 0 || !cache_was_used(cpu))
			continue;
		for (int cls = 0; cls < PCPU_NR_CLASSES; cls++) {
			struct pcpu_stack *s = pcpu_cpu_addr(stack_of(cls), cpu);
			uint64_t head = __atomic_load_n(&s->head, __ATOMIC_RELAXED);
			uint32_t got = PCPU_STACK_COUNT(head);
			uintptr_t objs[PCPU_CACHE_CAP];

			if (!got || got > PCPU_CACHE_CAP)
				continue;
			memcpy(objs, s->item, got * sizeof(objs[0]));
			__atomic_store_n(&s->head, head - got, __ATOMIC_RELAXED);
			pcpu_count(&pcpu_thread_counts.c.cache_taken, got);
			/* free_to_chunks() only tries the mutex for its balance work. */
			free_to_chunks(objs, (int)got, (size_t)PCPU_MIN_ALLOC_SIZE << cls);
		}
	}
	pthread_mutex_unlock(&pcpu_alloc_mutex);
}

/*
 * Empties every CPU's object cache into the chunks.  Only code running on
 * a CPU may touch that CPU's stacks, so the calling thread visits each CPU
 * that holds cached objects and pops them there; its affinity is restored.
 * (A CPU it may not run on keeps its cache; mm_cid caches are per id.)
 * Once the process runs on atomics, the stacks are frozen and read directly.
 */
static void drain_caches(void)
{
	if (cache_ptr && pcpu_rseq_stopped()) {
		drain_frozen_caches();
		return;
	}

	const struct percpu_layout *l = pcpu.layout;
	unsigned int n = l->nr_cpu_ids;
	size_t setsize = CPU_ALLOC_SIZE(n);
	cpu_set_t *saved = CPU_ALLOC(n), *one = CPU_ALLOC(n);

	if (!cache_ptr || percpu_index_mode() != PERCPU_INDEX_CPU || !saved || !one ||
	    pthread_getaffinity_np(pthread_self(), setsize, saved))
		goto out;
	for (unsigned int cpu = 0; cpu < n; cpu++) {
		bool cached = false;
		if (l->unit_map[cpu] < 0 || !cache_was_used(cpu))
			continue;
		for (int cls = 0; cls < PCPU_NR_CLASSES && !cached; cls++) {
			const struct pcpu_stack *s = pcpu_cpu_addr(stack_of(cls), cpu);
			cached = PCPU_STACK_COUNT(__atomic_load_n(&s->head, __ATOMIC_RELAXED)) != 0;
		}
		CPU_ZERO_S(setsize, one);
		CPU_SET_S(cpu, setsize, one);
		if (!cached || pthread_setaffinity_np(pthread_self(), setsize, one))
			continue;
		for (int cls = 0; cls < PCPU_NR_CLASSES; cls++) {
			uintptr_t objs[PCPU_CACHE_CAP];
			int got = pcpu_stack_pop_n(stack_of(cls), objs, PCPU_CACHE_CAP);
			if (got > 0) {
				pcpu_count(&pcpu_thread_counts.c.cache_taken, (unsigned long)got);
				free_to_chunks(objs, got, (size_t)4 << cls);
			}
		}
	}
	pthread_setaffinity_np(pthread_self(), setsize, saved);
out:
	CPU_FREE(saved);
	CPU_FREE(one);
}

void percpu_balance(void)
{
	if (!percpu_is_setup())
		return;
	drain_caches();
	pthread_mutex_lock(&pcpu_alloc_mutex);
	balance(true);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
}

/* ---- statistics ---- */

/*
 * User allocations and frees: the slow paths' per-thread counts, plus the
 * cached ones, from the stacks' heads.  Every push onto a stack was a
 * cached free or a refill; every object that left one was a cached
 * allocation or was taken back by a flush or a drain.  Only the stacks of
 * CPUs that ever cached are read.
 *
 * A snapshot, not atomic, read in an order that lets what is in flight
 * only make nr_alloc higher and nr_dealloc lower (objects seem allocated a
 * little longer), never the reverse, so nr_cur_alloc cannot go below 0:
 * flushes count what they took after taking it, and that count is read
 * before the stacks; refills count what they push before pushing, and
 * that count is read after.
 */
static void cache_counts(unsigned long *nr_alloc, unsigned long *nr_dealloc)
{
	struct pcpu_counts before, after;
	uint64_t pushes = 0, held = 0;
	unsigned int cpu;

	pcpu_counts_sum(&before);
	if (cache_ptr) {
		percpu_for_each_possible_cpu(cpu) {
			if (!cache_was_used(cpu))
				continue;
			for (int cls = 0; cls < PCPU_NR_CLASSES; cls++) {
				const struct pcpu_stack *s = pcpu_cpu_addr(stack_of(cls), cpu);
				uint64_t head = __atomic_load_n(&s->head, __ATOMIC_RELAXED);
				pushes += PCPU_STACK_PUSHES(head);
				held += PCPU_STACK_COUNT(head);
			}
		}
	}
	pcpu_counts_sum(&after);
	int64_t cached_frees = (int64_t)(pushes - after.refill_pushes);
	*nr_dealloc = before.nr_dealloc + (unsigned long)(cached_frees > 0 ? cached_frees : 0);
	*nr_alloc = after.nr_alloc + (unsigned long)(pushes - held - before.cache_taken);
	if (*nr_alloc < *nr_dealloc)	/* a free between the two reads */
		*nr_alloc = *nr_dealloc;
}

static void chunk_stats(struct pcpu_chunk *c, struct percpu_chunk_stats *cs)
{
	struct pcpu_chunk_map_stats ms;
	pcpu_chunk_map_stats(&c->map, &ms);
	cs->reserved = c->reserved;
	cs->nr_alloc = (unsigned long)c->map.nr_alloc;
	cs->max_alloc_size = c->map.max_alloc_size;
	cs->empty_pop_pages = c->map.nr_empty_pop_pages;
	cs->first_bit = ms.first_bit;
	cs->free_bytes = ms.free_bytes;
	cs->contig_bytes = ms.contig_bytes;
	cs->sum_frag = ms.sum_frag;
	cs->max_frag = ms.max_frag;
}

int percpu_stats(struct percpu_stats *st)
{
	if (pcpu_ensure_setup())
		return -1;
	const struct percpu_layout *l = pcpu.layout;
	unsigned int max = st->max_chunk_stats, n = 0;
	struct percpu_chunk_stats *out = st->chunks;

	st->unit_size = l->unit_size;
	st->static_size = l->static_size;
	st->reserved_size = l->reserved_size;
	st->dyn_size = l->dyn_size;
	st->atom_size = l->atom_size;
	st->alloc_size = l->alloc_size;
	st->max_alloc_limit = l->unit_size;
	cache_counts(&st->nr_alloc, &st->nr_dealloc);
	st->nr_cur_alloc = st->nr_alloc - st->nr_dealloc;

	pthread_mutex_lock(&pcpu_alloc_mutex);	/* chunks stay mapped while we read */
	pthread_mutex_lock(&pcpu_lock);
	st->nr_max_alloc = pcpu_max(nr_max_alloc, st->nr_cur_alloc);
	st->nr_chunks = nr_chunks;
	st->nr_max_chunks = nr_max_chunks;
	/* Raised and lowered without the lock (note_size()). */
	size_t min_size = __atomic_load_n(&min_alloc_size, __ATOMIC_RELAXED);
	st->min_alloc_size = min_size == SIZE_MAX ? 0 : min_size;
	st->max_alloc_size = __atomic_load_n(&max_alloc_size, __ATOMIC_RELAXED);
	st->empty_pop_pages = global_empty_pop_pages;
	if (reserved_chunk && out && n < max)
		chunk_stats(reserved_chunk, &out[n++]);
	for (unsigned int idx = 0; idx < chunks_hi; idx++)
		if (chunks[idx] && chunks[idx]->mapped && out && n < max)
			chunk_stats(chunks[idx], &out[n++]);
	pthread_mutex_unlock(&pcpu_lock);
	st->nr_chunk_stats = n;
	st->resident_bytes = 0;
	for (unsigned int idx = 0; idx < chunks_hi; idx++)
		if (chunks[idx] && chunks[idx]->mapped)
			st->resident_bytes += pcpu_vm_resident(pcpu.region + (size_t)idx * pcpu.chunk_stride,
							       pcpu.layout->chunk_span);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	return 0;
}

void percpu_stats_print(FILE *f, const struct percpu_stats *st)
{
	fprintf(f,
		"Percpu Memory Statistics\n"
		"Allocation Info:\n"
		"----------------------------------------\n"
		"  unit_size           : %8zu\n"
		"  static_size         : %8zu\n"
		"  reserved_size       : %8zu\n"
		"  dyn_size            : %8zu\n"
		"  atom_size           : %8zu\n"
		"  alloc_size          : %8zu\n"
		"\nGlobal Stats:\n"
		"----------------------------------------\n"
		"  nr_alloc            : %8lu\n"
		"  nr_dealloc          : %8lu\n"
		"  nr_cur_alloc        : %8lu\n"
		"  nr_max_alloc        : %8lu\n"
		"  nr_chunks           : %8u\n"
		"  nr_max_chunks       : %8u\n"
		"  min_alloc_size      : %8zu\n"
		"  max_alloc_size      : %8zu\n"
		"  empty_pop_pages     : %8d\n"
		"  resident_bytes      : %8zu\n"
		"  largest_allocation  : %8zu\n",
		st->unit_size, st->static_size, st->reserved_size, st->dyn_size, st->atom_size,
		st->alloc_size, st->nr_alloc, st->nr_dealloc, st->nr_cur_alloc, st->nr_max_alloc,
		st->nr_chunks, st->nr_max_chunks, st->min_alloc_size, st->max_alloc_size,
		st->empty_pop_pages, st->resident_bytes, st->max_alloc_limit);
	for (unsigned int i = 0; i < st->nr_chunk_stats; i++) {
		const struct percpu_chunk_stats *c = &st->chunks[i];
		fprintf(f,
			"\nChunk: %s\n"
			"  nr_alloc            : %8lu\n"
			"  max_alloc_size      : %8zu\n"
			"  empty_pop_pages     : %8d\n"
			"  first_bit           : %8d\n"
			"  free_bytes          : %8zu\n"
			"  contig_bytes        : %8zu\n"
			"  sum_frag            : %8zu\n"
			"  max_frag            : %8zu\n",
			c->reserved ? "(reserved)" : i == 0 || (i == 1 && st->chunks[0].reserved) ? "(first)" : "",
			c->nr_alloc, c->max_alloc_size, c->empty_pop_pages, c->first_bit,
			c->free_bytes, c->contig_bytes, c->sum_frag, c->max_frag);
	}
}
