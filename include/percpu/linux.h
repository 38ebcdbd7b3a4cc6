/* SPDX-License-Identifier: MIT */
/*
 * The kernel's per-CPU names, opt-in, so kernel-style code compiles
 * unchanged:
 *
 *   DEFINE_PER_CPU(long, hits);
 *   this_cpu_inc(hits);
 *   long __percpu *p = alloc_percpu(long);
 *   for_each_possible_cpu(cpu) total += *per_cpu_ptr(p, cpu);
 *
 * As in the kernel, &var of a per-CPU variable is a per-CPU pointer and
 * the same accessors take static variables and dynamic pointers.  A direct
 * read or write of a per-CPU variable compiles (as in the kernel) but is
 * reported by sparse, which understands __percpu (see README, "Checking").
 *
 * What userspace changes (a thread cannot disable preemption):
 *  - this_cpu_*(), __this_cpu_*() and raw_cpu_*() are all the same
 *    migration-safe operation (rseq or atomic), because a caller can never
 *    meet __this_cpu_*'s precondition of disabled preemption; they cost
 *    the same, so nothing is lost by the stronger guarantee.
 *  - this_cpu_ptr(), raw_cpu_ptr(), get_cpu_ptr() and get_cpu_var() give
 *    the copy of the CPU the thread runs on at that moment; the thread may
 *    move right after, so plain accesses through that pointer can race
 *    with the new owner of that copy.  Use them for reads that tolerate a
 *    neighbour's copy, or with atomics; put_cpu_ptr()/put_cpu_var() do
 *    nothing.
 *  - smp_processor_id() may be stale as soon as it returns, like the
 *    kernel's raw_smp_processor_id().
 */
#ifndef PERCPU_LINUX_H
#define PERCPU_LINUX_H

#include <percpu/percpu.h>
#include <percpu/ops.h>

/* ---- static per-CPU variables ---- */

#define DEFINE_PER_CPU(type, name) \
	PERCPU__ATTRS() __typeof__(type) __percpu name
#define DECLARE_PER_CPU(type, name) \
	extern PERCPU__ATTRS() __typeof__(type) __percpu name
#define DEFINE_PER_CPU_SHARED_ALIGNED(type, name) \
	PERCPU__ATTRS(PERCPU__CACHE_ALIGNED) __typeof__(type) __percpu name
#define DECLARE_PER_CPU_SHARED_ALIGNED(type, name) \
	extern PERCPU__ATTRS(PERCPU__CACHE_ALIGNED) __typeof__(type) __percpu name
#define DEFINE_PER_CPU_ALIGNED(type, name) DEFINE_PER_CPU_SHARED_ALIGNED(type, name)
#define DECLARE_PER_CPU_ALIGNED(type, name) DECLARE_PER_CPU_SHARED_ALIGNED(type, name)
#define DEFINE_PER_CPU_PAGE_ALIGNED(type, name) \
	PERCPU__ATTRS(PERCPU__PAGE_ALIGNED) __typeof__(type) __percpu name
#define DECLARE_PER_CPU_PAGE_ALIGNED(type, name) \
	extern PERCPU__ATTRS(PERCPU__PAGE_ALIGNED) __typeof__(type) __percpu name
#define DEFINE_PER_CPU_READ_MOSTLY(type, name) DEFINE_PER_CPU(type, name)
#define DECLARE_PER_CPU_READ_MOSTLY(type, name) DECLARE_PER_CPU(type, name)

/* ---- addresses ---- */

#define per_cpu_ptr(ptr, cpu)	percpu_ptr(ptr, cpu)
#define per_cpu(var, cpu)	(*per_cpu_ptr(&(var), cpu))
#define per_cpu_offset(cpu)	(percpu_cpu_offset[(cpu)])
#define __per_cpu_offset	percpu_cpu_offset
#define this_cpu_ptr(ptr)	percpu_this_ptr(ptr)
#define raw_cpu_ptr(ptr)	percpu_this_ptr(ptr)
#define get_cpu_ptr(ptr)	percpu_this_ptr(ptr)
#define put_cpu_ptr(ptr)	((void)(ptr))
#define get_cpu_var(var)	(*percpu_this_ptr(&(var)))
#define put_cpu_var(var)	((void)&(var))
#define smp_processor_id()	percpu_current_cpu()
#define raw_smp_processor_id()	percpu_current_cpu()

/* ---- CPUs ---- */

#define setup_per_cpu_areas()	((void)percpu_setup(NULL))
#define for_each_possible_cpu(cpu) percpu_for_each_possible_cpu(cpu)
#define num_possible_cpus()	percpu_num_possible_cpus()
#define nr_cpu_ids		percpu_get_nr_cpu_ids()
#define cpu_possible(cpu)	percpu_cpu_possible(cpu)
#define cpu_to_node(cpu)	percpu_cpu_to_node(cpu)

/* ---- dynamic allocation ---- */

/*
 * The kernel's gfp bits that matter here, with its values: an allocation
 * that may not block (GFP_NOWAIT, GFP_ATOMIC: (gfp & GFP_KERNEL) !=
 * GFP_KERNEL) uses only existing, populated space and never creates a
 * chunk; __GFP_NOWARN silences the failure message.
 */
#ifndef GFP_KERNEL
typedef unsigned int gfp_t;
#define __GFP_HIGH		0x20u
#define __GFP_IO		0x40u
#define __GFP_FS		0x80u
#define __GFP_ZERO		0x100u
#define __GFP_DIRECT_RECLAIM	0x400u
#define __GFP_KSWAPD_RECLAIM	0x800u
#define __GFP_NOWARN		0x2000u
#define __GFP_RECLAIM		(__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM)
#define GFP_KERNEL		(__GFP_RECLAIM | __GFP_IO | __GFP_FS)
#define GFP_NOWAIT		(__GFP_KSWAPD_RECLAIM)
#define GFP_ATOMIC		(__GFP_HIGH | __GFP_KSWAPD_RECLAIM)
#endif

static inline void __percpu *__alloc_percpu_gfp(size_t size, size_t align, gfp_t gfp)
{
	int flags = 0;
	if ((gfp & GFP_KERNEL) != GFP_KERNEL)
		flags |= PERCPU_ALLOC_F_NOWAIT;
	if (gfp & __GFP_NOWARN)
		flags |= PERCPU_ALLOC_F_NOWARN;
	return percpu_alloc_flags(size, align, flags);
}
#define __alloc_percpu(size, align)	percpu_alloc(size, align)
#define __alloc_reserved_percpu(size, align) percpu_alloc_reserved(size, align)
#define alloc_percpu_gfp(type, gfp) \
	((__typeof__(type) __percpu *)__alloc_percpu_gfp(sizeof(type), __alignof__(type), gfp))
#define alloc_percpu(type) \
	((__typeof__(type) __percpu *)__alloc_percpu(sizeof(type), __alignof__(type)))
#define free_percpu(ptr)	percpu_free(ptr)

/* ---- this_cpu operations: three families, one guarantee (see above) ---- */

#define this_cpu_read(pcp)		percpu_this_read(&(pcp))
#define this_cpu_write(pcp, v)		percpu_this_write(&(pcp), v)
#define this_cpu_add(pcp, v)		percpu_this_add(&(pcp), v)
#define this_cpu_sub(pcp, v)		percpu_this_sub(&(pcp), v)
#define this_cpu_inc(pcp)		percpu_this_inc(&(pcp))
#define this_cpu_dec(pcp)		percpu_this_dec(&(pcp))
#define this_cpu_and(pcp, v)		percpu_this_and(&(pcp), v)
#define this_cpu_or(pcp, v)		percpu_this_or(&(pcp), v)
#define this_cpu_add_return(pcp, v)	percpu_this_add_return(&(pcp), v)
#define this_cpu_sub_return(pcp, v)	percpu_this_sub_return(&(pcp), v)
#define this_cpu_inc_return(pcp)	percpu_this_inc_return(&(pcp))
#define this_cpu_dec_return(pcp)	percpu_this_dec_return(&(pcp))
#define this_cpu_xchg(pcp, v)		percpu_this_xchg(&(pcp), v)
#define this_cpu_cmpxchg(pcp, o, n)	percpu_this_cmpxchg(&(pcp), o, n)
#define this_cpu_try_cmpxchg(pcp, po, n) percpu_this_try_cmpxchg(&(pcp), po, n)

#define __this_cpu_read(pcp)		this_cpu_read(pcp)
#define __this_cpu_write(pcp, v)	this_cpu_write(pcp, v)
#define __this_cpu_add(pcp, v)		this_cpu_add(pcp, v)
#define __this_cpu_sub(pcp, v)		this_cpu_sub(pcp, v)
#define __this_cpu_inc(pcp)		this_cpu_inc(pcp)
#define __this_cpu_dec(pcp)		this_cpu_dec(pcp)
#define __this_cpu_and(pcp, v)		this_cpu_and(pcp, v)
#define __this_cpu_or(pcp, v)		this_cpu_or(pcp, v)
#define __this_cpu_add_return(pcp, v)	this_cpu_add_return(pcp, v)
#define __this_cpu_sub_return(pcp, v)	this_cpu_sub_return(pcp, v)
#define __this_cpu_inc_return(pcp)	this_cpu_inc_return(pcp)
#define __this_cpu_dec_return(pcp)	this_cpu_dec_return(pcp)
#define __this_cpu_xchg(pcp, v)		this_cpu_xchg(pcp, v)
#define __this_cpu_cmpxchg(pcp, o, n)	this_cpu_cmpxchg(pcp, o, n)
#define __this_cpu_try_cmpxchg(pcp, po, n) this_cpu_try_cmpxchg(pcp, po, n)

#define raw_cpu_read(pcp)		this_cpu_read(pcp)
#define raw_cpu_write(pcp, v)		this_cpu_write(pcp, v)
#define raw_cpu_add(pcp, v)		this_cpu_add(pcp, v)
#define raw_cpu_sub(pcp, v)		this_cpu_sub(pcp, v)
#define raw_cpu_inc(pcp)		this_cpu_inc(pcp)
#define raw_cpu_dec(pcp)		this_cpu_dec(pcp)
#define raw_cpu_and(pcp, v)		this_cpu_and(pcp, v)
#define raw_cpu_or(pcp, v)		this_cpu_or(pcp, v)
#define raw_cpu_add_return(pcp, v)	this_cpu_add_return(pcp, v)
#define raw_cpu_sub_return(pcp, v)	this_cpu_sub_return(pcp, v)
#define raw_cpu_inc_return(pcp)		this_cpu_inc_return(pcp)
#define raw_cpu_dec_return(pcp)		this_cpu_dec_return(pcp)
#define raw_cpu_xchg(pcp, v)		this_cpu_xchg(pcp, v)
#define raw_cpu_cmpxchg(pcp, o, n)	this_cpu_cmpxchg(pcp, o, n)
#define raw_cpu_try_cmpxchg(pcp, po, n)	this_cpu_try_cmpxchg(pcp, po, n)

#include <percpu/counter.h>
#include <percpu/ref.h>

#endif /* PERCPU_LINUX_H */
