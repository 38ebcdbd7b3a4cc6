/* SPDX-License-Identifier: MIT */
/*
 * libpercpu: the Linux kernel's per-CPU memory system for userspace.
 *
 * Every possible CPU owns one *unit* of every chunk; all units sit at the
 * same offsets, so a *per-CPU pointer* plus percpu_cpu_offset[cpu] names
 * CPU cpu's copy, exactly as ptr + __per_cpu_offset[cpu] does in the kernel.
 *
 * A per-CPU pointer is opaque: it never points at usable memory.  Dynamic
 * per-CPU pointers live in a non-canonical address range (a direct
 * dereference faults instead of silently touching one CPU's copy); a static
 * per-CPU variable's address is its initial image in the module that
 * defines it and is translated to the same range by its module's delta.
 *
 * This header: setup, static per-CPU variables, pointer translation,
 * dynamic allocation.  this_cpu operations are in <percpu/ops.h>, the
 * kernel's names in <percpu/linux.h>.
 */
#ifndef PERCPU_PERCPU_H
#define PERCPU_PERCPU_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <percpu/config.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; its API is exported. */
#pragma GCC visibility push(default)

/* ---- annotations ------------------------------------------------------ */

/*
 * __percpu marks per-CPU pointers.  Under sparse (__CHECKER__) it is the
 * kernel's noderef address space, so a direct dereference is reported;
 * for compilers it is empty.
 */
#ifndef __percpu
# ifdef __CHECKER__
#  define __percpu __attribute__((noderef, address_space(__percpu)))
#  define __percpu_force __attribute__((force))
#  define __percpu_kernel __attribute__((address_space(0)))
# else
#  define __percpu
#  define __percpu_force
#  define __percpu_kernel
# endif
#endif

#define PERCPU_CACHELINE_SIZE 64
#define PERCPU_PAGE_SIZE 4096

/* ---- configuration and setup ------------------------------------------ */

enum percpu_index_mode {
	PERCPU_INDEX_CPU = 0,	/* index units by CPU id (kernel semantics) */
	PERCPU_INDEX_MM_CID = 1,	/* by the per-process concurrency id (Linux 6.3+) */
};

enum percpu_fastpath {
	PERCPU_FASTPATH_AUTO = 0,	/* rseq where registered, atomics otherwise */
	PERCPU_FASTPATH_ATOMIC = 1,	/* always atomics on the current CPU's slot */
};

/* Sizes left at PERCPU_SIZE_DEFAULT take the defaults below. */
#define PERCPU_SIZE_DEFAULT ((size_t)-1)
#define PERCPU_DEFAULT_RESERVE (64 * 1024)	/* modules' static vars (kernel: 8 KiB) */
#define PERCPU_DYNAMIC_RESERVE (28 * 1024)	/* as the kernel on 64-bit */
#define PERCPU_DYNAMIC_EARLY_SIZE (20 * 1024)
#define PERCPU_MIN_UNIT_SIZE (32 * 1024)

struct percpu_config {
	const char *cpus;	/* possible CPUs: "N" or a cpulist; NULL: real */
	const char *nodes;	/* one cpulist per node, ',' or ';' separated; NULL: real */
	size_t reserved_size;	/* PERCPU_SIZE_DEFAULT: PERCPU_DEFAULT_RESERVE */
	size_t dynamic_size;	/* requested dynamic reserve; default PERCPU_DYNAMIC_RESERVE */
	size_t atom_size;	/* allocation granule; default page size */
	enum percpu_index_mode index_mode;
	enum percpu_fastpath fastpath;
};

/* Fills cfg with the defaults (real topology, default sizes). */
void percpu_config_default(struct percpu_config *cfg);

/*
 * setup_per_cpu_areas(): build the first chunk.  Runs by itself before
 * main (from the main program's constructor) or at first use; an earlier
 * explicit call chooses the configuration.  A repeated call with the same
 * configuration returns 0; with a different one, -1 and errno = EBUSY.
 * cfg == NULL means defaults plus the PERCPU_* environment overrides.
 * Failure: -1, errno set and a one-line message on stderr.
 */
int percpu_setup(const struct percpu_config *cfg);
int percpu_is_setup(void);

/* ---- topology --------------------------------------------------------- */

extern unsigned int percpu_nr_cpu_ids;		/* highest possible CPU id + 1 */
extern unsigned int percpu_nr_possible;		/* number of possible CPUs */
int percpu_cpu_possible(unsigned int cpu);
/* The two counts above, setting up first if needed. */
unsigned int percpu_num_possible_cpus(void);
unsigned int percpu_get_nr_cpu_ids(void);
int percpu_cpu_to_node(unsigned int cpu);
unsigned int percpu_nr_nodes(void);
/* Next possible CPU id after cpu (start with -1); >= percpu_nr_cpu_ids at the end. */
unsigned int percpu_next_possible(int cpu);
/* cpu may be int or unsigned int, as in kernel code. */
#define percpu_for_each_possible_cpu(cpu) \
	for ((cpu) = percpu_next_possible(-1); (unsigned int)(cpu) < percpu_nr_cpu_ids; \
	     (cpu) = percpu_next_possible((int)(cpu)))

/* ---- the offsets table -------------------------------------------------- */

/*
 * percpu_cpu_offset[cpu]: added to a (translated) per-CPU pointer, gives
 * CPU cpu's copy.  Indexed by CPU id, percpu_nr_cpu_ids entries.
 */
extern intptr_t *percpu_cpu_offset;

/*
 * The state every fast path reads, in one cache line.
 *
 * rseq_tp_offs is the rseq fast path's one load: the thread-pointer
 * offsets of the rseq area's rseq_cs (low 32 bits) and of its index,
 * cpu_id or mm_cid (high 32 bits); 0 while no critical section may be
 * tried (before setup, in atomic mode, or while a switch to it is under
 * way).  A critical section reads the low 16 bits of its index and looks
 * them up in percpu__rseq_offset[PERCPU__RSEQ_SLOTS], a table at a fixed
 * address whose zero entries send it to the slow path: indices rseq must
 * not use, the kernel's "not registered" values (-1, -2), and every index
 * once the process switched to atomics.  Linux never gives a CPU id or an
 * mm_cid of 65536 or more (NR_CPUS <= 8192).
 *
 * Atomic mode reads percpu__atomic_offset the same way (a zero entry: ask
 * getcpu()), and index_offset, nr_atomic_index entries indexed by the full
 * index or CPU id, on the long way.
 */
#define PERCPU__RSEQ_SLOTS 65536
struct percpu_hot {
	uint64_t rseq_tp_offs;
	long rseq_index_tp_off;	/* thread pointer -> cpu_id or mm_cid (0: none) */
	const intptr_t *index_offset;
	uint32_t nr_atomic_index;	/* entries valid for the fallback */
	int ready;			/* setup done */
	int mode;			/* enum percpu_mode (see percpu_mode_name) */
	/* The CPU without rseq: the vDSO's getcpu, else sched_getcpu(). */
	long (*getcpu)(unsigned int *cpu, unsigned int *node, void *unused);
} __attribute__((aligned(64)));
extern struct percpu_hot percpu_hot;
/*
 * Read through the GOT only (see arch/x86_64.h): the critical sections'
 * table, and atomic mode's, filled once the process is in atomic mode.
 */
extern intptr_t percpu__rseq_offset[PERCPU__RSEQ_SLOTS];
extern intptr_t percpu__atomic_offset[PERCPU__RSEQ_SLOTS];

/* ---- per-CPU pointer translation ---------------------------------------- */

#if PERCPU_SMP
/*
 * Dynamic per-CPU pointers are PERCPU_PTR_BASE + offset into the address
 * space of all chunks.  The base is negative as an intptr_t, so "is this
 * a per-CPU address already" is a sign test, and non-canonical on x86-64
 * (4- and 5-level paging) and above the user range on aarch64 (with the
 * top byte ignored, bit 55 still selects the kernel's half), so
 * dereferencing one faults.
 */
#define PERCPU_PTR_BASE ((uintptr_t)0x80c0000000000000ull)

/*
 * Each module (the executable, each shared library) has its own per-CPU
 * section; the linker gives every module its own hidden start/stop
 * symbols, and its registration records the module's delta into the
 * per-CPU pointer range.
 */
extern char __start_percpu_data[] __attribute__((weak, visibility("hidden")));
extern char __stop_percpu_data[] __attribute__((weak, visibility("hidden")));
extern intptr_t percpu__module_delta __attribute__((weak, visibility("hidden")));

struct percpu_module {
	char *start, *stop;	/* the section: initial image */
	intptr_t *delta;	/* the module's hidden delta */
	void *cookie;		/* identifies the module (its own address) */
};
int percpu__module_register(const struct percpu_module *m);
void percpu__module_unregister(const struct percpu_module *m);
uintptr_t percpu__static_lookup(uintptr_t addr);

/*
 * Every module that includes this header registers its section from a
 * constructor (weak and hidden: one copy per module; it runs once per
 * translation unit, so registration is idempotent).  Priority 101 runs it
 * before the module's other constructors, so its statics resolve from the
 * start; a user constructor with priority > 101 may call percpu_setup().
 * A program that must not set up before main (percpu-info computing a
 * hypothetical layout) defines PERCPU_NO_AUTO_SETUP before including this.
 */
__attribute__((weak, visibility("hidden"), constructor(101))) void percpu__module_ctor(void);
__attribute__((weak, visibility("hidden"), destructor(101))) void percpu__module_dtor(void);
__attribute__((weak, used, visibility("hidden"))) intptr_t percpu__module_delta;
/*
 * The section again, for percpu__xlate()'s asm: 0 (empty) until the
 * constructor ran.  "used": only the asm reads them, which link-time
 * optimization cannot see.
 */
__attribute__((weak, used, visibility("hidden"))) uintptr_t percpu__module_start, percpu__module_stop;
__attribute__((weak, visibility("hidden"))) void percpu__module_ctor(void)
{
	struct percpu_module m = { __start_percpu_data, __stop_percpu_data,
				   &percpu__module_delta, (void *)&percpu__module_delta };
	percpu__module_start = (uintptr_t)__start_percpu_data;
	percpu__module_stop = (uintptr_t)__stop_percpu_data;
	percpu__module_register(&m);
}
__attribute__((weak, visibility("hidden"))) void percpu__module_dtor(void)
{
	struct percpu_module m = { __start_percpu_data, __stop_percpu_data,
				   &percpu__module_delta, (void *)&percpu__module_delta };
	percpu__module_unregister(&m);
}

/*
 * A per-CPU pointer as an address in the per-CPU range, as far as it can
 * be had without a call: dynamic pointers are there already (negative);
 * this module's static variables move by its delta once the module is
 * placed.  Anything else comes back unchanged, not negative: another
 * module's statics (DECLARE_PER_CPU of an exported variable, copy-
 * relocated ones included), and any static before setup (delta 0).
 *
 * An asm that reads no memory the compiler knows of, so that a loop
 * translates a static variable once, not per operation.  Any value it
 * keeps stays right: the delta is set once, when the module is placed,
 * and an untranslated address only takes the slow way.
 */
static inline __attribute__((always_inline)) uintptr_t percpu__xlate(const volatile void *p)
{
	uintptr_t a = (uintptr_t)p;
#if defined(__x86_64__)
	__asm__("testq %[a], %[a]\n\t"
		"js 1f\n\t"
		"cmpq percpu__module_start(%%rip), %[a]\n\t"
		"jb 1f\n\t"
		"cmpq percpu__module_stop(%%rip), %[a]\n\t"
		"jae 1f\n\t"
		"addq percpu__module_delta(%%rip), %[a]\n"
		"1:"
		: [a] "+r"(a) : : "cc");
#elif defined(__aarch64__)
	uintptr_t t;

	__asm__("tbnz %[a], #63, 1f\n\t"
		"adrp %[t], percpu__module_start\n\t"
		"ldr %[t], [%[t], :lo12:percpu__module_start]\n\t"
		"cmp %[a], %[t]\n\t"
		"b.lo 1f\n\t"
		"adrp %[t], percpu__module_stop\n\t"
		"ldr %[t], [%[t], :lo12:percpu__module_stop]\n\t"
		"cmp %[a], %[t]\n\t"
		"b.hs 1f\n\t"
		"adrp %[t], percpu__module_delta\n\t"
		"ldr %[t], [%[t], :lo12:percpu__module_delta]\n\t"
		"add %[a], %[a], %[t]\n"
		"1:"
		: [a] "+r"(a), [t] "=&r"(t) : : "cc");
#else
	if ((intptr_t)a >= 0 && a >= __atomic_load_n(&percpu__module_start, __ATOMIC_RELAXED) &&
	    a < __atomic_load_n(&percpu__module_stop, __ATOMIC_RELAXED))
		a += (uintptr_t)__atomic_load_n(&percpu__module_delta, __ATOMIC_RELAXED);
#endif
	return a;
}

/*
 * percpu__xlate(), and the out-of-line lookup for what it leaves (which
 * sets up first if needed, so an address formed before setup is never
 * kept, and aborts on an address that is not a per-CPU variable).
 */
static inline __attribute__((always_inline)) uintptr_t percpu__addr(const volatile void *p)
{
	uintptr_t a = percpu__xlate(p);

	if (__builtin_expect((intptr_t)a >= 0, 0))
		a = percpu__static_lookup(a);
	return a;
}
#else /* UP: per-CPU pointers are plain pointers */
static inline __attribute__((always_inline)) uintptr_t percpu__xlate(const volatile void *p)
{
	return (uintptr_t)p;
}

static inline __attribute__((always_inline)) uintptr_t percpu__addr(const volatile void *p)
{
	return (uintptr_t)p;
}
#endif

/*
 * setup_per_cpu_areas() before main: the main program's constructors end
 * by setting up (defaults and PERCPU_* environment) unless something did
 * so already.  In a shared library this only registers nothing.
 */
void percpu__auto_setup(const void *cookie);
#if !defined(PERCPU_NO_AUTO_SETUP) && !defined(PERCPU_BUILDING_LIBRARY)
__attribute__((weak, visibility("hidden"), constructor)) void percpu__auto_setup_ctor(void);
__attribute__((weak, visibility("hidden"))) void percpu__auto_setup_ctor(void)
{
	percpu__auto_setup((const void *)&percpu__auto_setup_ctor);
}
#endif

/*
 * CPU cpu's copy of *p.  cpu must be possible.  The offset is read after
 * the translation (which may set up: percpu_cpu_offset changes then).
 */
static inline __attribute__((always_inline)) uintptr_t percpu__cpu_addr(uintptr_t a, unsigned int cpu)
{
	return a + (uintptr_t)percpu_cpu_offset[cpu];
}
#define percpu_ptr(p, cpu)						\
	((__typeof__(*(p)) __percpu_kernel __percpu_force *)			\
	 percpu__cpu_addr(percpu__addr((const volatile void __percpu_force *)(p)), (cpu)))

/* ---- static per-CPU variables ------------------------------------------ */

/*
 * PERCPU_DEFINE(type, name) defines a static per-CPU variable; its initial
 * value becomes every CPU's.  The symbol is percpu__<name>, so using the
 * name without an accessor does not compile; PERCPU_VAR(name) is its
 * per-CPU pointer:  *percpu_ptr(PERCPU_VAR(hits), cpu) += 1.
 */
#if PERCPU_SMP
# define PERCPU__SECTION __attribute__((section("percpu_data")))
#else
# define PERCPU__SECTION
#endif
#define PERCPU__ATTRS(extra) PERCPU__SECTION extra
#define PERCPU__CACHE_ALIGNED __attribute__((aligned(PERCPU_CACHELINE_SIZE)))
#define PERCPU__PAGE_ALIGNED __attribute__((aligned(PERCPU_PAGE_SIZE)))

#define PERCPU_DEFINE(type, name) \
	PERCPU__ATTRS() __typeof__(type) __percpu percpu__##name
#define PERCPU_DECLARE(type, name) \
	extern PERCPU__ATTRS() __typeof__(type) __percpu percpu__##name
#define PERCPU_DEFINE_SHARED_ALIGNED(type, name) \
	PERCPU__ATTRS(PERCPU__CACHE_ALIGNED) __typeof__(type) __percpu percpu__##name
#define PERCPU_DECLARE_SHARED_ALIGNED(type, name) \
	extern PERCPU__ATTRS(PERCPU__CACHE_ALIGNED) __typeof__(type) __percpu percpu__##name
#define PERCPU_DEFINE_ALIGNED(type, name) PERCPU_DEFINE_SHARED_ALIGNED(type, name)
#define PERCPU_DECLARE_ALIGNED(type, name) PERCPU_DECLARE_SHARED_ALIGNED(type, name)
#define PERCPU_DEFINE_PAGE_ALIGNED(type, name) \
	PERCPU__ATTRS(PERCPU__PAGE_ALIGNED) __typeof__(type) __percpu percpu__##name
#define PERCPU_DECLARE_PAGE_ALIGNED(type, name) \
	extern PERCPU__ATTRS(PERCPU__PAGE_ALIGNED) __typeof__(type) __percpu percpu__##name
#define PERCPU_DEFINE_READ_MOSTLY(type, name) PERCPU_DEFINE(type, name)
#define PERCPU_DECLARE_READ_MOSTLY(type, name) PERCPU_DECLARE(type, name)

#define PERCPU_VAR(name) (&percpu__##name)

/* ---- dynamic allocation ------------------------------------------------- */

/*
 * percpu_alloc(): size bytes aligned to align for every possible CPU,
 * zeroed.  NULL with errno EINVAL (illegal size/align) or ENOMEM.
 * percpu_alloc_nowait(): the kernel's atomic allocation: only space in
 * existing chunks, never waits for a chunk to be created or released.
 * percpu_alloc_reserved(): from the reserved region (modules' statics).
 * percpu_free(NULL) is a no-op; an invalid free aborts.
 */
void __percpu *percpu_alloc(size_t size, size_t align);
void __percpu *percpu_alloc_nowait(size_t size, size_t align);
void __percpu *percpu_alloc_reserved(size_t size, size_t align);
void percpu_free(void __percpu *p);
/* Flags of percpu_alloc_flags(). */
#define PERCPU_ALLOC_F_NOWAIT 1u	/* as percpu_alloc_nowait() */
#define PERCPU_ALLOC_F_NOWARN 4u	/* no message when the allocation fails */
void __percpu *percpu_alloc_flags(size_t size, size_t align, unsigned int flags);
/* The largest size percpu_alloc() accepts (one unit). */
size_t percpu_max_alloc_size(void);

#define PERCPU_ALLOC(type) \
	((__typeof__(type) __percpu *)percpu_alloc(sizeof(type), _Alignof(__typeof__(type))))

/* Release free pages now (the kernel's balance work). */
void percpu_balance(void);

/* ---- statistics (the kernel's debugfs percpu_stats) -------------------- */

struct percpu_chunk_stats {
	int reserved;		/* the reserved chunk */
	unsigned long nr_alloc;
	size_t max_alloc_size;
	int empty_pop_pages;
	int first_bit;
	size_t free_bytes;
	size_t contig_bytes;
	size_t sum_frag;
	size_t max_frag;
};

struct percpu_stats {
	size_t unit_size, static_size, reserved_size, dyn_size, atom_size, alloc_size;
	unsigned long nr_alloc, nr_dealloc, nr_cur_alloc, nr_max_alloc;
	unsigned int nr_chunks, nr_max_chunks;
	size_t min_alloc_size, max_alloc_size;
	int empty_pop_pages;
	size_t resident_bytes;	/* pages resident in all chunks, all units */
	size_t max_alloc_limit;	/* largest allocation accepted */
	unsigned int nr_chunk_stats;	/* entries filled in chunks[] */
	struct percpu_chunk_stats *chunks;	/* caller's array, may be NULL */
	unsigned int max_chunk_stats;	/* its capacity */
};
int percpu_stats(struct percpu_stats *st);
void percpu_stats_print(FILE *f, const struct percpu_stats *st);

/* ---- the running state ----------------------------------------------- */

/* "rseq", "atomic" (fallback) or "up"; and the index mode in use. */
const char *percpu_mode_name(void);
enum percpu_index_mode percpu_index_mode(void);
int percpu_rseq_registered(void);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* PERCPU_PERCPU_H */
