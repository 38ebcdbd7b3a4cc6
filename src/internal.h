/* SPDX-License-Identifier: MIT */
/* Interfaces between the library's source files.  Not installed. */
#ifndef PERCPU_INTERNAL_H
#define PERCPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <percpu/percpu.h>
#include <percpu/layout.h>

/* ThreadSanitizer builds: it cannot see rseq or inline-asm atomics. */
#if defined(__SANITIZE_THREAD__)
# define PCPU_UNDER_TSAN 1
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define PCPU_UNDER_TSAN 1
# endif
#endif
#ifndef PCPU_UNDER_TSAN
# define PCPU_UNDER_TSAN 0
#endif

#define PCPU_PAGE_SIZE 4096
#define PCPU_PAGE_SHIFT 12
#define PCPU_MAX_CPUS (1u << 16)	/* largest possible-CPU id we accept + 1 */
#define PCPU_MAX_NODES 1024
#define BITS_PER_LONG 64
#define BITS_TO_LONGS(n) (((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)

/* The largest reserved/dynamic request and atom a configuration may ask for. */
#define PCPU_MAX_CONFIG_SIZE ((size_t)1 << 30)
#define PCPU_MAX_ATOM_SIZE ((size_t)1 << 30)
/* The largest static section a layout is computed for. */
#define PCPU_MAX_STATIC_SIZE ((size_t)1 << 40)

#define pcpu_min(a, b) ((a) < (b) ? (a) : (b))
#define pcpu_max(a, b) ((a) > (b) ? (a) : (b))
#define PCPU_ALIGN(x, a) (((x) + (a) - 1) & ~((size_t)(a) - 1))

/* ---- src/cpulist.c: the kernel's cpulist syntax ("0-3,8,10-15:2") ------- */

/*
 * Parses s into a freshly allocated bitmap of *nbits bits (highest id + 1).
 * Returns 0, or -1 with errno = EINVAL (malformed, or an id >= max_ids)
 * or ENOMEM.  Whitespace around the list and a trailing newline are
 * accepted.  An empty list is malformed.
 */
int pcpu_cpulist_parse(const char *s, unsigned int max_ids,
		       unsigned long **bits, unsigned int *nbits);
/* Formats a bitmap as a cpulist ("0-3,64-67") into buf; returns strlen. */
size_t pcpu_cpulist_format(char *buf, size_t len, const unsigned long *bits,
			   unsigned int nbits);
static inline bool pcpu_test_bit(const unsigned long *b, unsigned int i)
{
	return (b[i / BITS_PER_LONG] >> (i % BITS_PER_LONG)) & 1;
}
static inline void pcpu_set_bit(unsigned long *b, unsigned int i)
{
	b[i / BITS_PER_LONG] |= 1ul << (i % BITS_PER_LONG);
}
static inline void pcpu_clear_bit(unsigned long *b, unsigned int i)
{
	b[i / BITS_PER_LONG] &= ~(1ul << (i % BITS_PER_LONG));
}
/* A zeroed bitmap of nbits bits (at least one word). */
static inline unsigned long *pcpu_bitmap_alloc(unsigned int nbits)
{
	return (unsigned long *)calloc(BITS_TO_LONGS(nbits ? nbits : 1u), sizeof(unsigned long));
}
/* Bit i of an nbits-bit bitmap; false past its end. */
static inline bool pcpu_bit_in(const unsigned long *b, unsigned int nbits, unsigned int i)
{
	return i < nbits && pcpu_test_bit(b, i);
}

/* ---- src/topology.c ------------------------------------------------------ */

struct pcpu_topology {
	unsigned int nr_cpu_ids;	/* highest possible id + 1 */
	unsigned int nr_possible;
	unsigned long *possible;	/* nr_cpu_ids bits */
	unsigned long *online;		/* nr_cpu_ids bits (subset of possible) */
	int *cpu_node;			/* nr_cpu_ids entries; -1 if not possible */
	unsigned int nr_nodes;		/* highest node id + 1 */
	bool simulated;			/* from an override */
};

/*
 * Reads the topology.  cpus/nodes override the possible CPUs and the node
 * map (syntax of struct percpu_config); NULL reads sysfs under sysfs_root
 * (NULL: "/sys"), falling back to sched_getaffinity() and sysconf() when it
 * is missing.  Never fails on a missing or broken sysfs.  A malformed
 * override returns -1, errno = EINVAL, and a one-line reason in err.
 */
int pcpu_topology_read(struct pcpu_topology *t, const char *cpus,
		       const char *nodes, const char *sysfs_root,
		       char *err, size_t errlen);
void pcpu_topology_free(struct pcpu_topology *t);

/* ---- src/layout.c ------------------------------------------------------ */

/*
 * pcpu_build_alloc_info() for topology t.  Sizes are final values
 * (defaults already applied).  atom_size is a power of two >= page size.
 * CPUs on the same node form a group (LOCAL_DISTANCE); groups are ordered
 * by their first CPU.  Fills unit_map/unit_off/chunk_span with groups
 * placed back to back (base_offset = first unit index * unit_size).
 */
struct percpu_layout *pcpu_build_alloc_info(const struct pcpu_topology *t,
					    size_t static_size,
					    size_t reserved_size,
					    size_t dyn_size, size_t atom_size);
/* The UP (CONFIG_SMP=n) layout. */
struct percpu_layout *pcpu_build_up_info(void);

/* ---- src/message.c: one-line messages ----------------------------------- */

/* "percpu: <fmt>\n" on stderr. */
void pcpu_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- src/rseq.c: fast-path mode --------------------------------------- */

enum pcpu_mode {
	PCPU_MODE_NONE = 0,	/* before setup */
	PCPU_MODE_RSEQ,		/* rseq critical sections */
	PCPU_MODE_ATOMIC,	/* atomics on the current CPU's slot */
	PCPU_MODE_UP,		/* one unit */
};

/*
 * Chooses the fast path and fills percpu_hot (called by setup once the
 * layout and percpu_cpu_offset[] exist).  cpu_offset: nr_cpu_ids entries.
 */
int pcpu_fastpath_init(const struct percpu_config *cfg,
		       const struct percpu_layout *l, const intptr_t *cpu_offset);
/* Opens the fast path pcpu_fastpath_init() chose (end of setup; idempotent). */
void pcpu_fastpath_open(void);

/*
 * Switches the whole process to the atomic fallback, for good, so that
 * rseq's plain stores never race an atomic on the same slot: closes the
 * rseq path and zeroes its table, then aborts every rseq critical section
 * in flight (membarrier).  Idempotent.
 */
void pcpu_force_atomic_mode(const char *why);
/*
 * True once a switch to atomics has completed (its barrier returned): no
 * rseq critical section can commit any more, so the per-CPU stacks are
 * plain memory from then on.
 */
bool pcpu_rseq_stopped(void);
/* Restarts the process's rseq critical sections in flight (see rseq.c). */
int pcpu_rseq_barrier(void);
long pcpu_getcpu_by_sched(unsigned int *cpu, unsigned int *node, void *unused);
/* The address of a function of the vDSO, or NULL (vdso.c). */
void *pcpu_vdso_sym(const char *name);

/*
 * The current CPU's slot index for the atomic fallback (always in range:
 * an unexpected CPU id is folded onto a possible one).
 */
unsigned int pcpu_current_index(void);


/* ---- src/vm.c: address space, NUMA binding, page release --------------- */

/*
 * Every system call that changes memory goes through here, so tests can
 * make each of them fail in turn (pcpu_fault_inject).
 */
enum pcpu_vm_op { PCPU_VM_MMAP, PCPU_VM_MBIND, PCPU_VM_MADVISE, PCPU_VM_NR_OPS };
struct pcpu_fault_inject {
	/* Fail the Nth call (1-based) of each op from now on; 0: never. */
	unsigned long fail_at[PCPU_VM_NR_OPS];
	unsigned long calls[PCPU_VM_NR_OPS];
};
extern struct pcpu_fault_inject pcpu_fault_inject;

/* Reserves (PROT_NONE) between min and want bytes; *got receives the size. */
void *pcpu_vm_reserve(size_t want, size_t min, size_t *got);
/* Makes [addr, addr+len) of a reservation usable (read/write, lazily paged). */
int pcpu_vm_map(void *addr, size_t len);
/* Gives [addr, addr+len) back to the reservation (pages freed). */
int pcpu_vm_unmap(void *addr, size_t len);
/* Binds [addr, addr+len) to node (preferred policy); no-op if the node is simulated. */
int pcpu_vm_bind(void *addr, size_t len, int node);
/* Releases the pages of [addr, addr+len) (MADV_DONTNEED: they read as zero). */
int pcpu_vm_release(void *addr, size_t len);
/* Resident bytes of [addr, addr+len) (mincore). */
size_t pcpu_vm_resident(void *addr, size_t len);

/* ---- src/elf.c --------------------------------------------------------- */

/*
 * Finds the main program's per-CPU section (named "percpu_data") from its
 * ELF section headers, at its run-time address.  0 on success; -1 if the
 * program has none or it cannot be read.
 */
int pcpu_main_section(char **start, char **stop);
/* True if addr lies in the main program's loaded image. */
bool pcpu_addr_in_main(const void *addr);

/* ---- src/setup.c: this process's per-CPU areas ------------------------- */

struct pcpu_state {
	struct percpu_layout *layout;
	struct pcpu_topology topo;
	struct percpu_config cfg;	/* as resolved (strings owned) */
	char *region;			/* the reservation holding every chunk */
	size_t region_size;
	size_t unit_size;		/* layout->unit_size, one load away */
	size_t chunk_stride;		/* distance between chunks: a power of two */
	unsigned int chunk_shift;	/* log2(chunk_stride) */
	unsigned int max_chunks;
	uintptr_t ptr_base;		/* per-CPU pointer of chunk 0, unit offset 0 */
	intptr_t *cpu_offset;		/* nr_cpu_ids entries, 0 if not possible */
	intptr_t *possible_offset;	/* the possible CPUs' entries, densely */
	unsigned int nr_possible;
	char *main_start;		/* the main program's section (static region) */
	size_t static_size;
	unsigned int live_shift;	/* log2 of a live map's cache lines (src/alloc.c) */
	size_t live_high;		/* (lines - 1) & ~63: see live_byte() */
	size_t live_offset;		/* a chunk slot's live map: after its units */
};
extern struct pcpu_state pcpu;

/* Sets up with defaults if nothing did yet: 0, or -1 with errno. */
int pcpu_setup_auto(void);
static inline int pcpu_ensure_setup(void)
{
	return __builtin_expect(percpu_hot.ready, 1) ? 0 : pcpu_setup_auto();
}

/*
 * Each chunk slot holds its chunk's live map (src/alloc.c) right after
 * the units: one byte per 4-byte granule of a unit, in 2^live_shift cache
 * lines.  In the slot's padding, it is mapped with the slot and given
 * back with the chunk's memory.  Where the units' span is a power of two,
 * the map doubles the stride: address space only, and the region holds
 * PCPU_MAX_CHUNKS slots unless the span exceeds 8 MiB.
 */
static inline unsigned int pcpu_live_shift(size_t unit_size)
{
	unsigned int shift = 6;		/* at least 64 lines (see live_byte()) */
	while (((size_t)64 << shift) < unit_size / 4)
		shift++;
	return shift;
}
static inline size_t pcpu_live_map_size(size_t unit_size)
{
	return PCPU_ALIGN((size_t)64 << pcpu_live_shift(unit_size), 4096);
}

/* Per-CPU pointer of offset off in chunk index idx, and back. */
static inline uintptr_t pcpu_chunk_ptr(unsigned int idx, size_t off)
{
	return pcpu.ptr_base + (uintptr_t)idx * pcpu.chunk_stride + off;
}
/* CPU cpu's copy of the (translated) per-CPU address a. */
static inline void *pcpu_cpu_addr(uintptr_t a, unsigned int cpu)
{
	return (void *)(a + (uintptr_t)pcpu.cpu_offset[cpu]);
}

/*
 * Copies an initial image of size bytes to every possible CPU's copy at
 * the translated address a, skipping the destination pages whose part of
 * the image is all zero (the destination must read as zero already).
 */
void pcpu_copy_image(uintptr_t a, const char *img, size_t size);
/*
 * Zeroes [a, a+size) on every possible CPU, writing only where non-zero
 * (a CPU that never wrote there reads the zero page and gains nothing).
 * Small areas (the object cache's) inline; size is a multiple of 4.
 */
void pcpu_zero_large(uintptr_t a, size_t size);
static inline void pcpu_zero_area(uintptr_t a, size_t size)
{
	if (size > 64) {
		pcpu_zero_large(a, size);
		return;
	}
	const intptr_t *off = pcpu.possible_offset;
	unsigned int n = pcpu.nr_possible;

	if (size % 8 || a % 8) {
		for (unsigned int i = 0; i < n; i++) {
			uint32_t *p = (uint32_t *)(a + (uintptr_t)off[i]);
			for (size_t w = 0; w < size / 4; w++)
				if (p[w])
					p[w] = 0;
		}
		return;
	}
	/* The cache's classes from 8 bytes up: whole, aligned words. */
	for (unsigned int i = 0; i < n; i++) {
		uint64_t *p = (uint64_t *)(a + (uintptr_t)off[i]);
		for (size_t w = 0; w < size / 8; w++)
			if (p[w])
				p[w] = 0;
	}
}

/* Parses "123", "64K", "2M" (sizes); 0 on success. */
int pcpu_parse_size(const char *s, size_t *out);

/* ---- src/counter.c ------------------------------------------------------ */

/*
 * Tests only: called inside a fold with the lock held, where part of the
 * counter is in flight (step 1: out of the delta, not in count yet; step
 * 2: out of count, not in the delta yet), so that a test can look at
 * percpu_counter_read() there.  NULL otherwise.
 */
extern void (*pcpu_counter_fold_hook)(int step);

/* ---- src/stats.c: allocation counters ------------------------------------ */

/*
 * What the allocator's slow paths count on each thread.  A cached free
 * or allocation is not counted here: the cache stacks count their pushes
 * in their commit word (pcpu_stack.h), and percpu_stats() works the
 * cached frees and allocations out from those and from what refills
 * pushed and what flushes took back.
 */
struct pcpu_counts {
	unsigned long nr_alloc;		/* allocations the cache did not serve */
	unsigned long nr_dealloc;	/* frees that did not go onto a stack */
	unsigned long refill_pushes;	/* objects refills pushed onto stacks */
	unsigned long cache_taken;	/* objects flushes and drains took off stacks */
};

struct pcpu_thread_counts {
	struct pcpu_counts c;
	struct pcpu_thread_counts *next;
	bool registered;
	size_t last_size;		/* note_size() skips a repeated size */
};
extern __thread struct pcpu_thread_counts pcpu_thread_counts
	__attribute__((tls_model("initial-exec")));
void pcpu_counts_register(void);
/* Live threads' counts and those exited threads left. */
void pcpu_counts_sum(struct pcpu_counts *sum);

/* Adds n on this thread; the owner writes, percpu_stats() reads. */
static inline void pcpu_count(unsigned long *field, unsigned long n)
{
	if (__builtin_expect(!pcpu_thread_counts.registered, 0))
		pcpu_counts_register();
	__atomic_store_n(field, __atomic_load_n(field, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* ---- src/module.c: modules' static sections ---------------------------- */

/* Places the main program's section and the modules registered before setup. */
int pcpu_modules_setup(void);
/* The main program's registered section, if it registered before setup. */
bool pcpu_modules_main(char **start, char **stop);

/* ---- src/alloc.c -------------------------------------------------------- */

/* Builds the reserved and first dynamic chunks over chunk 0 (setup). */
int pcpu_alloc_init(void);
/* Forgets all of it after a failed setup. */
void pcpu_alloc_fini(void);
enum { PCPU_ALLOC_NOWAIT = PERCPU_ALLOC_F_NOWAIT, PCPU_ALLOC_RESERVED = 2,
       PCPU_ALLOC_NOWARN = PERCPU_ALLOC_F_NOWARN };
/* percpu_alloc and friends, after setup and validation. */
void *pcpu_alloc_area(size_t size, size_t align, int flags);

#endif /* PERCPU_INTERNAL_H */
