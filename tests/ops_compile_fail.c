/* SPDX-License-Identifier: MIT */
/*
 * Compiled by ops_compile_fail.cmake: CASE 0 must compile (the control),
 * CASE 1 (3 bytes) and CASE 2 (16 bytes) must not.
 */
#include <percpu/ops.h>

#if CASE == 0
typedef long T;
#elif CASE == 1
typedef struct { char c[3]; } T;
#else
typedef struct { uint64_t a, b; } T;
#endif

PERCPU_DEFINE(T, v);

T f(T x);
T f(T x)
{
	percpu_this_write(PERCPU_VAR(v), x);
	return percpu_this_read(PERCPU_VAR(v));
}
