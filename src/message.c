/* SPDX-License-Identifier: MIT */
/* One-line diagnostics, in the kernel's "percpu: ..." form. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

void pcpu_msg(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write, so lines from concurrent threads do not interleave. */
	fprintf(stderr, "percpu: %s\n", line);
}
