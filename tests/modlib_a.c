/* SPDX-License-Identifier: MIT */
/* Linked at start-up; exports moda_shared; two translation units. */
#define MODLIB(x) moda_##x
#define MODLIB_BASE 1000
#include "modlib_body.h"

DEFINE_PER_CPU(long, moda_shared) = MODA_SHARED_INIT;
