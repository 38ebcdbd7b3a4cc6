/* SPDX-License-Identifier: MIT */
/*
 * percpu_ref: mode switches and the grace period that makes them sound.
 * Written from the kernel's documented semantics.
 *
 * Reader (get/put/tryget, <percpu/ref.h>), per thread word rd:
 *	R1 rd = depth+1 (plain store)      R2 p = ref->percpu_count_ptr
 *	R3 per-CPU add on p, or atomic     R4 rd = depth, left+1 (release)
 * Switch to atomic:
 *	S1 ptr |= ATOMIC (or DEAD)         S2 membarrier(PRIVATE_EXPEDITED)
 *	S3 for each registered thread: if its word shows a section (depth >
 *	   0), wait until that word shows it left (depth 0 or "left" moved)
 *	S4 sum the per-CPU counts into the atomic count, then unbias
 *
 * Why no per-CPU add can be missed by S4: take any reader section and its
 * R2.  S2 puts a full barrier on every CPU running one of our threads (a
 * thread not running passes one when it is scheduled), so either R1 is
 * visible to S3, or R2 comes after S1 and reads the flag (the usual
 * membarrier pairing: compiler barrier on the reader side).  If R2 saw the
 * flag, R3 is atomic and per-CPU counts are not touched.  Otherwise S3
 * saw depth > 0 and waits for R4, which is a release store after R3, read
 * with acquire: S4's loads see the add.  A section that began after the
 * wait started sees the flag by the same argument.  So after S3 no thread
 * adds to this ref's per-CPU counts until switch_to_percpu clears the
 * flag, and S4's sum is exact.  The bias keeps the atomic count positive
 * between S1 (puts already go to the atomic) and S4; only then can a put
 * see zero, and exactly one put sees the transition: release runs once,
 * after the last put.  kill drops the initial reference after S4.
 *
 * The rseq operations used in R3 are per-CPU atomic by themselves (rseq
 * restart) and so are the fallback's atomics: the argument does not
 * depend on the fast path's mode.  Where membarrier is unavailable,
 * readers take a full fence after R1 instead (bit FENCE of their word).
 *
 * In rseq mode get and put skip the word: one critical section reads the
 * mode word (R2) and adds (R3), and S2 is then
 * membarrier(PRIVATE_EXPEDITED_RSEQ), which also restarts every critical
 * section in flight (the kernel's RCU-sched, with the section as the
 * preempt-off region).  A section that read the mode before S1 either
 * committed before S2's barrier on its CPU, so S4 sees its add, or is
 * restarted and reads the mode again after S1: it sees the flag and
 * leaves for the atomic count.  A section that starts after S2 reads the
 * flag too.  Readers of both kinds may run at once (a thread that cannot
 * use rseq takes the word path); S2 and S3 cover both.
 *
 * Nesting (a signal handler using a ref inside a section): depth counts
 * the levels; "left" moves only when the outermost section leaves, so a
 * waiter never mistakes an inner exit for the outer one.  R1's load and
 * store can be split by a handler that runs whole sections; its store
 * then rewinds "left", which only makes S3 wait longer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include <percpu/ref.h>

#define PCPU_GFP_KERNEL 0xcc0u
#define PCPU_GFP_NOWARN 0x2000u

__thread uint64_t percpu_ref__rd __attribute__((tls_model("initial-exec"))) =
	PERCPU_REF__UNREG;

/* ---- the registry of threads that entered a section ------------------- */

static pthread_once_t ref_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t reg_key;
static uint64_t **readers;
static size_t nr_readers, max_readers;
static bool use_membarrier;

/* Mode switches, for all refs (the kernel's percpu_ref_switch_lock). */
static pthread_mutex_t switch_lock;

static void reg_remove_locked(uint64_t *rd)
{
	for (size_t i = 0; i < nr_readers; i++) {
		if (readers[i] == rd) {
			readers[i] = readers[--nr_readers];
			return;
		}
	}
}

/* Thread exit: its word goes away with its TLS. */
static void reg_thread_exit(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&reg_lock);
	reg_remove_locked(&percpu_ref__rd);
	__atomic_store_n(&percpu_ref__rd, PERCPU_REF__UNREG, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&reg_lock);
}

static void reg_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
}

static void reg_parent(void)
{
	pthread_mutex_unlock(&reg_lock);
}

/* The child has one thread: the others' words would wait forever. */
static void reg_child(void)
{
	nr_readers = 0;
	if (!(percpu_ref__rd & PERCPU_REF__UNREG) && max_readers)
		readers[nr_readers++] = &percpu_ref__rd;
	pthread_mutex_unlock(&reg_lock);
}

static void ref_global_init(void)
{
	pthread_mutexattr_t a;

	/* Recursive: confirm_switch and release may switch refs themselves. */
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&switch_lock, &a);
	pthread_mutexattr_destroy(&a);
	if (pthread_key_create(&reg_key, reg_thread_exit)) {
		pcpu_msg("percpu_ref: no thread key; aborting");
		abort();
	}
	pthread_atfork(reg_prepare, reg_parent, reg_child);
	use_membarrier = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
	if (!use_membarrier && getenv("PERCPU_DEBUG"))
		pcpu_msg("percpu_ref: membarrier unavailable, readers fence");
}

static void reg_thread(void)
{
	pthread_once(&ref_once, ref_global_init);
	pthread_mutex_lock(&reg_lock);
	if (nr_readers == max_readers) {
		size_t n = max_readers ? max_readers * 2 : 64;
		uint64_t **r = realloc(readers, n * sizeof(*r));

		if (!r) {
			pcpu_msg("percpu_ref: out of memory registering a thread; aborting");
			abort();
		}
		readers = r;
		max_readers = n;
	}
	readers[nr_readers++] = &percpu_ref__rd;
	__atomic_store_n(&percpu_ref__rd, use_membarrier ? 0 : PERCPU_REF__FENCE,
			 __ATOMIC_RELAXED);
	pthread_mutex_unlock(&reg_lock);
	pthread_setspecific(reg_key, (void *)1);
}

uint64_t percpu_ref__enter_slow(void)
{
	uint64_t w = __atomic_load_n(&percpu_ref__rd, __ATOMIC_RELAXED);

	if (w & PERCPU_REF__UNREG) {
		reg_thread();
		w = __atomic_load_n(&percpu_ref__rd, __ATOMIC_RELAXED);
	}
	if ((w & PERCPU_REF__DEPTH) == PERCPU_REF__DEPTH) {
		pcpu_msg("percpu_ref: sections nested too deep; aborting");
		abort();
	}
	__atomic_store_n(&percpu_ref__rd, w + 1, __ATOMIC_RELAXED);
	/* Needed without membarrier; harmless (and rare) otherwise. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return w;
}

static void backoff(unsigned int spins)
{
	if (spins < 64) {
		__asm__ volatile("" ::: "memory");
	} else if (spins < 256) {
		sched_yield();
	} else {
		struct timespec ts = { 0, 50 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/*
 * S2 + S3: after this, every section that read a mode word before the
 * caller's store to it has left, and its per-CPU add is visible.
 */
static void ref_synchronize(void)
{
	uint64_t self = __atomic_load_n(&percpu_ref__rd, __ATOMIC_RELAXED);

	if (!(self & PERCPU_REF__UNREG) && (self & PERCPU_REF__DEPTH)) {
		pcpu_msg("percpu_ref: mode switch inside a get/put (signal handler?); aborting");
		abort();
	}
	/* The RSEQ command is also the barrier; it stops critical-section readers. */
	if (pcpu_rseq_barrier() != 0 &&
	    (!use_membarrier || syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0)))
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < nr_readers; i++) {
		uint64_t *rd = readers[i];
		uint64_t w0 = __atomic_load_n(rd, __ATOMIC_ACQUIRE), w;

		if (!(w0 & PERCPU_REF__DEPTH))
			continue;
		for (unsigned int spins = 0;; spins++) {
			w = __atomic_load_n(rd, __ATOMIC_ACQUIRE);
			if (!(w & PERCPU_REF__DEPTH) ||
			    ((w ^ w0) & ~(PERCPU_REF__DEPTH | PERCPU_REF__FENCE | PERCPU_REF__UNREG)))
				break;
			backoff(spins);
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

/* ---- mode switches (switch_lock held) -------------------------------- */

static unsigned long __percpu *ref_counts(unsigned long p)
{
	return (unsigned long __percpu *)(p & ~(unsigned long)__PERCPU_REF_ATOMIC_DEAD);
}

static void set_ptr(struct percpu_ref *ref, unsigned long p)
{
	__atomic_store_n(&ref->percpu_count_ptr, p, __ATOMIC_SEQ_CST);
}

static void switch_to_atomic_locked(struct percpu_ref *ref, percpu_ref_func_t *confirm)
{
	unsigned long p = ref->percpu_count_ptr, sum = 0;
	unsigned int cpu;

	if (p & __PERCPU_REF_ATOMIC) {
		if (confirm)
			confirm(ref);
		return;
	}
	set_ptr(ref, p | __PERCPU_REF_ATOMIC);				/* S1 */
	ref_synchronize();						/* S2, S3 */
	percpu_for_each_possible_cpu(cpu)				/* S4 */
		sum += __atomic_load_n(percpu_ptr(ref_counts(p), cpu), __ATOMIC_RELAXED);
	/* The bias came with per-CPU mode; the sum replaces it. */
	__atomic_add_fetch(&ref->data->count, (long)(sum - PERCPU_COUNT_BIAS), __ATOMIC_SEQ_CST);
	if (confirm) {
		ref->data->confirm_switch = confirm;
		confirm(ref);
		ref->data->confirm_switch = NULL;
	}
}

static void switch_to_percpu_locked(struct percpu_ref *ref)
{
	unsigned long p = ref->percpu_count_ptr;
	unsigned int cpu;

	if (!(p & __PERCPU_REF_ATOMIC))
		return;
	if (!ref->data->allow_reinit) {
		pcpu_msg("percpu_ref: switch to per-CPU mode without PERCPU_REF_ALLOW_REINIT");
		return;
	}
	__atomic_add_fetch(&ref->data->count, (long)PERCPU_COUNT_BIAS, __ATOMIC_SEQ_CST);
	/*
	 * No thread touches these counts: every section that saw per-CPU
	 * mode was waited for when the flag was set, and the flag is still
	 * set.  The store below publishes the zeroes with the mode.
	 */
	percpu_for_each_possible_cpu(cpu)
		__atomic_store_n(percpu_ptr(ref_counts(p), cpu), 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ref->percpu_count_ptr, p & ~(unsigned long)__PERCPU_REF_ATOMIC,
			 __ATOMIC_RELEASE);
}

static void switch_mode_locked(struct percpu_ref *ref, percpu_ref_func_t *confirm)
{
	if (ref->data->force_atomic || (ref->percpu_count_ptr & __PERCPU_REF_DEAD))
		switch_to_atomic_locked(ref, confirm);
	else
		switch_to_percpu_locked(ref);
}

static bool ref_usable(struct percpu_ref *ref, const char *what)
{
	if (ref->data)
		return true;
	pcpu_msg("percpu_ref: %s on a ref that is not initialized", what);
	return false;
}

/* ---- the API ------------------------------------------------------------ */

int percpu_ref_init(struct percpu_ref *ref, percpu_ref_func_t *release,
				unsigned int flags, unsigned int gfp)
{
	unsigned int aflags = 0;
	struct percpu_ref_data *data;
	unsigned long __percpu *counts;
	long start = 0;
	unsigned long p;

	pthread_once(&ref_once, ref_global_init);
	ref->percpu_count_ptr = __PERCPU_REF_ATOMIC_DEAD;
	ref->data = NULL;
	if (gfp && (gfp & PCPU_GFP_KERNEL) != PCPU_GFP_KERNEL)
		aflags |= PERCPU_ALLOC_F_NOWAIT;
	if (gfp & PCPU_GFP_NOWARN)
		aflags |= PERCPU_ALLOC_F_NOWARN;
	/* Aligned past the flag bits. */
	counts = percpu_alloc_flags(sizeof(unsigned long), _Alignof(unsigned long), aflags);
	if (!counts)
		return -ENOMEM;
	data = calloc(1, sizeof(*data));
	if (!data) {
		percpu_free(counts);
		return -ENOMEM;
	}
	p = (unsigned long)counts;
	data->force_atomic = flags & PERCPU_REF_INIT_ATOMIC;
	data->allow_reinit = flags & PERCPU_REF_ALLOW_REINIT;
	if (flags & (PERCPU_REF_INIT_ATOMIC | PERCPU_REF_INIT_DEAD)) {
		p |= __PERCPU_REF_ATOMIC;
		data->allow_reinit = true;	/* it must be able to leave atomic mode */
	} else {
		start += (long)PERCPU_COUNT_BIAS;
	}
	if (flags & PERCPU_REF_INIT_DEAD)
		p |= __PERCPU_REF_DEAD;
	else
		start++;			/* the initial reference */
	data->count = start;
	data->release = release;
	data->ref = ref;
	ref->data = data;
	__atomic_store_n(&ref->percpu_count_ptr, p, __ATOMIC_RELEASE);
	return 0;
}

void percpu_ref_exit(struct percpu_ref *ref)
{
	struct percpu_ref_data *data = ref->data;
	unsigned long p = ref->percpu_count_ptr;

	if (!data)
		return;		/* init failed, or exited already */
	percpu_free(ref_counts(p));
	/* The kernel keeps the final count for percpu_ref_is_zero(). */
	pthread_mutex_lock(&switch_lock);
	ref->percpu_count_ptr = ((unsigned long)__atomic_load_n(&data->count, __ATOMIC_ACQUIRE)
				 << __PERCPU_REF_FLAG_BITS) | __PERCPU_REF_ATOMIC_DEAD;
	ref->data = NULL;
	pthread_mutex_unlock(&switch_lock);
	free(data);
}

void percpu_ref_switch_to_atomic(struct percpu_ref *ref,
					     percpu_ref_func_t *confirm_switch)
{
	if (!ref_usable(ref, "switch_to_atomic"))
		return;
	pthread_mutex_lock(&switch_lock);
	ref->data->force_atomic = true;
	switch_mode_locked(ref, confirm_switch);
	pthread_mutex_unlock(&switch_lock);
}

/* Our switches complete before they return: sync is the same call. */
void percpu_ref_switch_to_atomic_sync(struct percpu_ref *ref)
{
	percpu_ref_switch_to_atomic(ref, NULL);
}

void percpu_ref_switch_to_percpu(struct percpu_ref *ref)
{
	if (!ref_usable(ref, "switch_to_percpu"))
		return;
	pthread_mutex_lock(&switch_lock);
	ref->data->force_atomic = false;
	switch_mode_locked(ref, NULL);
	pthread_mutex_unlock(&switch_lock);
}

void percpu_ref_kill_and_confirm(struct percpu_ref *ref,
					     percpu_ref_func_t *confirm_kill)
{
	if (!ref_usable(ref, "kill"))
		return;
	pthread_mutex_lock(&switch_lock);
	if (ref->percpu_count_ptr & __PERCPU_REF_DEAD) {
		pthread_mutex_unlock(&switch_lock);
		pcpu_msg("percpu_ref_kill_and_confirm called more than once on %p", (void *)ref);
		return;
	}
	set_ptr(ref, ref->percpu_count_ptr | __PERCPU_REF_DEAD);
	switch_mode_locked(ref, confirm_kill);
	pthread_mutex_unlock(&switch_lock);
	/* The initial reference; release may run here. */
	percpu_ref_put(ref);
}

void percpu_ref_resurrect(struct percpu_ref *ref)
{
	if (!ref_usable(ref, "resurrect"))
		return;
	pthread_mutex_lock(&switch_lock);
	if (!(ref->percpu_count_ptr & __PERCPU_REF_DEAD)) {
		pthread_mutex_unlock(&switch_lock);
		pcpu_msg("percpu_ref_resurrect on a ref that is not dead");
		return;
	}
	set_ptr(ref, ref->percpu_count_ptr & ~(unsigned long)__PERCPU_REF_DEAD);
	/* Atomic mode still (dead implies atomic): this goes to the atomic count. */
	percpu_ref_get(ref);
	switch_mode_locked(ref, NULL);
	pthread_mutex_unlock(&switch_lock);
}

bool percpu_ref_is_zero(struct percpu_ref *ref)
{
	unsigned long p = __atomic_load_n(&ref->percpu_count_ptr, __ATOMIC_ACQUIRE);
	unsigned long count;

	if (!(p & __PERCPU_REF_ATOMIC_DEAD))
		return false;
	if (ref->data)
		count = (unsigned long)__atomic_load_n(&ref->data->count, __ATOMIC_ACQUIRE);
	else
		count = p >> __PERCPU_REF_FLAG_BITS;
	return count == 0;
}

void percpu_ref_reinit(struct percpu_ref *ref)
{
	if (!percpu_ref_is_zero(ref))
		pcpu_msg("percpu_ref_reinit on a ref whose count is not zero");
	percpu_ref_resurrect(ref);
}
