/* SPDX-License-Identifier: MIT */
/* modlib_b's second translation unit (a second registration). */
#include "modlib.h"

long modb2_this_shared(void);
long modb2_this_shared(void)
{
	return this_cpu_read(moda_shared);
}
