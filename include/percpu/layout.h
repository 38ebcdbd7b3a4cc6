/* SPDX-License-Identifier: MIT */
/*
 * The first chunk's layout: the kernel's pcpu_build_alloc_info() and its
 * boot report, for this process or for any hypothetical machine.
 */
#ifndef PERCPU_LAYOUT_H
#define PERCPU_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <percpu/percpu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; its API is exported. */
#pragma GCC visibility push(default)

#define PERCPU_NO_CPU 0xffffffffu	/* an unused unit */

struct percpu_group_info {
	int node;			/* NUMA node of the group's CPUs */
	unsigned int nr_units;		/* including unused units (rounded to upa) */
	size_t base_offset;		/* of the group's first unit from the chunk base */
	unsigned int *cpu_map;		/* unit -> cpu, or PERCPU_NO_CPU */
};

struct percpu_layout {
	/* pcpu_alloc_info */
	size_t static_size, reserved_size, dyn_size;
	size_t unit_size, atom_size, alloc_size;
	unsigned int nr_groups;
	struct percpu_group_info *groups;
	/* the machine */
	unsigned int nr_cpu_ids;	/* highest possible CPU id + 1 */
	unsigned int nr_possible;
	unsigned int nr_units;		/* sum of groups' nr_units */
	int up;				/* CONFIG_SMP=n layout */
	/* pcpu_setup_first_chunk's maps, by CPU id (nr_cpu_ids entries) */
	int *unit_map;			/* cpu -> unit index, -1 if not possible */
	size_t *unit_off;		/* cpu -> offset of its unit from the chunk base */
	size_t chunk_span;		/* bytes from the chunk base to the last unit's end */
};

/*
 * Computes the layout of a machine described by cfg (cfg->cpus / ->nodes,
 * NULL for the real topology; sizes as in percpu_setup()) with a static
 * section of static_size bytes.  up != 0 computes the UP layout.
 * Returns NULL with errno set (and a message in err) on bad input.
 */
struct percpu_layout *percpu_layout_compute(const struct percpu_config *cfg,
					    size_t static_size, int up,
					    char *err, size_t errlen);
void percpu_layout_free(struct percpu_layout *l);

/* The layout of this process (after setup), or NULL before setup. */
const struct percpu_layout *percpu_layout_current(void);

/*
 * Prints the kernel's boot report:
 *   percpu: Embedded N pages/cpu sS rR dD uU       (SMP only)
 *   pcpu-alloc: sS rR dD uU alloc=A*B
 *   pcpu-alloc: [0] 00 01 ...                      (one or more lines)
 */
void percpu_layout_print(FILE *f, const struct percpu_layout *l);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
