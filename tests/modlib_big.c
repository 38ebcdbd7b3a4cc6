/* SPDX-License-Identifier: MIT */
/* A per-CPU section larger than any unit with a small reserved region. */
#include "modlib.h"

static PERCPU_DEFINE_PAGE_ALIGNED(unsigned char[512 * 1024], big) = { 1 };

int modbig_first(unsigned int cpu)
{
	return (*percpu_ptr(PERCPU_VAR(big), cpu))[0];
}
