/* SPDX-License-Identifier: MIT */
/*
 * modlib_a's second translation unit: it includes <percpu/percpu.h> too,
 * so the library's registration constructor runs twice (idempotent).
 */
#include "modlib.h"

static PERCPU_DEFINE(long, a2_plain) = 77;

long moda2_read_plain(unsigned int cpu)
{
	return *percpu_ptr(PERCPU_VAR(a2_plain), cpu);
}
