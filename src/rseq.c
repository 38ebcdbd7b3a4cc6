/* SPDX-License-Identifier: MIT */
/*
 * The fast path's mode: rseq critical sections, or atomics on the current
 * CPU's slot where rseq is absent.
 *
 * rseq area: glibc's (2.35+) when it registered one (__rseq_size > 0);
 * where glibc is present but did not register, our own per-thread area,
 * registered lazily from the slow path.  GLIBC_TUNABLES=glibc.pthread.rseq=0
 * is the user saying "no rseq": respected (atomic mode).
 *
 * Mixed modes: a thread that cannot use rseq while others do (its
 * registration failed, or it runs on a CPU the tables do not cover)
 * switches the whole process to the fallback for good.  A plain rseq
 * store racing an atomic on the same slot would lose updates, so the
 * switch closes the rseq path (rseq_tp_offs = 0) and zeroes the rseq
 * table, then membarrier(PRIVATE_EXPEDITED_RSEQ) aborts every critical
 * section in flight (they re-read their table entry and leave), and only
 * then lets atomics run (mode = ATOMIC).  rseq mode is never chosen where
 * that membarrier command cannot be registered: the switch would have no
 * way to stop sections in flight.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include <percpu/ops.h>

_Static_assert(PERCPU__MODE_NONE == PCPU_MODE_NONE && PERCPU__MODE_RSEQ == PCPU_MODE_RSEQ &&
	       PERCPU__MODE_ATOMIC == PCPU_MODE_ATOMIC && PERCPU__MODE_UP == PCPU_MODE_UP,
	       "ops.h mode values");

#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif
#define RSEQ_OFF_CPU_ID 4
#define RSEQ_OFF_RSEQ_CS 8
#define RSEQ_OFF_MM_CID 24
#define RSEQ_FLAG_UNREGISTER 1

/* glibc 2.35+; weak so that older C libraries still link. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* The kernel's struct rseq (ABI; only rseq_cs is ever written by us). */
struct pcpu_rseq_area {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t pad;
} __attribute__((aligned(32)));

/*
 * Our own area.  cpu_id and mm_cid start at -1 so that a thread that has
 * not registered yet finds a zero table entry (index 0xffff) and reaches
 * the slow path.
 */
static __thread struct pcpu_rseq_area pcpu_own_area
	__attribute__((tls_model("initial-exec"))) = {
	.cpu_id = (uint32_t)-1, .mm_cid = (uint32_t)-1,
};
static __thread int pcpu_own_state;	/* 0 not yet, 1 registered, -1 failed */

enum pcpu_area { AREA_NONE, AREA_GLIBC, AREA_OWN };

/*
 * The fast paths' tables (see struct percpu_hot): the unit offset per
 * index, 0 where that path must not run.  Untouched bss beyond the
 * entries in use.
 */
intptr_t percpu__rseq_offset[PERCPU__RSEQ_SLOTS];
intptr_t percpu__atomic_offset[PERCPU__RSEQ_SLOTS];

static enum pcpu_area pcpu_area;
static long pcpu_area_tp_off;		/* thread pointer -> the area */
static uint64_t pcpu_rseq_tp_offs;	/* percpu_hot.rseq_tp_offs once the path opens */
static unsigned int pcpu_nr_rseq;	/* entries of percpu__rseq_offset in use */
static int pcpu_target_mode = PCPU_MODE_NONE;	/* published by the slow path */
static enum percpu_index_mode pcpu_index;
static bool pcpu_membarrier_ok;
static pthread_key_t pcpu_own_key;
static pthread_mutex_t pcpu_switch_lock = PTHREAD_MUTEX_INITIALIZER;

#if PERCPU_SMP
static inline char *pcpu_tp(void)
{
	char *tp;

# if defined(__x86_64__)
	__asm__("movq %%fs:0, %0" : "=r"(tp));	/* the TCB points at itself */
# elif defined(__aarch64__)
	__asm__("mrs %0, tpidr_el0" : "=r"(tp));
# else
	tp = __builtin_thread_pointer();
# endif
	return tp;
}
#endif

static long pcpu_tp_off(const void *p)
{
#if PERCPU_SMP
	return (long)((const char *)p - pcpu_tp());
#else
	(void)p;
	return 0;
#endif
}

static int pcpu_rseq_syscall(void *area, int flags)
{
#if PERCPU_ARCH_RSEQ && defined(SYS_rseq)
	return (int)syscall(SYS_rseq, area, sizeof(struct pcpu_rseq_area), flags,
			    PERCPU_RSEQ_SIG);
#else
	(void)area, (void)flags;
	errno = ENOSYS;
	return -1;
#endif
}

/* At thread exit: give the area back before its memory goes. */
static void pcpu_own_unregister(void *unused)
{
	sigset_t all, saved;

	(void)unused;
	if (pcpu_own_state != 1)
		return;
	/*
	 * The kernel resets mm_cid to 0, a valid index, when the area goes:
	 * a signal handler's operation in between would then commit without
	 * rseq's protection.  So no handler runs until mm_cid is invalid again.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	if (!pcpu_rseq_syscall(&pcpu_own_area, RSEQ_FLAG_UNREGISTER)) {
		pcpu_own_state = 0;
		__atomic_store_n(&pcpu_own_area.mm_cid, (uint32_t)-1, __ATOMIC_RELAXED);
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static int pcpu_own_register(void)
{
	if (pcpu_own_state)
		return pcpu_own_state > 0 ? 0 : -1;
	if (pcpu_rseq_syscall(&pcpu_own_area, 0)) {
		pcpu_own_state = -1;
		return -1;
	}
	pcpu_own_state = 1;
	pthread_setspecific(pcpu_own_key, (void *)1);
	return 0;
}

static bool glibc_rseq_disabled_by_user(void)
{
	const char *t = getenv("GLIBC_TUNABLES");
	const char *key = "glibc.pthread.rseq=0";

	for (const char *s = t; s && (s = strstr(s, key)); s += strlen(key)) {
		char end = s[strlen(key)];

		if ((s == t || s[-1] == ':') && (end == 0 || end == ':'))
			return true;
	}
	return false;
}

static int pcpu_membarrier(int cmd)
{
	return (int)syscall(__NR_membarrier, cmd, 0, 0);
}

static const char *choose_area(const struct percpu_config *cfg)
{
	const char *env = getenv("PERCPU_FASTPATH");

	if (!PERCPU_ARCH_RSEQ)
		return "no rseq critical sections for this architecture";
	/*
	 * glibc's registered area gives the fallback its index too (a load
	 * instead of a getcpu() call), whatever mode is chosen below.
	 */
	if (&__rseq_size && __rseq_size > 0) {
		pcpu_area = AREA_GLIBC;
		pcpu_area_tp_off = (long)__rseq_offset;
	}
	if (cfg->fastpath == PERCPU_FASTPATH_ATOMIC || (env && !strcmp(env, "atomic")))
		return "atomic mode requested";
	/*
	 * ThreadSanitizer cannot see that rseq makes same-CPU accesses
	 * exclusive, so it would report every shared per-CPU slot: check the
	 * atomic path there instead.
	 */
	if (PCPU_UNDER_TSAN)
		return "ThreadSanitizer build";
	if (pcpu_area == AREA_GLIBC)
		return NULL;
	/* PERCPU_RSEQ=own: a test hook that registers our area despite the tunable. */
	env = getenv("PERCPU_RSEQ");
	if (&__rseq_size && glibc_rseq_disabled_by_user() && !(env && !strcmp(env, "own")))
		return "glibc.pthread.rseq=0";
	if (pthread_key_create(&pcpu_own_key, pcpu_own_unregister))
		return "no thread key";
	if (pcpu_own_register()) {
		pthread_key_delete(pcpu_own_key);
		return "rseq registration failed";
	}
	pcpu_area = AREA_OWN;
	pcpu_area_tp_off = pcpu_tp_off(&pcpu_own_area);
	return NULL;
}

/* sched_getcpu() in getcpu()'s shape: percpu_hot.getcpu without a vDSO. */
long pcpu_getcpu_by_sched(unsigned int *cpu, unsigned int *node, void *unused)
{
	int c = sched_getcpu();

	(void)node, (void)unused;
	*cpu = c < 0 ? 0 : (unsigned int)c;
	return 0;
}

/*
 * The fallback's CPU when there is no rseq area to read: the vDSO's
 * getcpu, called directly.  glibc's sched_getcpu() would first read its
 * unregistered area and then call the same function through a pointer
 * (here 4.4 against 2.9 ns per call).  aarch64's vDSO has none.
 */
static void choose_getcpu(struct percpu_hot *h)
{
	void *fn = pcpu_vdso_sym("__vdso_getcpu");

	h->getcpu = fn ? (long (*)(unsigned int *, unsigned int *, void *))fn :
		    pcpu_getcpu_by_sched;
}

/* A table of n entries, or NULL. */
static intptr_t *table(size_t n)
{
	return calloc(n ? n : 1, sizeof(intptr_t));
}

int pcpu_fastpath_init(const struct percpu_config *cfg, const struct percpu_layout *l,
		       const intptr_t *cpu_offset)
{
	struct percpu_hot *h = &percpu_hot;
	unsigned int n = l->nr_cpu_ids, first = n, nr_index = n, k = 0;
	intptr_t *by_cpu, *by_cid;
	const char *why;

	choose_getcpu(h);
	if (!PERCPU_SMP || l->up) {
		pcpu_index = PERCPU_INDEX_CPU;
		h->mode = PCPU_MODE_UP;
		pcpu_target_mode = PCPU_MODE_UP;
		return 0;
	}
	by_cpu = table(n);
	by_cid = table(l->nr_possible);
	if (!by_cpu || !by_cid) {
		free(by_cpu);
		free(by_cid);
		return -1;
	}
	for (unsigned int c = 0; c < n; c++) {
		if (l->unit_map[c] < 0)
			continue;
		if (first == n)
			first = c;
		by_cpu[c] = cpu_offset[c];
		by_cid[k++] = cpu_offset[c];
	}
	/*
	 * Ids below nr_cpu_ids that are not possible (sparse or simulated
	 * topologies) borrow the first possible CPU's unit: fine for atomics,
	 * not for rseq, so rseq covers only the ids below the first hole that
	 * this process can actually run on.
	 */
	cpu_set_t *run = CPU_ALLOC(n);
	size_t runsz = CPU_ALLOC_SIZE(n);
	if (run && sched_getaffinity(0, runsz, run))
		CPU_FREE(run), run = NULL;
	for (unsigned int c = 0; c < n; c++) {
		if (l->unit_map[c] >= 0)
			continue;
		by_cpu[c] = cpu_offset[first];
		if ((!run || CPU_ISSET_S(c, runsz, run)) && c < nr_index)
			nr_index = c;
	}
	if (run)
		CPU_FREE(run);

	why = choose_area(cfg);
	/* Static TLS is never 2 GiB away, but the fast path's word relies on it. */
	if (!why && (pcpu_area_tp_off < INT32_MIN || pcpu_area_tp_off > INT32_MAX - RSEQ_OFF_MM_CID))
		why = "rseq area beyond 32-bit thread-pointer offsets";
	if (!why) {
		if (pcpu_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ) == 0)
			pcpu_membarrier_ok = true;
		else
			why = "membarrier(PRIVATE_EXPEDITED_RSEQ) unavailable";
	}
	pcpu_index = PERCPU_INDEX_CPU;
	if (!why && cfg->index_mode == PERCPU_INDEX_MM_CID &&
	    getauxval(AT_RSEQ_FEATURE_SIZE) >= RSEQ_OFF_MM_CID + 4)
		pcpu_index = PERCPU_INDEX_MM_CID;

	if (why) {
		/* The area stays readable for the fallback's index when registered. */
		h->rseq_index_tp_off = pcpu_area == AREA_GLIBC ?
			pcpu_area_tp_off + RSEQ_OFF_CPU_ID : 0;
		pcpu_area = pcpu_area == AREA_GLIBC ? AREA_GLIBC : AREA_NONE;
		h->index_offset = by_cpu;
		h->nr_atomic_index = n;
		pcpu_rseq_tp_offs = 0;
		free(by_cid);
		pcpu_target_mode = PCPU_MODE_ATOMIC;
		if (getenv("PERCPU_DEBUG"))
			pcpu_msg("fast path: atomic (%s)", why);
		return 0;
	}
	if (pcpu_index == PERCPU_INDEX_MM_CID) {
		/* cids are dense: the k-th possible CPU's unit serves cid k. */
		h->rseq_index_tp_off = pcpu_area_tp_off + RSEQ_OFF_MM_CID;
		h->index_offset = by_cid;
		nr_index = l->nr_possible;
		h->nr_atomic_index = l->nr_possible;
		free(by_cpu);
	} else {
		h->rseq_index_tp_off = pcpu_area_tp_off + RSEQ_OFF_CPU_ID;
		h->index_offset = by_cpu;
		h->nr_atomic_index = n;
		free(by_cid);
	}
	/* One word holds both offsets (checked above that they fit). */
	pcpu_rseq_tp_offs = (uint32_t)(pcpu_area_tp_off + RSEQ_OFF_RSEQ_CS) |
			    (uint64_t)(uint32_t)h->rseq_index_tp_off << 32;
	/*
	 * The table is untouched bss beyond the entries in use (a failed
	 * setup may have filled some).  A unit's offset is never 0: units sit
	 * below PERCPU_PTR_BASE.
	 */
	for (unsigned int i = 0; i < pcpu_nr_rseq; i++)
		percpu__rseq_offset[i] = 0;
	/* 0xfffe and 0xffff stay 0: the low halves of -2 and -1, "not registered". */
	pcpu_nr_rseq = pcpu_min(nr_index, PERCPU__RSEQ_SLOTS - 2);
	for (unsigned int i = 0; i < pcpu_nr_rseq; i++)
		percpu__rseq_offset[i] = h->index_offset[i];
	pcpu_target_mode = PCPU_MODE_RSEQ;
	return 0;
}

/*
 * The switch lock, with signals blocked while it is held: a handler that
 * runs an operation on the same thread must not wait for it.
 */
static void switch_lock(sigset_t *saved)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, saved);
	pthread_mutex_lock(&pcpu_switch_lock);
}

static void switch_unlock(const sigset_t *saved)
{
	pthread_mutex_unlock(&pcpu_switch_lock);
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* Opens atomic mode's short way (after every critical section has ended). */
static void fill_atomic_table(void)
{
	const struct percpu_hot *h = &percpu_hot;
	unsigned int n = pcpu_min(h->nr_atomic_index, PERCPU__RSEQ_SLOTS - 2);

	for (unsigned int i = 0; i < n; i++)
		__atomic_store_n(&percpu__atomic_offset[i], h->index_offset[i], __ATOMIC_RELEASE);
}

/*
 * For the switch to atomics and percpu_ref's switches: every rseq
 * critical section of this process in flight is restarted, and every CPU
 * running one of its threads passes a full barrier (the kernel's
 * ipi_rseq: smp_mb, then rseq_preempt).
 * 0: done; 1: no critical section can exist here (rseq mode was never
 * chosen, so membarrier's RSEQ command is not registered).
 */
int pcpu_rseq_barrier(void)
{
	if (!__atomic_load_n(&pcpu_membarrier_ok, __ATOMIC_RELAXED))
		return 1;
	/* There is no other way to stop them: retry a transient ENOMEM, then give up. */
	for (int tries = 0; pcpu_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ); tries++) {
		if (errno != ENOMEM || tries == 100) {
			pcpu_msg("cannot stop rseq critical sections (%s); aborting",
				 strerror(errno));
			abort();
		}
		usleep(1000);
	}
	return 0;
}

void pcpu_force_atomic_mode(const char *why)
{
	sigset_t saved;

	switch_lock(&saved);
	if (__atomic_load_n(&pcpu_target_mode, __ATOMIC_ACQUIRE) == PCPU_MODE_RSEQ) {
		__atomic_store_n(&percpu_hot.rseq_tp_offs, 0, __ATOMIC_RELEASE);
		for (unsigned int i = 0; i < pcpu_nr_rseq; i++)
			__atomic_store_n(&percpu__rseq_offset[i], 0, __ATOMIC_RELEASE);
		/*
		 * After this returns no critical section that saw an old
		 * entry can still commit: each was aborted and retries.
		 */
		if (pcpu_rseq_barrier() != 0) {		/* never: rseq mode registered it */
			pcpu_msg("cannot stop rseq critical sections; aborting");
			abort();
		}
		__atomic_store_n(&pcpu_target_mode, PCPU_MODE_ATOMIC, __ATOMIC_RELEASE);
		fill_atomic_table();
		if (__atomic_load_n(&percpu_hot.mode, __ATOMIC_RELAXED) != PCPU_MODE_NONE)
			__atomic_store_n(&percpu_hot.mode, PCPU_MODE_ATOMIC, __ATOMIC_RELEASE);
		if (why)
			pcpu_msg("switching this_cpu operations to atomics: %s", why);
	}
	switch_unlock(&saved);
}

bool pcpu_rseq_stopped(void)
{
	return __atomic_load_n(&pcpu_target_mode, __ATOMIC_ACQUIRE) == PCPU_MODE_ATOMIC;
}

unsigned int pcpu_current_index(void)
{
	const struct percpu_hot *h = &percpu_hot;
	unsigned int n = h->nr_atomic_index, i;
	int cpu;

#if PERCPU_SMP
	if (h->rseq_index_tp_off) {
		i = pcpu_arch_tp_u32(h->rseq_index_tp_off);
		if (i < n)
			return i;
	}
#endif
	if (n <= 1)
		return 0;
	cpu = sched_getcpu();
	i = cpu < 0 ? 0 : (unsigned int)cpu;
	return i < n ? i : i % n;
}

/*
 * Opens the chosen fast path once setup has published everything (ready),
 * never before: the end of setup does it, or a first operation that finds
 * ready before that.  Under the switch lock, so that a switch to atomics
 * cannot interleave.
 */
void pcpu_fastpath_open(void)
{
	struct percpu_hot *h = &percpu_hot;
	sigset_t saved;

	switch_lock(&saved);
	if (__atomic_load_n(&h->mode, __ATOMIC_RELAXED) == PCPU_MODE_NONE) {
		int t = __atomic_load_n(&pcpu_target_mode, __ATOMIC_ACQUIRE);

		if (t == PCPU_MODE_RSEQ)
			__atomic_store_n(&h->rseq_tp_offs, pcpu_rseq_tp_offs, __ATOMIC_RELEASE);
		else if (t == PCPU_MODE_ATOMIC)
			fill_atomic_table();
		__atomic_store_n(&h->mode, t, __ATOMIC_RELEASE);
	}
	switch_unlock(&saved);
}

void percpu__slowpath(void)
{
	struct percpu_hot *h = &percpu_hot;
	int m;

	if (!__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE)) {
		if (percpu_setup(NULL) || !__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE)) {
			pcpu_msg("this_cpu operation before a successful setup; aborting");
			abort();
		}
	}
	m = __atomic_load_n(&h->mode, __ATOMIC_ACQUIRE);
	if (m == PCPU_MODE_NONE) {
		/* Setup published everything but has not opened the path yet. */
		pcpu_fastpath_open();
		return;
	}
	if (m != PCPU_MODE_RSEQ)
		return;
#if PERCPU_SMP
	if (__atomic_load_n(&h->rseq_tp_offs, __ATOMIC_ACQUIRE) == 0) {
		/* A switch is under way: wait until it is complete. */
		pcpu_force_atomic_mode(NULL);
		return;
	}
	if (pcpu_area == AREA_OWN && pcpu_own_state == 0) {
		if (!pcpu_own_register())
			return;
		pcpu_force_atomic_mode("a thread cannot register rseq");
		return;
	}
	uint32_t i = pcpu_arch_tp_u32(h->rseq_index_tp_off);
	if (i < pcpu_nr_rseq)
		return;		/* the index changed meanwhile: retry */
	if ((int32_t)pcpu_arch_tp_u32(pcpu_area_tp_off + RSEQ_OFF_CPU_ID) < 0) {
		pcpu_force_atomic_mode("a thread runs without rseq");
		return;
	}
	char why[64];
	snprintf(why, sizeof(why), "%s %u beyond the tables",
		 pcpu_index == PERCPU_INDEX_MM_CID ? "mm_cid" : "CPU", i);
	pcpu_force_atomic_mode(why);
#endif
}

/*
 * smp_processor_id(): always a possible CPU, as in the kernel, so that
 * per_cpu(var, smp_processor_id()) is valid.  A CPU outside the possible
 * set (hot-added, or a simulated topology) is folded onto a possible one,
 * the way the atomic fallback picks its slot.
 */
int percpu_current_cpu(void)
{
#if PERCPU_SMP
	int c = -1;

	if (pcpu_area != AREA_NONE && (pcpu_area == AREA_GLIBC || pcpu_own_state == 1))
		c = (int32_t)pcpu_arch_tp_u32(pcpu_area_tp_off + RSEQ_OFF_CPU_ID);
	if (c < 0)
		c = sched_getcpu();
	if (c >= 0 && percpu_cpu_possible((unsigned int)c))
		return c;
	unsigned int k = (unsigned int)(c < 0 ? 0 : c) % pcpu_max(percpu_num_possible_cpus(), 1u);
	int cpu;
	percpu_for_each_possible_cpu(cpu)
		if (k-- == 0)
			return cpu;
	return 0;
#else
	return 0;	/* CONFIG_SMP=n: one CPU */
#endif
}

const char *percpu_mode_name(void)
{
	int m = __atomic_load_n(&percpu_hot.mode, __ATOMIC_ACQUIRE);

	if (m == PCPU_MODE_NONE && __atomic_load_n(&percpu_hot.ready, __ATOMIC_ACQUIRE))
		m = __atomic_load_n(&pcpu_target_mode, __ATOMIC_ACQUIRE);
	switch (m) {
	case PCPU_MODE_RSEQ:
		return "rseq";
	case PCPU_MODE_ATOMIC:
		return "atomic";
	case PCPU_MODE_UP:
		return "up";
	default:
		return "none";
	}
}

enum percpu_index_mode percpu_index_mode(void)
{
	return pcpu_index;
}

/* Whether the calling thread has an rseq area registered with the kernel. */
int percpu_rseq_registered(void)
{
#if PERCPU_SMP
	if (pcpu_area == AREA_GLIBC)
		return (int32_t)pcpu_arch_tp_u32(pcpu_area_tp_off + RSEQ_OFF_CPU_ID) >= 0;
	if (pcpu_area == AREA_OWN)
		return pcpu_own_state == 1;
	if (&__rseq_size && __rseq_size > 0)
		return 1;
#endif
	return 0;
}
